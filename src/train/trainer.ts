/**
 * The training loop: one config in, a trained model and its summary out. Each step runs inside `tidy`, so its
 * buffers are reused by the next step; inputs are copied into tensors made once; observers (the gradient monitor)
 * see the raw gradients after backward and the final updates after the transform chain.
 *
 * Non-finite values never reach the weights: a step whose loss, gradients or update hold NaN or Inf (the update is
 * checked before it is written, since finite gradients times a huge learning rate are not finite) is skipped
 * (`train.onNonFinite: skip`, counted — by layer when the update was the culprit, `skippedByLayer` — and the run is
 * marked diverged after `maxConsecutiveNonFinite` in a row), stops the run (`stop`) or throws (`raise`, naming the
 * layer). The initialised weights are checked by `applyInit`.
 *
 * Checkpoints (`hooks.checkpoint`, see checkpoint.ts) are written after a step's metrics have been reported
 * (`onStep`, `onEpoch`), every `everySteps` steps and when the run ends; `hooks.resume` continues from one so that the
 * losses are bit for bit those of an uninterrupted run. Evaluation draws no random numbers, so it disturbs no RNG.
 */
import { getBackend } from '../backend/index.js';
import { DataLoader } from '../data/loader.js';
import type { Dataset } from '../data/types.js';
import { crossEntropy, mseLoss } from '../nn/functional.js';
import type { AnyModule } from '../nn/module.js';
import { reshape } from '../tensor/ops/shape.js';
import { keep, noGrad, type Tensor, tensor, tidy, zeros } from '../tensor/tensor.js';
import '../tensor/methods.js';
import { GradguardError } from '../base/errors.js';
import type { StepObserver as MonitorObserver } from '../monitor/monitor.js';
import { describeNonFiniteUpdate, type GradientStats, type NonFiniteUpdate } from '../optim/transform.js';
import { applyInit, buildModel, estimateModelSize } from './build.js';
import {
  applyCheckpoint,
  type Checkpoint,
  saveCheckpoint,
  type TrainProgress,
  type WriteOptions,
} from './checkpoint.js';
import type { Config } from './config.js';
import { buildOptimizer, type Optimizer } from './optimizer.js';

/** What a monitor implements to watch each step (see monitor/'s StepObserver); `beginStep`'s result is unused here. */
export interface StepObserver extends Omit<MonitorObserver, 'beginStep'> {
  beginStep(step: number): void;
}

/** afterBackward's option where `optim.updateAndApply` measures the gradients (see `fusedApplyHook`). */
const GRADS_FOLLOW = Object.freeze({ gradNormsFollow: true });

/** afterUpdate's options (made once a run): the update norms come with afterApply, or the observer reads them. */
interface UpdateOptions {
  readonly updateNormsFollow: boolean;
  /** The gradients' norms, measured on entry of the chain (`optim.updateAndApply`). */
  readonly gradStats: GradientStats;
}

/**
 * The observers' options for a run: afterUpdate's `follow` and `read`; the fused path's hook (`beforeApply`, see
 * `fusedApplyHook`); and afterBackward's, which tells them the gradients' norms follow where the chain measures them
 * on entry (with `beforeApply`).
 */
function observerOptions(observers: readonly StepObserver[], params: Record<string, Tensor>, optimizer: Optimizer) {
  const gradStats = optimizer.gradStats;
  const follow: UpdateOptions = Object.freeze({ updateNormsFollow: true, gradStats });
  const read: UpdateOptions = Object.freeze({ updateNormsFollow: false, gradStats });
  const beforeApply = fusedApplyHook(observers, params, optimizer, follow);
  return { follow, read, beforeApply, afterBackward: beforeApply ? GRADS_FOLLOW : undefined };
}

export type RunStatus = 'finished' | 'diverged' | 'interrupted' | 'failed';

export interface StepInfo {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  skipped: boolean;
  /** On a step skipped because its update was not finite (finite gradients): the parameter's path. */
  nonFiniteUpdate?: string;
  stepsPerEpoch: number;
  totalSteps: number;
}

export interface EvalResult {
  loss: number;
  /** Classification only. */
  accuracy?: number;
}

