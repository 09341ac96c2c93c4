/**
 * The shapes the run store speaks, and the one error class it throws.
 *
 * Non-finite numbers: a metric or a statistic may be NaN or ±Infinity (a diverged run's loss). SQLite stores ±Infinity
 * as it is and NaN as NULL, so a value that was logged as NaN reads back as NaN; a metric that was not logged at a step
 * reads back as `null` (see {@link MetricSeries}).
 */

import { GradguardError } from '../base/errors.js';
import type { LayerStats } from '../monitor/monitor.js';

/** Where a run stands. `interrupted`: its process died without calling `finishRun` (killed, crashed, power lost). */
export type RunStatus = 'running' | 'finished' | 'diverged' | 'failed' | 'interrupted';

export const RUN_STATUSES: readonly RunStatus[] = ['running', 'finished', 'diverged', 'failed', 'interrupted'];

/**
 * One layer's statistics on one logged step, as the monitor computes them. Fields that the monitor cannot compute for a
 * step are NaN; `deadFrac` only exists for ReLU layers and `satFrac` for sigmoid and tanh layers.
 */
export type LayerStat = LayerStats;

/** A layer's statistics with the step they were logged at, as {@link RunStore.getLayerStats} returns them. */
export interface LayerStatRow extends LayerStat {
  step: number;
}

/** The numeric fields of {@link LayerStat}, in the order exports write them. */
export const LAYER_FIELDS = [
  'gradNorm',
  'gradMaxAbs',
  'weightNorm',
  'updateRatio',
  'actMean',
  'actStd',
  'deadFrac',
  'satFrac',
  'nonFinite',
] as const;
export type LayerField = (typeof LAYER_FIELDS)[number];

/** Something the diagnosis noticed at a step: what it is, where, the numbers that show it, and what to do. */
export interface Finding {
  /** A stable machine-readable kind: `vanishing-gradient`, `exploding-gradient`, `dead-relu`, ... */
  kind: string;
  /** The layers it concerns, by path; empty for the whole model. */
  layers?: string[];
  /** The numbers behind it (any JSON value: `{ ratio: 1e-7, firstLayer: 'layers.0' }`) or a sentence. */
  evidence?: unknown;
  /** What to try, for humans: `use kaiming-normal init or add residual connections`. */
  suggestion?: string;
  /** How bad it is; free text, `info` | `warning` | `error` by convention. */
  severity?: string;
}

/** A finding with the step it was logged at. */
export interface FindingRow {
  step: number;
  kind: string;
  layers: string[];
  evidence: unknown;
  suggestion: string | null;
  severity: string | null;
  /** When it was logged, ms since the epoch. */
  time: number;
}

/**
 * What `finishRun` records about a run. Every field is optional; other JSON fields are kept as they are.
 * Non-finite numbers inside `metrics` survive the round trip; elsewhere they come back as `null` (JSON has no NaN).
 */
export interface RunSummary {
  /** The final metrics: `{ 'test/accuracy': 0.957, 'test/loss': 0.14 }`. */
  metrics?: Record<string, number>;
  /** The diagnosis in one line or one word: `healthy`, `vanishing gradients in layers.0-12`. */
  verdict?: string;
  /** Wall time of the training, in milliseconds. */
  durationMs?: number;
  /** Optimizer steps taken. */
  steps?: number;
  /** Steps skipped because of non-finite gradients. */
  stepsSkipped?: number;
  /** Steps whose gradients a clipping transform scaled down. */
  stepsClipped?: number;
  /** Why a `failed` run failed. */
  error?: string;
  /**
   * The dataset's trivial baseline (data/baseline.ts): the loss (and accuracy) of a model that learned nothing from
   * the inputs, which the dashboard and reports draw beside the curves. Written when the run starts.
   */
  baseline?: { loss: number; accuracy?: number; predictor: string };
  [key: string]: unknown;
}

/** One run, as `getRun` and `listRuns` return it. Times are milliseconds since the epoch. */
export interface RunInfo {
  /** `20261126-114512-a3f9`: UTC creation time and 4 random hex digits; sorts by creation time. */
  id: string;
  name: string | null;
  status: RunStatus;
  createdAt: number;
  /** The last write: a logged step, a finding or the status change. */
  updatedAt: number;
  finishedAt: number | null;
  /** The training config as it was given to `createRun` (JSON). */
  config: unknown;
  /** The compute backend: `native`, `wasm`, `js`. */
  backend: string;
  summary: RunSummary | null;
  /** The highest step logged so far; null before the first `logStep`. */
  lastStep: number | null;
  /** The process that wrote the run, used to tell a live run from one whose process died. */
  pid: number | null;
  host: string | null;
}

/**
 * A run's metrics, by column: `steps[i]` was logged at `times[i]` (ms since the epoch) and `series[key][i]` is the
 * value of `key` at that step — `null` where `key` was not logged at that step, NaN where it was logged as NaN.
 * Keys are in the order they were first logged.
 */
export interface MetricSeries {
  steps: number[];
  times: number[];
  keys: string[];
  series: Record<string, (number | null)[]>;
}

/** One layer statistic as a layers × steps matrix, for heatmaps. `values[l * steps.length + s]`; NaN where missing. */
export interface LayerMatrix {
  field: LayerField;
  layers: string[];
  steps: number[];
  values: Float64Array;
}

/** Problem codes, so callers and tests can tell errors apart without matching message text. */
export type TrackErrorCode =
  | 'NO_STORE'
  | 'BAD_STORE'
  | 'STORE_TOO_NEW'
  | 'UNKNOWN_RUN'
  | 'AMBIGUOUS_RUN'
  | 'RUN_ACTIVE'
  /** The run was removed from the store (`runs rm --force`) while this process was writing it. */
  | 'RUN_REMOVED'
  /** A run id read from a store or a checkpoint is malformed or would lead outside its directory. */
  | 'BAD_RUN_ID'
  /** The store's file system is full (ENOSPC / SQLITE_FULL). */
  | 'DISK_FULL'
  /** The store cannot be written (a read-only file, directory or mount). */
  | 'READ_ONLY_STORE'
  /** A PostgreSQL store's server cannot be reached, refused the login, or dropped the connection. */
  | 'STORE_UNAVAILABLE'
  | 'BAD_ARGUMENT'
  | 'CLOSED';

/**
 * The run store's error: a user-facing message (what was wrong and what to do) and a code. The CLI prints the message
 * as one line and exits with status 2.
 */
export class TrackError extends GradguardError {
  override readonly name = 'TrackError';
  declare readonly code: TrackErrorCode;
  constructor(code: TrackErrorCode, message: string) {
    super(message, { code });
  }
}
