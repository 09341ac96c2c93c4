/**
 * The monitor's statistics of a layer's activation output (src/monitor/monitor.ts): its moments, its dead units
 * (ReLU) and its saturation (sigmoid, tanh), added into the layer's accumulators of the step.
 */
import type { Backend, Buf } from '../backend/types.js';
import type { ActivationStats } from '../nn/activation-names.js';
import { poolSums } from '../tensor/ops/conv.js';
import type { BatchMoments } from '../tensor/ops/norm.js';
import type { Tensor } from '../tensor/tensor.js';

/** Which statistics an activation output gets ('none': no activation module known). */
export type ActivationKind = ActivationStats | 'none';

/** A layer's accumulators of its activation's statistics over one step. */
export interface ActivationAcc {
  actSum: number;
  actSS: number;
  actN: number;
  actNonFinite: number;
  /** units seen positive at least once on this step (ReLU) */
  alive: Uint8Array | null;
  /** the array `alive` was last, kept to be cleared and reused on the next step */
  aliveBuf: Uint8Array | null;
  satCount: number;
  satN: number;
  /**
   * a max pooling read the layer's (convolution's) ReLU output on the first monitored step: the output's statistics
   * are then taken in the pooling's pass (maxPool2dSums), at the next hook (settlePooled)
   */
  pooled: boolean;
}

/** Mean/std (post-activation), dead units (ReLU) and saturation (sigmoid, tanh) of an activation output. */
export function activationStats(layer: ActivationAcc, kind: ActivationKind, t: Tensor, sums: boolean): void {
  const be = t.storage.backend;
  const buf = t.buf;
  const n = t.size;
  // NOTE: a ReLU module's output is never negative, so its per-unit column sums tell dead units (a sum of 0 means
  // every value was 0) and add up to the total: one pass gives both, instead of a sum and a max over the batch
  const reluOut = sums && kind === 'relu' && t.ndim >= 2;
  if (sums && !reluOut) {
    sumsOf(be, buf, n, sumsOut);
    addSums(layer, be, buf, n, sumsOut[0]!, sumsOut[1]!);
  }
  if (kind === 'relu') {
    // What a unit is: a feature of [batch, features]; the last axis of [batch, time, hidden] (or [time, batch,
    // hidden]), across time; a channel of [N, C, H, W], across positions. It is dead when it outputs 0 for every
    // example of the batch (and every step or position).
    // NOTE: a conv unit is the channel, not each position: background pixels make border positions constant over
    // the batch, so they would look dead while the filter is fine.
    const sh = t.shape;
    const nd = sh.length;
    if (reluOut && nd === 4) {
      convReluStats(layer, be, buf, n, sh[0]!, sh[1]!);
      return;
    }
    const rows = nd === 4 ? sh[0]! : nd >= 2 ? n / sh[nd - 1]! : 1;
    const cols = n / rows;
    const units = nd === 4 ? sh[1]! : cols;
    const group = cols / units;
    const mx = be.alloc(cols);
    const arg = reluOut ? null : be.alloc(cols);
    try {
      // NOTE: the ReLU output's column sums and its sum of squares in one pass (sumSquaresColumns: the bits of
      // sumAxis and sumSquares, which read it twice until the thirteenth session)
      const ss = arg ? 0 : be.sumSquaresColumns(buf, mx, rows, cols);
      if (arg) be.maxAxis(buf, mx, arg, 1, rows, cols);
      const d = mx.data;
      if (reluOut) {
        let total = 0;
        for (let i = 0; i < cols; i++) total += d[i]!;
        addSums(layer, be, buf, n, total, ss);
      }
      const alive = aliveOf(layer, units);
      // NOTE: `!(v <= 0)` counts NaN as alive: a unit drowned in NaN is the non-finite finding's business
      if (group === 1) {
        for (let i = 0; i < units; i++) if (!(d[i]! <= 0)) alive[i] = 1;
      } else {
        for (let u = 0; u < units; u++) {
          if (alive[u]) continue;
          const o = u * group;
          for (let j = 0; j < group; j++) {
            if (!(d[o + j]! <= 0)) {
              alive[u] = 1;
              break;
            }
          }
        }
      }
    } finally {
      be.free(mx);
      if (arg) be.free(arg);
    }
  } else if (kind === 'sigmoid' || kind === 'tanh') {
    // NOTE: in C natively (countOutside), where a JavaScript loop took ~0.9 ms of a 15 ms monitored GRU step for the
    // recurrent layer's [64, 100, 128] output (until the nineteenth session)
    layer.satCount += be.countOutside(buf, n, kind === 'sigmoid' ? 0.01 : -0.99, 0.99);
    layer.satN += n;
  }
}

