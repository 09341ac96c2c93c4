/**
 * Gradient transformations in optax's shape: a pair `init(params) → state` and `update(grads, state, params) →
 * { updates, state }`, composed with `chain`. Optimizers, clipping and skipping are all transformations, so
 * `chain(clip.byGlobalNorm(1), adam({ lr: 1e-3 }))` clips first and then takes an Adam step.
 *
 * Parameters, gradients and updates are `Record<string, Tensor>` keyed by parameter path (`layers.3.weight`), as
 * `Object.fromEntries(model.namedParameters())` gives them.
 *
 * NOTE on memory, unlike optax: a transformation writes its result into the buffers of the `grads` it receives and
 * returns those same tensors as `updates`, and its state holds buffers allocated once by `init` and updated in place
 * (the returned state is the same object). A training step then allocates nothing parameter-sized. So pass
 * gradients you no longer need (the `Optimizer` wrapper hands `.grad` over read-only: see `ApplyPlan.writable`), and
 * read what a transformation did from its state after `update`: every state records it (`kind`, `count`, norms,
 * clipped, skipped, ...), which is how a monitor sees clipping without a side channel.
 */
import { keep, type Tensor, zeros } from '../tensor/tensor.js';

/** Tensors by parameter path. */
export type Params = Record<string, Tensor>;

/** What `update` returns. */
export interface UpdateResult<S> {
  /** The transformed gradients (the input tensors, overwritten in place). */
  updates: Params;
  /** The state after this step (the same object, updated in place). */
  state: S;
  /**
   * Set by a transformation that decided this step must not be applied (a non-finite gradient): `chain` stops there,
   * leaving the later links' state unchanged, and the updates are zeros.
   */
  halt?: boolean;
}

/**
 * A gradient transformation: `init` builds the state for a set of parameters, `update` transforms gradients.
 * @typeParam S the state
 */
export interface GradientTransformation<S = unknown> {
  /** A name for messages and monitors ('scaleByAdam', 'chain', ...). */
  readonly kind: string;
  /** Builds the state (buffers allocated here, once). */
  init(params: Params): S;
  /**
   * Transforms `grads` in place and returns them as `updates`.
   * @param grads gradients by path (a subset of the params `init` saw is allowed: missing keys are left alone)
   * @param state the state from `init` or the previous `update`
   * @param params the current parameters (needed by weight decay and adaptive clipping)
   */
  update(grads: Params, state: S, params?: Params): UpdateResult<S>;
  /**
   * Optional, for `chain`'s fused passes: the result and state of multiplying the gradients by `pre` (as
   * {@link scaleInPlace} does; nothing when `pre` is 1), then `update`, then multiplying the updates by `post`
   * (likewise), bit for bit, in fewer passes over the buffers (`scaleByAdam` folds both into its kernel).
   */
  updateScaled?(grads: Params, state: S, params: Params | undefined, pre: number, post: number): UpdateResult<S>;
  /**
   * Optional, for `chain`: a transformation whose update only multiplies the updates by one factor (a learning
   * rate) returns that factor for its next update and the state change that goes with it, or null where `update`
   * must run itself (it would throw, or the factor is 1 and `update` would still run its pass).
   */
  nextFactor?(state: S): { factor: number; commit(): void } | null;
  /**
   * Optional, for `chain`: a transformation whose update measures the gradients and then multiplies them all by one
   * factor (the global-norm clip) does all but the multiplying, and returns the factor (1 where it leaves them).
   * `known`, when given, holds each of these very gradients' Σg² and max |g| as they are now (`updateAndApply`
   * measured them on entry, before any link ran): it takes them from there instead of reading the gradients again.
   */
  measure?(grads: Params, state: S, known?: GradientStats): number;
  /**
   * Optional, with `measure`: a bound on max |g| of the gradients the last `measure` saw, before its factor (the
   * global-norm clip's norm), or NaN where it has none. `chain`'s fused apply needs it to know the update is finite.
   */
  gradBound?(state: S): number;
  /**
   * Optional, for `chain`'s fused apply: as `updateScaled`, then the updates added to `params` as `applyUpdates`
   * does, in the same pass (`scaleByAdam` with the `adamApply` kernel), where it can show beforehand that every
   * w + u is finite from `gradBound` (a bound on max |g| after `pre`) and the bounds it keeps; else null, nothing
   * done (the caller then runs `updateScaled`). Never writes a NaN or an infinity into a parameter.
   */
  updateScaledApply?(
    grads: Params,
    state: S,
    params: Params,
    pre: number,
    post: number,
    gradBound: number,
    plan: ApplyPlan,
  ): UpdateResult<S> | null;
  /**
   * Optional (`chain` has it): `update` and then `applyUpdates(params, updates, ...)`, fused into the last pass where
   * the links allow (see {@link updateAndApply}, which callers use). `pre` and `gradBound` are what an enclosing chain
   * owes this one (1 and NaN at the top).
   */
  updateApply?(
    grads: Params,
    state: S,
    params: Params,
    plan: ApplyPlan,
    pre: number,
    gradBound: number,
  ): ApplyResult<S>;
}