export interface TrainSummary {
  status: RunStatus;
  steps: number;
  epochs: number;
  finalLoss: number;
  test: EvalResult;
  train?: EvalResult;
  skippedSteps: number;
  /**
   * Steps skipped because an update would have written NaN or Inf although the gradients were finite, by the
   * parameter whose update it was (absent when none).
   */
  skippedByLayer?: Record<string, number>;
  clippedSteps: number;
  seconds: number;
  msPerStep: number;
  backend: string;
  parameters: number;
  reason?: string;
}

export interface TrainHooks {
  observers?: StepObserver[];
  /** Called after every step (cheap: numbers only). */
  onStep?: (info: StepInfo) => void;
  /** Called after each epoch's evaluation. */
  onEpoch?: (epoch: number, test: EvalResult) => void;
  /** Checked before each step; return true to stop (the run is 'interrupted'). */
  shouldStop?: () => boolean;
  /**
   * Write checkpoints into the root `dir` (see `saveCheckpoint`) and when the run ends without throwing. `runId` is
   * recorded in them.
   */
  checkpoint?: CheckpointHook;
  /** Called after each checkpoint is written, with its directory and step. */
  onCheckpoint?: (dir: string, step: number) => void;
  /**
   * Continue from a checkpoint (`loadCheckpoint`): weights, optimizer state and counters, data cursor, every RNG and
   * the trainer's counters are restored before the first step (and checked first; a mismatch throws
   * `CheckpointError` and changes nothing).
   */
  resume?: Checkpoint;
}

/** When the trainer writes checkpoints (besides the end of the run), and how many a root keeps. */
export interface CheckpointHook {
  dir: string;
  /** After every `everySteps` steps (none when unset). */
  everySteps?: number | undefined;
  /** After every epoch's evaluation. */
  everyEpoch?: boolean | undefined;
  /** After the first step that ends `everySeconds` or more after the last checkpoint (or the start), by `clock`. */
  everySeconds?: number | undefined;
  /** Checkpoints the root keeps (see `saveCheckpoint`; default 3). */
  keep?: number | undefined;
  runId?: string | undefined;
  /** Checked before each checkpoint; false skips it (the session's run was removed from its store). */
  active?: () => boolean;
  /** The time in ms for `everySeconds` (default `performance.now`; tests drive it by steps). */
  clock?: () => number;
  /** Passed to `saveCheckpoint` (a test seam: kills and faults at chosen moments of a write). */
  onPhase?: WriteOptions['onPhase'];
}

/**
 * `train.onNonFinite: raise` met a NaN or Inf in a step's loss, gradients or update (nothing was written): the user
 * asked for it (exit status 3 in the CLI, like diverged).
 */
export class NonFiniteError extends GradguardError {
  static override readonly code = 'train.non-finite';
  override readonly name = 'NonFiniteError';
  /** Set when the gradients were finite but the update of this parameter was not. */
  readonly update: NonFiniteUpdate | null;
  constructor(message: string, options: { detail?: string; update?: NonFiniteUpdate } = {}) {
    super(message, options.detail === undefined ? {} : { detail: options.detail });
    this.update = options.update ?? null;
  }
}

export interface Experiment {
  config: Config;
  dataset: Dataset;
  model: AnyModule;
  params: Record<string, Tensor>;
  optimizer: Optimizer;
  loader: DataLoader;
}

/** Builds everything a run needs from a config and a loaded dataset (deterministic in `config.seed`). */
export function setupExperiment(config: Config, dataset: Dataset): Experiment {
  const model = buildModel(config, dataset);
  applyInit(model, config, dataset);
  const params = Object.fromEntries(model.namedParameters());
  const loader = new DataLoader(dataset.train, { batchSize: config.train.batchSize, shuffle: true, seed: config.seed });
  const totalSteps = config.train.maxSteps ?? loader.batchesPerEpoch * config.train.epochs;
  const optimizer = buildOptimizer(config, params, totalSteps);
  return { config, dataset, model, params, optimizer, loader };
}

