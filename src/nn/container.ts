/** `Sequential` and `Flatten`. */
import { conv2dRelu } from '../tensor/ops/conv.js';
import { linearRelu } from '../tensor/ops/matmul.js';
import { flatten } from '../tensor/ops/shape.js';
import { graphOwned, isGradEnabled, type Tensor } from '../tensor/tensor.js';
import { ReLU } from './activation.js';
import { Conv2d } from './conv.js';
import { Linear } from './linear.js';
import { keepsNothing, Module, registerKeepsNothing } from './module.js';
import { batchNormReLU, fusesBatchNormReLU } from './norm.js';

/**
 * Modules applied in order, each to the previous one's output. Children are named '0', '1', ..., so parameter paths
 * are PyTorch's (`0.weight`, `2.bias`).
 *
 * @example
 * const model = new nn.Sequential(new nn.Linear(784, 256), new nn.ReLU(), new nn.Linear(256, 10));
 * model.get('0.weight'); // the first layer's weight
 */
export class Sequential extends Module {
  #layers: Module[] = [];

  constructor(...modules: Module[]) {
    super();
    for (const m of modules) this.append(m);
  }

  /** Adds a module at the end. @returns this */
  append(m: Module): this {
    this.registerModule(String(this.#layers.length), m);
    this.#layers.push(m);
    return this;
  }

  /** The i-th module (negative i counts from the end). */
  at(i: number): Module {
    const m = this.#layers[i < 0 ? i + this.#layers.length : i];
    if (!m) throw new RangeError(`Sequential.at(): index ${i} is out of range for ${this.#layers.length} modules`);
    return m;
  }

  /** Number of modules. */
  get length(): number {
    return this.#layers.length;
  }

  [Symbol.iterator](): Iterator<Module> {
    return this.#layers[Symbol.iterator]();
  }

  forward(x: Tensor): Tensor {
    const layers = this.#layers;
    // the activations that pass only between the library's own modules without hooks (keepsNothing) reach no code of
    // yours: backward() releases them (graphOwned) unless they share storage with one that does (a view, x, the output)
    const track = isGradEnabled();
    let owned: Tensor[] | null = null;
    let seen: Tensor[] | null = null;
    let fromOwn = false;
    let h = x;
    for (let i = 0; i < layers.length; i++) {
      const m = layers[i]!;
      const mine = track && keepsNothing(m);
      if (track && i > 0) {
        if (fromOwn && mine) (owned ??= []).push(h);
        else (seen ??= []).push(h);
      }
      fromOwn = mine;
      // NOTE: an nn.Linear or nn.Conv2d and the nn.ReLU after it run as one op (linearRelu: the bias added and the
      // ReLU applied in the product's output pass; conv2dRelu: the ReLU applied to each image's output in cache; the
      // same numbers as module by module), except where either has forward hooks that must see the pre-activation,
      // which the fused op never materialises; hooks that need not this time (the gradient monitor's once it knows
      // the ReLU follows: ForwardHookOptions.fused) see the ReLU's output on both modules
      const next = layers[i + 1];
      if (next && fusesWithReLU(m, next)) {
        const x = h;
        h =
          m instanceof Linear
            ? linearRelu(x, m.weight, m.bias)
            : conv2dRelu(x, m.weight, m.bias, {
                stride: m.stride,
                padding: m.padding,
                dilation: m.dilation,
                groups: m.groups,
              });
        m.runFusedHooks(x, h);
        next.runFusedHooks(h, h);
        fromOwn &&= keepsNothing(next);
        i++;
      } else if (next && fusesBatchNormReLU(m, next)) {
        // NOTE: an nn.BatchNorm1d/2d and the nn.ReLU after it likewise (batchNormRelu), with the same hook rule
        h = batchNormReLU(m, next, h);
        fromOwn &&= keepsNothing(next);
        i++;
      } else h = m.call(h);
    }
    if (owned) graphOwned(owned, seen ? [x, h, ...seen] : [x, h]);
    return h;
  }
}

/**
 * Whether `m` and `next` are exactly an nn.Linear or nn.Conv2d and an nn.ReLU (no subclasses), both without forward
 * hooks that must see their own outputs now (Module.fusable).
 */
function fusesWithReLU(m: Module, next: Module): m is Linear | Conv2d {
  const c = m.constructor as unknown;
  return (c === Linear || c === Conv2d) && (next.constructor as unknown) === ReLU && m.fusable && next.fusable;
}

/** Flattens dimensions startDim..endDim (default 1..−1: everything but the batch), as PyTorch's `nn.Flatten`. */
export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
}

registerKeepsNothing(Flatten);
