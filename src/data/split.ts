/**
 * Seeded stratified splits and input standardisation, shared by every loader that has to cut its own test set
 * (the bundled MNIST digits, CSV files without a test file).
 */
import { Rng } from '../tensor/rng.js';
import { DataError, type Normalization, type Split } from './types.js';

/**
 * Splits `total` into integer parts proportional to `weights` (Hamilton's largest-remainder method, exact integer
 * arithmetic): part `c` is `floor(total * w_c / W)`, and the units left over go one each to the parts with the
 * largest remainders `(total * w_c) mod W`, ties to the lower index. Parts never exceed their weight when
 * `total <= W`.
 */
export function apportion(total: number, weights: readonly number[]): number[] {
  const W = weights.reduce((a, b) => a + b, 0);
  if (W === 0) return weights.map(() => 0);
  const parts = weights.map((w) => Math.floor((total * w) / W));
  let left = total - parts.reduce((a, b) => a + b, 0);
  const order = weights.map((w, c) => ({ c, rem: (total * w) % W })).sort((a, b) => b.rem - a.rem || a.c - b.c);
  for (const { c } of order) {
    if (left <= 0) break;
    parts[c]! += 1;
    left--;
  }
  return parts;
}

/**
 * A seeded, stratified train/test split of examples labelled `0 .. numClasses-1`, defined exactly so it can be
 * reproduced anywhere:
 *
 * 1. `n_c` = the number of examples of class `c`.
 * 2. Test counts `t_c` = {@link apportion}(`testSize`, `n_c`); train counts `r_c` = apportion(`trainSize`,
 *    `n_c - t_c`). With `trainSize + testSize = N` every example is used.
 * 3. `rng = new Rng(seed)`. For `c = 0, 1, ...`: the indices of class `c` in ascending order are shuffled with
 *    `rng.shuffle` (Fisher–Yates); the first `t_c` go to the test set, the next `r_c` to the training set.
 * 4. The training indices (class 0's first, then class 1's, ...) are shuffled with `rng.shuffle`, then the test
 *    indices, so neither split is sorted by class.
 *
 * @returns the example indices of each split, in split order.
 */
export function stratifiedSplit(
  labels: ArrayLike<number>,
  numClasses: number,
  sizes: { trainSize: number; testSize: number },
  seed: number,
): { train: Int32Array; test: Int32Array } {
  const { trainSize, testSize } = sizes;
  const N = labels.length;
  for (const [k, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < 0) throw new DataError('config', `${k} must be a non-negative integer, got ${v}`);
  }
  if (trainSize + testSize > N) {
    throw new DataError(
      'config',
      `trainSize + testSize = ${trainSize + testSize} is more than the ${N} examples available; lower one of them`,
    );
  }
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < N; i++) {
    const c = labels[i]!;
    const cls = byClass[c];
    if (!cls || !Number.isInteger(c)) {
      throw new DataError('label-range', `label ${c} of example ${i} is not an integer in [0, ${numClasses})`);
    }
    cls.push(i);
  }
  const counts = byClass.map((a) => a.length);
  const testCounts = apportion(testSize, counts);
  const trainCounts = apportion(
    trainSize,
    counts.map((n, c) => n - testCounts[c]!),
  );
  const rng = new Rng(seed);
  const train = new Int32Array(trainSize);
  const test = new Int32Array(testSize);
  let a = 0;
  let b = 0;
  for (let c = 0; c < numClasses; c++) {
    const idx = byClass[c]!;
    rng.shuffle(idx);
    const t = testCounts[c]!;
    for (let i = 0; i < t; i++) test[b++] = idx[i]!;
    for (let i = t; i < t + trainCounts[c]!; i++) train[a++] = idx[i]!;
  }
  rng.shuffle(train);
  rng.shuffle(test);
  return { train, test };
}

/**
 * Copies the rows `indices` of a row-major `x` (`inputSize` floats per row) and `y` (`targetSize` per row) into a
 * new split.
 */
export function gatherSplit(
  x: Float32Array,
  y: Float32Array,
  inputSize: number,
  targetSize: number,
  indices: ArrayLike<number>,
): Split {
  const n = indices.length;
  const gx = new Float32Array(n * inputSize);
  const gy = new Float32Array(n * targetSize);
  for (let r = 0; r < n; r++) {
    const i = indices[r]!;
    gx.set(x.subarray(i * inputSize, (i + 1) * inputSize), r * inputSize);
    gy.set(y.subarray(i * targetSize, (i + 1) * targetSize), r * targetSize);
  }
  return { x: gx, y: gy, n };
}

/** How to normalise inputs: nothing, one mean/std over all training inputs, or one per feature. */
export type NormalizeMode = 'none' | 'standardize' | 'standardize-features';

/**
 * Standardises the inputs of both splits in place with statistics of the TRAINING split only (the test split never
 * leaks into them): `x' = (x - mean) / std`, population std (divide by N), computed in float64.
 * - `standardize`: one mean and std over every training value (torchvision's `Normalize` for one channel).
 * - `standardize-features`: one per input feature (scikit-learn's `StandardScaler`); a feature with std 0 in the
 *   training split gets std 1, so it is only centred.
 * @returns the statistics, to store with the dataset and apply to new inputs; `undefined` for `none`.
 */
export function standardize(
  train: Split,
  test: Split,
  inputSize: number,
  mode: NormalizeMode,
): Normalization | undefined {
  if (mode === 'none') return undefined;
  const k = mode === 'standardize' ? 1 : inputSize;
  const sum = new Float64Array(k);
  const sq = new Float64Array(k);
  const x = train.x;
  if (k === 1) {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i]!;
    const m = s / x.length;
    let v = 0;
    for (let i = 0; i < x.length; i++) v += (x[i]! - m) ** 2;
    sum[0] = m;
    sq[0] = v / x.length;
  } else {
    for (let r = 0; r < train.n; r++) {
      const o = r * k;
      for (let j = 0; j < k; j++) sum[j]! += x[o + j]!;
    }
    for (let j = 0; j < k; j++) sum[j] = sum[j]! / train.n;
    for (let r = 0; r < train.n; r++) {
      const o = r * k;
      for (let j = 0; j < k; j++) sq[j]! += (x[o + j]! - sum[j]!) ** 2;
    }
    for (let j = 0; j < k; j++) sq[j] = sq[j]! / train.n;
  }
  const mean = Array.from(sum);
  const std = Array.from(sq, (v) => (v > 0 && Number.isFinite(v) ? Math.sqrt(v) : 1));
  for (const s of [train, test]) applyNormalization(s.x, { kind: mode, mean, std });
  return { kind: mode, mean, std };
}

/** Applies a {@link Normalization} to row-major inputs in place (for new inputs at inference time). */
export function applyNormalization(x: Float32Array, norm: Normalization): void {
  const k = norm.mean.length;
  if (k === 1) {
    const m = norm.mean[0]!;
    const inv = 1 / norm.std[0]!;
    for (let i = 0; i < x.length; i++) x[i] = (x[i]! - m) * inv;
    return;
  }
  const inv = norm.std.map((s) => 1 / s);
  for (let o = 0; o < x.length; o += k) {
    for (let j = 0; j < k; j++) x[o + j] = (x[o + j]! - norm.mean[j]!) * inv[j]!;
  }
}
