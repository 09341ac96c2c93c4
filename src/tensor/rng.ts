/**
 * A seeded random number generator (xoshiro128**, Blackman & Vigna 2018) whose whole state is four 32-bit words, so a
 * checkpoint can save it and a resumed run continues the same stream. gradguard never calls `Math.random`.
 */
export type RngState = [number, number, number, number];

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare = Number.NaN;

  /** @param seed any integer; equal seeds give equal streams. */
  constructor(seed = 0) {
    // splitmix32 spreads the seed over the 128-bit state
    let z = (seed | 0) >>> 0;
    const next = () => {
      z = (z + 0x9e3779b9) >>> 0;
      let t = z ^ (z >>> 16);
      t = Math.imul(t, 0x21f0aaad);
      t ^= t >>> 15;
      t = Math.imul(t, 0x735a2d97);
      return (t ^ (t >>> 15)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** The next 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  uniform(): number {
    return this.nextU32() / 4294967296;
  }

  /** Standard normal (Box–Muller; the second value of each pair is kept for the next call). */
  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const v = this.spare;
      this.spare = Number.NaN;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Shuffles `a` in place (Fisher–Yates). */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
  }

  /** The full state, to save in a checkpoint. */
  getState(): { s: RngState; spare: number | null } {
    return { s: [this.s0, this.s1, this.s2, this.s3], spare: Number.isNaN(this.spare) ? null : this.spare };
  }

  /** Restores a state from `getState()`. */
  setState(state: { s: RngState; spare: number | null }): void {
    [this.s0, this.s1, this.s2, this.s3] = state.s.map((x) => x >>> 0) as RngState;
    this.spare = state.spare ?? Number.NaN;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A seed or an RNG: everything random in gradguard takes one. */
export type RandomSource = number | Rng;

export function toRng(src: RandomSource | undefined, what: string): Rng {
  if (src instanceof Rng) return src;
  if (typeof src === 'number' && Number.isFinite(src)) return new Rng(src);
  throw new TypeError(
    `${what}: pass { seed: <integer> } or { rng: new Rng(seed) }; gradguard never draws unseeded randomness`,
  );
}
