/** Shape ops: reshape, transpose, permute, slice, concat, stack, indexSelect, gather. */
import { ArgumentError, ShapeError } from '../errors.js';
import { fromOp, Tensor } from '../tensor.js';
import { alloc, assertTensor, normAxis } from './util.js';

/** Same values, new shape (shares storage). One dimension may be -1. */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const sh = [...shape];
  const neg = sh.indexOf(-1);
  if (neg >= 0) {
    const rest = sh.reduce((p, d, i) => (i === neg ? p : p * d), 1);
    sh[neg] = rest === 0 ? 0 : x.size / rest;
  }
  let n = 1;
  for (const d of sh) n *= d;
  if (n !== x.size || sh.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new ShapeError(`reshape(): cannot reshape [${x.shape}] (${x.size} elements) into [${shape}]`);
  }
  const inShape = x.shape;
  return fromOp('reshape', x.storage, sh, [x], (g) => [reshape(g, inShape)]);
}

/** Permutes the axes: result axis j is x's axis perm[j] (like `torch.permute`). Copies. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const p = perm.map((a) => normAxis(a, x.ndim, 'permute'));
  if (p.length !== x.ndim || [...p].sort((a, b) => a - b).some((v, i) => v !== i)) {
    throw new ShapeError(
      `permute(): [${perm}] is not a permutation of the ${x.ndim} axes of a tensor of shape [${x.shape}]`,
    );
  }
  const outShape = p.map((a) => x.shape[a]!);
  const out = alloc(outShape);
  out.storage.backend.permute(x.buf, out.buf, x.shape, p);
  const inv = new Array<number>(p.length);
  for (let i = 0; i < p.length; i++) inv[p[i]!] = i;
  const y = fromOp('permute', out.storage, outShape, [x], (g) => [permute(g, inv)]);
  if (y.node && swapsLastTwo(p)) transposes.set(y, x);
  return y;
}

/** Whether perm is the identity but for the last two axes, swapped: a (batch of) matrix transpose(s). */
function swapsLastTwo(p: readonly number[]): boolean {
  const n = p.length;
  if (n < 2 || p[n - 2] !== n - 1 || p[n - 1] !== n - 2) return false;
  for (let i = 0; i < n - 2; i++) if (p[i] !== i) return false;
  return true;
}

/** The matrix transposes on the tape, by result: what `transposeSource` tells matmul. */
const transposes = new WeakMap<Tensor, Tensor>();

/**
 * The tensor that `t` is the recorded transpose of, its last two axes swapped (`w` for `w.transpose(0, 1)`, `k` for
 * `k.transpose(-2, -1)`), or undefined. `t` holds a copy of its values; what matmul takes from this is only where the
 * gradient goes: to `w` straight in its own layout (dCᵀ·A for a right operand), instead of to `t` and through the
 * transpose's permute back.
 */
export function transposeSource(t: Tensor): Tensor | undefined {
  const src = transposes.get(t);
  return src && t.node?.inputs[0] === src ? src : undefined;
}

/** Swaps two axes (the last two by default, as `.mT`). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  if (x.ndim < 2) return reshape(x, x.shape);
  const a = normAxis(dim0, x.ndim, 'transpose');
  const b = normAxis(dim1, x.ndim, 'transpose');
  const perm = Array.from({ length: x.ndim }, (_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

function blocksAlong(shape: readonly number[], axis: number): { outer: number; inner: number } {
  let outer = 1;
  let inner = 1;
  for (let d = 0; d < shape.length; d++) {
    if (d < axis) outer *= shape[d]!;
    else if (d > axis) inner *= shape[d]!;
  }
  return { outer, inner };
}

/** Elements start..end-1 (end exclusive, negatives count from the end) along `axis`. */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const a = normAxis(axis, x.ndim, 'slice');
  const len = x.shape[a]!;
  let s = start < 0 ? start + len : start;
  let e = end === undefined ? len : end < 0 ? end + len : end;
  s = Math.min(Math.max(s, 0), len);
  e = Math.min(Math.max(e, s), len);
  const outShape = [...x.shape];
  outShape[a] = e - s;
  const { outer, inner } = blocksAlong(x.shape, a);
  const out = alloc(outShape);
  const be = out.storage.backend;
  be.copyBlocks(x.buf, s * inner, len * inner, out.buf, 0, (e - s) * inner, (e - s) * inner, outer, false);
  const inShape = x.shape;
  return fromOp('slice', out.storage, outShape, [x], (g) => {
    const gx = alloc(inShape);
    be.fill(gx.buf, 0, gx.size);
    be.copyBlocks(g.buf, 0, (e - s) * inner, gx.buf, s * inner, len * inner, (e - s) * inner, outer, false);
    return [gx];
  });
}

