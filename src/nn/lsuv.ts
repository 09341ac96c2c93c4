/**
 * Data-driven initialisation: LSUV (Mishkin & Matas 2015), and the LSTM forget-gate bias (Jozefowicz et al. 2015).
 */

import { orthogonal } from '../init/initializers.js';
import type { RandomInit } from '../init/random.js';
import { resolveRng } from '../init/random.js';
import { noGrad, type Tensor, tidy } from '../tensor/tensor.js';
import { Conv2d } from './conv.js';
import { Linear } from './linear.js';
import type { AnyModule } from './module.js';

export interface LsuvOptions extends RandomInit {
  /** Stop when |Var(output) − 1| < tolerance (default 0.1, the paper's Tol_var). */
  tolerance?: number;
  /** Most rescaling rounds per layer (default 10, the paper's T_max). */
  maxIterations?: number;
  /** Start each weight from an orthonormal matrix (default true, the paper's first step). */
  orthogonalInit?: boolean;
  /** Which layers to fit (default: every Linear and Conv2d, in model order). */
  filter?: (name: string, module: AnyModule) => boolean;
}

/** What LSUV did to one layer. */
export interface LsuvLayerReport {
  name: string;
  /** Variance of the layer's output before fitting (after the orthonormal init). */
  varianceBefore: number;
  /** Variance after the last rescaling round. */
  varianceAfter: number;
  /** Rescaling rounds run. */
  iterations: number;
}

function variance(d: Float32Array): number {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i]!;
  const mu = s / d.length;
  let v = 0;
  for (let i = 0; i < d.length; i++) v += (d[i]! - mu) * (d[i]! - mu);
  return v / d.length;
}

/**
 * Layer-sequential unit-variance initialisation: each Linear/Conv2d weight starts orthonormal, then, layer by layer
 * from the input, the model runs on a batch and the weight is divided by √Var(layer output) until the variance is
 * within `tolerance` of 1. Unlike the fixed formulas (Xavier, Kaiming), this fits any architecture and activation,
 * at the price of a few forward passes. Biases are left unchanged.
 *
 * Mishkin & Matas, "All you need is a good init", ICLR 2016 (arXiv 2015).
 *
 * @param model the model (its forward hooks are used to read each layer's output)
 * @param batch an input batch, as the model's `call` takes it (a few hundred samples suffice)
 * @param opts tolerance (0.1), maxIterations (10), orthogonalInit (true), filter, random source
 * @returns one report per fitted layer
 * @example init.lsuv(model, xTrain.slice(0, 0, 256), { seed: 0 });
 */
export function lsuv(model: AnyModule, batch: Tensor, opts: LsuvOptions = {}): LsuvLayerReport[] {
  const tol = opts.tolerance ?? 0.1;
  const maxIt = opts.maxIterations ?? 10;
  if (!(tol > 0)) throw new RangeError(`lsuv(): tolerance must be positive, got ${opts.tolerance}`);
  if (!Number.isInteger(maxIt) || maxIt < 1)
    throw new RangeError(`lsuv(): maxIterations must be a positive integer, got ${opts.maxIterations}`);
  if (!model || typeof model.namedModules !== 'function') throw new TypeError('lsuv(): model must be a Module');
  const rng = resolveRng(opts, 'lsuv()');
  const filter = opts.filter ?? ((_n: string, m: AnyModule) => m instanceof Linear || m instanceof Conv2d);
  const targets = model
    .namedModules()
    .filter(([n, m]) => filter(n, m) && (m instanceof Linear || m instanceof Conv2d)) as [string, Linear | Conv2d][];
  if (!targets.length) throw new Error('lsuv(): the model has no Linear or Conv2d layer to initialise');
  if (opts.orthogonalInit ?? true) for (const [, m] of targets) orthogonal(m.weight, { rng });
  const reports: LsuvLayerReport[] = [];
  for (const [name, m] of targets) {
    let v = Number.NaN;
    const remove = m.registerForwardHook((_m, _x, y) => {
      v = variance(y.data);
    });
    const measure = () => {
      v = Number.NaN;
      noGrad(() => tidy(() => void model.call(batch)));
      if (Number.isNaN(v)) throw new Error(`lsuv(): layer '${name}' did not run in the model's forward pass`);
      return v;
    };
    try {
      const before = measure();
      let it = 0;
      while (Math.abs(v - 1) >= tol && it < maxIt) {
        if (!(v > 0) || !Number.isFinite(v)) {
          throw new Error(
            `lsuv(): the output variance of '${name}' is ${v}; it cannot be rescaled to 1 (check the batch)`,
          );
        }
        const s = 1 / Math.sqrt(v);
        const w = m.weight.data;
        for (let i = 0; i < w.length; i++) w[i]! *= s;
        measure();
        it++;
      }
      reports.push({ name, varianceBefore: before, varianceAfter: v, iterations: it });
    } finally {
      remove();
    }
  }
  return reports;
}

/**
 * Sets the forget-gate bias of an LSTM so that the summed bias b_ih + b_hh of gate f is `value` (default 1), which
 * keeps the cell remembering at the start of training. On a module, every layer and direction is set (b_ih's f slice
 * to `value`, b_hh's to 0); on a single bias tensor [4·hidden], its f slice (the second quarter) is set to `value`.
 *
 * Gers, Schmidhuber & Cummins, "Learning to Forget", 2000; Jozefowicz, Zaremba & Sutskever, "An Empirical
 * Exploration of Recurrent Network Architectures", ICML 2015.
 *
 * @param target an `nn.LSTM` or a bias tensor [4·hidden]
 * @param value the forget-gate bias (default 1)
 * @returns the target
 * @example init.lstmForgetGateBias(lstm, 1);
 */
export function lstmForgetGateBias<T extends AnyModule | Tensor>(target: T, value = 1): T {
  if (!Number.isFinite(value)) throw new TypeError(`lstmForgetGateBias(): value must be a finite number, got ${value}`);
  const setSlice = (t: Tensor, v: number) => {
    if (t.ndim !== 1 || t.size % 4 !== 0) {
      throw new Error(`lstmForgetGateBias(): an LSTM bias has shape [4·hidden], got [${t.shape}]`);
    }
    const h = t.size / 4;
    t.data.fill(v, h, 2 * h);
  };
  if ('namedParameters' in target && typeof target.namedParameters === 'function') {
    const m = target as AnyModule;
    if ((m as { mode?: string }).mode !== 'LSTM')
      throw new TypeError('lstmForgetGateBias(): the module must be an nn.LSTM');
    const biases = m.namedParameters().filter(([n]) => /^bias_(ih|hh)_l\d+(_reverse)?$/.test(n));
    if (!biases.length)
      throw new Error('lstmForgetGateBias(): this LSTM has no biases (it was built with bias: false)');
    for (const [n, t] of biases) setSlice(t, n.startsWith('bias_ih') ? value : 0);
    return target;
  }
  setSlice(target as Tensor, value);
  return target;
}
