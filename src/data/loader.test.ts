import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rng } from '../tensor/rng.js';
import { type Batch, DataLoader, type LoaderCursor } from './loader.js';
import { DataError, type Split } from './types.js';

/** A split whose row i has inputs [i, i + 0.5] and target 100 + i, so batches show which rows they hold. */
function rows(n: number): Split {
  const x = new Float32Array(n * 2);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[2 * i] = i;
    x[2 * i + 1] = i + 0.5;
    y[i] = 100 + i;
  }
  return { x, y, n };
}

/** The row ids of a batch, read back from its x. */
const ids = (b: Batch) => Array.from({ length: b.size }, (_, r) => b.x[2 * r]!);

describe('DataLoader', () => {
  it('is iterable: for...of gives one epoch of batches, the same as epoch(), then the next epoch', () => {
    const a = new DataLoader(rows(10), { batchSize: 4, seed: 3 });
    const b = new DataLoader(rows(10), { batchSize: 4, seed: 3 });
    for (let epoch = 0; epoch < 2; epoch++) {
      const got: number[][] = [];
      for (const batch of a) got.push(ids(batch));
      const want: number[][] = [];
      for (const batch of b.epoch()) want.push(ids(batch));
      expect(got).toEqual(want);
      expect(got.flat().sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    // spread and Array.from work too; breaking out early leaves the rest of the epoch for the next loop
    const c = new DataLoader(rows(10), { batchSize: 4, seed: 3, shuffle: false });
    for (const batch of c) {
      expect(ids(batch)).toEqual([0, 1, 2, 3]);
      break;
    }
    expect([...c].map((batch) => batch.index)).toEqual([1, 2]);
  });

  it('visits every example once per epoch, with x and y rows that belong together', () => {
    const loader = new DataLoader(rows(10), { batchSize: 4, seed: 3 });
    expect(loader.batchesPerEpoch).toBe(3);
    const sizes: number[] = [];
    const lasts: boolean[] = [];
    const seen: number[] = [];
    // NOTE: a batch's x and y are overwritten by the next one, so each is checked inside the loop
    for (const b of loader.epoch()) {
      sizes.push(b.size);
      lasts.push(b.last);
      seen.push(...ids(b));
      for (let r = 0; r < b.size; r++) {
        expect(b.x[2 * r + 1]).toBe(b.x[2 * r]! + 0.5);
        expect(b.y[r]).toBe(100 + b.x[2 * r]!);
        expect(b.indices[r]).toBe(b.x[2 * r]);
      }
    }
    expect(sizes).toEqual([4, 4, 2]);
    expect(lasts).toEqual([false, false, true]);
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(seen).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('drops the short last batch with dropLast', () => {
    const loader = new DataLoader(rows(10), { batchSize: 4, seed: 0, dropLast: true });
    expect([...loader.epoch()].map((b) => b.size)).toEqual([4, 4]);
    expect(loader.batchesPerEpoch).toBe(2);
  });

  it('reuses its two buffers instead of allocating per batch', () => {
    const loader = new DataLoader(rows(12), { batchSize: 4, seed: 0 });
    const a = loader.next();
    const bx = a.x;
    const by = a.y;
    const b = loader.next();
    expect(b.x).toBe(bx);
    expect(b.y).toBe(by);
    const c = new DataLoader(rows(10), { batchSize: 4, seed: 0 });
    const full = c.next();
    c.next();
    const short = c.next(); // 2 rows: a view of the same buffer
    expect(short.x.buffer).toBe(full.x.buffer);
    expect(short.x.length).toBe(4);
    expect(short.y.length).toBe(2);
  });

  it('reshuffles every epoch, reproducibly from the seed', () => {
    const order = (seed: number, epochs: number) => {
      const l = new DataLoader(rows(20), { batchSize: 5, seed });
      return Array.from({ length: epochs }, () => Array.from(l.epoch(), ids).flat());
    };
    const [e0, e1] = order(1, 2);
    expect(e0).not.toEqual(e1);
    expect(order(1, 2)).toEqual([e0, e1]);
    expect(order(2, 1)[0]).not.toEqual(e0);
  });

  it('walks the split in order with shuffle: false', () => {
    const l = new DataLoader(rows(5), { batchSize: 2, shuffle: false });
    expect(Array.from(l.epoch(), ids).flat()).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(l.epoch(), ids).flat()).toEqual([0, 1, 2, 3, 4]);
  });

  it('rolls over to the next epoch in next() and counts epochs', () => {
    const l = new DataLoader(rows(3), { batchSize: 2, seed: 0 });
    const got = Array.from({ length: 5 }, () => l.next());
    expect(got.map((b) => [b.epoch, b.index, b.size])).toEqual([
      [0, 0, 2],
      [0, 1, 1],
      [1, 0, 2],
      [1, 1, 1],
      [2, 0, 2],
    ]);
  });

  it('a restored cursor continues with exactly the batches an uninterrupted loader gives', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: 0, max: 1000 }),
        (n, batchSize, dropLast, stopAt, seed) => {
          fc.pre(!dropLast || batchSize <= n);
          const opts = { batchSize, dropLast, seed };
          const ref = new DataLoader(rows(n), opts);
          const expected = Array.from({ length: stopAt + 15 }, () => {
            const b = ref.next();
            return [b.epoch, b.index, ...ids(b)];
          });
          const first = new DataLoader(rows(n), opts);
          for (let i = 0; i < stopAt; i++) first.next();
          const saved = JSON.parse(JSON.stringify(first.cursor())) as LoaderCursor;
          const resumed = new DataLoader(rows(n), { ...opts, seed: seed + 1 }); // the seed comes from the cursor
          resumed.restore(saved);
          const rest = Array.from({ length: 15 }, () => {
            const b = resumed.next();
            return [b.epoch, b.index, ...ids(b)];
          });
          expect(rest).toEqual(expected.slice(stopAt));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('takes an RNG it owns', () => {
    const a = new DataLoader(rows(8), { batchSize: 8, rng: new Rng(5) });
    const b = new DataLoader(rows(8), { batchSize: 8, seed: 5 });
    expect(ids(a.next())).toEqual(ids(b.next()));
  });

  it('refuses a cursor saved for other data or batching', () => {
    const c = new DataLoader(rows(10), { batchSize: 4 }).cursor();
    expect(() => new DataLoader(rows(11), { batchSize: 4 }).restore(c)).toThrow(/n 10 \(saved\) vs 11 \(now\)/);
    expect(() => new DataLoader(rows(10), { batchSize: 5 }).restore(c)).toThrow(/batchSize 4 \(saved\) vs 5/);
    expect(() => new DataLoader(rows(10), { batchSize: 4 }).restore({ ...c, batch: 9 })).toThrow(/past the 3 batches/);
  });

  it('rejects bad options with DataError', () => {
    expect(() => new DataLoader(rows(3), { batchSize: 0 })).toThrow(DataError);
    expect(() => new DataLoader(rows(3), { batchSize: 1.5 })).toThrow(/positive integer/);
    expect(() => new DataLoader({ x: new Float32Array(0), y: new Float32Array(0), n: 0 }, { batchSize: 1 })).toThrow(
      /empty/,
    );
    expect(() => new DataLoader(rows(3), { batchSize: 4, dropLast: true })).toThrow(/no batch would ever come out/);
    expect(() => new DataLoader({ x: new Float32Array(5), y: new Float32Array(2), n: 2 }, { batchSize: 1 })).toThrow(
      /not a multiple/,
    );
  });

  it('serves a batch larger than the split as one batch of everything', () => {
    const l = new DataLoader(rows(3), { batchSize: 10, seed: 0 });
    const b = l.next();
    expect(b.size).toBe(3);
    expect(b.last).toBe(true);
  });
});
