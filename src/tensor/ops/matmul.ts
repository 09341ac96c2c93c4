/** Matrix products (2-D, batched with broadcasting, vectors as in `torch.matmul`) and the fused linear layer op. */

import { type Backend, type Buf, Unary } from '../../backend/types.js';
import { ShapeError } from '../errors.js';
import { dispose, fromOp, type Tensor } from '../tensor.js';
import { sumToShape } from './broadcast.js';
import { reshape, transposeSource } from './shape.js';
import { alloc, assertTensor, broadcastShapes, broadcastStrides } from './util.js';

/**
 * Batched C = op(A) @ op(B) over broadcast batch dimensions. `aBatch`/`bBatch` are the operands' batch shapes,
 * `batch` the broadcast one; each operand is a stack of row-major matrices.
 */
function bmm(
  be: Backend,
  a: Buf,
  aBatch: readonly number[],
  transA: boolean,
  b: Buf,
  bBatch: readonly number[],
  transB: boolean,
  c: Buf,
  batch: readonly number[],
  m: number,
  n: number,
  k: number,
): void {
  const lda = transA ? m : k;
  const ldb = transB ? k : n;
  let count = 1;
  for (const d of batch) count *= d;
  const aStr = broadcastStrides(aBatch, batch);
  const bStr = broadcastStrides(bBatch, batch);
  const nd = batch.length;
  const idx = new Array<number>(nd).fill(0);
  let ai = 0;
  let bi = 0;
  for (let i = 0; i < count; i++) {
    be.sgemm(transA, transB, m, n, k, 1, a, ai * m * k, lda, b, bi * k * n, ldb, 0, c, i * m * n, n);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++;
      ai += aStr[d]!;
      bi += bStr[d]!;
      if (idx[d]! < batch[d]!) break;
      ai -= aStr[d]! * batch[d]!;
      bi -= bStr[d]! * batch[d]!;
      idx[d] = 0;
    }
  }
}

/**
 * Matrix product with `torch.matmul`'s rules: 2-D @ 2-D; batched with broadcast batch dimensions; a 1-D operand is
 * a row (left) or column (right) vector and its dimension is dropped from the result.
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  assertTensor(a, 'a', 'matmul');
  assertTensor(b, 'b', 'matmul');
  if (a.ndim === 0 || b.ndim === 0)
    throw new ShapeError('matmul(): both operands need at least one dimension; use mul() for scalars');
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]!]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0]!, 1]) : b;
  const m = a2.shape[a2.ndim - 2]!;
  const k = a2.shape[a2.ndim - 1]!;
  const k2 = b2.shape[b2.ndim - 2]!;
  const n = b2.shape[b2.ndim - 1]!;
  if (k !== k2) {
    throw new ShapeError(`matmul(): shapes [${a.shape}] and [${b.shape}] do not chain (${k} columns vs ${k2} rows)`);
  }
  const aBatch = a2.shape.slice(0, -2);
  const bBatch = b2.shape.slice(0, -2);
  const batch = broadcastShapes(aBatch, bBatch, 'matmul');
  const full = [...batch, m, n];
  const out = alloc(full);
  const be = out.storage.backend;
  if (bBatch.length === 0 && aBatch.length > 0) {
    // fold the batch into the rows: one large product instead of many small ones
    be.sgemm(false, false, a2.size / k, n, k, 1, a2.buf, 0, k, b2.buf, 0, n, 0, out.buf, 0, n);
  } else bmm(be, a2.buf, aBatch, false, b2.buf, bBatch, false, out.buf, batch, m, n, k);
  let outShape = full;
  if (a.ndim === 1) outShape = outShape.filter((_, i) => i !== outShape.length - 2);
  if (b.ndim === 1) outShape = outShape.slice(0, -1);
  // an operand that is the recorded transpose of x or w (`x.matmul(w.transpose(0, 1))`, a linear layer written by
  // hand; attention's `q.matmul(k.transpose(-2, -1))`): its gradient goes to x or w itself, computed in that
  // layout (dW = dCᵀ·A, dX = B·dCᵀ), with no permute back through the transpose (the same sums in the same order)
  const x = a.ndim >= 2 ? transposeSource(a) : undefined;
  const w = b.ndim >= 2 ? transposeSource(b) : undefined;
  return fromOp('matmul', out.storage, outShape, [x ?? a, w ?? b], (g, needs) => {
    const gf = reshape(g.detach(), full);
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (needs[0] && x) {
      const t = alloc([...batch, k, m]);
      bmm(be, b2.buf, bBatch, false, gf.buf, batch, true, t.buf, batch, k, m, n);
      ga = sumToShape(t, x.shape);
    } else if (needs[0]) {
      // dA = dC @ Bᵀ
      const t = alloc([...batch, m, k]);
      bmm(be, gf.buf, batch, false, b2.buf, bBatch, true, t.buf, batch, m, k, n);
      ga = reshape(sumToShape(t, a2.shape), a.shape);
    }
    if (needs[1] && w && bBatch.length === 0) {
      const t = alloc([n, k]);
      be.sgemm(true, false, n, k, a2.size / k, 1, gf.buf, 0, n, a2.buf, 0, k, 0, t.buf, 0, k);
      gb = t;
    } else if (needs[1] && w) {
      const t = alloc([...batch, n, k]);
      bmm(be, gf.buf, batch, true, a2.buf, aBatch, false, t.buf, batch, n, k, m);
      gb = sumToShape(t, w.shape);
    } else if (needs[1]) {
      if (bBatch.length === 0 && aBatch.length > 0) {
        // dB = Aᵀ @ dC with the batch folded into the rows
        const t = alloc([k, n]);
        const rows = a2.size / k;
        be.sgemm(true, false, k, n, rows, 1, a2.buf, 0, k, gf.buf, 0, n, 0, t.buf, 0, n);
        gb = reshape(t, b.shape);
      } else {
        const t = alloc([...batch, k, n]);
        bmm(be, a2.buf, aBatch, true, gf.buf, batch, false, t.buf, batch, k, n, m);
        gb = reshape(sumToShape(t, b2.shape), b.shape);
      }
    }
    return [ga, gb];
  });
}

/**
 * y = x Wᵀ + b, PyTorch's linear layer as one op: x is [..., in], W is [out, in], b is [out]. The backward skips
 * dX when x needs no gradient (the network's input), which saves the largest product of a first layer.
 */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return linearOp('linear', x, weight, bias ?? null, false);
}

