/**
 * `gradguard runs list | show ID | compare ID ID... | rm ID...` and `gradguard export ID --format F --out DIR`: the
 * logic of the commands that read the run store, as plain async functions that take parsed options and return the
 * exit status (main.ts registers them with commander).
 *
 * - Humans get aligned plain-text tables on stdout; `--json` prints exactly one JSON object on stdout instead (an
 *   error too: `{"error": {"code", "message"}}`), with NaN and ±Infinity as strings.
 * - A user mistake (unknown or ambiguous id, missing store, bad option) prints one line on stderr and returns 2;
 *   anything else is a bug: its stack trace, status 1 (the CLI's one reporter, errors.ts).
 */
import { rmSync } from 'node:fs';
import {
  EXPORT_FORMATS,
  type ExportFormat,
  exportRun,
  runDurationMs,
  runToJson,
  stringifyJson,
} from '../track/export.js';
import { isPercentMetric } from '../track/metrics.js';
import { DEFAULT_STORE_DIR, isPostgresUrl, RunStore, storeLabel } from '../track/store.js';
import {
  LAYER_FIELDS,
  type LayerStatRow,
  RUN_STATUSES,
  type RunInfo,
  type RunStatus,
  TrackError,
} from '../track/types.js';
import { runCheckpointDir } from '../train/checkpoint.js';
import { reportError } from './errors.js';
import { type CliIO, processIO } from './io.js';

export type { CliIO } from './io.js';

/** Options every command takes. */
export interface StoreOptions {
  /** The store directory (default ./gradguard-runs). */
  store?: string | undefined;
  /** Print one JSON object on stdout. */
  json?: boolean | undefined;
}

export interface RunsListOptions extends StoreOptions {
  /** Only runs with this status; a comma-separated list is allowed. */
  status?: string | undefined;
  /** Only runs whose name contains this. */
  name?: string | undefined;
  /** At most this many (the newest); commander hands it over as a string. */
  limit?: number | string | undefined;
}

export interface RunsRmOptions extends StoreOptions {
  /** Also delete runs whose process is still running. */
  force?: boolean | undefined;
}

export interface ExportCommandOptions extends StoreOptions {
  format?: string | undefined;
  out?: string | undefined;
}

export type RunsAction = 'list' | 'show' | 'compare' | 'rm';

/**
 * `gradguard runs <action> [ids...]`: dispatches to {@link runsList}, {@link runsShow}, {@link runsCompare} or
 * {@link runsRm}.
 */
export async function runsCommand(
  action: string,
  ids: readonly string[],
  options: RunsListOptions & RunsRmOptions = {},
  io: CliIO = processIO,
): Promise<number> {
  switch (action) {
    case 'list':
    case 'ls':
      if (ids.length > 0) return fail(io, options, usage(`'runs list' takes no run ids (got ${ids.join(' ')})`));
      return runsList(options, io);
    case 'show':
      if (ids.length !== 1) return fail(io, options, usage('runs show takes one run id: gradguard runs show ID'));
      return runsShow(ids[0]!, options, io);
    case 'compare':
      return runsCompare(ids, options, io);
    case 'rm':
      return runsRm(ids, options, io);
    default:
      return fail(io, options, usage(`unknown command 'runs ${action}'; use runs list, show, compare or rm`));
  }
}

