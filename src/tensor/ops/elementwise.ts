/**
 * Elementwise ops: arithmetic with NumPy broadcasting, unary math and activations. Each forward sits beside its
 * gradient.
 */

import { Binary, Unary } from '../../backend/types.js';
import { ArgumentError } from '../errors.js';
import { fromOp, type Tensor } from '../tensor.js';
import { sumToShape } from './broadcast.js';
import { alloc, assertTensor, broadcastShapes, broadcastStrides, reluFolded, sameShape } from './util.js';

/** Applies a unary kernel and records its gradient gx = gy·f'(x). */
export function unaryOp(name: string, op: Unary, x: Tensor, a = 0, b = 0): Tensor {
  assertTensor(x, 'x', name);
  const out = alloc(x.shape);
  const be = out.storage.backend;
  be.unary(op, x.buf, out.buf, x.size, a, b);
  const y = fromOp(name, out.storage, x.shape, [x], (g) => {
    // the kernel that made g folded the ReLU's gradient in already (see reluFolded): the same values as this pass
    if (op === Unary.Relu && reluFolded.get(g) === y) return [g];
    const gx = alloc(x.shape);
    be.unaryGrad(op, x.buf, out.buf, g.buf, gx.buf, x.size, a, b);
    return [gx];
  });
  return y;
}

/** y = a·x + b, one pass (scalar add, sub, mul and div are this). */
export function affine(x: Tensor, a: number, b: number): Tensor {
  assertTensor(x, 'x', 'affine');
  const out = alloc(x.shape);
  const be = out.storage.backend;
  be.unary(Unary.Affine, x.buf, out.buf, x.size, a, b);
  return fromOp('affine', out.storage, x.shape, [x], (g) => {
    const gx = alloc(x.shape);
    be.unary(Unary.Affine, g.buf, gx.buf, x.size, a, 0);
    return [gx];
  });
}

function rawBinary(op: Binary, a: Tensor, b: Tensor, shape: readonly number[]): Tensor {
  const out = alloc(shape);
  out.storage.backend.binary(
    op,
    a.buf,
    b.buf,
    out.buf,
    shape,
    broadcastStrides(a.shape, shape),
    broadcastStrides(b.shape, shape),
  );
  return out;
}

function binaryOp(
  name: string,
  op: Binary,
  a: Tensor,
  b: Tensor,
  grads: (g: Tensor, out: Tensor, needs: readonly boolean[]) => [Tensor | null, Tensor | null],
): Tensor {
  assertTensor(a, 'a', name);
  assertTensor(b, 'b', name);
  const shape = sameShape(a.shape, b.shape) ? a.shape : broadcastShapes(a.shape, b.shape, name);
  const out = rawBinary(op, a, b, shape);
  return fromOp(name, out.storage, shape, [a, b], (g, needs) => {
    const [ga, gb] = grads(g, out, needs);
    return [ga && sumToShape(ga, a.shape), gb && sumToShape(gb, b.shape)];
  });
}

export type Operand = Tensor | number;

/** a + b with broadcasting. */
export function add(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a, 1, b);
  return binaryOp('add', Binary.Add, a, b, (g) => [g, g]);
}

/**
 * relu(a + b) as one op (a residual block's sum and the ReLU after it): one pass forward that never writes the sum;
 * backward, the ReLU's mask applied once (or not at all where the gradient's kernel folded it in: reluFolded) and that
 * one gradient handed to both a and b. The same numbers, bit for bit, as `relu(add(a, b))`; operands of different
 * shapes take those two ops.
 */
