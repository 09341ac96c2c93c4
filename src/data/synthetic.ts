/**
 * Seeded synthetic tasks: 2-D spirals (a classifier needs depth and a good init), and the two long-range sequence
 * tasks that show vanishing gradients in recurrent nets, the adding problem and the copy-memory problem.
 *
 * Each draws the training set and then the test set from one `new Rng(seed)`, so a seed fixes both.
 */
import { Rng } from '../tensor/rng.js';
import { withBaseline } from './baseline.js';
import { DataError, type Dataset, type Split } from './types.js';

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) {
    throw new DataError('config', `data.${name} must be an integer >= ${min}, got ${v}`);
  }
}

export interface SpiralsOptions {
  /** Arms, one per class (default 3). */
  classes?: number;
  /** Examples per split (defaults 3,000 and 1,000), classes in turn: example i has class i mod K. */
  trainSize?: number;
  testSize?: number;
  /** Standard deviation of the Gaussian jitter added to the angle, in radians (default 0.2). */
  noise?: number;
  /** How many full turns each arm makes from the centre to radius 1 (default 1). */
  turns?: number;
  seed?: number;
}

/**
 * K interleaved 2-D spirals (after CS231n's spiral data): for an example of class k, with `t ~ U[0, 1)`,
 * `θ = 2π (k / K + turns · t) + noise · N(0, 1)` and the point is `(t cos θ, t sin θ)`.
 */
export function spirals(opts: SpiralsOptions = {}): Dataset {
  const K = opts.classes ?? 3;
  const trainSize = opts.trainSize ?? 3000;
  const testSize = opts.testSize ?? 1000;
  const noise = opts.noise ?? 0.2;
  const turns = opts.turns ?? 1;
  checkInt('classes', K, 2);
  checkInt('trainSize', trainSize, 1);
  checkInt('testSize', testSize, 1);
  if (!(noise >= 0) || !Number.isFinite(noise)) throw new DataError('config', `data.noise must be >= 0, got ${noise}`);
  if (!(turns > 0) || !Number.isFinite(turns)) throw new DataError('config', `data.turns must be > 0, got ${turns}`);
  const rng = new Rng(opts.seed ?? 0);
  const make = (n: number): Split => {
    const x = new Float32Array(n * 2);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const k = i % K;
      const t = rng.uniform();
      const th = 2 * Math.PI * (k / K + turns * t) + noise * rng.normal();
      x[2 * i] = t * Math.cos(th);
      x[2 * i + 1] = t * Math.sin(th);
      y[i] = k;
    }
    return { x, y, n };
  };
  const train = make(trainSize);
  const test = make(testSize);
  return withBaseline({
    name: 'spirals',
    task: 'classification',
    inputShape: [2],
    inputSize: 2,
    targetShape: [],
    numClasses: K,
    train,
    test,
    source: `synthetic spirals (classes ${K}, noise ${noise}, turns ${turns}, seed ${opts.seed ?? 0})`,
  });
}

export interface AddingOptions {
  /** Sequence length T (default 100). */
  length?: number;
  /** Defaults 10,000 and 1,000. */
  trainSize?: number;
  testSize?: number;
  seed?: number;
}

/**
 * The adding problem (Hochreiter & Schmidhuber, "Long Short-Term Memory", 1997, experiment 4), in the form later
 * papers use (Le, Jaitly & Hinton 2015; Arjovsky, Shah & Bengio 2016): each input is a sequence of T steps with two
 * features, `[value, marker]`; values are `U[0, 1)`, and exactly two markers are 1, one at a uniformly chosen step
 * of the first half `[0, ⌊T/2⌋)` and one in the second half `[⌊T/2⌋, T)`. The target is the sum of the two marked
 * values (regression, `targetShape: []`).
 *
 * Always predicting 1 scores a mean squared error of Var(U₁ + U₂) = 1/6 ≈ 0.167 (`baseline`, measured on the training
 * split); a net that learns the task goes far below it.
 * x is `[n, T, 2]`, batch-first.
 */
