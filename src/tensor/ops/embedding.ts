/** Embedding lookup: rows of a table gathered by index, the gradient scattered back into the rows that were read. */
import { ArgumentError } from '../errors.js';
import { fromOp, Tensor } from '../tensor.js';
import { alloc } from './util.js';

/**
 * The rows of `weight` [num, dim] at the integer `indices` (any shape), shaped [...indices.shape, dim]. The row
 * `paddingIdx` (if not null) receives no gradient, as PyTorch's padding_idx. Indices are checked against `num`.
 */
export function embedding(weight: Tensor, indices: Tensor, paddingIdx: number | null = null): Tensor {
  if (!(indices instanceof Tensor)) throw new ArgumentError('nn.Embedding: indices must be a Tensor of integer values');
  const [n, dim] = weight.shape as [number, number];
  const id = indices.data;
  const idx = new Int32Array(id.length);
  for (let i = 0; i < id.length; i++) {
    const v = id[i]!;
    if (!Number.isInteger(v) || v < 0 || v >= n) {
      throw new ArgumentError(`nn.Embedding: index ${v} at position ${i} is out of range [0, ${n})`);
    }
    idx[i] = v;
  }
  const outShape = [...indices.shape, dim];
  const out = alloc(outShape);
  const be = out.storage.backend;
  for (let i = 0; i < idx.length; i++) be.copy(weight.buf, idx[i]! * dim, out.buf, i * dim, dim);
  return fromOp('embedding', out.storage, outShape, [weight], (g) => {
    const gw = alloc(weight.shape);
    be.fill(gw.buf, 0, gw.size);
    // each read row's gradient added into its row of the table, in order
    for (let i = 0; i < idx.length; i++) {
      const r = idx[i]!;
      if (r !== paddingIdx) be.copyBlocks(g.buf, i * dim, 0, gw.buf, r * dim, 0, dim, 1, true);
    }
    return [gw];
  });
}
