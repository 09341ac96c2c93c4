/**
 * Batching with seeded shuffling and a cursor that a checkpoint can save, so a resumed run sees exactly the batches
 * an uninterrupted run would have seen.
 */
import { Rng, type RngState } from '../tensor/rng.js';
import { DataError, type Split } from './types.js';

export interface DataLoaderOptions {
  /** Examples per batch (a positive integer). */
  batchSize: number;
  /** Reshuffle the order at the start of every epoch (default true). `false` walks the split in order. */
  shuffle?: boolean;
  /** Drop the last batch of an epoch when it has fewer than `batchSize` examples (default false: keep it). */
  dropLast?: boolean;
  /** Seed of the loader's own RNG (default 0); or pass `rng`. */
  seed?: number;
  /**
   * An RNG the loader owns from now on: it draws one permutation per epoch from it and nothing else may draw from it,
   * or a restored cursor would not reproduce the order.
   */
  rng?: Rng;
}

/**
 * One batch. `x` and `y` are views of the loader's preallocated buffers (`size` rows), overwritten by the next call:
 * copy them into your tensors before asking for another batch.
 */
export interface Batch {
  /** `size * inputSize` floats, row-major. */
  x: Float32Array;
  /** `size * targetSize` floats. */
  y: Float32Array;
  /** Rows in this batch: `batchSize`, or fewer for the kept last batch of an epoch. */
  size: number;
  /** Which epoch (from 0) and which batch within it (from 0). */
  epoch: number;
  index: number;
  /** True for the epoch's final batch. */
  last: boolean;
  /** The split's example indices in this batch (a view; overwritten next epoch). */
  indices: Int32Array;
}

/**
 * Where a loader stands, as plain JSON for `state.json`: `restore(cursor)` on a loader built over the same split with
 * the same options continues with the very next batch.
 */
export interface LoaderCursor {
  /** The epoch in progress (from 0) and the number of its batches already returned. */
  epoch: number;
  batch: number;
  /** The loader RNG's state at the start of that epoch, before its permutation was drawn. */
  rng: { s: RngState; spare: number | null };
  /** What the cursor was made for; `restore` refuses a cursor for a different split size or batching. */
  n: number;
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
}

/**
 * Iterates over a split in batches, filling two buffers allocated once (`batchSize` rows each) instead of allocating
 * per batch.
 *
 * Order: at the start of epoch `e` the loader takes the identity permutation `0..n-1` and, if `shuffle`, shuffles it
 * with its RNG (one `rng.shuffle` per epoch, nothing else drawn). Batch `b` is permutation entries
 * `[b * batchSize, (b + 1) * batchSize)`. Since each epoch's order depends only on the RNG state at its start, the
 * cursor saves that state plus the epoch and batch number.
 *
 * @example
 * const loader = new DataLoader(ds.train, { batchSize: 128, seed: 0 });
 * for (const b of loader) { xTensor.buf.data.set(b.x); yTensor.buf.data.set(b.y); step(b.size); } // one epoch
 * const saved = loader.cursor();          // into state.json
 * const again = new DataLoader(ds.train, { batchSize: 128, seed: 0 });
 * again.restore(saved);                   // continues with the same next batch
 */
