/** `Embedding`: a lookup table of vectors, learned by scattering gradients back into the rows that were read. */
import { normal } from '../init/initializers.js';
import type { RandomInit } from '../init/random.js';
import { alloc } from '../tensor/ops/util.js';
import { empty, fromOp, Tensor } from '../tensor/tensor.js';
import { checkSize } from './linear.js';
import { Module } from './module.js';

export interface EmbeddingOptions extends RandomInit {
  /** A row that stays zero and receives no gradient (padding tokens), as PyTorch's padding_idx. */
  paddingIdx?: number;
}

/**
 * A table `weight` [numEmbeddings, embeddingDim], initialised N(0, 1) as PyTorch; `call(indices)` returns the rows
 * at the given integer indices, shaped [...indices.shape, embeddingDim].
 *
 * @example
 * const emb = new nn.Embedding(10, 4, { seed: 0 });
 * emb.call(tensor([[1, 2], [3, 0]])); // [2, 2, 4]
 */
export class Embedding extends Module {
  readonly weight: Tensor;
  readonly paddingIdx: number | null;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: EmbeddingOptions = {},
  ) {
    super();
    checkSize(numEmbeddings, 'numEmbeddings', 'nn.Embedding');
    checkSize(embeddingDim, 'embeddingDim', 'nn.Embedding');
    let pad = opts.paddingIdx ?? null;
    if (pad !== null) {
      if (!Number.isInteger(pad) || pad < -numEmbeddings || pad >= numEmbeddings) {
        throw new RangeError(
          `nn.Embedding: paddingIdx must be an integer in [-${numEmbeddings}, ${numEmbeddings}), got ${pad}`,
        );
      }
      if (pad < 0) pad += numEmbeddings;
    }
    this.paddingIdx = pad;
    this.weight = this.registerParameter('weight', normal(empty([numEmbeddings, embeddingDim]), opts));
    if (pad !== null) this.weight.data.fill(0, pad * embeddingDim, (pad + 1) * embeddingDim);
  }

  forward(indices: Tensor): Tensor {
    if (!(indices instanceof Tensor)) throw new TypeError('nn.Embedding: indices must be a Tensor of integer values');
    const n = this.numEmbeddings;
    const dim = this.embeddingDim;
    const id = indices.data;
    const idx = new Int32Array(id.length);
    for (let i = 0; i < id.length; i++) {
      const v = id[i]!;
      if (!Number.isInteger(v) || v < 0 || v >= n) {
        throw new RangeError(`nn.Embedding: index ${v} at position ${i} is out of range [0, ${n})`);
      }
      idx[i] = v;
    }
    const w = this.weight;
    const outShape = [...indices.shape, dim];
    const out = alloc(outShape);
    const be = out.storage.backend;
    for (let i = 0; i < idx.length; i++) be.copy(w.buf, idx[i]! * dim, out.buf, i * dim, dim);
    const pad = this.paddingIdx;
    return fromOp('embedding', out.storage, outShape, [w], (g) => {
      const gw = alloc(w.shape);
      const gd = gw.data;
      const gs = g.data;
      gd.fill(0);
      for (let i = 0; i < idx.length; i++) {
        const r = idx[i]!;
        if (r === pad) continue;
        const o = r * dim;
        const s = i * dim;
        for (let j = 0; j < dim; j++) gd[o + j]! += gs[s + j]!;
      }
      return [gw];
    });
  }

  protected override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx !== null ? `, paddingIdx=${this.paddingIdx}` : ''}`;
  }
}