export function addRelu(a: Tensor, b: Tensor): Tensor {
  assertTensor(a, 'a', 'addRelu');
  assertTensor(b, 'b', 'addRelu');
  if (!sameShape(a.shape, b.shape)) return relu(add(a, b));
  const out = alloc(a.shape);
  const be = out.storage.backend;
  be.addRelu(a.buf, b.buf, out.buf, out.size);
  const y = fromOp(
    'addRelu',
    out.storage,
    a.shape,
    [a, b],
    (g) => {
      if (reluFolded.get(g) === y) return [g, g];
      const gx = alloc(a.shape);
      // y > 0 exactly where the sum was: the ReLU's gradient read from its output
      be.unaryGrad(Unary.Relu, out.buf, out.buf, g.buf, gx.buf, out.size, 0, 0);
      return [gx, gx];
    },
    (g1, g2) => reluGradSum(g1, g2, y),
  );
  return y;
}

/**
 * The gradient of a ReLU output y (relu(...) of a fused op) that feeds two ops: their gradients g1 + g2 and the
 * ReLU's mask in one pass (reluGradSum), marked as folded (reluFolded) so that y's backward hands it on as it is.
 * The bits of the sum and then the mask.
 */
export function reluGradSum(g1: Tensor, g2: Tensor, y: Tensor): Tensor {
  const s = alloc(y.shape);
  s.storage.backend.reluGradSum(g1.buf, g2.buf, y.buf, s.buf, y.size);
  reluFolded.set(s, y);
  return s;
}

/** a - b with broadcasting. */
export function sub(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a, 1, -b);
  return binaryOp('sub', Binary.Sub, a, b, (g, _o, needs) => [g, needs[1] ? affine(g, -1, 0) : null]);
}

/** a · b elementwise with broadcasting. */
export function mul(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a, b, 0);
  return binaryOp('mul', Binary.Mul, a, b, (g, _o, needs) => [
    needs[0] ? rawBinary(Binary.Mul, g, b, g.shape) : null,
    needs[1] ? rawBinary(Binary.Mul, g, a, g.shape) : null,
  ]);
}

/** a / b elementwise with broadcasting. */
export function div(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return affine(a, 1 / b, 0);
  return binaryOp('div', Binary.Div, a, b, (g, out, needs) => [
    needs[0] ? rawBinary(Binary.Div, g, b, g.shape) : null,
    // d(a/b)/db = -out / b
    needs[1] ? neg(rawBinary(Binary.Div, rawBinary(Binary.Mul, g, out, g.shape), b, g.shape)) : null,
  ]);
}

/** a ** b elementwise; a scalar exponent uses a single kernel. */
export function pow(a: Tensor, b: Operand): Tensor {
  if (typeof b === 'number') return unaryOp('pow', Unary.PowScalar, a, b);
  return binaryOp('pow', Binary.Pow, a, b, (g, out, needs) => [
    // d/da = b · a^(b-1) = b · out / a (computed directly to stay finite at a = 0)
    needs[0]
      ? rawBinary(
          Binary.Mul,
          g,
          rawBinary(
            Binary.Mul,
            b,
            rawBinary(Binary.Pow, a, sub(b, 1), broadcastShapes(a.shape, b.shape, 'pow')),
            g.shape,
          ),
          g.shape,
        )
      : null,
    needs[1] ? rawBinary(Binary.Mul, g, rawBinary(Binary.Mul, out, log(a), g.shape), g.shape) : null,
  ]);
}

/** Elementwise maximum; where a == b the gradient is split evenly, as PyTorch. */
export function maximum(a: Tensor, b: Tensor): Tensor {
  return binaryOp('maximum', Binary.Maximum, a, b, (g, _o, needs) => selectGrads(g, a, b, needs, true));
}

/** Elementwise minimum; where a == b the gradient is split evenly, as PyTorch. */
export function minimum(a: Tensor, b: Tensor): Tensor {
  return binaryOp('minimum', Binary.Minimum, a, b, (g, _o, needs) => selectGrads(g, a, b, needs, false));
}

