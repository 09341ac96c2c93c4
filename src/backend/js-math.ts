/** The scalar math of the reference kernels (js.ts): each unary op, its derivative, each binary op, and erf. */
import { Binary, Unary } from './types.js';

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
const INV_SQRT2 = 0.7071067811865476;
const INV_SQRT_2PI = 0.3989422804014327;

/** erf(x) in float64: the Maclaurin series below |x| = 2.5, erfc's continued fraction above (far below float32's
 * resolution either way, which is all the exact GELU needs). */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = sum * 1.1283791670955126;
    return x < 0 ? -r : r;
  }
  // Continued fraction for erfc, converges fast for |x| >= 2.5
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / (ax + f) / 1.7724538509055159;
  const r = 1 - erfc;
  return x < 0 ? -r : r;
}

export function unaryScalar(op: Unary, x: number, a: number, b: number): number {
  switch (op) {
    case Unary.Neg:
      return -x;
    case Unary.Exp:
      return Math.exp(x);
    case Unary.Log:
      return Math.log(x);
    case Unary.Sqrt:
      return Math.sqrt(x);
    case Unary.Abs:
      return Math.abs(x);
    case Unary.Relu:
      // NaN stays NaN, as PyTorch; -0 gives +0.
      return x <= 0 ? 0 : x;
    case Unary.LeakyRelu:
      return x > 0 ? x : a * x;
    case Unary.Elu:
      return x > 0 ? x : a * Math.expm1(x);
    case Unary.Selu:
      return SELU_SCALE * (x > 0 ? x : SELU_ALPHA * Math.expm1(x));
    case Unary.Gelu:
      return 0.5 * x * (1 + erf(x * INV_SQRT2));
    case Unary.Sigmoid:
      return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    case Unary.Tanh:
      return Math.tanh(x);
    case Unary.Softplus:
      return x * a > b ? x : Math.log1p(Math.exp(x * a)) / a;
    case Unary.PowScalar:
      return x ** a;
    case Unary.Clamp: {
      let y = x;
      if (!Number.isNaN(a) && y < a) y = a;
      if (!Number.isNaN(b) && y > b) y = b;
      return y;
    }
    case Unary.Affine:
      return a * x + b;
    case Unary.Square:
      return x * x;
    case Unary.Reciprocal:
      return 1 / x;
    case Unary.Sign:
      return x > 0 ? 1 : x < 0 ? -1 : x === 0 ? 0 : Number.NaN;
    case Unary.ScalarDiv:
      return a / x;
    case Unary.ScalarPow:
      return a ** x;
  }
}

/** d f(x) / dx given x and y = f(x). */
export function unaryDerivative(op: Unary, x: number, y: number, a: number, b: number): number {
  switch (op) {
    case Unary.Neg:
      return -1;
    case Unary.Exp:
      return y;
    case Unary.Log:
      return 1 / x;
    case Unary.Sqrt:
      return 0.5 / y;
    case Unary.Abs:
      return x > 0 ? 1 : x < 0 ? -1 : 0;
    case Unary.Relu:
      // NOTE: the gradient at exactly 0 is 0, as PyTorch (relu is not maximum(x, 0), whose gradient splits there).
      return x > 0 ? 1 : 0;
    case Unary.LeakyRelu:
      return x > 0 ? 1 : a;
    case Unary.Elu:
      return x > 0 ? 1 : y + a;
    case Unary.Selu:
      return x > 0 ? SELU_SCALE : y + SELU_SCALE * SELU_ALPHA;
    case Unary.Gelu: {
      const cdf = 0.5 * (1 + erf(x * INV_SQRT2));
      return cdf + x * INV_SQRT_2PI * Math.exp(-0.5 * x * x);
    }
    case Unary.Sigmoid:
      return y * (1 - y);
    case Unary.Tanh:
      return 1 - y * y;
    case Unary.Softplus: {
      if (x * a > b) return 1;
      const z = Math.exp(x * a);
      return z / (1 + z);
    }
    case Unary.PowScalar:
      return a === 0 ? 0 : a * x ** (a - 1);
    case Unary.Clamp:
      return (!Number.isNaN(a) && x < a) || (!Number.isNaN(b) && x > b) ? 0 : 1;
    case Unary.Affine:
      return a;
    case Unary.Square:
      return 2 * x;
    case Unary.Reciprocal:
      return -y * y;
    case Unary.Sign:
      return 0;
    case Unary.ScalarDiv:
      return -y / x;
    case Unary.ScalarPow:
      return y * Math.log(a);
  }
}

export function binaryScalar(op: Binary, x: number, y: number): number {
  switch (op) {
    case Binary.Add:
      return x + y;
    case Binary.Sub:
      return x - y;
    case Binary.Mul:
      return x * y;
    case Binary.Div:
      return x / y;
    case Binary.Pow:
      return x ** y;
    case Binary.Maximum:
      return x !== x || y !== y ? Number.NaN : x > y ? x : y;
    case Binary.Minimum:
      return x !== x || y !== y ? Number.NaN : x < y ? x : y;
  }
}