/**
 * What a fused update-and-apply ({@link updateAndApply}) keeps between steps and what it reports. Make one per set of
 * parameters and pass the same object every step.
 */
export interface ApplyPlan {
  /**
   * Bounds on each parameter's max |w|, kept by the fused steps (a missing one is read with `maxAbs`). Start with {}
   * and leave it alone; clear it whenever something else writes the weights (a checkpoint restored).
   */
  readonly weightBounds: Record<string, number>;
  /** When given, receives each updated parameter's Σw² after the update, as `applyUpdates`' `sumSquares`. */
  readonly weightSumSquares?: Record<string, number>;
  /** With `weightSumSquares`, receives each update's Σu², as `applyUpdates`' `updateSumSquares`. */
  readonly updateSumSquares?: Record<string, number>;
  /**
   * Called once the updates are known to be finite, just before the weights change (the trainer tells its observers
   * there: `afterUpdate` with `updateNormsFollow`). The updates' buffers do not hold the updates on this path: read
   * their norms from `updateSumSquares` afterwards.
   */
  beforeApply?(updates: Params): void;
  /**
   * When given, `updateAndApply` measures every gradient on entry, before any link runs (one `sumSquaresMaxAbs` pass
   * each), and writes the results here, replacing the last call's: the gradients' norms for a monitor, read once for
   * it and for the chain's first link (the global-norm clip takes its norm from them; see {@link GradientStats}).
   */
  readonly gradStats?: GradientStats;
  /**
   * With `gradStats`: where a gradient holds NaN or Inf (its max |g| is not finite), run no link at all and return
   * `nonFiniteGradient` (the first such path) with the state unchanged, as a trainer that skips such steps needs.
   */
  readonly stopOnNonFiniteGradients?: boolean;
  /**
   * When given, the gradients passed in are only read: before the first link that would write them in place (an
   * unfused update, a halt's zeroing, a factor left to multiply), `writable(grads)` is called and its result, the
   * same keys in tensors the caller owns with the same values, is worked on instead; it is handed tensors already its
   * own again on later calls and returns them as they are. `Optimizer.step()` passes the parameters' `.grad` so, and
   * copies them only on a step that the fused path does not take.
   */
  readonly writable?: (grads: Params) => Params;
}

/**
 * Each gradient's Σg² (`sumSquares`' bits) and max |g| (NaN where it holds one), measured by `updateAndApply` on entry,
 * and the tensors measured. NOTE on staleness (tensors carry no version): the chain's first link takes these numbers
 * only inside the same `updateAndApply` call that measured them and only before any link has run (nothing can have
 * written the gradients in between); every call measures afresh, so numbers from an earlier step are never taken.
 * A reader afterwards (a monitor) takes a gradient's numbers only where `tensors` holds the very tensor it means.
 */
