/** Reductions over axes: sum, mean, max, min, var. */
import { ShapeError } from '../errors.js';
import { fromOp, noGrad, type Tensor } from '../tensor.js';
import { expandTo, sumRaw } from './broadcast.js';
import { affine, mul, sub } from './elementwise.js';
import { reshape } from './shape.js';
import { alloc, normAxis } from './util.js';

export { sumToShape } from './broadcast.js';

export type Axes = number | readonly number[] | undefined;

function resolveAxes(axes: Axes, ndim: number, op: string): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = [...new Set(list.map((a) => normAxis(a, ndim, op)))].sort((a, b) => a - b);
  return out;
}

function reducedShape(shape: readonly number[], axes: readonly number[], keepDims: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (axes.includes(i)) {
      if (keepDims) out.push(1);
    } else out.push(shape[i]!);
  }
  return out;
}

/** Sum over `axes` (all by default). */
export function sum(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  const ax = resolveAxes(axes, x.ndim, 'sum');
  const kept = ax.length ? sumRaw(x, ax) : x.detach();
  const outShape = reducedShape(x.shape, ax, keepDims);
  const inShape = x.shape;
  const keptShape = kept.shape;
  return fromOp('sum', reshape(kept, outShape).storage, outShape, [x], (g) => [
    expandTo(reshape(g, keptShape), inShape),
  ]);
}

/** Mean over `axes` (all by default). */
export function mean(x: Tensor, axes?: Axes, keepDims = false): Tensor {
  const ax = resolveAxes(axes, x.ndim, 'mean');
  let n = 1;
  for (const a of ax) n *= x.shape[a]!;
  return affine(sum(x, ax, keepDims), 1 / n, 0);
}

/**
 * Maximum over one axis or all (as `torch.amax` for values). The gradient goes to the first maximal element, as
 * `torch.max(dim)` does.
 */
export function max(x: Tensor, axis?: number, keepDims = false): Tensor {
  return extreme(x, axis, keepDims, false);
}

/** Minimum over one axis or all. */
export function min(x: Tensor, axis?: number, keepDims = false): Tensor {
  return extreme(x, axis, keepDims, true);
}

function extreme(x: Tensor, axis: number | undefined, keepDims: boolean, isMin: boolean): Tensor {
  const op = isMin ? 'min' : 'max';
  if (x.size === 0) throw new ShapeError(`${op}(): the tensor is empty`);
  const flat = axis === undefined;
  const a = flat ? 0 : normAxis(axis, x.ndim, op);
  const shape = flat ? [x.size] : x.shape;
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < shape.length; d++) {
    if (d < a) outer *= shape[d]!;
    else if (d > a) inner *= shape[d]!;
  }
  const mid = shape[a] ?? 1;
  const be = x.storage.backend;
  const src = isMin ? noGrad(() => affine(x, -1, 0)) : x;
  const outShape = flat ? (keepDims ? x.shape.map(() => 1) : []) : reducedShape(x.shape, [a], keepDims);
  const out = alloc(outShape);
  const arg = alloc([outer * inner]);
  be.maxAxis(src.buf, out.buf, arg.buf, outer, mid, inner);
  if (isMin) {
    const d = out.data;
    for (let i = 0; i < d.length; i++) d[i] = -d[i]!;
  }
  const inShape = x.shape;
  return fromOp(op, out.storage, outShape, [x], (g) => {
    const gx = alloc(inShape);
    const gd = gx.data;
    gd.fill(0);
    const gs = g.data;
    const ad = arg.data;
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) gd[(o * mid + ad[o * inner + i]!) * inner + i] = gs[o * inner + i]!;
    return [gx];
  });
}

/**
 * Variance over `axes` with Bessel's correction by default (`correction = 1`, as `torch.var`); `correction: 0` gives
 * the population variance.
 */
export function variance(x: Tensor, axes?: Axes, keepDims = false, correction = 1): Tensor {
  const ax = resolveAxes(axes, x.ndim, 'var');
  let n = 1;
  for (const a of ax) n *= x.shape[a]!;
  const centered = sub(x, mean(x, ax, true));
  return affine(sum(mul(centered, centered), ax, keepDims), 1 / Math.max(n - correction, 0), 0);
}