/** Caches one input tensor per batch size so no step allocates its inputs afresh. */
class InputCache {
  private readonly xs = new Map<number, Tensor>();
  private readonly ys = new Map<number, Tensor>();
  constructor(
    private readonly inputSize: number,
    private readonly targetSize: number,
  ) {}
  fill(x: Float32Array, y: Float32Array, n: number): [Tensor, Tensor] {
    let xt = this.xs.get(n);
    let yt = this.ys.get(n);
    if (!xt || !yt) {
      xt = keep(zeros([n, this.inputSize]));
      yt = keep(zeros([n * this.targetSize]));
      this.xs.set(n, xt);
      this.ys.set(n, yt);
    }
    xt.data.set(x.subarray(0, n * this.inputSize));
    yt.data.set(y.subarray(0, n * this.targetSize));
    return [xt, yt];
  }
}

/** The loss of a batch for the dataset's task (cross-entropy on class indices, or mean squared error). */
export function lossFor(ds: Dataset, out: Tensor, y: Tensor): Tensor {
  if (ds.task === 'classification') return crossEntropy(out, y);
  return mseLoss(reshape(out, [out.size]), reshape(y, [y.size]));
}

/** A step's forward, loss and backward inside `tidy()`, the gradients then complete (`Optimizer.gradsReady`). */
function lossAndGrads(ds: Dataset, model: AnyModule, x: Tensor, y: Tensor, optimizer: Optimizer): number {
  const loss = tidy(() => {
    const l = lossFor(ds, model.call(x), y);
    l.backward();
    return l.item();
  });
  optimizer.gradsReady();
  return loss;
}

function hasNonFinite(params: Record<string, Tensor>): boolean {
  return firstNonFinite(params) !== null;
}

/** `train.onNonFinite: raise`'s error: the step and what was not finite, naming the parameter (in its detail for a gradient). */
function nonFiniteError(
  step: number,
  loss: number,
  params: Record<string, Tensor>,
  update: NonFiniteUpdate | null,
): NonFiniteError {
  if (update) {
    return new NonFiniteError(`step ${step}: ${describeNonFiniteUpdate(update)} (train.onNonFinite=raise)`, {
      detail: `the gradients were finite; nothing was written. Lower optim.lr, or use train.onNonFinite=skip`,
      update,
    });
  }
  const at = firstNonFinite(params);
  return new NonFiniteError(
    `step ${step}: the ${Number.isFinite(loss) ? 'gradients hold' : 'loss is'} NaN or Inf (train.onNonFinite=raise)`,
    {
      detail: `${at ? `the gradient of ${at.name} holds ${at.count} NaN/Inf of ${at.size} values; ` : ''}lower optim.lr or add clipping, or use train.onNonFinite=skip`,
    },
  );
}

/** The first parameter (by path) whose gradient holds NaN or Inf, and how many such values; null when none. */
function firstNonFinite(params: Record<string, Tensor>): { name: string; count: number; size: number } | null {
  for (const [name, p] of Object.entries(params)) {
    const g = p.grad;
    const count = g ? g.storage.backend.countNonFinite(g.buf, g.size) : 0;
    if (g && count > 0) return { name, count, size: g.size };
  }
  return null;
}

/** What was not finite in a step: a sentence, and the parameter when it was the update. */
interface NonFiniteStep {
  what: string;
  update: NonFiniteUpdate | null;
}

/**
 * Runs the transform chain unless the loss or the gradients are already NaN/Inf, then checks the update before
 * anything is written (finite gradients can still give one that is not: a huge learning rate).
 * @returns the updates (null when the chain did not run) and what was not finite (null when nothing)
 */
function computeChecked(
  optimizer: Optimizer,
  params: Record<string, Tensor>,
  loss: number,
  beforeApply: ((updates: Record<string, Tensor>) => void) | undefined,
): { computed: ReturnType<Optimizer['computeUpdates']> | null; bad: NonFiniteStep | null } {
  // NOTE: with beforeApply the chain measures every gradient on entry and runs no link where one is not finite: the
  // check then costs no pass of its own
  if (!Number.isFinite(loss) || (!beforeApply && hasNonFinite(params))) {
    return {
      computed: null,
      bad: { what: `the ${Number.isFinite(loss) ? 'gradients hold' : 'loss is'} NaN or Inf`, update: null },
    };
  }
  const computed = optimizer.computeUpdates(beforeApply);
  if (computed.nonFiniteGradient !== undefined)
    return { computed: null, bad: { what: 'the gradients hold NaN or Inf', update: null } };
  const update = computed.halted || computed.applied ? null : optimizer.findNonFinite(computed.updates);
  return { computed, bad: update ? { what: describeNonFiniteUpdate(update), update } : null };
}

