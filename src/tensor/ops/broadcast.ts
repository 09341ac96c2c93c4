/**
 * The gradients of broadcasting and of reductions: summing a broadcast gradient down to an input's shape, and
 * expanding a reduced gradient back up. Elementwise ops and reductions both need them, so they live here, below both
 * (elementwise.ts and reduce.ts import this file, never each other's helpers).
 */
import { type Backend, Binary, type Buf } from '../../backend/types.js';
import type { Tensor } from '../tensor.js';
import { reshape } from './shape.js';
import { alloc, broadcastStrides } from './util.js';

/** Raw sum over sorted axes (no tape); returns a tensor with those axes kept as size 1. */
export function sumRaw(x: Tensor, axes: readonly number[]): Tensor {
  let cur = x;
  let shape = [...x.shape];
  // collapse runs of adjacent axes into one kernel call each, from the last run to the first
  let i = axes.length - 1;
  while (i >= 0) {
    let j = i;
    while (j > 0 && axes[j - 1] === axes[j]! - 1) j--;
    const a0 = axes[j]!;
    const a1 = axes[i]!;
    let outer = 1;
    let mid = 1;
    let inner = 1;
    for (let d = 0; d < shape.length; d++) {
      if (d < a0) outer *= shape[d]!;
      else if (d <= a1) mid *= shape[d]!;
      else inner *= shape[d]!;
    }
    const next = [...shape];
    for (let d = a0; d <= a1; d++) next[d] = 1;
    const out = alloc(next);
    out.storage.backend.sumAxis(cur.buf, out.buf, outer, mid, inner);
    cur = out;
    shape = next;
    i = j - 1;
  }
  return cur === x ? reshape(x.detach(), shape) : cur;
}

/** Sums `g` (of a broadcast shape) down to `shape`: the gradient of broadcasting. */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.shape.length - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.shape.length; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  return reshape(axes.length ? sumRaw(g, axes) : g, shape);
}

/** Broadcasts `g` up to `shape` (a copy): the gradient of a reduction. */
export function expandTo(g: Tensor, shape: readonly number[]): Tensor {
  const out = alloc(shape);
  const zero = zeroScalar(g.storage.backend);
  out.storage.backend.binary(
    Binary.Add,
    g.buf,
    zero,
    out.buf,
    shape,
    broadcastStrides(g.shape, shape),
    new Array(shape.length).fill(0),
  );
  return out;
}

const zeros = new WeakMap<object, Buf>();
/** A one-element buffer holding 0 on backend `be` (made once per backend): the other operand of a broadcast copy. */
export function zeroScalar(be: Backend): Buf {
  let z = zeros.get(be);
  if (!z) {
    z = be.alloc(1);
    be.fill(z, 0, 1);
    zeros.set(be, z);
  }
  return z;
}
