/**
 * The shapes of the dashboard's JSON API, shared by the server (Node) and the front end (browser). Types only: this
 * module must not import anything at run time.
 *
 * Numbers: JSON has no NaN or ±Infinity, so the API writes them as the strings 'NaN', 'Infinity' and '-Infinity'
 * ({@link JsonNumber}); a metric that was not logged at a step is `null`.
 */

/** A number as the API writes it: non-finite values as strings (the codec of base/json.ts). */
import type { JsonNumber } from '../base/json.js';

export type { JsonNumber };

export type RunStatus = 'running' | 'finished' | 'diverged' | 'failed' | 'interrupted';

/** One run in the runs list. Times are ms since the epoch. */
export interface RunListItem {
  id: string;
  name: string | null;
  status: RunStatus;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** Wall time of the training (recorded by the trainer), else creation to last write (or now while running). */
  durationMs: number;
  backend: string;
  /** Steps taken (the summary's count, else last logged step + 1). */
  steps: number;
  lastStep: number | null;
  /** `mlp 256 relu · xavier-normal · adam lr=0.001 · clip global-norm 1 · mnist` */
  configSummary: string;
  /** Final metrics by name: `test_accuracy`, `test_loss`, `loss`, and whatever the summary's `metrics` hold. */
  final: Record<string, JsonNumber>;
  /** The diagnosis' verdict (`healthy`, `vanishing-gradient`...), null before the run ends. */
  verdict: string | null;
  /** Why a failed run failed. */
  error: string | null;
}

export interface RunsResponse {
  store: string;
  runs: RunListItem[];
}

/** `GET /api/runs/:id`: the run with its config and summary, and what the other routes can return for it. */
export interface RunResponse {
  run: RunListItem & { config: unknown; summary: unknown; pid: number | null; host: string | null };
  /** The layers with statistics, in forward order (the rows of every layer matrix). */
  layers: string[];
  /** Every layer's statistics at the last step that has them; null before the first. */
  lastLayers: LastLayers | null;
  /** The per-layer fields `GET /api/runs/:id/layers` serves. */
  layerFields: string[];
}

/** Every layer's statistics at one step: `{ name, gradNorm, updateRatio, actMean, actStd, deadFrac?, ... }`. */
export interface LastLayers {
  step: number;
  layers: ({ name: string } & Record<string, JsonNumber | string>)[];
}

/** `GET /api/runs/:id/metrics`: by column; `series[key][i]` is the value at `steps[i]`. */
export interface MetricsResponse {
  steps: number[];
  times: number[];
  keys: string[];
  series: Record<string, (JsonNumber | null)[]>;
}

/**
 * `GET /api/runs/:id/layers`: layers × steps matrices, one per field, row-major (`values[l * steps.length + s]`).
 * With `encoding=f32` each matrix is the base64 of little-endian float32 values (NaN where missing); with
 * `encoding=json` (the default) an array of {@link JsonNumber}, null where missing or NaN.
 */
export interface LayersResponse {
  layers: string[];
  steps: number[];
  encoding: 'json' | 'f32';
  fields: Record<string, string | (JsonNumber | null)[]>;
}

export interface FindingItem {
  step: number;
  kind: string;
  layers: string[];
  evidence: unknown;
  suggestion: string | null;
  severity: string | null;
  time: number;
}

export interface FindingsResponse {
  findings: FindingItem[];
}

/** `GET /api/compare?ids=A,B`: several runs, their metrics and their configs side by side. */
export interface CompareResponse {
  runs: (RunListItem & { config: unknown })[];
  /** One entry per run, in the order of `runs`. */
  metrics: MetricsResponse[];
  /** Every flattened config key (`optim.lr`) with one JSON-encoded value per run (null where the run lacks it). */
  config: { key: string; values: (string | null)[]; differs: boolean }[];
}

/** The `data` of the SSE `steps` event: the steps >= `from`, to merge by step into what the client has. */
export interface StepsEvent {
  from: number;
  lastStep: number | null;
  metrics: MetricsResponse;
  layers: LayersResponse;
  /** The layers' statistics at the last step sent (for tables of the latest values). */
  lastLayers: LastLayers | null;
}

/** The `data` of the SSE `status` event. */
export interface StatusEvent {
  run: RunListItem;
}

export interface ApiError {
  error: { code: string; message: string };
}