/**
 * Where every observer takes the update norms from the pass that applies the updates, Adam's pass may apply them
 * (optim.updateAndApply): the hook that tells the observers just before the weights change, as the unfused path
 * does before `apply`; undefined where an observer would read the updates themselves.
 */
function fusedApplyHook(
  observers: readonly StepObserver[],
  params: Record<string, Tensor>,
  optimizer: Optimizer,
  follow: UpdateOptions,
): ((updates: Record<string, Tensor>) => void) | undefined {
  if (!observers.every((o) => o.afterApply)) return undefined;
  return (updates) => {
    for (const o of observers) o.afterUpdate(updates, params, optimizer.state, follow);
  };
}

/** Why a run with a non-finite step at `step` is diverged now (onNonFinite=stop, or too many in a row), or null. */
function divergedReason(tc: Config['train'], step: number, consecutive: number, bad: NonFiniteStep): string | null {
  const where = bad.update ? `an update that is not finite ('${bad.update.path}')` : 'non-finite loss or gradients';
  if (tc.onNonFinite === 'stop') return `${where} at step ${step} (train.onNonFinite=stop)`;
  if (consecutive >= tc.maxConsecutiveNonFinite)
    return `${consecutive} consecutive steps with ${where} (train.maxConsecutiveNonFinite=${tc.maxConsecutiveNonFinite})`;
  return null;
}

/** The most memory one evaluation batch's forward may hold (every layer's output stays alive until the batch ends). */
export const EVAL_BATCH_BYTES = 2 ** 30;

/**
 * Examples per evaluation batch for a run: 1000, fewer where one batch's forward would hold more than
 * `EVAL_BATCH_BYTES`, never fewer than the training batch (which already fits with its backward).
 * NOTE: `evaluate` frees a batch's tensors only when the batch ends, so a deep net keeps every layer's output (and a
 * convolution's im2col buffer, 9 x its input) at once: a 56-layer CNN with channels [8, 16] held 14 GiB at 1000
 * MNIST digits, about 4.4x `estimateModelSize`'s activations, hence the factor 5 below.
 */
export function evalBatchSize(config: Config, ds: Dataset): number {
  const perExample = (estimateModelSize(config, ds).activations / config.train.batchSize) * 4 * 5;
  const fit = Math.floor(EVAL_BATCH_BYTES / Math.max(perExample, 1));
  return Math.min(1000, Math.max(config.train.batchSize, fit));
}

/** Evaluates on a split in batches without recording the graph. */
export function evaluate(model: AnyModule, ds: Dataset, split: 'train' | 'test', batchSize = 1000): EvalResult {
  const data = ds[split];
  const wasTraining = model.training;
  model.eval();
  const inSize = ds.inputSize;
  const tSize = ds.targetShape.reduce((p, d) => p * d, 1);
  let lossSum = 0;
  let correct = 0;
  let counted = 0;
  noGrad(() => {
    for (let start = 0; start < data.n; start += batchSize) {
      const n = Math.min(batchSize, data.n - start);
      tidy(() => {
        const x = tensor(data.x.subarray(start * inSize, (start + n) * inSize), [n, inSize]);
        const y = tensor(data.y.subarray(start * tSize, (start + n) * tSize), [n * tSize]);
        const out = model.call(x);
        const loss = lossFor(ds, out, y);
        lossSum += loss.item() * n;
        if (ds.task === 'classification') {
          const od = out.data;
          const yd = y.data;
          const c = out.shape[1]!;
          for (let r = 0; r < out.shape[0]!; r++) {
            let best = 0;
            for (let k = 1; k < c; k++) if (od[r * c + k]! > od[r * c + best]!) best = k;
            if (best === yd[r]) correct++;
          }
          counted += out.shape[0]!;
        }
      });
    }
  });
  if (wasTraining) model.train();
  const res: EvalResult = { loss: lossSum / data.n };
  if (ds.task === 'classification') res.accuracy = correct / counted;
  return res;
}

