/**
 * `Module`: the base class of layers and models, with PyTorch's bookkeeping.
 *
 * A module registers its parameters, buffers and child modules by name, so every tensor has a path such as
 * `layers.3.weight` (PyTorch's `named_parameters()`), and a state dict with PyTorch's keys moves weights between
 * gradguard and PyTorch. `call(x)` runs `forward(x)` and then the forward hooks: a monitor can hook every module and
 * see every layer's output without changing model code, which is why composite modules call their children through
 * `call`, never `forward`.
 */

import { GradguardError } from '../base/errors.js';
import { keep, noGrad, type Tensor, zeroLazily } from '../tensor/tensor.js';

/**
 * A function run after a module's forward pass with the module, its input and its output. Returning a value
 * replaces the output (as in PyTorch); returning nothing keeps it.
 */
export type ForwardHook<In = unknown, Out = unknown> = (
  module: Module<In, Out>,
  input: In,
  output: Out,
  // biome-ignore lint/suspicious/noConfusingVoidType: a hook that returns nothing (void) keeps the output
) => Out | undefined | void;

export interface ForwardHookOptions {
  /**
   * Asked at each forward pass: whether the hook may, this time, be given what an op fusing this module with its
   * neighbour computes instead of the module's own output (nn.Sequential runs an nn.Conv2d and the nn.ReLU after it
   * as conv2dRelu: the hooks of both then see the ReLU's output, as the Conv2d's output and as the ReLU's input; a
   * BatchNorm and its ReLU likewise, and nn.BasicBlock's sum and ReLU, the ReLU's hooks seeing its output as input);
   * the hook's return value is then ignored. Without it (the default), the module never runs fused while the hook
   * is registered: the hook always sees the module's own input and output.
   */
  fused?: () => boolean;
}

/** Any module, whatever its input and output types (for walking a model). */
// biome-ignore lint/suspicious/noExplicitAny: a module of any signature, as in namedModules()
export type AnyModule = Module<any, any>;

/** The library's own module classes whose forward keeps neither its input nor its output (see `keepsNothing`). */
const keepsNothingClasses = new Set<unknown>();

/** @internal Registers module classes (exactly these, not their subclasses) whose forward keeps nothing. */
export function registerKeepsNothing(...classes: unknown[]): void {
  for (const c of classes) keepsNothingClasses.add(c);
}

/**
 * Whether `m` is one of the library's own modules (its exact class, never a subclass that may override a method)
 * without forward hooks: it hands its input and output to no code of yours, so nn.Sequential may let the graph
 * alone hold the activations between such modules (`graphOwned`).
 */
export function keepsNothing(m: AnyModule): boolean {
  return keepsNothingClasses.has(m.constructor) && !m.hasForwardHooks;
}

export interface LoadStateDictOptions {
  /** Whether every key of the model must be in the dict and no other key may be (default true, as PyTorch). */
  strict?: boolean;
}

export interface LoadStateDictResult {
  /** Keys the model has but the dict lacked (only when strict is false). */
  missingKeys: string[];
  /** Keys the dict has but the model lacks (only when strict is false). */
  unexpectedKeys: string[];
}

/** Thrown by `loadStateDict` with every problem listed, as PyTorch's "Error(s) in loading state_dict". */
export class StateDictError extends GradguardError {
  static override readonly code = 'state-dict.mismatch';
  override readonly name = 'StateDictError';
}

/**
 * The base class of every layer and model.
 *
 * Subclasses create their tensors in the constructor and register them with `registerParameter`,
 * `registerBuffer` and `registerModule` (the registered name is the path segment), and implement `forward`.
 *
 * @example
 * class Affine extends Module {
 *   readonly scale = this.registerParameter('scale', ones([1]));
 *   forward(x: Tensor): Tensor { return x.mul(this.scale); }
 * }
 */
export abstract class Module<In = Tensor, Out = Tensor> {
  /** Whether the module is in training mode (dropout active, batch statistics used); see `train()` and `eval()`. */
  training = true;
  readonly #params = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #children = new Map<string, AnyModule>();
  readonly #hooks: ForwardHook<In, Out>[] = [];
  /** The hooks registered with a `fused` predicate (ForwardHookOptions), and it. */
  readonly #fusedOk = new Map<ForwardHook<In, Out>, () => boolean>();