/** `gradguard runs list [--status S] [--name TEXT] [--limit N]`: the runs, newest first. */
export async function runsList(options: RunsListOptions = {}, io: CliIO = processIO): Promise<number> {
  return withStore(options, io, (store) => {
    const status = parseStatuses(options.status);
    const limit = parseLimit(options.limit);
    const runs = store.listRuns({ status, name: options.name, limit });
    const now = Date.now();
    if (options.json) {
      const where = isPostgresUrl(options.store ?? '') ? store.path : store.dir;
      io.stdout(`${stringifyJson({ store: where, runs: runs.map((r) => runToJson(r, now)) })}\n`);
      return 0;
    }
    if (runs.length === 0) {
      io.stdout(`no runs in ${storeLabel(options.store ?? DEFAULT_STORE_DIR)}\n`);
      return 0;
    }
    const metricKeys = headlineMetricKeys(runs);
    const header = ['ID', 'NAME', 'STATUS', 'STARTED', 'STEPS', 'TIME', 'BACKEND', ...metricKeys, 'VERDICT'];
    const rows = runs.map((r) => [
      r.id,
      r.name ?? '-',
      r.status,
      formatLocalTime(r.createdAt, false),
      formatCount(stepsOf(r)),
      formatDuration(runDurationMs(r, now)),
      r.backend,
      ...metricKeys.map((k) => formatMetricValue(k, r.summary?.metrics?.[k])),
      r.summary?.verdict ?? '-',
    ]);
    io.stdout(formatTable(header, rows, new Set([4, 5, ...metricKeys.map((_, i) => 7 + i)])));
    return 0;
  });
}

/** `gradguard runs show ID`: one run in detail: status, summary, last metrics, last layer statistics, findings, config. */
export async function runsShow(id: string, options: StoreOptions = {}, io: CliIO = processIO): Promise<number> {
  return withStore(options, io, (store) => {
    const run = store.getRun(id);
    const last = lastMetrics(store, run.id);
    const layers = store.getLayerStats(run.id, { last: true });
    const findings = store.getFindings(run.id);
    if (options.json) {
      io.stdout(`${stringifyJson({ run: runToJson(run), lastMetrics: last, layers, findings })}\n`);
      return 0;
    }
    const s = run.summary;
    const lines: string[] = [];
    const kv: [string, string][] = [
      ['run', run.name ? `${run.id}  (${run.name})` : run.id],
      ['status', run.status],
      ['started', formatLocalTime(run.createdAt, true)],
      ['finished', run.finishedAt === null ? '-' : formatLocalTime(run.finishedAt, true)],
      ['duration', formatDuration(runDurationMs(run))],
      ['backend', run.backend],
      ['process', run.pid === null ? '-' : `pid ${run.pid} on ${run.host ?? '?'}`],
      [
        'steps',
        run.lastStep === null ? 'none logged' : `${formatCount(stepsOf(run))} (last logged step ${run.lastStep})`,
      ],
    ];
    if (s?.verdict !== undefined) kv.push(['verdict', String(s.verdict)]);
    if (s?.stepsSkipped !== undefined) kv.push(['skipped', `${s.stepsSkipped} steps (non-finite gradients)`]);
    if (s?.stepsClipped !== undefined) kv.push(['clipped', `${s.stepsClipped} steps`]);
    if (s?.error !== undefined) kv.push(['error', String(s.error)]);
    lines.push(formatPairs(kv));
    const section = (title: string, body: string) => lines.push(`${title}\n${indent(body)}`);
    if (s?.metrics && Object.keys(s.metrics).length > 0) {
      section('final metrics', formatPairs(Object.entries(s.metrics).map(([k, v]) => [k, formatMetricValue(k, v)])));
    }
    if (Object.keys(last).length > 0) {
      const pairs = Object.entries(last).map(([k, v]): [string, string] => [
        k,
        `${formatMetricValue(k, v.value)}  (step ${v.step})`,
      ]);
      section('last logged metrics', formatPairs(pairs));
    }
    if (layers.length > 0) section(`layers at step ${layers[0]!.step}`, layerTable(layers));
    if (findings.length > 0) {
      const rows = findings.map((f) => [
        String(f.step),
        f.kind,
        f.layers.length > 0 ? f.layers.join(', ') : '-',
        f.suggestion ?? '',
      ]);
      section(
        `findings (${findings.length})`,
        formatTable(['STEP', 'KIND', 'LAYERS', 'SUGGESTION'], rows, new Set([0])),
      );
    }
    const config = flatten(run.config);
    if (config.length > 0)
      section(
        'config',
        formatPairs(
          config.map(([k, v]) => [k, formatValue(v)]),
          ' = ',
        ),
      );
    io.stdout(lines.join('\n'));
    return 0;
  });
}

