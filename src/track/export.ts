/**
 * Exports of a stored run: CSV (for spreadsheets and pandas), JSON (everything, one file) and TensorBoard event
 * files. Every file is written to a temporary name in the target directory, flushed to disk and renamed, so an
 * interrupted export never leaves a half-written file under the final name.
 *
 * Files, for run `ID` and `--out DIR`:
 * - csv: `DIR/ID-metrics.csv` (one row per step: `step,time,<metric>...`), `DIR/ID-layers.csv` (one row per logged
 *   step and layer) and `DIR/ID-findings.csv`.
 * - json: `DIR/ID.json` ({@link RunExport}).
 * - tensorboard: `DIR/ID/events.out.tfevents.<seconds>.<host>`, one directory per run so that
 *   `tensorboard --logdir DIR` lists every exported run by its id. Exporting the run again replaces its event file.
 *
 * Non-finite values: CSV writes `NaN`, `Infinity` and `-Infinity` (which pandas and Python's float() read); JSON, which
 * has no such numbers, writes them as those strings; TensorBoard stores them as float32 as they are.
 */

import { readdirSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { stringifyJson } from '../base/json.js';
import { describeFsError, makeDirs, writeFileAtomic as writeAtomic } from '../io/atomic.js';
import { runPath } from './ids.js';
import type { RunStore } from './store.js';
import { withHistograms } from './tb-histograms.js';
import { encodeEventFile, eventFileName, type Scalar, type TfEvent } from './tfevents.js';
import {
  type FindingRow,
  LAYER_FIELDS,
  type LayerStatRow,
  type MetricSeries,
  type RunInfo,
  type RunStatus,
  type RunSummary,
  TrackError,
} from './types.js';

export type ExportFormat = 'csv' | 'json' | 'tensorboard';
export const EXPORT_FORMATS: readonly ExportFormat[] = ['csv', 'json', 'tensorboard'];

export interface ExportOptions {
  format: ExportFormat;
  /** The directory to write into; created when missing. */
  out: string;
}

export interface ExportResult {
  /** The run's full id. */
  id: string;
  format: ExportFormat;
  /** The files written, as paths under `out`. */
  files: string[];
}

/** A run as JSON: times as ISO 8601 strings, the duration in ms. */
export interface RunJson {
  id: string;
  name: string | null;
  status: RunStatus;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  durationMs: number;
  backend: string;
  lastStep: number | null;
  pid: number | null;
  host: string | null;
  config: unknown;
  summary: RunSummary | null;
}

/** The JSON export's content (non-finite numbers as the strings 'NaN', 'Infinity', '-Infinity'). */
export interface RunExport {
  format: 'gradguard-run';
  version: 1;
  run: RunJson;
  /** Columns as {@link MetricSeries}; `times` in ms since the epoch. */
  metrics: MetricSeries;
  layerStats: LayerStatRow[];
  findings: FindingRow[];
}

/**
 * Writes one run in `format` under `options.out`.
 * @param id the run's id, a unique prefix of it, or its name
 * @returns the paths written
 * @throws TrackError `UNKNOWN_RUN`, `AMBIGUOUS_RUN`, `BAD_ARGUMENT` (unknown format, `out` is a file)
 */
export async function exportRun(store: RunStore, id: string, options: ExportOptions): Promise<ExportResult> {
  const format = options.format;
  if (!EXPORT_FORMATS.includes(format)) {
    throw new TrackError(
      'BAD_ARGUMENT',
      `unknown export format '${String(format)}'; use one of ${EXPORT_FORMATS.join(', ')}`,
    );
  }
  if (typeof options.out !== 'string' || options.out === '') {
    throw new TrackError('BAD_ARGUMENT', 'an output directory is required (--out DIR)');
  }
  const run = store.getRun(id);
  // every file is named after the run: checked to stay inside --out, whatever the store holds
  const named = (suffix: string) => runPath(options.out, run.id, `the run store ${store.path}`, suffix);
  makeDir(options.out);
  const files: string[] = [];
  if (format === 'csv') {
    const metrics = store.getMetrics(run.id);
    files.push(writeFileAtomic(named('-metrics.csv'), metricsCsv(metrics)));
    files.push(writeFileAtomic(named('-layers.csv'), layersCsv(store.getLayerStats(run.id))));
    files.push(writeFileAtomic(named('-findings.csv'), findingsCsv(store.getFindings(run.id))));
  } else if (format === 'json') {
    const doc: RunExport = {
      format: 'gradguard-run',
      version: 1,
      run: runToJson(run),
      metrics: store.getMetrics(run.id),
      layerStats: store.getLayerStats(run.id),
      findings: store.getFindings(run.id),
    };
    files.push(writeFileAtomic(named('.json'), `${stringifyJson(doc)}\n`));
  } else {
    const dir = named('');
    makeDir(dir);
    const scalars = tensorboardEvents(store.getMetrics(run.id), store.getLayerStats(run.id), run.createdAt);
    const events = withHistograms(scalars, store.getHistograms(run.id), run.createdAt);
    const file = join(dir, eventFileName(run.createdAt / 1000, hostname()));
    writeFileAtomic(file, encodeEventFile(events, run.createdAt / 1000));
    // One event file per run directory: drop the files of earlier exports, which TensorBoard would merge.
    for (const name of readdirSync(dir)) {
      if (name.startsWith('events.out.tfevents.') && join(dir, name) !== file) rmSync(join(dir, name), { force: true });
    }
    files.push(file);
  }
  return { id: run.id, format, files };
}

/**
 * The TensorBoard scalars of a run, one event per step: every metric under its own key (`train/loss`, `lr`), and on
 * steps with layer statistics each layer's gradient norm as `grad_norm/<layer>` and their global norm
 * (√Σ‖g_layer‖²) as `grad_norm/global`.
 */
export function tensorboardEvents(
  metrics: MetricSeries,
  layers: readonly LayerStatRow[],
  fallbackTimeMs = 0,
): TfEvent[] {
  const byStep = new Map<number, { wallTime: number; scalars: Scalar[] }>();
  const order: number[] = [];
  const at = (step: number, timeMs: number) => {
    let e = byStep.get(step);
    if (e === undefined) {
      byStep.set(step, (e = { wallTime: timeMs / 1000, scalars: [] }));
      order.push(step);
    }
    return e;
  };
  const timeOf = new Map<number, number>();
  for (let i = 0; i < metrics.steps.length; i++) {
    const step = metrics.steps[i]!;
    timeOf.set(step, metrics.times[i]!);
    const e = at(step, metrics.times[i]!);
    for (const key of metrics.keys) {
      const v = metrics.series[key]![i];
      if (v !== null && v !== undefined) e.scalars.push({ tag: key, value: v });
    }
  }
  let sumSq = 0;
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i]!;
    const e = at(l.step, timeOf.get(l.step) ?? fallbackTimeMs);
    e.scalars.push({ tag: `grad_norm/${l.name}`, value: l.gradNorm });
    sumSq += l.gradNorm * l.gradNorm;
    if (i + 1 === layers.length || layers[i + 1]!.step !== l.step) {
      e.scalars.push({ tag: 'grad_norm/global', value: Math.sqrt(sumSq) });
      sumSq = 0;
    }
  }
  order.sort((a, b) => a - b);
  return order.map((step) => ({ step, ...byStep.get(step)! }));
}

