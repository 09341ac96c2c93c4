/**
 * A small PyTorch-style wrapper over a gradient transformation: `opt.step()` reads each parameter's `.grad`, runs the
 * transformation and applies the updates in place; `opt.zeroGrad()` clears the gradients. Plus flattening of any
 * transformation state into tensors and plain values, for checkpoints.
 */
import { decodeDeep, encodeDeep } from '../base/json.js';
import { Tensor, zeroLazily } from '../tensor/tensor.js';
import {
  type ApplyPlan,
  applyUpdates,
  describeNonFiniteUpdate,
  findNonFiniteUpdate,
  forgetStateBound,
  type GradientTransformation,
  gradientStats,
  type NonFiniteUpdate,
  type Params,
  updateAndApply,
  zerosLikeKept,
} from './transform.js';

/** What one `step()` did. */
export interface StepResult {
  /**
   * Whether no parameter changed: the transformation halted (a `clip.skipNonFinite` link saw NaN/Inf gradients), or
   * the update would have written NaN/Inf and `onNonFinite` is 'skip' (then `nonFinite` says where).
   */
  skipped: boolean;
  /** With `onNonFinite: 'skip'`, the parameter whose update was not finite (the step was skipped). */
  nonFinite?: NonFiniteUpdate;
}

/** Thrown by `Optimizer.step()` (with `onNonFinite: 'raise'`, the default) when an update would write NaN or Inf. */
export class NonFiniteUpdateError extends Error {
  override readonly name = 'NonFiniteUpdateError';
  constructor(
    message: string,
    /** Which parameter, and why. */
    readonly detail: NonFiniteUpdate,
  ) {
    super(message);
  }
}

/** Options of {@link Optimizer}. */
export interface OptimizerOptions {
  /**
   * What `step()` does when an update would leave a parameter holding NaN or Inf (its gradient, the learning rate or
   * a moment overflowed). Either way no parameter changes. 'raise' (default) throws {@link NonFiniteUpdateError}
   * naming the parameter, as PyTorch's `clip_grad_norm_(error_if_nonfinite=True)` raises; 'skip' returns
   * `{ skipped: true, nonFinite }` and counts the step in `skippedSteps`, as optax's `apply_if_finite` and PyTorch's
   * `GradScaler.step` skip.
   */
  onNonFinite?: 'raise' | 'skip';
  /** Told the gradients and updates of every step (see {@link OptimizerObserver}), e.g. a `monitor.Monitor`. */
  observer?: OptimizerObserver | null;
}

/** Anything that names its parameters as PyTorch's `named_parameters()` does: an `nn.Module`, for one. */
export interface ParameterSource {
  namedParameters(): [string, Tensor][];
}

/**
 * What an `Optimizer` tells an observer on every `step()` (a `monitor.Monitor` is one): the raw gradients before the
 * transformation runs, then the updates it computed and its state (what clipping did), then, once the updates are
 * applied, the sums of squares of the new weights and of the updates. The same calls the CLI's trainer makes.
 */
export interface OptimizerObserver {
  afterBackward(params: Params): void;
  afterUpdate(updates: Params, params: Params, txState: unknown, opts?: { updateNormsFollow?: boolean }): void;
  afterApply?(
    weightSumSquares: Readonly<Record<string, number>>,
    updateSumSquares?: Readonly<Record<string, number>>,
  ): void;
}

/** afterUpdate's options, made once: the update norms come with afterApply, or the observer reads them. */
const FOLLOW = { updateNormsFollow: true } as const;
const READ = { updateNormsFollow: false } as const;

/**
 * Drives a gradient transformation from a model's `.grad` fields.
 *
 * `.grad` keeps the raw gradients after `step()`, for monitors: a chain ending in Adam takes `updateAndApply`'s fused
 * path (Adam's kernel reads `.grad` where it is and adds each step to its parameter), and a link that writes its
 * gradients in place works on copies in buffers the optimizer owns (allocated on the first step that needs them),
 * made only on a step that needs them. Parameters whose `.grad` is null are skipped for this step, as PyTorch does.
 *
 * With an `observer` (`{ observer: monitor }`, or set `opt.observer` later), every `step()` hands it the gradients and
 * the updates it applies, so a `monitor.Monitor` measures update/weight ratios as it does in the CLI's trainer.
 *
 * @example
 * const opt = new optim.Optimizer(model, optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 })));
 * loss.backward();
 * opt.step();
 * opt.zeroGrad();
 */
export class Optimizer<S = unknown> {
  /** The parameters by path. */
  readonly params: Params;
  /** The transformation's state (read it to see what clipping did; see `stateRecords`). */
  state: S;
  /** Told the gradients and updates of every step (see `OptimizerObserver`); null for none. */
  observer: OptimizerObserver | null;
  /** Buffers for the copies, one per parameter: made on the first step that needs them (none on the fused path). */
  #work: Params | null = null;
  /** This step's gradients: the parameters' `.grad`, and the optimizer's copies of them where a link writes. */
  readonly #raw: Params = {};
  readonly #workNow: Params = {};
  #copied = false;
  readonly #names: string[];
  /** The sums of squares of the weights and of the updates, measured while applying them (for the observer). */
  readonly #weightSS: Record<string, number> = {};
  readonly #updateSS: Record<string, number> = {};
  readonly #onNonFinite: 'raise' | 'skip';
  /** The fused path's plans: without an observer, and with one (its sums measured in Adam's pass). */
  readonly #plan: ApplyPlan;
  readonly #observedPlan: ApplyPlan;
  /** Steps skipped because an update was not finite (`onNonFinite: 'skip'`). */
  skippedSteps = 0;