/**
 * Trains `exp` for `config.train.epochs` (or `maxSteps`) and evaluates on the test split after each epoch.
 * @returns the summary: status, steps, final and test metrics, skipped/clipped steps, timing and backend
 */
export function runTraining(exp: Experiment, hooks: TrainHooks = {}): TrainSummary {
  const it = trainingLoop(exp, hooks);
  let r = it.next();
  while (!r.done) r = it.next();
  return r.value;
}

/**
 * `runTraining` that returns to the event loop every `yieldEveryMs` (between steps), so signals (Ctrl+C), timers
 * and server-sent events are served while it trains. The numbers are the same as `runTraining`'s.
 */
export async function runTrainingAsync(
  exp: Experiment,
  hooks: TrainHooks = {},
  yieldEveryMs = 50,
): Promise<TrainSummary> {
  const it = trainingLoop(exp, hooks);
  let last = performance.now();
  let r = it.next();
  while (!r.done) {
    if (performance.now() - last >= yieldEveryMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      last = performance.now();
    }
    r = it.next();
  }
  return r.value;
}

/** When the trainer writes checkpoints (see {@link CheckpointHook}), and the writing itself. */
class CheckpointSchedule {
  private readonly ck: CheckpointHook | undefined;
  private readonly clock: () => number;
  private savedAt: number;
  private savedTime: number;

  constructor(
    private readonly exp: Experiment,
    private readonly hooks: TrainHooks,
    /** The step already checkpointed (a resumed run's), or -1. */
    savedAt: number,
  ) {
    this.ck = hooks.checkpoint;
    this.clock = this.ck?.clock ?? (() => performance.now());
    this.savedAt = savedAt;
    this.savedTime = this.clock();
  }

  /** After a step: a checkpoint when one is due (every N steps, at an epoch's end, or after `everySeconds`). */
  afterStep(p: Omit<TrainProgress, 'runId'>, epochEnd: boolean): void {
    const ck = this.ck;
    if (
      ck &&
      ((ck.everySteps && p.step % ck.everySteps === 0) ||
        (ck.everyEpoch && epochEnd) ||
        (ck.everySeconds !== undefined && this.clock() - this.savedTime >= ck.everySeconds * 1000))
    ) {
      this.save(p);
    }
  }

  /** Writes a checkpoint at `p` unless this step has one or the hook is no longer active. */
  save(p: Omit<TrainProgress, 'runId'>): void {
    const ck = this.ck;
    if (!ck || this.savedAt === p.step || (ck.active && !ck.active())) return;
    let dir: string;
    try {
      dir = saveCheckpoint(ck.dir, this.exp, { ...p, runId: ck.runId }, { keep: ck.keep, onPhase: ck.onPhase });
    } catch (e) {
      // its root was removed meanwhile (`runs rm` of the session's run): nothing to keep
      if (ck.active && !ck.active()) return;
      throw e;
    }
    this.savedAt = p.step;
    this.savedTime = this.clock();
    this.hooks.onCheckpoint?.(dir, p.step);
  }
}

