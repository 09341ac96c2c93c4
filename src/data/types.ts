/**
 * The shapes every dataset in gradguard shares, and the one error class the data package throws.
 *
 * A dataset is plain data: two splits of row-major float32 arrays plus the shape of one example. Class labels are
 * float32 values holding integers `0 .. numClasses - 1`, so they copy straight into the float32 tensors the training
 * loop reuses.
 */
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
export class DataError extends Error {
  override readonly name = 'DataError';
  readonly code: DataErrorCode;
  readonly file: string | undefined;

  constructor(code: DataErrorCode, message: string, file?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.file = file;
  }
}

/** `prod(shape)`; 1 for `[]`. */
export function shapeSize(shape: readonly number[]): number {
  let s = 1;
  for (const d of shape) s *= d;
  return s;
}