  /**
   * @param source a Module, parameters by path, or [path, tensor] pairs
   * @param tx the gradient transformation, e.g. `optim.adam({ lr: 1e-3 })`
   * @param opts `onNonFinite`: 'raise' (default) or 'skip'; `observer`: told the gradients and updates of every
   *   step, e.g. a `monitor.Monitor`
   */
  constructor(
    source: ParameterSource | Params | [string, Tensor][],
    readonly tx: GradientTransformation<S>,
    opts: OptimizerOptions = {},
  ) {
    if (!tx || typeof tx.init !== 'function' || typeof tx.update !== 'function') {
      throw new TypeError('Optimizer: tx must be a gradient transformation, e.g. optim.adam({ lr: 1e-3 })');
    }
    const on = opts.onNonFinite ?? 'raise';
    if (on !== 'raise' && on !== 'skip')
      throw new TypeError(`Optimizer: onNonFinite must be 'raise' or 'skip', got '${String(on)}'`);
    this.#onNonFinite = on;
    const entries: [string, Tensor][] = Array.isArray(source)
      ? source
      : source && typeof (source as ParameterSource).namedParameters === 'function'
        ? (source as ParameterSource).namedParameters()
        : Object.entries(source as Params);
    for (const [k, t] of entries) {
      if (!(t instanceof Tensor)) throw new TypeError(`Optimizer: parameter '${k}' is not a Tensor`);
    }
    if (!entries.length) throw new Error('Optimizer: no parameters to optimize');
    this.params = Object.fromEntries(entries);
    this.#names = entries.map(([k]) => k);
    this.state = tx.init(this.params);
    const obs = opts.observer ?? null;
    if (obs !== null && (typeof obs.afterBackward !== 'function' || typeof obs.afterUpdate !== 'function'))
      throw new TypeError('Optimizer: observer must have afterBackward and afterUpdate, e.g. a monitor.Monitor');
    this.observer = obs;
    const weightBounds = {};
    const gradStats = gradientStats();
    this.#plan = { weightBounds, gradStats, writable: this.#writable };
    this.#observedPlan = {
      weightBounds,
      gradStats,
      weightSumSquares: this.#weightSS,
      updateSumSquares: this.#updateSS,
      beforeApply: (updates) => this.observer?.afterUpdate(updates, this.params, this.state, FOLLOW),
      writable: this.#writable,
    };
  }

  /**
   * Runs the transformation on the current gradients and applies the updates to the parameters in place, unless an
   * update would leave a parameter holding NaN or Inf (checked before anything is written: see
   * `optim.findNonFiniteUpdate`): then no parameter changes and, per `onNonFinite`, the step throws
   * NonFiniteUpdateError or is skipped. The transformation's state has then seen this step's (finite) gradients.
   * @returns whether the step was skipped, and where an update was not finite
   * @throws NonFiniteUpdateError naming the parameter (`onNonFinite: 'raise'`)
   */
  step(): StepResult {
    const obs = this.observer;
    obs?.afterBackward(this.params);
    const raw = this.#raw;
    let any = false;
    for (const k of this.#names) {
      const p = this.params[k]!;
      const g = p.grad;
      if (g) {
        if (g.size !== p.size || g.ndim !== p.ndim || g.shape.some((d, i) => d !== p.shape[i])) {
          throw new Error(
            `Optimizer.step(): the gradient of '${k}' has shape [${g.shape}] but its parameter [${p.shape}]; a .grad must have its parameter's shape (set it to null, or to a tensor shaped like the parameter)`,
          );
        }
        raw[k] = g;
        any = true;
      } else delete raw[k];
    }
    if (!any) return { skipped: true };
    // the fused path reads the raw gradients and adds each step to its parameter in Adam's own pass where every w + u
    // is shown finite beforehand (the weights' bounds read afresh each step: anything may have written them since);
    // a link that would write the gradients works on copies instead (#writable), so .grad keeps the raw gradients
    const plan = obs ? this.#observedPlan : this.#plan;
    for (const k in plan.weightBounds) delete plan.weightBounds[k];
    this.#copied = false;
    const r = obs && !obs.afterApply ? this.#unfused(raw) : updateAndApply(this.tx, raw, this.state, this.params, plan);
    this.state = r.state;
    if (r.applied) {
      obs?.afterApply?.(this.#weightSS, this.#updateSS);
      return { skipped: false };
    }
    const bad = r.halt ? null : findNonFiniteUpdate(this.params, r.updates);
    // as the CLI's trainer: an applied update is measured in the pass that applies it when the observer takes that;
    // an update that is not finite is never applied, so the observer does not see it as one
    if (!bad) obs?.afterUpdate(r.updates, this.params, r.state, !r.halt && obs.afterApply ? FOLLOW : READ);
    if (r.halt) return { skipped: true };
    if (bad) {
      if (this.#onNonFinite === 'raise') {
        throw new NonFiniteUpdateError(
          `Optimizer.step(): ${describeNonFiniteUpdate(bad)}; no parameter was changed. Lower the learning rate, clip the gradients (clip.byGlobalNorm), or pass { onNonFinite: 'skip' } to skip such steps`,
          bad,
        );
      }
      this.skippedSteps++;
      return { skipped: true, nonFinite: bad };
    }
    if (obs?.afterApply) {
      applyUpdates(this.params, r.updates, this.#weightSS, this.#updateSS);
      obs.afterApply(this.#weightSS, this.#updateSS);
    } else applyUpdates(this.params, r.updates);
    return { skipped: false };
  }

  /** The raw gradients' copies in the optimizer's own buffers (once a step), by the same keys. */
  #writable = (grads: Params): Params => {
    if (grads !== this.#raw) return grads;
    const work = this.#workNow;
    const own = (this.#work ??= Object.fromEntries(this.#names.map((k) => [k, zerosLikeKept(this.params[k]!)])));
    for (const k in work) if (!(k in grads)) delete work[k];
    for (const k in grads) {
      const g = grads[k]!;
      const w = own[k]!;
      if (!this.#copied) g.storage.backend.copy(g.buf, 0, w.buf, 0, g.size);
      work[k] = w;
    }
    this.#copied = true;
    return work;
  };

  /** The step without the fused path (an observer that reads the updates' buffers itself). */
  #unfused(raw: Params): { updates: Params; state: S; halt?: boolean; applied: false } {
    return { ...this.tx.update(this.#writable(raw), this.state, this.params), applied: false };
  }

  /**
   * Clears the gradients: zeroed in place (default: the same tensors, read as zeros; the next backward writes its
   * gradients into them rather than adding to zeros) or set to null.
   */
  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    for (const p of Object.values(this.params)) {
      if (!p.grad) continue;
      if (opts.setToNone) p.grad = null;
      // zeros, written when first read, or the next backward writes its gradient in their place
      else zeroLazily(p.grad);
    }
  }

  /** The state as tensors and plain values (see `flattenState`), e.g. to save in a checkpoint. */
  stateDict(): FlatState {
    return flattenState(this.state);
  }

  /** Restores a state saved with `stateDict()` into this optimizer's state, in place. */
  loadStateDict(flat: FlatState): void {
    restoreState(this.state, flat);
  }
}

/** A state split into tensors (for safetensors) and JSON-able values (numbers, booleans, strings, arrays). */
export interface FlatState {
  tensors: Record<string, Tensor>;
  values: Record<string, unknown>;
}

const encode = encodeDeep;
const decode = decodeDeep;

function walk(
  state: unknown,
  visit: (path: string, holder: Record<string, unknown>, key: string) => void,
  prefix = '',
): void {
  if (!state || typeof state !== 'object') return;
  for (const [k, v] of Object.entries(state as Record<string, unknown>)) {
    const path = prefix ? `${prefix}.${k}` : k;
    const plainArray = Array.isArray(v) && v.every((x) => x === null || typeof x !== 'object');
    if (v instanceof Tensor || v === null || typeof v !== 'object' || plainArray)
      visit(path, state as Record<string, unknown>, k);
    else walk(v, visit, path);
  }
}

/**
 * Splits a transformation state into its tensors and its other values, keyed by their path in the state object
 * (`inner.1.mu.layers.0.weight`, `inner.1.count`). Non-finite numbers become the strings 'NaN' and '±Infinity'.
 * @example const { tensors, values } = flattenState(opt.state); saveSafetensors(path, tensors);
 */
export function flattenState(state: unknown): FlatState {
  const out: FlatState = { tensors: {}, values: {} };
  walk(state, (path, holder, key) => {
    const v = holder[key];
    if (v instanceof Tensor) out.tensors[path] = v;
    else if (typeof v !== 'function') out.values[path] = encode(v);
  });
  return out;
}

/**
 * Writes a flattened state back into `state` in place (tensor values copied into the existing buffers).
 * @throws Error naming the path when a tensor is missing or has another size
 */
export function restoreState(state: unknown, flat: FlatState): void {
  walk(state, (path, holder, key) => {
    const v = holder[key];
    if (v instanceof Tensor) {
      const src = flat.tensors[path];
      if (!src)
        throw new Error(
          `restoreState(): the saved state has no tensor '${path}'; was it saved from the same optimizer and model?`,
        );
      if (src.size !== v.size)
        throw new Error(`restoreState(): '${path}' has ${src.size} values, the optimizer expects ${v.size}`);
      v.data.set(src.data);
      forgetStateBound(v);
    } else if (path in flat.values && typeof v !== 'function' && key !== 'kind') {
      holder[key] = decode(flat.values[path]);
    }
  });
}