/**
 * `gradguard runs compare ID ID...`: the runs side by side: status, duration, final metrics, last logged metrics,
 * and the config keys whose values differ.
 */
export async function runsCompare(ids: readonly string[], options: StoreOptions = {}, io: CliIO = processIO) {
  if (ids.length < 2) {
    return fail(io, options, usage('runs compare needs at least two run ids: gradguard runs compare ID ID...'));
  }
  return withStore(options, io, (store) => {
    const runs = ids.map((id) => store.getRun(id));
    const lasts = runs.map((r) => lastMetrics(store, r.id));
    const configs = runs.map((r) => new Map(flatten(r.config).map(([k, v]) => [k, JSON.stringify(v)])));
    const configKeys = unique(configs.flatMap((c) => [...c.keys()]));
    const differing = configKeys.filter((k) => new Set(configs.map((c) => c.get(k))).size > 1);
    const summaryKeys = unique(runs.flatMap((r) => Object.keys(r.summary?.metrics ?? {})));
    const lastKeys = unique(lasts.flatMap((l) => Object.keys(l)));
    if (options.json) {
      const configDiff: Record<string, unknown[]> = {};
      for (const k of differing) configDiff[k] = configs.map((c) => (c.has(k) ? JSON.parse(c.get(k)!) : null));
      const doc = {
        runs: runs.map((r, i) => ({
          ...runToJson(r),
          lastMetrics: Object.fromEntries(Object.entries(lasts[i]!).map(([k, v]) => [k, v.value])),
        })),
        configDiff,
      };
      io.stdout(`${stringifyJson(doc)}\n`);
      return 0;
    }
    const rows: string[][] = [
      ['name', ...runs.map((r) => r.name ?? '-')],
      ['status', ...runs.map((r) => r.status)],
      ['backend', ...runs.map((r) => r.backend)],
      ['steps', ...runs.map((r) => formatCount(stepsOf(r)))],
      ['duration', ...runs.map((r) => formatDuration(runDurationMs(r)))],
      ['verdict', ...runs.map((r) => r.summary?.verdict ?? '-')],
      ['skipped', ...runs.map((r) => formatNumber(r.summary?.stepsSkipped))],
      ['clipped', ...runs.map((r) => formatNumber(r.summary?.stepsClipped))],
    ];
    for (const k of summaryKeys) rows.push([k, ...runs.map((r) => formatMetricValue(k, r.summary?.metrics?.[k]))]);
    for (const k of lastKeys) rows.push([`last ${k}`, ...lasts.map((l) => formatMetricValue(k, l[k]?.value))]);
    for (const k of differing) rows.push([`config ${k}`, ...configs.map((c) => (c.has(k) ? c.get(k)! : '-'))]);
    io.stdout(formatTable(['', ...runs.map((r) => r.id)], rows));
    if (differing.length === 0) io.stdout('(the configs are identical)\n');
    return 0;
  });
}