export function adding(opts: AddingOptions = {}): Dataset {
  const T = opts.length ?? 100;
  const trainSize = opts.trainSize ?? 10_000;
  const testSize = opts.testSize ?? 1000;
  checkInt('length', T, 2);
  checkInt('trainSize', trainSize, 1);
  checkInt('testSize', testSize, 1);
  const rng = new Rng(opts.seed ?? 0);
  const half = Math.floor(T / 2);
  const make = (n: number): Split => {
    const x = new Float32Array(n * T * 2);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const o = i * T * 2;
      for (let t = 0; t < T; t++) x[o + 2 * t] = rng.uniform();
      const a = rng.int(half);
      const b = half + rng.int(T - half);
      x[o + 2 * a + 1] = 1;
      x[o + 2 * b + 1] = 1;
      y[i] = x[o + 2 * a]! + x[o + 2 * b]!;
    }
    return { x, y, n };
  };
  const train = make(trainSize);
  const test = make(testSize);
  return withBaseline({
    name: 'adding',
    task: 'regression',
    inputShape: [T, 2],
    inputSize: T * 2,
    targetShape: [],
    train,
    test,
    source: `synthetic adding problem (T ${T}, seed ${opts.seed ?? 0})`,
  });
}

export interface CopyOptions {
  /** The delay T between the end of the symbols and the recall (default 50): sequences have T + 2S steps. */
  length?: number;
  /** Symbols to memorise, S (default 10). */
  symbols?: number;
  /** Alphabet size A (default 8). */
  alphabet?: number;
  /** Defaults 5,000 and 500. */
  trainSize?: number;
  testSize?: number;
  seed?: number;
}

/**
 * The copy-memory problem (Hochreiter & Schmidhuber 1997; in the form of Arjovsky, Shah & Bengio, "Unitary Evolution
 * Recurrent Neural Networks", 2016). Tokens: 0 is blank, 1..A are symbols, A+1 is the delimiter. An input sequence of
 * L = T + 2S steps holds S random symbols, then T − 1 blanks, the delimiter, and S blanks; the target is blank for the
 * first T + S steps and then the S symbols, in order. Inputs are one-hot, `x: [n, L, A + 2]`; targets are one class
 * per step, `y: [n, L]`, `numClasses = A + 2` (cross-entropy over every step).
 *
 * A net that remembers nothing outputs blanks and then guesses: its cross-entropy is S·ln(A) / (T + 2S) per step and
 * its per-step accuracy (T + S + S/A) / (T + 2S) (`baseline`, measured on the training split: 0.52 and 78.1% for
 * T = 20, S = 10, A = 8).
 */
export function copyTask(opts: CopyOptions = {}): Dataset {
  const T = opts.length ?? 50;
  const S = opts.symbols ?? 10;
  const A = opts.alphabet ?? 8;
  const trainSize = opts.trainSize ?? 5000;
  const testSize = opts.testSize ?? 500;
  checkInt('length', T, 1);
  checkInt('symbols', S, 1);
  checkInt('alphabet', A, 1);
  checkInt('trainSize', trainSize, 1);
  checkInt('testSize', testSize, 1);
  const L = T + 2 * S;
  const C = A + 2;
  const rng = new Rng(opts.seed ?? 0);
  const make = (n: number): Split => {
    const x = new Float32Array(n * L * C);
    const y = new Float32Array(n * L);
    for (let i = 0; i < n; i++) {
      const xo = i * L * C;
      const yo = i * L;
      for (let t = 0; t < L; t++) {
        let token = 0;
        if (t < S) {
          token = 1 + rng.int(A);
          y[yo + T + S + t] = token;
        } else if (t === T + S - 1) token = A + 1;
        x[xo + t * C + token] = 1;
      }
    }
    return { x, y, n };
  };
  const train = make(trainSize);
  const test = make(testSize);
  return withBaseline({
    name: 'copy',
    task: 'classification',
    inputShape: [L, C],
    inputSize: L * C,
    targetShape: [L],
    numClasses: C,
    classNames: ['blank', ...Array.from({ length: A }, (_, i) => `symbol ${i + 1}`), 'delimiter'],
    train,
    test,
    source: `synthetic copy-memory problem (T ${T}, S ${S}, A ${A}, seed ${opts.seed ?? 0})`,
  });
}