export class DataLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly inputSize: number;
  readonly targetSize: number;
  /** Batches per epoch: `ceil(n / batchSize)`, or `floor` with `dropLast`. */
  readonly batchesPerEpoch: number;
  private readonly split: Split;
  private readonly rng: Rng;
  private readonly xBuf: Float32Array;
  private readonly yBuf: Float32Array;
  private readonly order: Int32Array;
  private epochStart: { s: RngState; spare: number | null };
  private epochNum = 0;
  private batchNum = 0;

  constructor(split: Split, opts: DataLoaderOptions) {
    const { batchSize } = opts;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new DataError('config', `DataLoader: batchSize must be a positive integer, got ${batchSize}`);
    }
    const { n } = split;
    if (!Number.isInteger(n) || n < 1) throw new DataError('config', `DataLoader: the split is empty (n = ${n})`);
    if (split.x.length % n !== 0 || split.y.length % n !== 0) {
      throw new DataError(
        'size-mismatch',
        `DataLoader: x has ${split.x.length} and y ${split.y.length} values, not a multiple of n = ${n}`,
      );
    }
    this.split = split;
    this.batchSize = batchSize;
    this.shuffle = opts.shuffle ?? true;
    this.dropLast = opts.dropLast ?? false;
    this.inputSize = split.x.length / n;
    this.targetSize = split.y.length / n;
    this.batchesPerEpoch = this.dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
    if (this.batchesPerEpoch === 0) {
      throw new DataError(
        'config',
        `DataLoader: batchSize ${batchSize} is larger than the split (${n} examples) and dropLast is set, so no batch would ever come out; lower batchSize or unset dropLast`,
      );
    }
    this.rng = opts.rng ?? new Rng(opts.seed ?? 0);
    const rows = Math.min(batchSize, n);
    this.xBuf = new Float32Array(rows * this.inputSize);
    this.yBuf = new Float32Array(rows * this.targetSize);
    this.order = new Int32Array(n);
    this.epochStart = this.rng.getState();
    this.drawOrder();
  }

  /** Examples in the split. */
  get n(): number {
    return this.split.n;
  }

  /** The epoch in progress (from 0). */
  get currentEpoch(): number {
    return this.epochNum;
  }

  /** The next batch, moving on to a new epoch (and a new permutation) after the last batch of the current one. */
  next(): Batch {
    if (this.batchNum >= this.batchesPerEpoch) {
      this.epochNum++;
      this.batchNum = 0;
      this.epochStart = this.rng.getState();
      this.drawOrder();
    }
    const b = this.batchNum++;
    const start = b * this.batchSize;
    const size = Math.min(this.batchSize, this.split.n - start);
    const indices = this.order.subarray(start, start + size);
    const { inputSize: xs, targetSize: ys } = this;
    const { x, y } = this.split;
    for (let r = 0; r < size; r++) {
      const i = indices[r]!;
      this.xBuf.set(x.subarray(i * xs, i * xs + xs), r * xs);
      this.yBuf.set(y.subarray(i * ys, i * ys + ys), r * ys);
    }
    const full = size * xs === this.xBuf.length;
    return {
      x: full ? this.xBuf : this.xBuf.subarray(0, size * xs),
      y: full ? this.yBuf : this.yBuf.subarray(0, size * ys),
      size,
      epoch: this.epochNum,
      index: b,
      last: this.batchNum === this.batchesPerEpoch,
      indices,
    };
  }

  /**
   * Yields the remaining batches of the epoch in progress, or all batches of the next epoch when the current one is
   * finished. Breaking out of the loop early is fine: the cursor stays after the last batch yielded.
   */
  *epoch(): Generator<Batch, void, undefined> {
    for (;;) {
      const b = this.next();
      yield b;
      if (b.last) return;
    }
  }

  /**
   * `for (const b of loader)`: one epoch of batches, as `epoch()` (the rest of the epoch in progress, else the next
   * whole one). Each batch's `x` and `y` are the loader's own buffers, overwritten by the next batch: copy what you keep.
   */
  [Symbol.iterator](): Generator<Batch, void, undefined> {
    return this.epoch();
  }

  /** The position to save in a checkpoint (plain JSON). */
  cursor(): LoaderCursor {
    return {
      epoch: this.epochNum,
      batch: this.batchNum,
      rng: { s: [...this.epochStart.s] as RngState, spare: this.epochStart.spare },
      n: this.split.n,
      batchSize: this.batchSize,
      shuffle: this.shuffle,
      dropLast: this.dropLast,
    };
  }

  /** Continues from a saved cursor: the next batch is the one that followed when the cursor was taken. */
  restore(c: LoaderCursor): void {
    const mismatch = (['n', 'batchSize', 'shuffle', 'dropLast'] as const).filter((k) => c[k] !== this[k]);
    if (mismatch.length > 0) {
      const what = mismatch.map((k) => `${k} ${c[k]} (saved) vs ${this[k]} (now)`).join(', ');
      throw new DataError(
        'config',
        `DataLoader.restore: the cursor was saved for different data or batching: ${what}; resume with the same dataset and train.batchSize`,
      );
    }
    if (!Number.isInteger(c.epoch) || c.epoch < 0 || !Number.isInteger(c.batch) || c.batch < 0) {
      throw new DataError('config', `DataLoader.restore: bad cursor position epoch ${c.epoch}, batch ${c.batch}`);
    }
    if (c.batch > this.batchesPerEpoch) {
      throw new DataError(
        'config',
        `DataLoader.restore: cursor batch ${c.batch} is past the ${this.batchesPerEpoch} batches of an epoch`,
      );
    }
    this.rng.setState(c.rng);
    this.epochStart = this.rng.getState();
    this.epochNum = c.epoch;
    this.batchNum = c.batch;
    this.drawOrder();
  }

  private drawOrder(): void {
    const o = this.order;
    for (let i = 0; i < o.length; i++) o[i] = i;
    if (this.shuffle) this.rng.shuffle(o);
  }
}
