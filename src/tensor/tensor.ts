/**
 * The float32 Tensor and its reverse-mode autodiff tape.
 *
 * A tensor is a row-major, contiguous block of float32 values with a shape. An op that has a tensor requiring grad
 * as input records a node (its inputs and a backward function) on the result; `backward()` sorts the graph
 * topologically and walks it in reverse, as micrograd does. Every op's forward and its gradient sit side by side in
 * `tensor/ops/*.ts`.
 *
 * Memory: buffers come from the backend's pool. `tidy(fn)` releases every buffer allocated inside `fn` except those of
 * the tensors it returns or `keep()`s, so a training step reuses the previous step's memory instead of page-faulting
 * on fresh arrays. Tensors made outside `tidy` are returned to the pool when garbage-collected.
 */
import { getBackend } from '../backend/index.js';
import { Binary, type Buf } from '../backend/types.js';
import { Storage, unwatch, watch, watchSoon, watchUnwatched } from './storage.js';

export { Storage } from './storage.js';

/** The stack of open `tidy` scopes: each tracks the storages allocated while it is open. */
const scopes: Set<Storage>[] = [];

/**
 * The innermost open scope, or undefined.
 * NOTE: not `scopes[scopes.length - 1]`, which with no scope open reads index -1, a property name that V8 looks up in
 * its runtime through the prototype chain (a string made from the number, every call).
 */
function innermostScope(): Set<Storage> | undefined {
  const n = scopes.length;
  return n > 0 ? scopes[n - 1] : undefined;
}

/** Allocates a storage of `size` elements (contents unspecified) on the current backend. */
export function allocStorage(size: number): Storage {
  const backend = getBackend();
  const buf = backend.alloc(size);
  const st = new Storage(buf, backend);
  const scope = innermostScope();
  if (scope) scope.add(st);
  else watch(st);
  return st;
}

function releaseStorage(st: Storage): void {
  if (!st.buf) return;
  st.backend.free(st.buf);
  st.buf = null;
}

/** Moves a storage out of the open scope so it outlives it (parameters, gradients, optimizer state). */
function untrack(st: Storage): void {
  for (let i = scopes.length - 1; i >= 0; i--) {
    if (scopes[i]!.delete(st)) {
      watch(st);
      return;
    }
  }
}

export type TensorLike =
  | Tensor
  | readonly TensorLike[]
  | { readonly [k: string]: TensorLike }
  | number
  | string
  | boolean
  | null
  | undefined;

/**
 * Runs `fn` and releases every tensor buffer it allocated, except those reachable from its result and those passed
 * to `keep()`. Use it around a training step so memory is reused instead of freshly allocated.
 *
 * @example
 * const loss = tidy(() => { const l = model.forward(x).crossEntropy(y); l.backward(); return l.item(); });
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Storage>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const st of scope) releaseStorage(st);
    throw e;
  }
  scopes.pop();
  const kept = new Set<Storage>();
  collect(result as TensorLike, kept);
  const parent = innermostScope();
  for (const st of scope) {
    if (kept.has(st)) {
      if (parent) parent.add(st);
      else watch(st);
    } else releaseStorage(st);
  }
  return result;
}

function collect(x: TensorLike, out: Set<Storage>): void {
  if (x instanceof Tensor) {
    out.add(x.storage);
    if (x.grad) out.add(x.grad.storage);
  } else if (Array.isArray(x)) for (const v of x) collect(v, out);
  else if (x && typeof x === 'object') for (const v of Object.values(x)) collect(v as TensorLike, out);
}

/** Keeps `t` alive past the enclosing `tidy` scopes. Returns `t`. */
export function keep<T extends Tensor>(t: T): T {
  untrack(t.storage);
  return t;
}

/**
 * Sets `t` to zeros in place, lazily (@internal: zeroGrad's): the zeros are written when anything first reads it, and
 * a backward that would add its gradient into them writes the gradient instead (see `Storage.zeroPending`).
 */