/** The loop itself: one `yield` after each step (the playground drives it a few steps per animation frame). */
export function* trainingLoop(exp: Experiment, hooks: TrainHooks): Generator<void, TrainSummary, void> {
  const { config, dataset: ds, model, params, optimizer, loader } = exp;
  const observers = hooks.observers ?? [];
  const tc = config.train;
  const stepsPerEpoch = loader.batchesPerEpoch;
  const totalSteps = tc.maxSteps ?? stepsPerEpoch * tc.epochs;
  const evalBatch = evalBatchSize(config, ds);
  const inputs = new InputCache(
    ds.inputSize,
    ds.targetShape.reduce((p, d) => p * d, 1),
  );
  const t0 = performance.now();
  let status: RunStatus = 'finished';
  let reason: string | undefined;
  let lastLoss = Number.NaN;
  let skipped = 0;
  let consecutive = 0;
  const skippedByLayer: Record<string, number> = {};
  let step = 0;
  let epoch = 0;
  let test: EvalResult = { loss: Number.NaN };
  if (hooks.resume) {
    const p = applyCheckpoint(exp, hooks.resume);
    ({ step, epoch, lastLoss } = p);
    skipped = p.skippedSteps;
    consecutive = p.consecutiveNonFinite;
  }
  const checkpoints = new CheckpointSchedule(exp, hooks, hooks.resume ? step : -1);
  const progress = (): Omit<TrainProgress, 'runId'> => ({
    step,
    epoch,
    skippedSteps: skipped,
    consecutiveNonFinite: consecutive,
    lastLoss,
  });
  const opts = observerOptions(observers, params, optimizer);
  model.train();
  while (step < totalSteps) {
    if (hooks.shouldStop?.()) {
      status = 'interrupted';
      reason = 'stopped by signal';
      break;
    }
    const batch = loader.next();
    const lr = optimizer.currentLr();
    const [x, y] = inputs.fill(batch.x, batch.y, batch.size);
    for (const o of observers) o.beginStep(step);
    const loss = lossAndGrads(ds, model, x, y, optimizer);
    for (const o of observers) o.afterBackward(params, opts.afterBackward);
    const { computed, bad } = computeChecked(optimizer, params, loss, opts.beforeApply);
    let diverged = false;
    if (bad) {
      if (tc.onNonFinite === 'raise') throw nonFiniteError(step, loss, params, bad.update);
      skipped++;
      consecutive++;
      if (bad.update) skippedByLayer[bad.update.path] = (skippedByLayer[bad.update.path] ?? 0) + 1;
      for (const o of observers) o.endStep(loss); // before zeroGrad: told gradNormsFollow, they read the gradients
      optimizer.zeroGrad();
      const why = divergedReason(tc, step, consecutive, bad);
      if (why) {
        status = 'diverged';
        reason = why;
        diverged = true;
      }
    } else {
      consecutive = 0;
      const { updates, state, halted, applied } = computed!;
      // an applied update is measured in the pass that applies it: observers with afterApply need not read it (where
      // the chain applied it itself, they were told in beforeApply)
      if (!applied)
        for (const o of observers)
          o.afterUpdate(updates, params, state, !halted && o.afterApply ? opts.follow : opts.read);
      optimizer.apply(updates);
      if (!optimizer.halted)
        for (const o of observers) o.afterApply?.(optimizer.weightSumSquares, optimizer.updateSumSquares);
      optimizer.zeroGrad();
      lastLoss = loss;
      for (const o of observers) o.endStep(loss);
    }
    hooks.onStep?.({
      step,
      epoch: batch.epoch,
      loss,
      lr,
      skipped: bad !== null,
      ...(bad?.update ? { nonFiniteUpdate: bad.update.path } : {}),
      stepsPerEpoch,
      totalSteps,
    });
    step++;
    if (diverged) break;
    const epochEnd = step % stepsPerEpoch === 0 || step === totalSteps;
    if (epochEnd) {
      epoch = Math.ceil(step / stepsPerEpoch);
      test = evaluate(model, ds, 'test', evalBatch);
      hooks.onEpoch?.(epoch, test);
    }
    checkpoints.afterStep(progress(), epochEnd);
    yield;
  }
  checkpoints.save(progress());
  if (status !== 'finished' || Number.isNaN(test.loss)) test = evaluate(model, ds, 'test', evalBatch);
  const seconds = (performance.now() - t0) / 1000;
  const summary: TrainSummary = {
    status,
    steps: step,
    epochs: epoch,
    finalLoss: lastLoss,
    test,
    skippedSteps: skipped,
    clippedSteps: optimizer.clippedSteps(),
    seconds,
    msPerStep: (seconds * 1000) / Math.max(step, 1),
    backend: getBackend().name,
    parameters: Object.values(params).reduce((p, t) => p + t.size, 0),
  };
  if (Object.keys(skippedByLayer).length > 0) summary.skippedByLayer = skippedByLayer;
  if (reason) summary.reason = reason;
  return summary;
}
