/**
 * The shapes every dataset in gradguard shares, and the one error class the data package throws.
 *
 * A dataset is plain data: two splits of row-major float32 arrays plus the shape of one example. Class labels are
 * float32 values holding integers `0 .. numClasses - 1`, so they copy straight into the float32 tensors the training
 * loop reuses.
 */

import { GradguardError } from '../base/errors.js';
import type { Baseline } from './baseline.js';

/** What the targets mean: class indices (cross-entropy) or real values (mean squared error). */
export type Task = 'classification' | 'regression';

/**
 * One split (train or test): `n` examples, row-major.
 * - `x` holds `n * prod(inputShape)` values: example `i` is `x.subarray(i * inputSize, (i + 1) * inputSize)`.
 * - `y` holds `n * prod(targetShape)` values: one class index or one real value per example when `targetShape` is
 *   `[]`, one per time step for sequence targets (`copy`).
 */
export interface Split {
  x: Float32Array;
  y: Float32Array;
  n: number;
}

/** How inputs were standardised: `x' = (x - mean) / std`, with statistics from the training split only. */
export interface Normalization {
  /** `standardize`: one mean and std over all training inputs; `standardize-features`: one per input feature. */
  kind: 'standardize' | 'standardize-features';
  /** One value for `standardize`, `inputSize` values for `standardize-features`. */
  mean: number[];
  std: number[];
}

/** A loaded dataset: what the training loop, the model builder and the run store need to know about it. */
export interface Dataset {
  /** The config name it came from: `mnist`, `fashion-mnist`, `idx`, `csv`, `spirals`, `adding`, `copy`. */
  name: string;
  task: Task;
  /**
   * The shape of one input, without the batch dimension: `[1, 28, 28]` for images (channels, height, width; an MLP
   * uses `inputSize` = 784 features of the same bytes), `[features]` for tables and `spirals`, `[seqLen, features]`
   * for sequences (batch-first, as `nn.LSTM(batchFirst)` expects).
   */
  inputShape: number[];
  /** `prod(inputShape)`: the number of floats per example in `x`. */
  inputSize: number;
  /** The shape of one target: `[]` for a class index or a scalar, `[seqLen]` for per-time-step classes (`copy`). */
  targetShape: number[];
  /** For classification: labels are integers in `[0, numClasses)`. */
  numClasses?: number;
  /** Human-readable class names, index = label, where the source has them. */
  classNames?: string[];
  train: Split;
  test: Split;
  /** Present when inputs were standardised; apply the same transform to new inputs before `model.forward`. */
  normalization?: Normalization;
  /**
   * What a model that learned nothing from the inputs scores (the loss of predicting the prior or the mean; see
   * data/baseline.ts). Every dataset `loadDataset` and the synthetic generators return declares it.
   */
  baseline?: Baseline;
  /** Where the data came from, for logs and the run store (a path, a URL or a package name and version). */
  source: string;
}

/** Problem codes, so callers and tests can tell errors apart without matching message text. */
export type DataErrorCode =
  | 'config'
  | 'not-found'
  | 'format'
  | 'truncated'
  | 'size-mismatch'
  | 'label-range'
  | 'label-count'
  | 'checksum'
  | 'download'
  | 'csv';

/**
 * The only error the data package throws for bad input (files, downloads, configs). Its message names the file, the
 * problem and how to fix it; `file` is the offending path or URL when there is one.
 */
export class DataError extends GradguardError {
  override readonly name = 'DataError';
  declare readonly code: DataErrorCode;
  readonly file: string | undefined;

  constructor(code: DataErrorCode, message: string, file?: string, options?: { cause?: unknown }) {
    super(message, { ...options, code });
    this.file = file;
  }
}

/** The most classes a dataset may have (labels 0 .. MAX_CLASSES - 1): float32 labels are exact far beyond it. */
export const MAX_CLASSES = 1_000_000;

/** The most values one example may hold (a 4096×4096 image): a larger one is a wrong header, not data. */
export const MAX_EXAMPLE_SIZE = 4096 * 4096;

/** The largest float32 magnitude: a value above it is stored as ±Infinity. */
export const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Refuses a split whose inputs hold NaN or ±Infinity (as float32), naming where the data came from, the example and
 * the value. `where` is the file (or source) and split, e.g. `train.csv (train split)`.
 */
export function checkFiniteInputs(x: ArrayLike<number>, exampleSize: number, where: string, file?: string): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (!Number.isFinite(v) || Math.abs(v) > FLOAT32_MAX) {
      throw new DataError(
        'format',
        `${where}: example ${Math.floor(i / exampleSize)}, value ${i % exampleSize} is ${v}${Number.isFinite(v) ? ' (Infinity as float32)' : ''}; inputs must be finite numbers: fix or drop it`,
        file,
      );
    }
  }
}

/** `prod(shape)`; 1 for `[]`. */
export function shapeSize(shape: readonly number[]): number {
  let s = 1;
  for (const d of shape) s *= d;
  return s;
}