export function zeroLazily(t: Tensor): void {
  if (t.storage.buf) t.storage.zeroPending = true;
  else void t.buf; // released: throws, naming it
}

/** Releases a tensor's buffer now. Using it afterwards throws. */
export function dispose(t: Tensor): void {
  for (const s of scopes) s.delete(t.storage);
  unwatch(t.storage);
  releaseStorage(t.storage);
}

let gradEnabled = true;

/** Runs `fn` without recording the autodiff graph (like `torch.no_grad()`). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Whether ops currently record the graph. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** A backward function: given the output's gradient, each input's gradient (null where not needed). */
export type BackwardFn = (grad: Tensor, needs: readonly boolean[]) => (Tensor | null)[];

/**
 * How an op adds up two gradients of its output, where a fused pass does better than their sum alone (an op ending
 * in a ReLU applies its mask there: see `fromOp`).
 */
export type SumGradsFn = (a: Tensor, b: Tensor) => Tensor;

interface Node {
  readonly inputs: readonly Tensor[];
  readonly backward: BackwardFn;
  readonly op: string;
  readonly sumGrads?: SumGradsFn | undefined;
}

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  /** Whether gradients flow to this tensor. Leaves set it; op results inherit it. */
  requiresGrad: boolean;
  /** The gradient accumulated by `backward()` (leaves only, as PyTorch). */
  grad: Tensor | null = null;
  /** @internal the op that produced this tensor */
  node: Node | null = null;
  /** @internal only the graph holds it: backward() releases its buffer (see `graphOwned`) */
  graphOwned = false;

  /** @internal use `tensor()`, `zeros()` and the ops instead */
  constructor(
    readonly storage: Storage,
    shape: readonly number[],
    requiresGrad = false,
  ) {
    this.shape = shape;
    this.size = sizeOf(shape);
    this.requiresGrad = requiresGrad;
  }

  /** @internal the backend buffer; throws if the tensor was released */
  get buf(): Buf {
    const st = this.storage;
    const b = st.buf;
    if (!b) {
      throw new Error(
        'this tensor was released at the end of tidy() (or by dispose()); return it from the tidy function or call keep() on it',
      );
    }
    if (st.zeroPending) {
      st.zeroPending = false;
      st.backend.fill(b, 0, b.size);
    }
    return b;
  }

  /** A live view of the values (do not keep it across ops on the wasm backend: memory growth replaces views). */
  get data(): Float32Array {
    return this.buf.data.subarray(0, this.size);
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** Whether this tensor was made by the user (not by an op). */
  get isLeaf(): boolean {
    return this.node === null;
  }

  /** A copy of the values as a flat array of numbers. */
  toArray(): number[] {
    return Array.from(this.data);
  }

  /** A copy of the values as a Float32Array. */
  toFloat32Array(): Float32Array {
    return Float32Array.from(this.data);
  }

  /** The value of a one-element tensor. */
  item(): number {
    if (this.size !== 1) {
      throw new Error(`item(): the tensor has ${this.size} elements (shape [${this.shape}]); item() needs exactly one`);
    }
    return this.buf.data[0]!;
  }

  /** A tensor sharing this one's values, outside the graph (like PyTorch's `detach()`). */
  detach(): Tensor {
    return new Tensor(this.storage, this.shape, false);
  }

  /** Marks this leaf as requiring grad (in place). Returns this. */
  requiresGrad_(flag = true): this {
    if (!this.isLeaf) throw new Error('requiresGrad_(): only leaf tensors can change requiresGrad; use detach() first');
    this.requiresGrad = flag;
    return this;
  }

  /**
   * Computes the gradient of this tensor with respect to every leaf that requires grad, accumulating into `.grad`.
   * Then, as PyTorch frees a graph, it releases the activations only the graph holds (`graphOwned`: nn.Sequential's
   * between its own layers), which a loop without `tidy()` reuses; a second backward through them needs `retainGraph`.
   * @param grad the gradient of the final objective with respect to this tensor; defaults to 1 for a scalar
   * @param opts `retainGraph`: keep those buffers, to call backward through the same graph again
   */
  backward(grad?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    if (!this.requiresGrad) {
      throw new Error(
        'backward(): this tensor does not require grad; create the inputs with { requiresGrad: true } and do not call backward() inside noGrad()',
      );
    }
    if (!grad && this.size !== 1) {
      throw new Error(
        `backward(): the tensor has shape [${this.shape}]; backward() without a gradient needs a scalar (call .sum() or .mean() first)`,
      );
    }
    if (grad && (grad.ndim !== this.ndim || grad.shape.some((d, i) => d !== this.shape[i]))) {
      throw new Error(
        `backward(): the gradient has shape [${grad.shape}] but the tensor has shape [${this.shape}]; pass a gradient of the same shape`,
      );
    }
    const retain = (opts as { retainGraph?: unknown } | null)?.retainGraph;
    if (opts === null || typeof opts !== 'object' || (retain !== undefined && typeof retain !== 'boolean')) {
      throw new TypeError(
        `backward(): options must be an object such as { retainGraph: true } (retainGraph true or false), got ${JSON.stringify(opts)}`,
      );
    }
    runBackward(this, grad, retain === true);
  }

  toString(): string {
    const vals = this.size <= 20 ? this.toArray().map((v) => +v.toPrecision(5)) : `${this.size} values`;
    return `Tensor(shape=[${this.shape}], ${JSON.stringify(vals)}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

/**
 * Runs backward from `root`. Every buffer allocated while it runs (the seed of ones, the gradients of the
 * intermediate tensors, their sums) goes back to the pool when it returns: none of them is ever visible outside this
 * function (a leaf's `.grad` is a copy in its own storage, allocated apart; backward functions are created by the ops
 * and keep nothing), so a training loop written without `tidy()` reuses them on the next step instead of allocating
 * fresh arrays that only the garbage collector would return.
 */
function runBackward(root: Tensor, grad: Tensor | undefined, retainGraph: boolean): void {
  watchUnwatched();
  const scope = new Set<Storage>();
  scopes.push(scope);
  let order: Tensor[] = [];
  try {
    order = walkBackward(root, grad ?? full(root.shape, 1), scope);
  } finally {
    scopes.pop();
    for (const st of scope) releaseStorage(st);
  }
  if (!retainGraph) for (const t of order) if (t.graphOwned) dispose(t);
}

/**
 * @internal Marks intermediates `ts` that only ops and the library's modules saw (nn.Sequential's) as held by the graph
 * alone: the next backward() through them releases their buffers (unless `retainGraph`). Not those whose storage is
 * also one of `keepers`' (the caller's input and output, whatever left its hands: views share storage).
 */
export function graphOwned(ts: readonly Tensor[], keepers: readonly Tensor[]): void {
  for (const t of ts) {
    if (t.requiresGrad && t.node && !keepers.some((k) => k.storage === t.storage)) t.graphOwned = true;
  }
}

/** Tensors in topological order (inputs first), the gradients run through them, and returns that order. */
function walkBackward(root: Tensor, seed: Tensor, scope: Set<Storage>): Tensor[] {
  // topological order by iterative DFS
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1] = i + 1;
      const c = inputs[i]!;
      if (c.requiresGrad && !visited.has(c)) {
        visited.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  if (order.some((t) => t.graphOwned && !t.storage.buf)) {
    throw new Error(
      'backward(): this graph was already run backward, which released the activations it held (as PyTorch frees its graph); pass { retainGraph: true } to the first backward() to run it again',
    );
  }
  const grads = new Map<Tensor, Tensor>();
  const owned = new Set<Tensor>();
  grads.set(root, seed);
  // as noGrad(), without a closure made every step
  const prevGrad = gradEnabled;
  gradEnabled = false;
  try {
    for (let k = order.length - 1; k >= 0; k--) {
      const t = order[k]!;
      const g = grads.get(t);
      if (!g) continue;
      if (!t.node) {
        accumulateLeaf(t, g, scope);
        continue;
      }
      grads.delete(t);
      // NOTE: a backward may hand its incoming gradient on to several inputs (add gives it to both), so once passed
      // on, a sum this loop made is shared and must not be updated in place any more.
      owned.delete(g);
      const { inputs, backward } = t.node;
      const needs = inputs.map((x) => x.requiresGrad);
      const gin = backward(g, needs);
      for (let j = 0; j < inputs.length; j++) {
        const x = inputs[j]!;
        const gx = gin[j];
        if (!needs[j] || !gx) continue;
        const prev = grads.get(x);
        if (prev) {
          // NOTE: backward functions may return aliases (add returns its incoming gradient to both inputs), so only a
          // sum this loop made itself is updated in place.
          let acc = prev;
          if (owned.has(prev)) prev.storage.backend.axpy(1, gx.buf, prev.buf, prev.size);
          else if (x.node?.sumGrads) {
            // the op's own sum of its first two gradients (never updated in place: a third makes a new sum)
            grads.set(x, x.node.sumGrads(prev, gx));
            continue;
          } else acc = sum(prev, gx);
          owned.add(acc);
          grads.set(x, acc);
        } else grads.set(x, gx);
      }
    }
  } finally {
    gradEnabled = prevGrad;
  }
  return order;
}

/**
 * a + b (same size) in a new tensor of a's shape, in one pass: the bits of copying a and adding b into the copy with
 * axpy (alpha 1 adds in float32, and the sum is commutative), which read and wrote a once more.
 */
function sum(a: Tensor, b: Tensor): Tensor {
  const st = allocStorage(a.size);
  st.backend.binary(Binary.Add, a.buf, b.buf, st.buf!, [a.size], [1], [1]);
  return new Tensor(st, a.shape);
}

/**
 * Adds `g` into the leaf's `.grad`, or makes it the `.grad` when there is none (the first backward, or after
 * `zeroGrad({ setToNone: true })`). A gradient this backward pass allocated (in `scope`) is taken over as it is, as
 * PyTorch's AccumulateGrad steals its incoming gradient: no copy, and its buffer is not returned to the pool. It
 * leaves the scope, so a second leaf that receives the same storage (add hands its gradient to both inputs) copies
 * it; and no backward writes into a gradient it has passed on (walkBackward updates in place only the sums it made,
 * before passing them on), so the taken-over values stay as they were.
 */
function accumulateLeaf(t: Tensor, g: Tensor, scope: Set<Storage>): void {
  if (t.grad) {
    const st = t.grad.storage;
    if (!st.buf) {
      throw new Error('backward(): the .grad of a leaf was released; call keep() on it or zero it with zeroGrad()');
    }
    if (!st.zeroPending) st.backend.axpy(1, g.buf, t.grad.buf, t.size);
    else overwriteZeroed(st, g, scope);
    return;
  }
  if (g.size === t.size && scope.delete(g.storage)) {
    const st = g.storage;
    watchSoon(st);
    t.grad = new Tensor(st, t.shape);
    return;
  }
  // own a persistent copy: g may alias the seed or another tensor's storage
  const st = new Storage(getBackend().alloc(t.size), getBackend());
  watchSoon(st);
  st.backend.copy(g.buf, 0, st.buf!, 0, t.size);
  t.grad = new Tensor(st, t.shape);
}

/**
 * A `.grad` zeroed by `Optimizer.zeroGrad()` and not written yet (zeroPending) receives the gradient itself, as after
 * `zeroGrad({ setToNone: true })` (a −0 stays −0, where 0 + g would give +0), in the same tensor: the buffer this
 * backward wrote it into, where it may take that over (as accumulateLeaf does; a backend whose registry holds buffers,
 * wasm's, copies instead), the old one back to the pool; no fill, and no pass that adds into zeros.
 */
function overwriteZeroed(st: Storage, g: Tensor, scope: Set<Storage>): void {
  st.zeroPending = false;
  const nb = g.storage.buf;
  const old = st.buf!;
  if (
    nb?.size === old.size &&
    st.backend.collectorFrees &&
    g.storage.backend === st.backend &&
    scope.delete(g.storage)
  ) {
    st.backend.free(old);
    st.buf = nb;
  } else st.backend.copy(g.buf, 0, old, 0, g.size);
}

/**
 * Makes the result of an op: a new tensor over `storage` that records `backward` when grad mode is on and an input
 * requires grad. `sumGrads`, if given, adds up the first two gradients the result receives (where it feeds two ops)
 * instead of a plain sum; what it returns is handed to `backward` as the result's gradient (or summed with a third).
 */
export function fromOp(
  op: string,
  storage: Storage,
  shape: readonly number[],
  inputs: readonly Tensor[],
  backward: BackwardFn,
  sumGrads?: SumGradsFn,
): Tensor {
  const t = new Tensor(storage, shape);
  if (gradEnabled && inputs.some((x) => x.requiresGrad)) {
    t.requiresGrad = true;
    t.node = { inputs, backward, op, sumGrads };
  }
  return t;
}

/** An uninitialised tensor of `shape` (contents are whatever the pooled buffer held). */
export function empty(shape: readonly number[]): Tensor {
  return new Tensor(allocStorage(sizeOf(shape)), [...shape]);
}

function checkShape(shape: readonly number[], fn: string): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`${fn}(): shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
}

export interface TensorOptions {
  requiresGrad?: boolean;
}

type Nested = number | readonly Nested[];

function inferShape(v: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = v;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = (cur as readonly Nested[])[0] ?? 0;
  }
  return shape;
}