/**
 * y = relu(x Wᵀ + b) as one op: an nn.Linear and the nn.ReLU after it, which nn.Sequential runs as this where
 * neither module has forward hooks. The bias is added and the ReLU applied as the product's output is stored where
 * the backend can (its `linearBias` kernel), and the backward takes the ReLU's mask and the bias gradient in one pass
 * (`reluBiasGrad`). The same numbers as `relu(linear(x, weight, bias))`, bit for bit; only the pre-activation is
 * never materialised.
 */
export function linearRelu(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return linearOp('linearRelu', x, weight, bias ?? null, true);
}

function linearOp(name: string, x: Tensor, weight: Tensor, bias: Tensor | null, relu: boolean): Tensor {
  assertTensor(x, 'input', name);
  assertTensor(weight, 'weight', name);
  if (weight.ndim !== 2) throw new ShapeError(`${name}(): weight must be 2-D [out, in], got [${weight.shape}]`);
  const [outF, inF] = weight.shape as [number, number];
  if (x.shape[x.ndim - 1] !== inF) {
    throw new ShapeError(
      `${name}(): input has ${x.shape[x.ndim - 1]} features but the weight expects ${inF} (input shape [${x.shape}], weight [${weight.shape}])`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new ShapeError(`${name}(): bias must have shape [${outF}], got [${bias.shape}]`);
  }
  const rows = x.size / inF;
  const outShape = [...x.shape.slice(0, -1), outF];
  const out = alloc(outShape);
  const be = out.storage.backend;
  // the bias as the product's starting value (beta = 1), and the ReLU, in the product's output pass where it can
  if (bias) be.linearBias(x.buf, weight.buf, bias.buf, out.buf, rows, inF, outF, relu);
  else {
    be.sgemm(false, true, rows, outF, inF, 1, x.buf, 0, inF, weight.buf, 0, inF, 0, out.buf, 0, outF);
    if (relu) be.unary(Unary.Relu, out.buf, out.buf, out.size, 0, 0);
  }
  const inputs = bias ? [x, weight, bias] : [x, weight];
  return fromOp(name, out.storage, outShape, inputs, (g, needs) => {
    let gx: Tensor | null = null;
    let gw: Tensor | null = null;
    let gb: Tensor | null = null;
    const wantB = bias !== null && needs[2] === true;
    if (wantB) gb = alloc([outF]);
    // the gradient before the ReLU: its mask read from the output (y > 0 exactly where the input was)
    const gy = relu ? alloc(outShape) : g;
    if (relu && gb) be.reluBiasGrad(g.buf, out.buf, gy.buf, gb.buf, rows, outF);
    else if (relu) be.unaryGrad(Unary.Relu, out.buf, out.buf, g.buf, gy.buf, out.size, 0, 0);
    else if (gb) be.sumAxis(g.buf, gb.buf, 1, rows, outF);
    if (needs[0]) {
      gx = alloc(x.shape);
      be.sgemm(false, false, rows, inF, outF, 1, gy.buf, 0, outF, weight.buf, 0, inF, 0, gx.buf, 0, inF);
    }
    if (needs[1]) {
      gw = alloc(weight.shape);
      be.sgemm(true, false, outF, inF, rows, 1, gy.buf, 0, outF, x.buf, 0, inF, 0, gw.buf, 0, inF);
    }
    if (gy !== g) dispose(gy);
    return [gx, gw, gb];
  });
}