export interface GradientStats {
  readonly sumSquares: Record<string, number>;
  readonly maxAbs: Record<string, number>;
  readonly tensors: Record<string, Tensor>;
}

/** An empty {@link GradientStats} for `ApplyPlan.gradStats`. */
export function gradientStats(): GradientStats {
  return { sumSquares: {}, maxAbs: {}, tensors: {} };
}

/** What `updateApply` returns: `applied` says the updates were added to the parameters (their buffers then do not
 * hold them); otherwise it is `update`'s result, to be checked and applied as usual. */
export interface ApplyResult<S> extends UpdateResult<S> {
  applied: boolean;
  /** With `plan.stopOnNonFiniteGradients`: the first gradient holding NaN or Inf; no link ran. */
  nonFiniteGradient?: string;
}

/**
 * The plan whose `gradStats` were measured on entry of the running `updateAndApply`, while no link has run on them
 * since; null otherwise. One at a time: a nested call clears it on its way out, which only means measuring again.
 */
let freshStats: ApplyPlan | null = null;

/**
 * `clip.globalNorm(grads, normType)` from each gradient's measured Σg² or max |g| (the same bits: the sums are
 * `sumSquares`', added in the same order), or undefined unless `known` measured every one of these very tensors: the
 * global-norm clip's norm, and the bound on |g| of an Adam that no clip precedes.
 */
export function knownNorm(grads: Params, known: GradientStats, normType: 2 | 'inf'): number | undefined {
  let acc = 0;
  for (const [k, g] of Object.entries(grads)) {
    if (known.tensors[k] !== g) return undefined;
    if (normType === 'inf') {
      const m = known.maxAbs[k]!;
      if (!(m <= acc)) acc = m; // NaN wins
    } else acc += known.sumSquares[k]!;
  }
  return normType === 'inf' ? acc : Math.sqrt(acc);
}

/** Measures every gradient into `stats` (Σg² and max |g| in one pass each), replacing what it held. */
function measureGradients(grads: Params, stats: GradientStats): void {
  // NOTE: entries are overwritten (the same keys every step); only those of parameters without a gradient now go
  for (const k in stats.tensors) {
    if (k in grads) continue;
    delete stats.sumSquares[k];
    delete stats.maxAbs[k];
    delete stats.tensors[k];
  }
  const out = gradOut;
  for (const k in grads) {
    const g = grads[k]!;
    g.storage.backend.sumSquaresMaxAbs(g.buf, g.size, out);
    stats.sumSquares[k] = out[0]!;
    stats.maxAbs[k] = out[1]!;
    stats.tensors[k] = g;
  }
}
const gradOut = new Float64Array(2);

/** Bounds on max |x| of state tensors, kept by the transformation that writes them (see `scaleByAdam`'s fused path). */
const stateBounds = new WeakMap<Tensor, number>();

/** The bound on max |x| kept for state tensor `t`, or undefined where none is known. */
export function stateBound(t: Tensor): number | undefined {
  return stateBounds.get(t);
}

/** Keeps a bound on max |x| of state tensor `t` (set by the transformation that just wrote it). */
export function setStateBound(t: Tensor, bound: number): void {
  stateBounds.set(t, bound);
}

/** Forgets the bound of `t`: its values were written from outside (`restoreState` calls it for every tensor). */
export function forgetStateBound(t: Tensor): void {
  stateBounds.delete(t);
}

/** The state of every transformation carries its kind, so monitors can find it in a chain. */
export interface StateRecord {
  readonly kind: string;
}

/** A new state tensor of zeros like `t`, kept past `tidy` scopes. */
export function zerosLikeKept(t: Tensor): Tensor {
  return keep(zeros(t.shape));
}