/** `gradguard runs rm ID... [--force]`: deletes runs. Every id is checked before anything is deleted. */
export async function runsRm(ids: readonly string[], options: RunsRmOptions = {}, io: CliIO = processIO) {
  if (ids.length === 0) return fail(io, options, usage('runs rm needs a run id: gradguard runs rm ID...'));
  return withStore(
    options,
    io,
    (store) => {
      const runs = ids.map((id) => store.getRun(id));
      // status `running` here means its process is alive: a dead writer's run reads back `interrupted`
      const active = runs.find((r) => r.status === 'running');
      if (active && !options.force) {
        throw new TrackError(
          'RUN_ACTIVE',
          `run ${active.id} is still running (pid ${active.pid} on ${active.host}); stop it first, or pass --force`,
        );
      }
      // every path is checked before anything is removed (an id edited into the store must not lead elsewhere)
      const dirs = new Map(unique(runs.map((r) => r.id)).map((id) => [id, runCheckpointDir(store.dir, id)]));
      const deleted = [...dirs.keys()].map((id) => store.deleteRun(id, { force: options.force }));
      // a run's checkpoints go with it (retried: a live run's process may be writing one into the directory meanwhile,
      // which makes the removal fail with ENOTEMPTY; it stops at its next step and drops what it wrote since)
      for (const id of deleted) rmSync(dirs.get(id)!, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
      for (const r of runs.filter((r) => r.status === 'running')) {
        io.stderr(
          `gradguard: run ${r.id} was still running (pid ${r.pid} on ${r.host}); its process stops writing at its next step\n`,
        );
      }
      if (options.json) io.stdout(`${stringifyJson({ deleted })}\n`);
      else for (const id of deleted) io.stdout(`deleted ${id}\n`);
      return 0;
    },
    'write',
  );
}

/** `gradguard export ID --format csv|json|tensorboard --out DIR`: writes the run's files and lists them. */
export async function exportCommand(id: string, options: ExportCommandOptions = {}, io: CliIO = processIO) {
  const format = options.format;
  if (format === undefined || !EXPORT_FORMATS.includes(format as ExportFormat)) {
    const got = format === undefined ? 'none given' : `got '${format}'`;
    return fail(io, options, usage(`--format must be one of ${EXPORT_FORMATS.join(', ')} (${got})`));
  }
  if (!options.out) return fail(io, options, usage('--out DIR is required: the directory to write the export into'));
  const out = options.out;
  return withStore(options, io, async (store) => {
    const result = await exportRun(store, id, { format: format as ExportFormat, out });
    if (options.json) io.stdout(`${stringifyJson(result)}\n`);
    else for (const f of result.files) io.stdout(`wrote ${f}\n`);
    return 0;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Plumbing

/**
 * Opens the store (which must exist; read-only unless `mode` is 'write', so reading works on a read-only store), runs
 * `fn`, closes it; turns errors into one line and an exit status.
 */
async function withStore(
  options: StoreOptions,
  io: CliIO,
  fn: (store: RunStore) => number | Promise<number>,
  mode: 'read' | 'write' = 'read',
): Promise<number> {
  let store: RunStore | undefined;
  try {
    const dir = options.store ?? DEFAULT_STORE_DIR;
    store = RunStore.open(dir, mode === 'read' ? { readonly: true } : { create: false });
    return await fn(store);
  } catch (err) {
    return fail(io, options, err);
  } finally {
    store?.close();
  }
}

/** A user mistake found before the store is opened. */
function usage(message: string): TrackError {
  return new TrackError('BAD_ARGUMENT', message);
}

/** Reports an error through the CLI's one reporter (errors.ts): 2 for user mistakes, 1 for bugs. */
function fail(io: CliIO, options: StoreOptions, err: unknown): number {
  return reportError(err, io, options.json);
}

function parseStatuses(text: string | undefined): RunStatus[] | undefined {
  if (text === undefined) return undefined;
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of list) {
    if (!RUN_STATUSES.includes(s as RunStatus)) {
      throw usage(`--status: unknown status '${s}'; use ${RUN_STATUSES.join(', ')}`);
    }
  }
  return list as RunStatus[];
}

function parseLimit(limit: number | string | undefined): number | undefined {
  if (limit === undefined) return undefined;
  const n = typeof limit === 'number' ? limit : Number(limit);
  if (!Number.isInteger(n) || n < 1 || (typeof limit === 'string' && !/^\s*\d+\s*$/.test(limit))) {
    throw usage(`--limit must be a whole number >= 1 (got '${limit}')`);
  }
  return n;
}

/** The last logged value of every metric and the step it was logged at. */
function lastMetrics(store: RunStore, id: string): Record<string, { step: number; value: number }> {
  const m = store.getMetrics(id);
  const out: Record<string, { step: number; value: number }> = {};
  for (const key of m.keys) {
    const col = m.series[key]!;
    for (let i = col.length - 1; i >= 0; i--) {
      const v = col[i];
      if (v !== null && v !== undefined) {
        out[key] = { step: m.steps[i]!, value: v };
        break;
      }
    }
  }
  return out;
}

/** Steps taken: the summary's count when recorded, else last logged step + 1. */
function stepsOf(run: RunInfo): number | undefined {
  const s = run.summary?.steps;
  if (typeof s === 'number') return s;
  return run.lastStep === null ? 0 : run.lastStep + 1;
}

/** Up to three final-metric keys for the list: the ones most runs have, accuracies before losses. */
function headlineMetricKeys(runs: readonly RunInfo[]): string[] {
  const counts = new Map<string, number>();
  for (const r of runs) for (const k of Object.keys(r.summary?.metrics ?? {})) counts.set(k, (counts.get(k) ?? 0) + 1);
  const rank = (k: string) => (/acc/i.test(k) ? 0 : /loss/i.test(k) ? 1 : 2);
  return [...counts.keys()]
    .sort((a, b) => counts.get(b)! - counts.get(a)! || rank(a) - rank(b) || a.localeCompare(b))
    .slice(0, 3);
}

function layerTable(layers: readonly LayerStatRow[]): string {
  const hasDead = layers.some((l) => l.deadFrac !== undefined);
  const hasSat = layers.some((l) => l.satFrac !== undefined);
  const fields = LAYER_FIELDS.filter((f) => (f !== 'deadFrac' || hasDead) && (f !== 'satFrac' || hasSat));
  const header = ['LAYER', ...fields.map((f) => f.replace(/[A-Z]/g, (c) => ` ${c}`).toUpperCase())];
  const rows = layers.map((l) => [l.name, ...fields.map((f) => formatNumber(l[f]))]);
  return formatTable(header, rows, new Set(fields.map((_, i) => i + 1)));
}

/** `a.b.c` paths and leaf values of a JSON value (arrays are leaves). */
function flatten(value: unknown, prefix = ''): [string, unknown][] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return prefix ? [[prefix, value]] : [];
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>))
    out.push(...flatten(v, prefix ? `${prefix}.${k}` : k));
  return out;
}

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