/**
 * Makes a float32 tensor from values (flat or nested) and an optional shape.
 * @example tensor([1, 2, 3, 4], [2, 2], { requiresGrad: true })
 */
export function tensor(
  values: Nested | Float32Array | ArrayLike<number>,
  shape?: readonly number[],
  opts: TensorOptions = {},
): Tensor {
  let flat: ArrayLike<number>;
  let sh: readonly number[];
  if (values instanceof Float32Array || (typeof values === 'object' && !Array.isArray(values))) {
    flat = values as ArrayLike<number>;
    sh = shape ?? [flat.length];
  } else if (typeof values === 'number') {
    flat = [values];
    sh = shape ?? [];
  } else {
    const inferred = inferShape(values as Nested);
    flat = (values as unknown[]).flat(Number.POSITIVE_INFINITY) as number[];
    sh = shape ?? inferred;
  }
  checkShape(sh, 'tensor');
  if (sizeOf(sh) !== flat.length) {
    throw new Error(`tensor(): ${flat.length} values do not fill shape [${sh}] (${sizeOf(sh)} elements)`);
  }
  const t = empty(sh);
  const d = t.buf.data;
  for (let i = 0; i < flat.length; i++) {
    const v = flat[i];
    if (typeof v !== 'number') throw new Error(`tensor(): value ${i} is ${typeof v}, expected a number`);
    d[i] = v;
  }
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

/** A tensor of `shape` filled with `value`. */
export function full(shape: readonly number[], value: number, opts: TensorOptions = {}): Tensor {
  checkShape(shape, 'full');
  const t = empty(shape);
  t.storage.backend.fill(t.buf, value, t.size);
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 0, opts);
}

export function ones(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return full(shape, 1, opts);
}

/** Zeros with the shape of `t`. */
export function zerosLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return full(t.shape, 0, opts);
}

/** Values start, start+step, ... below end (like `torch.arange`). */
export function arange(start: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  if (step === 0 || !Number.isFinite(step)) throw new Error('arange(): step must be a finite non-zero number');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const t = empty([n]);
  const d = t.buf.data;
  for (let i = 0; i < n; i++) d[i] = start + i * step;
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}