/** Zero buffers shaped like every parameter. */
export function zerosLikeParams(params: Params): Params {
  const out: Params = {};
  for (const [k, t] of Object.entries(params)) out[k] = zerosLikeKept(t);
  return out;
}

/** Checks `params` at the public boundary of a transformation's `init`. */
export function checkParams(params: Params, fn: string): void {
  if (params === null || typeof params !== 'object') {
    throw new TypeError(
      `${fn}.init(): params must be an object of tensors by path, e.g. Object.fromEntries(model.namedParameters()); got ${params === null ? 'null' : typeof params}`,
    );
  }
  for (const [k, t] of Object.entries(params)) {
    if (!t || typeof t !== 'object' || !('shape' in t) || !('data' in t)) {
      throw new TypeError(`${fn}.init(): params['${k}'] is not a Tensor`);
    }
  }
}

/** The state tensor of `key`, or an error saying init() did not see that key. */
export function stateOf(store: Params, key: string, fn: string): Tensor {
  const t = store[key];
  if (!t) {
    throw new Error(
      `${fn}.update(): grads has '${key}', which init() did not see; call init() with the same parameters (keys ${Object.keys(store).slice(0, 5).join(', ')}${Object.keys(store).length > 5 ? ', ...' : ''})`,
    );
  }
  return t;
}

/** The parameter of `key`, or an error saying this transformation needs params. */
export function paramOf(params: Params | undefined, key: string, fn: string): Tensor {
  if (!params)
    throw new Error(`${fn}.update(): this transformation needs the parameters: call update(grads, state, params)`);
  const p = params[key];
  if (!p) throw new Error(`${fn}.update(): params has no '${key}', which grads has`);
  return p;
}

/** Multiplies every tensor by `s` in place, in float32 (the backend's `scale` kernel: PyTorch's `mul_`). */
export function scaleInPlace(grads: Params, s: number): void {
  for (const g of Object.values(grads)) g.storage.backend.scale(g.buf, g.size, s);
}

/** Sets every tensor to 0 in place. */
export function zeroInPlace(grads: Params): void {
  for (const g of Object.values(grads)) g.storage.backend.fill(g.buf, 0, g.size);
}

export interface ChainState extends StateRecord {
  readonly kind: 'chain';
  /** One state per link, in order. */
  readonly inner: unknown[];
}

/**
 * Runs `chain`'s links on `grads` owing them the factor `pre` (see `updateScaled`). Fused where the links allow, with
 * the numbers of running them one by one: a link that measures and scales (the global-norm clip) before one that
 * takes a factor hands its factor on instead of scaling, and a link that takes factors (Adam) before one that only
 * scales (the learning rate) applies that scale in its own pass. `chain(clip.byGlobalNorm(1), adam({ lr }))` is
 * then one sum of squares and one Adam pass per tensor, where it was up to four passes.
 */
