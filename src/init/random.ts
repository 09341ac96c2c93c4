/**
 * Where layers and initializers get their random numbers.
 *
 * Every constructor and initializer takes `{ seed }` or `{ rng }`. When neither is given they draw from one default
 * generator, seeded with 0 when the process starts and reseeded by `manualSeed` (PyTorch's `torch.manual_seed`), so
 * `new nn.Linear(784, 256)` is reproducible from run to run. Nothing in gradguard calls `Math.random`.
 */
import { type RandomSource, Rng, toRng } from '../tensor/rng.js';

let globalRng = new Rng(0);

/** Options of everything that draws random numbers: a seed or an Rng (the Rng wins when both are given). */
export interface RandomInit {
  /** An integer seed: the same seed gives the same values. */
  seed?: number;
  /** A generator (or a seed) to draw from; it advances. */
  rng?: RandomSource;
}

/**
 * Reseeds the default generator that layers and initializers use when given neither `seed` nor `rng`.
 *
 * @param seed any integer
 * @example
 * manualSeed(42);
 * const a = new nn.Linear(4, 2); // the same weights in every run that calls manualSeed(42) first
 */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed)) throw new TypeError(`manualSeed(): seed must be an integer, got ${seed}`);
  globalRng = new Rng(seed);
}

/** The default generator (see `manualSeed`). */
export function defaultRng(): Rng {
  return globalRng;
}

/** The generator `opts` asks for: its `rng`, a fresh one from its `seed`, else the default generator. */
export function resolveRng(opts: RandomInit | undefined, fn: string): Rng {
  const src = opts?.rng ?? opts?.seed;
  if (src === undefined) return globalRng;
  if (typeof src === 'number' && !Number.isInteger(src)) {
    throw new TypeError(`${fn}: seed must be an integer, got ${src}`);
  }
  return toRng(src, fn);
}
