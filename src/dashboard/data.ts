/**
 * What the dashboard and the report say about a run, computed from the run store's records: the one-line config
 * summary, the final metrics, the list item, the flattened config and its differences between runs.
 */
import { encodeNumber } from '../base/json.js';
import { runDurationMs } from '../track/export.js';
import { canonicalFinal, METRICS } from '../track/metrics.js';
import type { RunStore } from '../track/store.js';
import { LAYER_FIELDS, type LayerField, type MetricSeries, type RunInfo } from '../track/types.js';
import { dropInapplicableModelKeys } from '../train/model-config.js';
import type { FindingsResponse, JsonNumber, MetricsResponse, RunListItem } from './api-types.js';

export { histogramsJson } from './histograms-api.js';
export { timeFlowJson } from './time-flow-api.js';

/** `GET /api/runs/:id/findings`: the run's findings by step (an unknown run throws the store's UNKNOWN_RUN). */
export function findingsJson(s: RunStore, idOrPrefix: string): FindingsResponse {
  return { findings: s.getFindings(s.getRun(idOrPrefix).id) };
}
/** The per-layer fields the dashboard serves (every field the store keeps). */
export const DASHBOARD_LAYER_FIELDS: readonly LayerField[] = LAYER_FIELDS;

/** A number for JSON: NaN and ±Infinity as strings (the codec of base/json.ts). */
export const jsonNumber: (v: number) => JsonNumber = encodeNumber;

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function fmt(v: unknown): string {
  if (typeof v === 'number') return String(Number(v.toPrecision(4)));
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/**
 * The config in one line, in the words of the config file: model, init, optimizer, schedule, clipping, data.
 * Tolerant of any JSON (a run's config is whatever its trainer recorded).
 * @example configSummary(config) // 'mlp 256 relu · xavier-normal · adam lr=0.001 · clip global-norm 1 · mnist'
 */
export function configSummary(config: unknown): string {
  if (!isRecord(config)) return config === null || config === undefined ? '' : fmt(config);
  const parts: string[] = [];
  // only the keys that apply to the model's type (a stored LSTM config may carry the MLP's activation default)
  const model = dropInapplicableModelKeys(config.model);
  if (isRecord(model)) {
    const words: string[] = [];
    if (typeof model.type === 'string') words.push(model.type);
    if (Array.isArray(model.hidden)) words.push(model.hidden.map(fmt).join('-'));
    else if (model.type === 'cnn') {
      if (model.depth !== undefined) words.push(`${fmt(model.depth)} conv`);
      if (Array.isArray(model.channels)) words.push(model.channels.map(fmt).join('-'));
      else if (model.width !== undefined) words.push(`width ${fmt(model.width)}`);
    } else if (model.depth !== undefined || model.width !== undefined) {
      words.push(`${fmt(model.depth ?? '?')}x${fmt(model.width ?? '?')}`);
    }
    if (model.hiddenSize !== undefined) words.push(`h${fmt(model.hiddenSize)}`);
    if (typeof model.activation === 'string') words.push(model.activation);
    if (model.residual === true) words.push('residual');
    if (typeof model.norm === 'string' && model.norm !== 'none') words.push(model.norm);
    if (model.rezero === true) words.push('rezero');
    if (words.length > 0) parts.push(words.join(' '));
  }
  const init = config.init;
  if (isRecord(init) && init.weight !== undefined) parts.push(fmt(init.weight));
  const optim = config.optim;
  if (isRecord(optim)) {
    const words = [typeof optim.name === 'string' ? optim.name : 'optim'];
    if (optim.lr !== undefined) words.push(`lr=${fmt(optim.lr)}`);
    if (typeof optim.momentum === 'number' && optim.momentum !== 0) words.push(`momentum=${fmt(optim.momentum)}`);
    if (typeof optim.weightDecay === 'number' && optim.weightDecay !== 0) words.push(`wd=${fmt(optim.weightDecay)}`);
    parts.push(words.join(' '));
  }
  const schedule = config.schedule;
  if (isRecord(schedule)) {
    const words: string[] = [];
    if (typeof schedule.name === 'string' && schedule.name !== 'constant') words.push(schedule.name);
    if (typeof schedule.warmupSteps === 'number' && schedule.warmupSteps > 0) {
      words.push(`warmup ${schedule.warmupSteps}`);
    }
    if (words.length > 0) parts.push(words.join(' '));
  }
  const clip = config.clip;
  if (Array.isArray(clip) && clip.length > 0) {
    const items = clip.map((c) => {
      if (!isRecord(c)) return fmt(c);
      const limit = c.max ?? c.clip ?? c.value ?? c.percentile;
      return limit === undefined ? String(c.type) : `${String(c.type)} ${fmt(limit)}`;
    });
    parts.push(`clip ${items.join(', ')}`);
  }
  const data = config.data;
  if (isRecord(data) && typeof data.name === 'string') parts.push(data.name);
  return parts.join(' · ');
}

/** Steps taken: the summary's count when recorded, else last logged step + 1. */
export function stepCount(run: RunInfo): number {
  const s = run.summary?.steps;
  if (typeof s === 'number' && Number.isFinite(s)) return s;
  return run.lastStep === null ? 0 : run.lastStep + 1;
}

/**
 * The final metrics of a run as `gradguard train` records them (`summary.metrics`: `test/accuracy`, `test/loss`,
 * `train/loss`), as older runs did (`summary.test.{loss,accuracy}`, `summary.finalLoss`) and as other writers do,
 * under one key per quantity of the shared list (track/metrics.ts): `test_accuracy`, `test_loss`, `loss`, then the
 * others as they were written.
 */
export function finalMetrics(run: RunInfo): Record<string, number> {
  const s = run.summary;
  if (!s) return {};
  const values: Record<string, number> = {};
  const test = s.test;
  if (isRecord(test)) {
    if (typeof test.accuracy === 'number') values[METRICS.accuracy.keys[0]] = test.accuracy;
    if (typeof test.loss === 'number') values[METRICS.testLoss.keys[0]] = test.loss;
  }
  if (typeof s.finalLoss === 'number') values[METRICS.loss.keys[0]] = s.finalLoss;
  if (isRecord(s.metrics)) {
    for (const [k, v] of Object.entries(s.metrics)) if (typeof v === 'number' && !(k in values)) values[k] = v;
  }
  return canonicalFinal(values);
}

/** A run as the runs list shows it. */
export function runListItem(run: RunInfo, now: number = Date.now()): RunListItem {
  const final: Record<string, JsonNumber> = {};
  for (const [k, v] of Object.entries(finalMetrics(run))) final[k] = jsonNumber(v);
  const summary = run.summary;
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    createdAt: run.createdAt,
    updatedAt: run.updatedAt,
    finishedAt: run.finishedAt,
    durationMs: durationMs(run, now),
    backend: run.backend,
    steps: stepCount(run),
    lastStep: run.lastStep,
    configSummary: configSummary(run.config),
    final,
    verdict: typeof summary?.verdict === 'string' ? summary.verdict : null,
    error: typeof summary?.error === 'string' ? summary.error : null,
  };
}