function runChain(
  transforms: readonly GradientTransformation<unknown>[],
  grads: Params,
  state: ChainState,
  params: Params | undefined,
  pre: number,
  plan?: ApplyPlan,
  gradBound = Number.NaN,
): ApplyResult<ChainState> {
  let updates = grads;
  let owed = pre;
  let bound = gradBound;
  const n = transforms.length;
  const writable = plan?.writable;
  for (let i = 0; i < n; i++) {
    const t = transforms[i]!;
    const next = transforms[i + 1];
    // the entry's measurements hold until a link other than this measuring one runs
    const known = plan && freshStats === plan ? plan.gradStats : undefined;
    if (t.measure && next?.updateScaled && owed === 1) {
      owed = t.measure(updates, state.inner[i], known);
      bound = t.gradBound ? t.gradBound(state.inner[i]) : Number.NaN;
      continue;
    }
    // a link that takes factors (Adam) with no clip before it: the entry's measurements bound its gradients
    if (known && t.updateScaledApply && Number.isNaN(bound)) bound = knownNorm(updates, known, 'inf') ?? Number.NaN;
    if (plan && freshStats === plan) freshStats = null;
    const f = t.updateScaled && next?.nextFactor ? next.nextFactor(state.inner[i + 1]) : null;
    if (plan && params) {
      // the last pass may apply the updates itself: an inner chain at the end, or a link that takes factors (Adam)
      // last or before a learning rate that ends the chain
      let a: ApplyResult<unknown> | null = null;
      if (i === n - 1 && t.updateApply) a = t.updateApply(updates, state.inner[i], params, plan, owed, bound);
      else if (t.updateScaledApply && (i === n - 1 || (f && i === n - 2))) {
        const r = t.updateScaledApply(updates, state.inner[i], params, owed, f ? f.factor : 1, bound, plan);
        // NOTE: not `{ ...r, applied: true }`: V8 gives every object spread with a property added a new hidden
        // class (~1.5 µs a step, and megamorphic loads wherever the result is read)
        if (r) a = { updates: r.updates, state: r.state, applied: true };
      }
      if (a) {
        state.inner[i] = a.state;
        if (a.applied) f?.commit();
        else if (a.halt) return { updates: a.updates, state, halt: true, applied: false };
        return { updates: a.updates, state, applied: a.applied };
      }
    }
    bound = Number.NaN;
    if (writable) updates = writable(updates);
    let r: UpdateResult<unknown>;
    if (f) r = t.updateScaled!(updates, state.inner[i], params, owed, f.factor);
    else if (owed !== 1 && t.updateScaled) r = t.updateScaled(updates, state.inner[i], params, owed, 1);
    else {
      if (owed !== 1) scaleInPlace(updates, owed);
      r = t.update(updates, state.inner[i], params);
    }
    owed = 1;
    updates = r.updates;
    state.inner[i] = r.state;
    if (r.halt) {
      zeroInPlace(updates);
      return { updates, state, halt: true, applied: false };
    }
    if (f) {
      f.commit();
      i++;
    }
  }
  if (owed !== 1) {
    if (writable) updates = writable(updates);
    scaleInPlace(updates, owed);
  }
  return { updates, state, applied: false };
}

/**
 * Applies transformations in order, each to the previous one's output (optax's `chain`). If a link halts (see
 * `UpdateResult.halt`), the remaining links are not run, so their state is left unchanged. Common sequences run
 * fused, with the same numbers (see `runChain`).
 *
 * @param transforms the links
 * @returns one transformation whose state is `{ kind: 'chain', inner: [state of each link] }`
 * @example const tx = optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 }));
 */
export function chain(...transforms: GradientTransformation<unknown>[]): GradientTransformation<ChainState> {
  for (const [i, t] of transforms.entries()) {
    if (!t || typeof t.init !== 'function' || typeof t.update !== 'function') {
      throw new TypeError(`chain(): argument ${i} is not a gradient transformation (an object with init and update)`);
    }
  }
  return {
    kind: 'chain',
    init(params) {
      return { kind: 'chain', inner: transforms.map((t) => t.init(params)) };
    },
    update(grads, state, params) {
      return runChain(transforms, grads, state, params, 1);
    },
    updateScaled(grads, state, params, pre, post) {
      const r = runChain(transforms, grads, state, params, pre);
      if (post !== 1 && !r.halt) scaleInPlace(r.updates, post);
      return r;
    },
    updateApply(grads, state, params, plan, pre, gradBound) {
      return runChain(transforms, grads, state, params, pre, plan, gradBound);
    },
  };
}