// ---------------------------------------------------------------------------------------------------------------
// Formatting

/** Columns padded to their widest cell, two spaces apart; columns in `right` right-aligned; no trailing spaces. */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  right = new Set<number>(),
) {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => (right.has(c) ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

function formatPairs(pairs: readonly [string, string][], sep = '  '): string {
  const w = Math.max(0, ...pairs.map(([k]) => k.length));
  return `${pairs.map(([k, v]) => `${k.padEnd(w)}${sep}${v}`.trimEnd()).join('\n')}\n`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => (l === '' ? l : `  ${l}`))
    .join('\n');
}

/** 4 significant digits; exponent notation for very small or large values; '-' for missing. */
export function formatNumber(v: number | null | undefined): string {
  if (v === null || v === undefined || typeof v !== 'number') return '-';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? 'Inf' : '-Inf';
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

/**
 * A metric's value as every other face shows it (the train output, the dashboard, reports): a share
 * (`isPercentMetric`: accuracies) as a percentage with two decimals, anything else as {@link formatNumber}.
 * @example formatMetricValue('test_accuracy', 0.955) // '95.50%'; formatMetricValue('test_loss', 0.15) // '0.15'
 */
export function formatMetricValue(key: string, v: number | null | undefined): string {
  if (typeof v === 'number' && Number.isFinite(v) && isPercentMetric(key)) return `${(v * 100).toFixed(2)}%`;
  return formatNumber(v);
}

function formatCount(v: number | undefined): string {
  return v === undefined ? '-' : String(v);
}

function formatValue(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** `850ms`, `41.2s`, `12m05s`, `1h02m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Local time, `2026-11-26 11:45` (with seconds when asked). */
function formatLocalTime(ms: number, seconds: boolean): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  const base = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  return seconds ? `${base}:${p(d.getSeconds())}` : base;
}
