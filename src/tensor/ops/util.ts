/** Shape helpers shared by the ops: broadcasting, strides, axis normalisation. */
import { ArgumentError, ShapeError } from '../errors.js';
import { allocStorage, Tensor } from '../tensor.js';

/** NumPy broadcasting of two shapes; throws naming the op when they are incompatible. */
export function broadcastShapes(a: readonly number[], b: readonly number[], op: string): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(
        `${op}(): shapes [${a}] and [${b}] cannot be broadcast (dimension ${i} is ${da} vs ${db}; sizes must match or one must be 1)`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Row-major strides of `shape`. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** Strides of `shape` read as broadcast to `target` (0 on broadcast dimensions). */
export function broadcastStrides(shape: readonly number[], target: readonly number[]): number[] {
  const st = stridesOf(shape);
  const out = new Array<number>(target.length).fill(0);
  const off = target.length - shape.length;
  for (let i = 0; i < shape.length; i++) out[off + i] = shape[i] === 1 ? 0 : st[i]!;
  return out;
}

/** Resolves a possibly negative axis against `ndim`. */
export function normAxis(axis: number, ndim: number, op: string): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(axis) || a < 0 || a >= Math.max(ndim, 1)) {
    throw new ArgumentError(`${op}(): axis ${axis} is out of range for a tensor with ${ndim} dimensions`);
  }
  return a;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A new result tensor of `shape` with fresh (pooled) storage, not yet on the tape. */
export function alloc(shape: readonly number[]): Tensor {
  let n = 1;
  for (const d of shape) n *= d;
  return new Tensor(allocStorage(n), shape);
}

export function assertTensor(x: unknown, arg: string, op: string): asserts x is Tensor {
  if (!(x instanceof Tensor)) {
    throw new ArgumentError(
      `argument '${arg}' passed to '${op}' must be a Tensor, but got ${x === null ? 'null' : typeof x}`,
    );
  }
}

/**
 * Gradients that already hold a ReLU's gradient: `reluFolded.get(g) === y` says that g, the gradient of the ReLU
 * output y, is already 0 wherever y is not > 0, so the ReLU's backward hands it on as its input's gradient, as its
 * own pass would compute it (the kernel that made g folded that pass in, e.g. maxPool2dGradRelu). Only the very
 * tensor a backward returned is marked: a sum of gradients (y used twice) is a new tensor and takes the ReLU's pass.
 */
export const reluFolded = new WeakMap<Tensor, Tensor>();

/**
 * Per-plane sums that came with a gradient: `planeSums.get(g)` is [planes] holding each h·w plane's sum of g, as
 * sumAxis(g, sums, planes, h·w, 1) takes them (bit for bit), made by the kernel that wrote g (maxPool2dGradRelu), so
 * that a conv2d's backward reads its bias gradient per image from there instead of summing g again.
 */
export const planeSums = new WeakMap<Tensor, Tensor>();