/**
 * `tx.update(grads, state, params)` and then `applyUpdates(params, updates, plan.weightSumSquares,
 * plan.updateSumSquares)`, with the same parameters, state and sums, in fewer passes where the chain allows: a chain
 * ending in Adam and a learning rate after a global-norm clip (`chain(clip.byGlobalNorm(1), adam({ lr }))`) adds
 * each update to its parameter in Adam's own pass, with no update buffer written and read back. That path runs only
 * where every w + u is shown finite beforehand (from the clip's norm, the learning rate, eps and bounds kept in
 * `plan` and on Adam's moments), so it never writes a NaN or an infinity into a parameter; elsewhere `applied` is
 * false and nothing was applied: the result is `update`'s, which the caller checks and applies as before. With
 * `plan.gradStats` every gradient is measured first, once, for the caller and for the chain's global-norm clip.
 * @param tx the transformation
 * @param grads gradients by path (overwritten, as `update` does)
 * @param state its state
 * @param params the parameters by path
 * @param plan what the fused path keeps between steps and reports (the same object every step)
 * @example
 * const plan = { weightBounds: {} };
 * const r = optim.updateAndApply(tx, grads, state, params, plan);
 * if (!r.applied && !r.halt) optim.applyUpdates(params, r.updates);
 */
export function updateAndApply<S>(
  tx: GradientTransformation<S>,
  grads: Params,
  state: S,
  params: Params,
  plan: ApplyPlan,
): ApplyResult<S> {
  const stats = plan.gradStats;
  if (stats) {
    measureGradients(grads, stats);
    if (plan.stopOnNonFiniteGradients) {
      const maxAbs = stats.maxAbs;
      for (const k in maxAbs) {
        if (!Number.isFinite(maxAbs[k])) return { updates: grads, state, applied: false, nonFiniteGradient: k };
      }
    }
  }
  freshStats = stats ? plan : null;
  let r: ApplyResult<S>;
  try {
    r = tx.updateApply
      ? tx.updateApply(grads, state, params, plan, 1, Number.NaN)
      : { ...tx.update(plan.writable ? plan.writable(grads) : grads, state, params), applied: false };
  } finally {
    freshStats = null;
  }
  // the caller applies these updates itself: the weights' bounds are read again on the next fused step
  if (!r.applied) for (const k of Object.keys(plan.weightBounds)) delete plan.weightBounds[k];
  return r;
}

/** The identity transformation (a placeholder). */
export function identity(): GradientTransformation<StateRecord> {
  return {
    kind: 'identity',
    init: () => ({ kind: 'identity' }),
    update: (grads, state) => ({ updates: grads, state }),
  };
}

/**
 * p ← p + u for every parameter, in place (optax's `apply_updates`): the updates already carry the minus sign and
 * the learning rate.
 * @param params parameters by path
 * @param updates updates by path (keys missing from `updates` are left alone)
 * @param sumSquares when given, receives each updated parameter's sum of squares after the update, measured in the
 *   same pass (a monitor's weight norms at no extra read)
 * @param updateSumSquares when given (with `sumSquares`), receives each update's sum of squares, from the same pass
 * @example optim.applyUpdates(params, tx.update(grads, state, params).updates);
 */
export function applyUpdates(
  params: Params,
  updates: Params,
  sumSquares?: Record<string, number>,
  updateSumSquares?: Record<string, number>,
): void {
  for (const [k, u] of Object.entries(updates)) {
    const p = params[k];
    if (!p) throw new Error(`applyUpdates(): updates has '${k}', which params lacks`);
    if (p.size !== u.size) throw new Error(`applyUpdates(): '${k}' has ${p.size} elements but its update ${u.size}`);
    if (sumSquares) {
      sumSquares[k] = p.storage.backend.axpySumSquares(1, u.buf, p.buf, p.size, updateSumSquares ? uss : undefined);
      if (updateSumSquares) updateSumSquares[k] = uss[0]!;
    } else p.storage.backend.axpy(1, u.buf, p.buf, p.size);
  }
}
const uss = new Float64Array(1);

/** The largest finite float32, 3.4028235e38: w + u overflows to ±Inf only when |w| + |u| may reach it. */
const FLT_MAX = 3.4028234663852886e38;

