/** `Linear`: y = x Wᵀ + b, with PyTorch's layout, names and default initialisation. */
import { kaimingUniform, uniform } from '../init/initializers.js';
import { type RandomInit, resolveRng } from '../init/random.js';
import { linear } from '../tensor/ops/matmul.js';
import { empty, type Tensor } from '../tensor/tensor.js';
import { Module, registerKeepsNothing } from './module.js';

export interface LinearOptions extends RandomInit {
  /** Whether to add a learned bias (default true). */
  bias?: boolean;
}

/** Checks a layer size at the public boundary. */
export function checkSize(v: unknown, name: string, fn: string, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1)) {
    throw new TypeError(
      `${fn}: ${name} must be a ${allowZero ? 'non-negative' : 'positive'} integer, got ${String(v)}`,
    );
  }
  return v;
}

/**
 * PyTorch's default initialisation of Linear and Conv layers: weight from kaiming_uniform(a = √5), i.e.
 * U(−1/√fanIn, 1/√fanIn), and bias from U(−1/√fanIn, 1/√fanIn).
 */
export function resetLinearLike(weight: Tensor, bias: Tensor | null, fanIn: number, opts: RandomInit): void {
  const rng = resolveRng(opts, 'reset');
  kaimingUniform(weight, { a: Math.sqrt(5), rng });
  if (bias) {
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniform(bias, { low: -bound, high: bound, rng });
  }
}

/**
 * A fully connected layer, y = x Wᵀ + b, on inputs [..., inFeatures].
 *
 * Parameters: `weight` [outFeatures, inFeatures] and `bias` [outFeatures], initialised as PyTorch does:
 * W ~ U(−1/√in, 1/√in) (kaiming_uniform with a = √5) and b ~ U(−1/√in, 1/√in).
 *
 * @example
 * const fc = new nn.Linear(784, 256, { seed: 0 });
 * const y = fc.call(x); // [batch, 256]
 */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  /**
   * @param inFeatures size of each input sample
   * @param outFeatures size of each output sample
   * @param opts bias (true) and the random source of the default init
   */
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    checkSize(inFeatures, 'inFeatures', 'nn.Linear', true);
    checkSize(outFeatures, 'outFeatures', 'nn.Linear', true);
    this.weight = this.registerParameter('weight', empty([outFeatures, inFeatures]));
    this.bias = opts.bias === false ? null : this.registerParameter('bias', empty([outFeatures]));
    resetLinearLike(this.weight, this.bias, inFeatures, opts);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  protected override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

registerKeepsNothing(Linear);
