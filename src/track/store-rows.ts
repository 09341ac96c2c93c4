/**
 * What both run stores (SQLite and PostgreSQL) share above their SQL: argument checks, run rows to `RunInfo`, the
 * layer-statistics blobs to rows and matrices, metric rows to columns.
 */
import { LAYER_RECORD_BYTES } from './layer-blob.js';
import { decodeSummary } from './summary.js';
import {
  type Finding,
  LAYER_FIELDS,
  type LayerField,
  type LayerMatrix,
  type LayerStat,
  type LayerStatRow,
  type MetricSeries,
  RUN_STATUSES,
  type RunInfo,
  type RunStatus,
  TrackError,
} from './types.js';

/** A run's row as both stores select it. */
export interface RunRow {
  rid: number;
  id: string;
  name: string | null;
  status: string;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  config: string;
  backend: string;
  summary: string | null;
  /** Computed: the highest logged step and the time it was logged (the runs row is not written per step). */
  max_step: number | null;
  last_time: number | null;
  pid: number | null;
  host: string | null;
  proc_start: string | null;
}

/** A run's row as `RunInfo`, with its status as the store judged it (a dead writer's run reads `interrupted`). */
export function rowToInfo(row: RunRow, status: RunStatus): RunInfo {
  return {
    id: row.id,
    name: row.name,
    status,
    createdAt: row.created_at,
    updatedAt: Math.max(row.updated_at, row.last_time ?? 0),
    finishedAt: row.finished_at,
    config: JSON.parse(row.config),
    backend: row.backend,
    summary: row.summary === null ? null : decodeSummary(row.summary),
    lastStep: row.max_step,
    pid: row.pid,
    host: row.host,
  };
}

/** Keeps `rows` that pass `filter` (status, name, limit), in order. */
export function filterRuns(
  runs: Iterable<RunInfo>,
  filter: {
    status?: RunStatus | readonly RunStatus[] | undefined;
    name?: string | undefined;
    limit?: number | undefined;
  },
): RunInfo[] {
  const statuses = filter.status === undefined ? undefined : ([] as RunStatus[]).concat(filter.status);
  const out: RunInfo[] = [];
  for (const info of runs) {
    if (statuses && !statuses.includes(info.status)) continue;
    if (filter.name !== undefined && !(info.name ?? '').includes(filter.name)) continue;
    out.push(info);
    if (filter.limit !== undefined && out.length >= filter.limit) break;
  }
  return out;
}

/** The text of a run id argument, or BAD_ARGUMENT. */
export function runIdText(idOrPrefix: string): string {
  if (typeof idOrPrefix !== 'string' || idOrPrefix.trim() === '') {
    throw new TrackError('BAD_ARGUMENT', 'a run id is required (see `gradguard runs list`)');
  }
  return idOrPrefix.trim();
}

/** UNKNOWN_RUN or AMBIGUOUS_RUN for a run id argument that matched `matches` (not one) runs. */
export function matchError(text: string, matches: readonly RunRow[], where: string): TrackError {
  if (matches.length === 0) {
    return new TrackError('UNKNOWN_RUN', `no run matches '${text}' in ${where} (see \`gradguard runs list\`)`);
  }
  const shown = matches.slice(0, 5).map((r) => (r.name ? `${r.id} (${r.name})` : r.id));
  const more = matches.length > 5 ? `, and ${matches.length - 5} more` : '';
  return new TrackError(
    'AMBIGUOUS_RUN',
    `'${text}' matches ${matches.length} runs: ${shown.join(', ')}${more}; give more of the id`,
  );
}

/** Checks `logStep`'s step and metrics. */
export function checkStep(step: number, metrics: Record<string, number>): void {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new TrackError('BAD_ARGUMENT', `logStep: step must be an integer >= 0, got ${step}`);
  }
  for (const key in metrics) {
    if (typeof metrics[key] !== 'number') {
      throw new TrackError('BAD_ARGUMENT', `logStep: metric '${key}' must be a number, got ${typeof metrics[key]}`);
    }
  }
}

/** Checks `createRun`'s backend. */
export function checkBackend(backend: unknown): void {
  if (typeof backend !== 'string' || backend === '') {
    throw new TrackError('BAD_ARGUMENT', `createRun: backend must be a non-empty string, got ${String(backend)}`);
  }
}

/** Checks `logFinding`'s finding. */
export function checkFinding(finding: Finding): void {
  if (typeof finding?.kind !== 'string' || finding.kind === '') {
    throw new TrackError('BAD_ARGUMENT', 'logFinding: finding.kind must be a non-empty string');
  }
}

/** Checks `finishRun`'s status. */
export function checkFinalStatus(status: RunStatus): void {
  if (!RUN_STATUSES.includes(status) || status === 'running') {
    throw new TrackError(
      'BAD_ARGUMENT',
      `finishRun: status must be one of finished, diverged, failed, interrupted; got '${String(status)}'`,
    );
  }
}

/** Checks `resumeRun`'s fromStep. */
export function checkFromStep(from: number | undefined): void {
  if (from !== undefined && (!Number.isSafeInteger(from) || from < -1)) {
    throw new TrackError('BAD_ARGUMENT', `resumeRun: fromStep must be an integer >= -1, got ${from}`);
  }
}