/** Which parameter an update would make non-finite, and why (see {@link findNonFiniteUpdate}). */
export interface NonFiniteUpdate {
  /** The parameter's path (`layers.0.weight`). */
  path: string;
  /**
   * `update`: the update itself holds NaN or ±Inf (a learning rate or a moment that overflowed); `overflow`: the
   * update is finite but w + u overflows float32; `weights`: the parameter already held NaN or ±Inf.
   */
  cause: 'update' | 'overflow' | 'weights';
}

/**
 * The first parameter that `applyUpdates(params, updates)` would leave holding a NaN or an infinity, or null when
 * every w + u is finite. Reads each update once (the backend's max-|u| reduction, NaN when u holds one); the weights
 * are read only when a bound cannot settle it: with `weightSumSquares` (each parameter's Σw² from the last
 * `applyUpdates`), max |w| ≤ √Σw², and w + u is finite when max |w| + max |u| < FLT_MAX; else max |w| is read, and
 * only when that bound fails too (near overflow) are the sums checked one by one, as float32 adds them.
 *
 * NOTE: checking the gradients is not enough: a finite gradient times a huge learning rate (`lr: 1e39` is Inf in
 * float32) or an overflowing moment gives a non-finite update; and checking after the write is too late (the old
 * weights cannot be recovered from w + u exactly).
 * @param params parameters by path
 * @param updates updates by path (as `applyUpdates` takes them)
 * @param weightSumSquares each parameter's sum of squares, if known and current (e.g. `applyUpdates`' `sumSquares`)
 * @example const bad = optim.findNonFiniteUpdate(params, updates); if (bad) throw new Error(bad.path);
 */
export function findNonFiniteUpdate(
  params: Params,
  updates: Params,
  weightSumSquares?: Readonly<Record<string, number>>,
): NonFiniteUpdate | null {
  for (const [path, u] of Object.entries(updates)) {
    const p = params[path];
    if (!p) continue; // applyUpdates names it
    const be = p.storage.backend;
    const maxU = u.storage.backend.maxAbs(u.buf, u.size);
    if (!Number.isFinite(maxU)) return { path, cause: 'update' };
    const ss = weightSumSquares?.[path];
    if (ss !== undefined && Math.sqrt(ss) + maxU < FLT_MAX) continue;
    const maxW = be.maxAbs(p.buf, p.size);
    if (!Number.isFinite(maxW)) return { path, cause: 'weights' };
    if (maxW + maxU < FLT_MAX) continue;
    const w = p.data;
    const d = u.data;
    for (let i = 0; i < w.length; i++)
      if (!Number.isFinite(Math.fround(w[i]! + d[i]!))) return { path, cause: 'overflow' };
  }
  return null;
}

/** A sentence for a {@link NonFiniteUpdate}: `the update of 'fc.weight' holds NaN or Inf`. */
export function describeNonFiniteUpdate(bad: NonFiniteUpdate): string {
  switch (bad.cause) {
    case 'update':
      return `the update of '${bad.path}' holds NaN or Inf`;
    case 'overflow':
      return `the update of '${bad.path}' is finite but w + u overflows float32 (|w + u| > 3.4e38)`;
    case 'weights':
      return `'${bad.path}' already holds NaN or Inf`;
  }
}

/**
 * Every state record inside a (chained) state, depth first, for monitors: `stateRecords(state).find(s => s.kind ===
 * 'clipByGlobalNorm')` gives the norm before clipping of the last step.
 */
export function stateRecords(state: unknown): StateRecord[] {
  const out: StateRecord[] = [];
  const walk = (s: unknown) => {
    if (!s || typeof s !== 'object') return;
    const r = s as { kind?: unknown; inner?: unknown };
    if (typeof r.kind === 'string') out.push(r as StateRecord);
    if (Array.isArray(r.inner)) for (const x of r.inner) walk(x);
    else if (r.inner && typeof r.inner === 'object') walk(r.inner);
  };
  walk(state);
  return out;
}
