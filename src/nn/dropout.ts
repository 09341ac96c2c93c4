/** `Dropout` with its own seeded generator. */
import { type RandomInit, resolveRng } from '../init/random.js';
import { dropout } from '../nn/functional.js';
import type { Rng } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module, registerKeepsNothing } from './module.js';

/**
 * Inverted dropout: in training, zeroes each element with probability p and scales the others by 1/(1 − p); the
 * identity in evaluation. The masks come from the layer's generator (`rng`, whose state a checkpoint can save).
 *
 * Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 2014.
 *
 * @example const drop = new nn.Dropout(0.1, { seed: 0 });
 */
export class Dropout extends Module {
  /** The generator the masks are drawn from. */
  readonly rng: Rng;

  /**
   * @param p probability of zeroing an element (default 0.5)
   * @param opts the random source (default: the default generator, see `manualSeed`)
   */
  constructor(
    readonly p = 0.5,
    opts: RandomInit = {},
  ) {
    super();
    if (!(typeof p === 'number' && p >= 0 && p <= 1)) {
      throw new RangeError(`nn.Dropout: p must be a probability in [0, 1], got ${p}`);
    }
    this.rng = resolveRng(opts, 'nn.Dropout');
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, rng: this.rng });
  }

  protected override extraRepr(): string {
    return `p=${this.p}`;
  }
}

registerKeepsNothing(Dropout);