/** Joins tensors along an existing axis. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (!xs.length) throw new ArgumentError('concat(): needs at least one tensor');
  for (const [i, t] of xs.entries()) assertTensor(t, `tensors[${i}]`, 'concat');
  const first = xs[0]!;
  const a = normAxis(axis, first.ndim, 'concat');
  for (const t of xs) {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError(`concat(): shapes [${first.shape}] and [${t.shape}] differ outside axis ${a}`);
    }
  }
  const total = xs.reduce((p, t) => p + t.shape[a]!, 0);
  const outShape = [...first.shape];
  outShape[a] = total;
  const { outer, inner } = blocksAlong(outShape, a);
  const out = alloc(outShape);
  const be = out.storage.backend;
  let off = 0;
  const offsets: number[] = [];
  for (const t of xs) {
    const w = t.shape[a]! * inner;
    offsets.push(off);
    be.copyBlocks(t.buf, 0, w, out.buf, off, total * inner, w, outer, false);
    off += w;
  }
  return fromOp('concat', out.storage, outShape, xs, (g, needs) =>
    xs.map((t, i) => {
      if (!needs[i]) return null;
      const w = t.shape[a]! * inner;
      const gx = alloc(t.shape);
      be.copyBlocks(g.buf, offsets[i]!, total * inner, gx.buf, 0, w, w, outer, false);
      return gx;
    }),
  );
}

/** Stacks same-shaped tensors along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (!xs.length) throw new ArgumentError('stack(): needs at least one tensor');
  const first = xs[0]!;
  const a = normAxis(axis, first.ndim + 1, 'stack');
  const expanded = xs.map((t) => {
    if (t.ndim !== first.ndim || t.shape.some((d, i) => d !== first.shape[i])) {
      throw new ShapeError(`stack(): all tensors must have the same shape; got [${first.shape}] and [${t.shape}]`);
    }
    const sh = [...t.shape];
    sh.splice(a, 0, 1);
    return reshape(t, sh);
  });
  return concat(expanded, a);
}

function readIndices(indices: Tensor | readonly number[], bound: number, op: string): Int32Array {
  const src = indices instanceof Tensor ? indices.data : indices;
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (!Number.isInteger(v) || v < -bound || v >= bound) {
      throw new ArgumentError(`${op}(): index ${v} is out of range for a dimension of size ${bound}`);
    }
    out[i] = v < 0 ? v + bound : v;
  }
  return out;
}

/**
 * Picks entries along `axis` by index (like `torch.index_select`); the result's axis has the indices' length. The
 * gradient adds back into the picked rows (repeated indices accumulate), which is how an embedding learns.
 */
export function indexSelect(x: Tensor, axis: number, indices: Tensor | readonly number[]): Tensor {
  const a = normAxis(axis, x.ndim, 'indexSelect');
  const len = x.shape[a]!;
  const idx = readIndices(indices, len, 'indexSelect');
  const { outer, inner } = blocksAlong(x.shape, a);
  const outShape = [...x.shape];
  outShape[a] = idx.length;
  const out = alloc(outShape);
  const be = out.storage.backend;
  for (let k = 0; k < idx.length; k++) {
    be.copyBlocks(x.buf, idx[k]! * inner, len * inner, out.buf, k * inner, idx.length * inner, inner, outer, false);
  }
  const inShape = x.shape;
  return fromOp('indexSelect', out.storage, outShape, [x], (g) => {
    const gx = alloc(inShape);
    be.fill(gx.buf, 0, gx.size);
    for (let k = 0; k < idx.length; k++) {
      be.copyBlocks(g.buf, k * inner, idx.length * inner, gx.buf, idx[k]! * inner, len * inner, inner, outer, true);
    }
    return [gx];
  });
}

/**
 * out[i][j][k] = x[i][index[i][j][k]][k] for axis 1, and so on (like `torch.gather`); `index` has x's number of
 * dimensions and no larger a size in any of them.
 */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const a = normAxis(axis, x.ndim, 'gather');
  if (index.ndim !== x.ndim)
    throw new ShapeError(`gather(): index must have ${x.ndim} dimensions like the input, got ${index.ndim}`);
  const big = index.shape.findIndex((d, i) => i !== a && d > x.shape[i]!);
  if (big >= 0) {
    throw new ShapeError(
      `gather(): index shape [${index.shape}] is larger than the input shape [${x.shape}] in dimension ${big}`,
    );
  }
  const len = x.shape[a]!;
  const idx = readIndices(index, len, 'gather');
  const outShape = [...index.shape];
  const xStr = stridesArr(x.shape);
  const oStr = stridesArr(outShape);
  const map = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    let rem = i;
    let off = 0;
    for (let d = 0; d < outShape.length; d++) {
      const c = Math.floor(rem / oStr[d]!);
      rem -= c * oStr[d]!;
      off += (d === a ? idx[i]! : c) * xStr[d]!;
    }
    map[i] = off;
  }
  const out = alloc(outShape);
  const od = out.data;
  const xd = x.data;
  for (let i = 0; i < map.length; i++) od[i] = xd[map[i]!]!;
  const inShape = x.shape;
  return fromOp('gather', out.storage, outShape, [x], (g) => {
    const gx = alloc(inShape);
    const gd = gx.data;
    gd.fill(0);
    const gs = g.data;
    for (let i = 0; i < map.length; i++) gd[map[i]!]! += gs[i]!;
    return [gx];
  });
}

function stridesArr(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Flattens dimensions start..end into one. */
export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normAxis(start, x.ndim, 'flatten');
  const e = normAxis(end, x.ndim, 'flatten');
  const shape = [...x.shape.slice(0, s), x.shape.slice(s, e + 1).reduce((p, d) => p * d, 1), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}