/** The recorded training time (`durationMs`, or gradguard train's `seconds`), else the store's estimate. */
function durationMs(run: RunInfo, now: number): number {
  const seconds = run.summary?.seconds;
  if (run.summary?.durationMs === undefined && typeof seconds === 'number' && Number.isFinite(seconds)) {
    return seconds * 1000;
  }
  return runDurationMs(run, now);
}

/** A metric series for JSON (non-finite values as strings). */
export function metricsJson(m: MetricSeries): MetricsResponse {
  const series: MetricsResponse['series'] = {};
  for (const key of m.keys) {
    const col = m.series[key]!;
    const out = new Array<JsonNumber | null>(col.length);
    for (let i = 0; i < col.length; i++) {
      const v = col[i];
      out[i] = v === null || v === undefined ? null : jsonNumber(v);
    }
    series[key] = out;
  }
  return { steps: m.steps, times: m.times, keys: m.keys, series };
}

/** `a.b.c` paths and leaf values of a JSON value (arrays are leaves), in document order. */
export function flattenConfig(value: unknown, prefix = ''): [string, unknown][] {
  if (!isRecord(value)) return prefix ? [[prefix, value]] : [];
  const out: [string, unknown][] = [];
  for (const [k, v] of Object.entries(value)) out.push(...flattenConfig(v, prefix ? `${prefix}.${k}` : k));
  return out;
}

/** The configs side by side: every key in first-seen order, one JSON value per config, and whether they differ. */
export function configTable(
  configs: readonly unknown[],
): { key: string; values: (string | null)[]; differs: boolean }[] {
  const maps = configs.map((c) => new Map(flattenConfig(c).map(([k, v]) => [k, JSON.stringify(v)])));
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const m of maps) {
    for (const k of m.keys()) {
      if (!seen.has(k)) {
        seen.add(k);
        keys.push(k);
      }
    }
  }
  return keys.map((key) => {
    const values = maps.map((m) => m.get(key) ?? null);
    return { key, values, differs: new Set(values).size > 1 };
  });
}