/** A layer's sums over its own outputs on one step (monitor.ts's LayerAcc). */
export interface OutputAcc {
  outSum: number;
  outSS: number;
  outN: number;
  actNonFinite: number;
}

/** The layer's array of units seen alive on this step, of `units` zeros at the step's first output. */
function aliveOf(layer: ActivationAcc, units: number): Uint8Array {
  let alive = layer.alive;
  if (!alive || alive.length !== units) {
    // zeros: last step's array cleared, or a new one (allocating a typed array costs more than clearing it)
    const prev = layer.aliveBuf;
    alive = prev && prev !== alive && prev.length === units ? prev.fill(0) : new Uint8Array(units);
    layer.alive = layer.aliveBuf = alive;
  }
  return alive;
}

/**
 * A convolution's ReLU output [N, C, H, W]: each (image, channel) plane's sum (`sumAxis` over [N·C, H·W], each plane
 * a contiguous run) and Σx² (`sumSquares`), in one pass (`sumSquaresRows`; two until the sixteenth session). A channel is alive when one of its planes sums to more than 0 (the
 * values are never negative, so: when one of its values is; NaN counts as alive), and the sum of the output is that
 * of the planes' sums.
 * NOTE: per plane, not per column of [N, C·H·W] (sumSquaresColumns, until the fifteenth session): the column sums
 * read and wrote a row of C·H·W sums (100 KB for the CLI CNN's first stage) for every image, and cost the monitored
 * 2-thread CLI CNN step most of the 10% the issue allows; the planes' sums are summed where they are read.
 */
function convReluStats(layer: ActivationAcc, be: Backend, buf: Buf, n: number, images: number, channels: number): void {
  const planes = images * channels;
  const sums = be.alloc(planes);
  try {
    // the planes' sums (sumAxis's bits) and Σx² in one pass over the output, shared out over the threads
    convReluFigures(layer, be, buf, n, channels, sums.data, be.sumSquaresRows(buf, sums, planes, n / planes));
  } finally {
    be.free(sums);
  }
}

/** convReluStats' figures from the planes' sums d ([N·C]) and Σx² of the output buf of n values. */
function convReluFigures(
  layer: ActivationAcc,
  be: Backend,
  buf: Buf,
  n: number,
  channels: number,
  d: Float32Array,
  ss: number,
): void {
  const planes = d.length;
  let total = 0;
  for (let i = 0; i < planes; i++) total += d[i]!;
  addSums(layer, be, buf, n, total, ss);
  const alive = aliveOf(layer, channels);
  for (let i = 0; i < planes; i++) if (!(d[i]! <= 0)) alive[i % channels] = 1;
}

/**
 * A convolution's ReLU output t [N, C, H, W] whose statistics were left to the max pooling that reads it
 * (`wantPoolSums`, on a monitored step after the first): its figures from the plane sums and Σx² that the pooling took
 * in its own pass, the same bits as convReluStats' pass (maxPool2dSums); read from t where no pooling came (then
 * marked not pooled), none where t was released first. On the first monitored step (`learning`: its figures were
 * read in the ReLU's hook) this only learns whether a pooling read it.
 * NOTE: until the twentieth session the pass read the CLI CNN's two ReLU outputs (9.6 MB a step) from memory again
 * right after the poolings had read them, 3.5-4% of its monitored step (in-process, one thread and two); in the
 * pooling's pass the monitored step's overhead went from 5.1% to 3.6% on one thread (the sums themselves, converted
 * to float64 for the planes, are what is left).
 */