function selectGrads(
  g: Tensor,
  a: Tensor,
  b: Tensor,
  needs: readonly boolean[],
  isMax: boolean,
): [Tensor | null, Tensor | null] {
  const shape = g.shape;
  const sa = broadcastStrides(a.shape, shape);
  const sb = broadcastStrides(b.shape, shape);
  const ga = alloc(shape);
  const gb = alloc(shape);
  const ad = a.data;
  const bd = b.data;
  const gd = g.data;
  const gad = ga.data;
  const gbd = gb.data;
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  let ao = 0;
  let bo = 0;
  for (let i = 0; i < g.size; i++) {
    const av = ad[ao]!;
    const bv = bd[bo]!;
    const gv = gd[i]!;
    if (av === bv) {
      gad[i] = gv / 2;
      gbd[i] = gv / 2;
    } else if (isMax ? av > bv : av < bv) {
      gad[i] = gv;
      gbd[i] = 0;
    } else {
      gad[i] = 0;
      gbd[i] = gv;
    }
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++;
      ao += sa[d]!;
      bo += sb[d]!;
      if (idx[d]! < shape[d]!) break;
      ao -= sa[d]! * shape[d]!;
      bo -= sb[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
  return [needs[0] ? ga : null, needs[1] ? gb : null];
}

export const neg = (x: Tensor): Tensor => affine(x, -1, 0);
export const exp = (x: Tensor): Tensor => unaryOp('exp', Unary.Exp, x);
export const log = (x: Tensor): Tensor => unaryOp('log', Unary.Log, x);
export const sqrt = (x: Tensor): Tensor => unaryOp('sqrt', Unary.Sqrt, x);
export const abs = (x: Tensor): Tensor => unaryOp('abs', Unary.Abs, x);
export const square = (x: Tensor): Tensor => unaryOp('square', Unary.Square, x);
export const reciprocal = (x: Tensor): Tensor => unaryOp('reciprocal', Unary.Reciprocal, x);
export const sign = (x: Tensor): Tensor => unaryOp('sign', Unary.Sign, x);

/** Clamps to [min, max]; either bound may be omitted. The gradient passes where min <= x <= max, as PyTorch. */
export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  if (min === undefined && max === undefined) throw new ArgumentError('clamp(): give at least one of min and max');
  return unaryOp('clamp', Unary.Clamp, x, min ?? Number.NaN, max ?? Number.NaN);
}

/** max(x, 0); the gradient at 0 is 0. */
export const relu = (x: Tensor): Tensor => unaryOp('relu', Unary.Relu, x);
/** x for x > 0, slope·x otherwise (PyTorch's default slope 0.01). */
export const leakyRelu = (x: Tensor, negativeSlope = 0.01): Tensor =>
  unaryOp('leakyRelu', Unary.LeakyRelu, x, negativeSlope);
/** x for x > 0, alpha·(eᵡ − 1) otherwise (Clevert et al. 2015). */
export const elu = (x: Tensor, alpha = 1): Tensor => unaryOp('elu', Unary.Elu, x, alpha);
/** scale·elu(x, alpha) with the self-normalising constants of Klambauer et al. 2017. */
export const selu = (x: Tensor): Tensor => unaryOp('selu', Unary.Selu, x);
/** x·Φ(x), exact (erf) form, PyTorch's default (Hendrycks & Gimpel 2016). */
export const gelu = (x: Tensor): Tensor => unaryOp('gelu', Unary.Gelu, x);
/** 1 / (1 + e⁻ˣ), computed without overflow for large |x|. */
export const sigmoid = (x: Tensor): Tensor => unaryOp('sigmoid', Unary.Sigmoid, x);
export const tanh = (x: Tensor): Tensor => unaryOp('tanh', Unary.Tanh, x);
/** log(1 + e^(βx)) / β, linear above the threshold, as PyTorch (β = 1, threshold = 20). */
export const softplus = (x: Tensor, beta = 1, threshold = 20): Tensor =>
  unaryOp('softplus', Unary.Softplus, x, beta, threshold);