/** The column of a layer field, or BAD_ARGUMENT. */
export function layerFieldColumn(field: LayerField): number {
  const col = LAYER_FIELDS.indexOf(field);
  if (col < 0) {
    throw new TrackError(
      'BAD_ARGUMENT',
      `getLayerMatrix: field must be one of ${LAYER_FIELDS.join(', ')}; got '${field}'`,
    );
  }
  return col;
}

/** The layers' names joined by newlines (a layer set's cache key), checking that each has one. */
export function layerSetKey(layers: readonly LayerStat[]): string {
  let key = '';
  for (let i = 0; i < layers.length; i++) {
    const name = layers[i]!.name;
    if (typeof name !== 'string') throw new TrackError('BAD_ARGUMENT', `logStep: layers[${i}] has no name`);
    key += i === 0 ? name : `\n${name}`;
  }
  return key;
}

/** Checks a step's layer blob against its layer set's names. */
export function checkLayerBlob(names: readonly string[], data: Uint8Array, lsid: number, where: string): void {
  if (data.byteLength !== names.length * LAYER_RECORD_BYTES) {
    throw new TrackError('BAD_STORE', `${where}: layer statistics of layer set ${lsid} have the wrong size`);
  }
}

/** Layer rows (step, layer set, blob) as one `LayerStatRow` per (step, layer); `namesOf` checks each blob's size. */
export function decodeLayerRows(
  rows: Iterable<[number, number, Uint8Array]>,
  namesOf: (lsid: number, data: Uint8Array) => string[],
): LayerStatRow[] {
  const out: LayerStatRow[] = [];
  for (const [step, lsid, data] of rows) {
    const names = namesOf(lsid, data);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0, o = 0; i < names.length; i++, o += LAYER_RECORD_BYTES) {
      const row: LayerStatRow = {
        step,
        name: names[i]!,
        gradNorm: view.getFloat64(o, true),
        gradMaxAbs: view.getFloat64(o + 8, true),
        weightNorm: view.getFloat64(o + 16, true),
        updateRatio: view.getFloat64(o + 24, true),
        actMean: view.getFloat64(o + 32, true),
        actStd: view.getFloat64(o + 40, true),
        nonFinite: view.getFloat64(o + 64, true),
      };
      const dead = view.getFloat64(o + 48, true);
      const sat = view.getFloat64(o + 56, true);
      if (!Number.isNaN(dead)) row.deadFrac = dead;
      if (!Number.isNaN(sat)) row.satFrac = sat;
      out.push(row);
    }
  }
  return out;
}

/** Layer rows (step, layer set, blob) as a layers × steps matrix of one field; layers in the order they first appear. */
export function layerMatrix(
  field: LayerField,
  raw: readonly [number, number, Uint8Array][],
  namesOf: (lsid: number, data: Uint8Array) => string[],
): LayerMatrix {
  const col = layerFieldColumn(field);
  const steps = raw.map((r) => r[0]);
  const layers: string[] = [];
  const layerIndex = new Map<string, number>();
  for (const lsid of new Set(raw.map((r) => r[1]))) {
    for (const name of namesOf(lsid, raw.find((r) => r[1] === lsid)![2])) {
      if (!layerIndex.has(name)) layerIndex.set(name, layerIndex.size) && layers.push(name);
    }
  }
  const n = steps.length;
  const values = new Float64Array(layers.length * n).fill(Number.NaN);
  const rowsOf = new Map<number, number[]>();
  for (let s = 0; s < n; s++) {
    const [, lsid, data] = raw[s]!;
    const names = namesOf(lsid, data);
    let rows = rowsOf.get(lsid);
    if (rows === undefined) rowsOf.set(lsid, (rows = names.map((name) => layerIndex.get(name)! * n)));
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    for (let i = 0, o = col * 8; i < rows.length; i++, o += LAYER_RECORD_BYTES) {
      values[rows[i]! + s] = view.getFloat64(o, true);
    }
  }
  return { field, layers, steps, values };
}

/**
 * Step rows (step, time) and metric rows (step, key id, value), both sorted by step, as metric columns; a NULL value
 * (SQLite stores NaN so) reads as NaN.
 */
export function metricColumns(
  stepRows: readonly [number, number][],
  metricRows: Iterable<[number, number, number | null]>,
  keyOf: (kid: number) => string,
): MetricSeries {
  const n = stepRows.length;
  const steps = new Array<number>(n);
  const times = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const [step, time] = stepRows[i]!;
    steps[i] = step;
    times[i] = time;
  }
  const keys: string[] = [];
  const series: Record<string, (number | null)[]> = {};
  const columns = new Map<number, (number | null)[]>();
  // Both lists are sorted by step and every metric row has its step row: walk them together.
  let i = 0;
  for (const [step, kid, value] of metricRows) {
    while (i < n && steps[i]! < step) i++;
    if (steps[i] !== step) continue;
    let column = columns.get(kid);
    if (column === undefined) {
      const key = keyOf(kid);
      column = new Array<number | null>(n).fill(null);
      columns.set(kid, column);
      keys.push(key);
      series[key] = column;
    }
    column[i] = value ?? Number.NaN;
  }
  return { steps, times, keys, series };
}
