/**
 * A short probe of a model's gradient flow: a few batches from initialisation (forward and backward only), then a few
 * training steps, with a `Monitor` recording every one; then `diagnose`. What `gradguard doctor` runs, once for the
 * config and once per suggested fix.
 */
import { DataLoader } from '../data/loader.js';
import type { Dataset } from '../data/types.js';
import { crossEntropy, mseLoss } from '../nn/functional.js';
import type { Module } from '../nn/module.js';
import { applyUpdates, type GradientTransformation } from '../optim/transform.js';
import { noGrad, type Tensor, tensor, tidy } from '../tensor/tensor.js';
import { type ConfigFacts, type Diagnosis, diagnose } from './diagnose.js';
import { type LayerInfo, type LayerStats, Monitor, type StepRecord, summarizeLayers } from './monitor.js';

/** What a probe trains: a model, its transform chain and a dataset. */
export interface ProbeTarget {
  model: Module<Tensor, Tensor>;
  /** The transform chain (optimizer, clipping), e.g. `chain(clip.byGlobalNorm(1), adam({ lr: 1e-3 }))`. */
  tx: GradientTransformation;
  dataset: Dataset;
  /**
   * The shape of one example as the model takes it (default: `[inputSize]`, flat, for an MLP; give
   * `dataset.inputShape` for a CNN or an RNN).
   */
  inputShape?: readonly number[];
  /** The loss of a batch (default: cross-entropy for classification, mean squared error for regression). */
  loss?: (output: Tensor, target: Tensor) => Tensor;
  /** The parameters the transform updates, by path (default: `model.namedParameters()`). */
  params?: Record<string, Tensor>;
}

export interface ProbeOptions {
  /** Batches run from initialisation, without updates (default 3). */
  initBatches?: number;
  /** Training steps after them (default 20). */
  steps?: number;
  /** Examples per batch (default 64). */
  batchSize?: number;
  /** Seed of the batch order (default 0). */
  seed?: number;
  /** The config, so findings suggest fixes in its terms. */
  config?: ConfigFacts;
}

export interface ProbeResult {
  /** One record per probe step: the init batches first (`updated: false`), then the training steps. */
  history: StepRecord[];
  /** Every step's loss. */
  losses: number[];
  /** Per layer, the median over the probe's records. */
  layers: LayerStats[];
  layerInfo: LayerInfo[];
  diagnosis: Diagnosis;
  /** Mean loss over the last training steps (up to 5; NaN if one is not finite). */
  finalLoss: number;
}

function count(v: number | undefined, name: string, dflt: number, min: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min)
    throw new RangeError(`runProbe(): ${name} must be an integer >= ${min}, got ${String(v)}`);
  return x;
}

/** The default loss for a dataset's task; sequence targets (one class per step) are flattened to rows. */
export function defaultLoss(dataset: Dataset): (out: Tensor, y: Tensor) => Tensor {
  if (dataset.task === 'regression') {
    return (out, y) => mseLoss(out.size === y.size ? out.reshape(y.shape) : out, y);
  }
  return (out, y) => {
    const classes = out.shape[out.shape.length - 1]!;
    const logits = out.ndim === 2 ? out : out.reshape([out.size / classes, classes]);
    return crossEntropy(logits, y.ndim === 1 ? y : y.reshape([y.size]));
  };
}

/**
 * Runs a probe: `initBatches` batches from initialisation (forward and backward, no update), then `steps` training
 * steps, monitoring each, and diagnoses the records. The model's parameters are trained in place.
 *
 * @param target model, transform chain, dataset (and input shape and loss where the defaults do not fit)
 * @param opts initBatches (3), steps (20), batchSize (64), seed (0), config
 * @returns the records, the per-layer summary, the diagnosis and the final loss
 * @example
 * const { diagnosis } = runProbe({ model, tx: optim.chain(clip.byGlobalNorm(1), optim.adam({ lr: 1e-3 })), dataset }, { steps: 20 });
 */
export function runProbe(target: ProbeTarget, opts: ProbeOptions = {}): ProbeResult {
  const initBatches = count(opts.initBatches, 'initBatches', 3, 0);
  const steps = count(opts.steps, 'steps', 20, 0);
  const batchSize = count(opts.batchSize, 'batchSize', 64, 1);
  if (initBatches + steps === 0) throw new RangeError('runProbe(): initBatches + steps must be at least 1');
  const { model, tx, dataset } = target;
  const inShape = target.inputShape ?? [dataset.inputSize];
  const lossFn = target.loss ?? defaultLoss(dataset);
  const params = target.params ?? Object.fromEntries(model.namedParameters());
  const loader = new DataLoader(dataset.train, {
    batchSize,
    seed: opts.seed ?? 0,
    dropLast: dataset.train.n >= batchSize,
  });
  const monitor = new Monitor(model, { every: 1 }).attach();
  model.train();
  let state = tx.init(params);
  const trainLosses: number[] = [];
  try {
    for (let step = 0; step < initBatches + steps; step++) {
      const training = step >= initBatches;
      const b = loader.next();
      model.zeroGrad();
      monitor.beginStep(step);
      const loss = tidy(() => {
        const x = tensor(b.x, [b.size, ...inShape]);
        const y = tensor(b.y, [b.size, ...dataset.targetShape]);
        const l = lossFn(model.call(x), y);
        l.backward();
        monitor.afterBackward(params);
        if (training) {
          // NOTE: transforms work in place on the gradients they get (optim/transform.ts); .grad is not needed after
          const grads: Record<string, Tensor> = {};
          for (const [k, p] of Object.entries(params)) if (p.grad) grads[k] = p.grad;
          const r = tx.update(grads, state, params);
          state = r.state;
          monitor.afterUpdate(r.updates, params, state);
          if (!r.halt) noGrad(() => applyUpdates(params, r.updates));
        }
        return l.item();
      });
      monitor.endStep(loss);
      if (training) trainLosses.push(loss);
    }
  } finally {
    monitor.detach();
    model.zeroGrad();
  }
  const layerInfo = monitor.layerInfo();
  const diagOpts = { layers: layerInfo, losses: monitor.losses, ...(opts.config ? { config: opts.config } : {}) };
  const tail = trainLosses.slice(-5);
  const finalLoss = tail.length ? tail.reduce((s, v) => s + v, 0) / tail.length : Number.NaN;
  return {
    history: monitor.history,
    losses: monitor.losses,
    layers: summarizeLayers(monitor.history),
    layerInfo,
    diagnosis: diagnose(monitor.history, diagOpts),
    finalLoss: Number.isFinite(finalLoss) ? finalLoss : Number.NaN,
  };
}