export function settlePooled(layer: ActivationAcc, t: Tensor, learning: boolean): void {
  const ps = poolSums(t);
  if (learning) {
    layer.pooled = ps !== undefined;
    return;
  }
  if (!t.storage.buf) {
    layer.pooled = false;
    return;
  }
  if (ps) {
    convReluFigures(layer, t.storage.backend, t.buf, t.size, t.shape[1]!, ps.planes.data, ps.ss);
    return;
  }
  layer.pooled = false;
  activationStats(layer, 'relu', t, true);
}

/**
 * Σx, Σx² and the count of a layer's own output t added to its accumulators (its non-finite values if any): read from
 * t, or taken from the batch statistics a BatchNorm in training took of t (`bm`, per channel: Σx = count·mean,
 * Σx² = count·(var + mean²), var recovered from the float32 invstd as 1/invstd² − eps: within ~1e-7 of the sums read,
 * and no pass over an output that the BatchNorm has just read whole).
 */
export function outputSums(layer: OutputAcc, t: Tensor, bm?: BatchMoments): void {
  const be = t.storage.backend;
  const n = t.size;
  if (bm) momentSums(bm, sumsOut);
  else sumsOf(be, t.buf, n, sumsOut);
  const ss = sumsOut[1]!;
  layer.outSum += sumsOut[0]!;
  layer.outSS += ss;
  layer.outN += n;
  if (!Number.isFinite(ss)) layer.actNonFinite += be.countNonFinite(t.buf, n);
}

/** [Σx, Σx²] over the values that a BatchNorm's batch statistics describe, into out. */
function momentSums(bm: BatchMoments, out: Float64Array): void {
  const mean = bm.mean.data;
  const invstd = bm.invstd.data;
  let s = 0;
  let ss = 0;
  for (let c = 0; c < mean.length; c++) {
    const mu = mean[c]!;
    const is = invstd[c]!;
    // NaN stays NaN (the caller then counts the output's non-finite values); rounding may leave var a hair below 0
    const v = 1 / (is * is) - bm.eps;
    s += mu;
    ss += (v > 0 ? v : v === v ? 0 : v) + mu * mu;
  }
  out[0] = s * bm.count;
  out[1] = ss * bm.count;
}

/** A layer's Σx and Σx² of an output of n values added to its accumulators (the non-finite values counted if any). */
function addSums(layer: ActivationAcc, be: Backend, buf: Buf, n: number, sum: number, ss: number): void {
  layer.actSum += sum;
  layer.actSS += ss;
  layer.actN += n;
  if (!Number.isFinite(ss)) layer.actNonFinite += be.countNonFinite(buf, n);
}

const sumsOut = new Float64Array(2);
const splits = new Map<number, number>();

/**
 * Σx and Σx² over n values in one pass, into out: [Σx, Σx²]. The backend's `sumSquaresRows` over [n/k, k] (k the
 * largest divisor of n up to 1024) gives Σx² and the rows' sums, which are added here; natively it shares blocks of
 * whole rows out over the threads (blocks fixed by the shape, so the bits do not depend on the thread count).
 * NOTE: `sumSquaresColumns` over the same [n/k, k] until the nineteenth session, which runs on the calling thread:
 * a layer's output is read from memory (ResNet-20's first stage: 4 MB an output, 24 outputs a step), and on two
 * threads the rows took 1.5-2% off the monitored ResNet-20, CLI CNN and LSTM steps (in-process A/B, Zen 5); the wasm
 * steps and the one-thread ones unchanged. Summing a whole buffer as one run would be a sequential float loop that no
 * compiler may vectorize; rows of up to 1024 values are summed in vector lanes.
 */
export function sumsOf(be: Backend, buf: Buf, n: number, out: Float64Array): void {
  if (n === 0) {
    out[0] = out[1] = 0;
    return;
  }
  let k = splits.get(n);
  if (k === undefined) {
    k = Math.min(1024, n);
    while (n % k !== 0) k--;
    splits.set(n, k);
  }
  const rows = n / k;
  const sums = be.alloc(rows);
  try {
    out[1] = be.sumSquaresRows(buf, sums, rows, k);
    const d = sums.data;
    let s = 0;
    for (let i = 0; i < rows; i++) s += d[i]!;
    out[0] = s;
  } finally {
    be.free(sums);
  }
}