/** `step,time,<keys...>`: one row per step; an empty cell where a metric was not logged. */
export function metricsCsv(m: MetricSeries): string {
  const lines = [['step', 'time', ...m.keys].map(csvField).join(',')];
  for (let i = 0; i < m.steps.length; i++) {
    const cells = [String(m.steps[i]), new Date(m.times[i]!).toISOString()];
    for (const key of m.keys) {
      const v = m.series[key]![i];
      cells.push(v === null || v === undefined ? '' : csvNumber(v));
    }
    lines.push(cells.join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** `step,layer,gradNorm,...,nonFinite`: one row per logged step and layer; empty deadFrac/satFrac where absent. */
export function layersCsv(rows: readonly LayerStatRow[]): string {
  const lines = [['step', 'layer', ...LAYER_FIELDS].join(',')];
  for (const r of rows) {
    const cells = [String(r.step), csvField(r.name)];
    for (const f of LAYER_FIELDS) {
      const v = r[f];
      cells.push(v === undefined ? '' : csvNumber(v));
    }
    lines.push(cells.join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** `step,kind,severity,layers,evidence,suggestion`: layers joined with `;`, evidence as JSON. */
export function findingsCsv(rows: readonly FindingRow[]): string {
  const lines = ['step,kind,severity,layers,evidence,suggestion'];
  for (const f of rows) {
    lines.push(
      [
        String(f.step),
        csvField(f.kind),
        csvField(f.severity ?? ''),
        csvField(f.layers.join(';')),
        csvField(f.evidence === null ? '' : typeof f.evidence === 'string' ? f.evidence : stringifyJson(f.evidence)),
        csvField(f.suggestion ?? ''),
      ].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A run as JSON-ready data; `now` decides the duration of a run still running. */
export function runToJson(run: RunInfo, now: number = Date.now()): RunJson {
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    createdAt: new Date(run.createdAt).toISOString(),
    updatedAt: new Date(run.updatedAt).toISOString(),
    finishedAt: run.finishedAt === null ? null : new Date(run.finishedAt).toISOString(),
    durationMs: runDurationMs(run, now),
    backend: run.backend,
    lastStep: run.lastStep,
    pid: run.pid,
    host: run.host,
    config: run.config,
    summary: run.summary,
  };
}

/** The summary's duration when the trainer recorded one, else the time from creation to the last write (or now). */
export function runDurationMs(run: RunInfo, now: number = Date.now()): number {
  const recorded = run.summary?.durationMs;
  if (typeof recorded === 'number' && Number.isFinite(recorded)) return recorded;
  const end = run.finishedAt ?? (run.status === 'running' ? now : run.updatedAt);
  return Math.max(0, end - run.createdAt);
}

export { stringifyJson };

function csvNumber(v: number): string {
  return Number.isNaN(v) ? 'NaN' : String(v);
}

/** RFC 4180 quoting: a field with a comma, a quote or a line break is quoted, its quotes doubled. */
function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Writes a file of the export all or nothing; a file system error (a full disk, no permission) is one line. */
function writeFileAtomic(path: string, data: string | Uint8Array): string {
  try {
    return writeAtomic(path, data);
  } catch (err) {
    if (typeof (err as { code?: unknown }).code !== 'string') throw err;
    throw new TrackError('BAD_ARGUMENT', `cannot write ${path}: ${describeFsError(err)}`);
  }
}

function makeDir(dir: string): void {
  try {
    makeDirs(dir);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') {
      throw new TrackError('BAD_ARGUMENT', `--out ${dir} is a file; give a directory`);
    }
    throw new TrackError('BAD_ARGUMENT', `cannot create --out ${dir}: ${describeFsError(err)}`);
  }
  if (!statSync(dir).isDirectory()) throw new TrackError('BAD_ARGUMENT', `--out ${dir} is a file; give a directory`);
}
