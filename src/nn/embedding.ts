/** `Embedding`: a lookup table of vectors, learned by scattering gradients back into the rows that were read. */
import { normal } from '../init/initializers.js';
import type { RandomInit } from '../init/random.js';
import { embedding } from '../tensor/ops/embedding.js';
import { empty, type Tensor } from '../tensor/tensor.js';
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
    return embedding(this.weight, indices, this.paddingIdx);
  }

  protected override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx !== null ? `, paddingIdx=${this.paddingIdx}` : ''}`;
  }
}