  /**
   * The computation. Call modules through `call()` so that hooks run. A module may take extra arguments after the
   * input (an RNN's initial state); hooks see the first.
   */
  abstract forward(input: In, ...extra: never[]): Out;

  /**
   * Runs `forward(input, ...extra)` then the forward hooks, in registration order (PyTorch's `module(x)`).
   * @param input the module's input
   * @param extra further arguments of `forward` (an RNN's initial state)
   * @returns the output (as replaced by a hook, if one returned a value)
   */
  call(input: In, ...extra: unknown[]): Out {
    let out = this.forward(input, ...(extra as never[]));
    if (this.#hooks.length === 0) return out;
    // a copy, so a hook may remove itself while the others run
    for (const hook of [...this.#hooks]) {
      const r = hook(this, input, out);
      if (r !== undefined) out = r as Out;
    }
    return out;
  }

  /** Whether forward hooks are registered on this module (any kind; `fusable` says whether they let it run fused). */
  get hasForwardHooks(): boolean {
    return this.#hooks.length > 0;
  }

  /**
   * Whether this module may run inside an op fused with its neighbour now: it has no forward hooks, or only hooks
   * registered with a `fused` predicate (ForwardHookOptions) that holds now.
   */
  get fusable(): boolean {
    for (const hook of this.#hooks) {
      const ok = this.#fusedOk.get(hook);
      if (!ok?.()) return false;
    }
    return true;
  }

  /**
   * Runs the forward hooks on what a fused op computed in this module's place (nn.Sequential, where `fusable`);
   * their return values are ignored.
   */
  runFusedHooks(input: In, output: Out): void {
    if (this.#hooks.length === 0) return;
    for (const hook of [...this.#hooks]) hook(this, input, output);
  }

  /**
   * Adds a hook run after every forward pass of this module (not of its children; register on each module of
   * `namedModules()` to see them all).
   * @param hook receives (module, input, output)
   * @param opts `fused`: when the hook may see a fused op's output instead (ForwardHookOptions)
   * @returns a function that removes the hook
   * @example
   * const remove = model.registerForwardHook((m, x, y) => stats.push(y.data));
   */
  registerForwardHook(hook: ForwardHook<In, Out>, opts: ForwardHookOptions = {}): () => void {
    if (typeof hook !== 'function') throw new TypeError('registerForwardHook(): hook must be a function');
    if (opts.fused !== undefined && typeof opts.fused !== 'function')
      throw new TypeError('registerForwardHook(): opts.fused must be a function returning a boolean');
    this.#hooks.push(hook);
    if (opts.fused) this.#fusedOk.set(hook, opts.fused);
    return () => {
      const i = this.#hooks.indexOf(hook);
      if (i >= 0) this.#hooks.splice(i, 1);
      if (!this.#hooks.includes(hook)) this.#fusedOk.delete(hook);
    };
  }

  /**
   * Registers a parameter: it is kept past `tidy` scopes, requires grad, and appears in `namedParameters()` and the
   * state dict under `name`.
   * @returns the tensor
   */
  protected registerParameter(name: string, t: Tensor): Tensor {
    this.checkName(name, 'registerParameter');
    keep(t);
    t.requiresGrad = true;
    this.#params.set(name, t);
    return t;
  }

  /**
   * Registers a buffer: state that is saved and loaded but not trained (BatchNorm's running statistics).
   * @returns the tensor
   */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.checkName(name, 'registerBuffer');
    keep(t);
    this.#buffers.set(name, t);
    return t;
  }

  /**
   * Registers a child module; its tensors get the prefix `name.`.
   * @returns the module
   */
  protected registerModule<M extends AnyModule>(name: string, m: M): M {
    this.checkName(name, 'registerModule');
    if (!(m instanceof Module)) {
      throw new TypeError(`registerModule(): '${name}' must be a Module, got ${m === null ? 'null' : typeof m}`);
    }
    this.#children.set(name, m);
    return m;
  }

  private checkName(name: string, fn: string): void {
    if (typeof name !== 'string' || name === '' || name.includes('.')) {
      throw new Error(`${fn}(): name must be a non-empty string without '.', got '${name}'`);
    }
    if (this.#params.has(name) || this.#buffers.has(name) || this.#children.has(name)) {
      throw new Error(`${fn}(): '${name}' is already registered on ${this.constructor.name}`);
    }
  }

  /** The direct children with their names. */
  namedChildren(): [string, AnyModule][] {
    return [...this.#children];
  }

  /** The direct children. */
  children(): AnyModule[] {
    return [...this.#children.values()];
  }

  /**
   * This module and every descendant with its path ('' for this one), depth first, each module once.
   * @example for (const [name, m] of model.namedModules()) m.registerForwardHook(...)
   */
  namedModules(prefix = ''): [string, AnyModule][] {
    const out: [string, AnyModule][] = [];
    const seen = new Set<AnyModule>();
    const walk = (m: AnyModule, p: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([p, m]);
      for (const [n, c] of m.#children) walk(c, p ? `${p}.${n}` : n);
    };
    walk(this, prefix);
    return out;
  }

  /** This module and every descendant. */
  modules(): AnyModule[] {
    return this.namedModules().map(([, m]) => m);
  }

  /**
   * Every parameter with its path, this module's own first, then each child's in registration order (PyTorch's
   * order). A parameter shared by two modules appears once.
   */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [p, m] of this.namedModules()) {
      for (const [n, t] of m.#params) {
        if (seen.has(t)) continue;
        seen.add(t);
        out.push([p ? `${p}.${n}` : n, t]);
      }
    }
    return out;
  }

  /** Every parameter (see `namedParameters`). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Every buffer with its path (BatchNorm's `running_mean`, `running_var`, `num_batches_tracked`). */
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [p, m] of this.namedModules()) {
      for (const [n, t] of m.#buffers) out.push([p ? `${p}.${n}` : n, t]);
    }
    return out;
  }

  /**
   * Parameters and buffers by PyTorch's state-dict keys, each module's parameters then its buffers, then its
   * children. The tensors are the module's own (not copies): save them, do not write into them.
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    const walk = (m: AnyModule, p: string) => {
      for (const [n, t] of m.#params) out[p + n] = t;
      for (const [n, t] of m.#buffers) out[p + n] = t;
      for (const [n, c] of m.#children) walk(c, `${p}${n}.`);
    };
    walk(this, '');
    return out;
  }

  /**
   * Copies values from a state dict into this module's parameters and buffers (in place, so optimizers holding them
   * see the new values).
   *
   * @param dict tensors by key, as from `stateDict()` or `loadSafetensors()`
   * @param opts strict (default true): every key must match; with false, missing and unexpected keys are returned
   * @returns the missing and unexpected keys
   * @throws StateDictError listing missing keys, unexpected keys and shape mismatches (shapes are checked even when
   *   not strict, as PyTorch)
   * @example model.loadStateDict(loadSafetensors('model.safetensors'));
   */
  loadStateDict(dict: Record<string, Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = opts.strict ?? true;
    if (dict === null || typeof dict !== 'object') {
      throw new TypeError(
        `loadStateDict(): dict must be an object of tensors by key, got ${dict === null ? 'null' : typeof dict}`,
      );
    }
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !(k in dict));
    const unexpectedKeys = Object.keys(dict).filter((k) => !(k in own));
    const problems: string[] = [];
    for (const [k, t] of Object.entries(own)) {
      const src = dict[k];
      if (src === undefined) continue;
      if (!src || typeof src !== 'object' || !('shape' in src) || !('data' in src)) {
        problems.push(`value of ${k} is not a Tensor`);
        continue;
      }
      if (src.shape.length !== t.shape.length || src.shape.some((d, i) => d !== t.shape[i])) {
        // NOTE: a scalar saved as [1] (or the other way round) is accepted, as PyTorch's num_batches_tracked
        if (!(src.size === 1 && t.size === 1)) {
          problems.push(
            `size mismatch for ${k}: copying a param with shape [${src.shape}] from checkpoint, the shape in current model is [${t.shape}]`,
          );
        }
      }
    }
    if (strict) {
      if (missingKeys.length)
        problems.unshift(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}`);
      if (unexpectedKeys.length) {
        problems.splice(
          missingKeys.length ? 1 : 0,
          0,
          `Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}`,
        );
      }
    }
    if (problems.length) {
      const hint =
        strict && (missingKeys.length || unexpectedKeys.length)
          ? '\n\t(pass { strict: false } to load the matching keys only)'
          : '';
      throw new StateDictError(
        `Error(s) in loading state_dict for ${this.constructor.name}:\n\t${problems.join('\n\t')}${hint}`,
      );
    }
    noGrad(() => {
      for (const [k, t] of Object.entries(own)) {
        const src = dict[k];
        if (src) t.data.set(src.data);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /**
   * Sets training mode on this module and every descendant (dropout active, BatchNorm uses and updates batch
   * statistics). @returns this
   */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Sets evaluation mode (same as `train(false)`). @returns this */
  eval(): this {
    return this.train(false);
  }

  /**
   * Number of parameter elements (each shared parameter counted once).
   * @param opts trainableOnly: count only parameters that require grad
   */
  numParameters(opts: { trainableOnly?: boolean } = {}): number {
    let n = 0;
    for (const t of this.parameters()) if (!opts.trainableOnly || t.requiresGrad) n += t.size;
    return n;
  }

  /**
   * Clears the gradients of every parameter. By default they are zeroed in place, which reuses their buffers
   * (PyTorch's `set_to_none=False`; lazily: read as zeros, and the next backward writes its gradients into them rather
   * than adding to zeros); with `setToNone` the `.grad` fields become null.
   */
  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    for (const t of this.parameters()) {
      if (!t.grad) continue;
      if (opts.setToNone) t.grad = null;
      else zeroLazily(t.grad);
    }
  }

  /**
   * Applies `fn` to every module, children first and this module last (PyTorch's `apply`, the idiom for custom
   * initialisation). @returns this
   * @example model.apply((m) => { if (m instanceof nn.Linear) init.xavierNormal(m.weight); });
   */
  apply(fn: (m: AnyModule) => void): this {
    for (const c of this.#children.values()) c.apply(fn);
    fn(this);
    return this;
  }

  /**
   * The parameter or buffer at a dotted path.
   * @param path e.g. `'0.weight'` or `'layer1.0.bn1.running_mean'`
   * @throws Error naming the closest module and its tensors when the path does not exist
   * @example init.kaimingNormal(model.get('0.weight'), { nonlinearity: 'relu' });
   */
  get(path: string): Tensor {
    const parts = String(path).split('.');
    const leaf = parts.pop()!;
    const owner = parts.length ? this.getModule(parts.join('.')) : this;
    const t = owner.#params.get(leaf) ?? owner.#buffers.get(leaf);
    if (!t) {
      const names = [...owner.#params.keys(), ...owner.#buffers.keys()];
      const kids = [...owner.#children.keys()];
      throw new Error(
        `get(): no parameter or buffer '${path}'; ${owner.constructor.name}${parts.length ? ` at '${parts.join('.')}'` : ''} has ${names.length ? `tensors ${names.join(', ')}` : 'no tensors'}${kids.length ? ` and children ${kids.join(', ')}` : ''}`,
      );
    }
    return t;
  }

  /**
   * The submodule at a dotted path.
   * @param path e.g. `'layer1.0'`
   */
  getModule(path: string): AnyModule {
    let m: AnyModule = this;
    let walked = '';
    for (const part of String(path).split('.')) {
      const c: AnyModule | undefined = m.#children.get(part);
      if (!c) {
        const kids = [...m.#children.keys()];
        throw new Error(
          `getModule(): no submodule '${part}' in ${m.constructor.name}${walked ? ` at '${walked}'` : ''} (path '${path}'); its children are ${kids.length ? kids.join(', ') : 'none'}`,
        );
      }
      m = c;
      walked = walked ? `${walked}.${part}` : part;
    }
    return m;
  }

  /** A one-line description of this module's own settings (shown by `toString`). */
  protected extraRepr(): string {
    return '';
  }

  /** A PyTorch-like tree of the modules. */
  toString(): string {
    const kids = [...this.#children];
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (!kids.length) return `${head})`;
    const lines = kids.map(([n, c]) => `  (${n}): ${c.toString().split('\n').join('\n  ')}`);
    return `${head}\n${lines.join('\n')}\n)`;
  }
}
