/**
 * The threaded wasm module (wasm/gradguard-mt.wasm with worker threads, src/backend/wasm-threads.ts): workers start
 * and take part in large products; the result is the same bit for bit whatever the thread count; it agrees with a
 * float64 reference; memory growth after the workers started is seen by them; a worker that stops never hangs a
 * product; GRADGUARD_THREADS is validated; the process exits with workers alive.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wantedThreads } from './threads.js';
import type { Buf } from './types.js';
import { createWasmBackend, type WasmBackend } from './wasm.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

function load(be: WasmBackend, values: Float32Array): Buf {
  const b = be.alloc(values.length);
  b.data.set(values);
  return b;
}

interface Product {
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  alpha: number;
  beta: number;
}

/** Inputs for a product, with offsets and leading dimensions larger than the operands. */
function inputs(p: Product, seed: number) {
  const r = lcg(seed);
  const aRows = p.transA ? p.k : p.m;
  const aCols = p.transA ? p.m : p.k;
  const bRows = p.transB ? p.n : p.k;
  const bCols = p.transB ? p.k : p.n;
  const lda = aCols + 3;
  const ldb = bCols + 1;
  const ldc = p.n + 2;
  const offs = [5, 3, 7] as const;
  const A = Float32Array.from({ length: offs[0] + aRows * lda }, r);
  const B = Float32Array.from({ length: offs[1] + bRows * ldb }, r);
  const C = Float32Array.from({ length: offs[2] + p.m * ldc }, r);
  return { A, B, C, lda, ldb, ldc, offs };
}

function run(be: WasmBackend, p: Product, seed: number): Float32Array {
  const { A, B, C, lda, ldb, ldc, offs } = inputs(p, seed);
  const a = load(be, A);
  const b = load(be, B);
  const c = load(be, C);
  be.sgemm(p.transA, p.transB, p.m, p.n, p.k, p.alpha, a, offs[0], lda, b, offs[1], ldb, p.beta, c, offs[2], ldc);
  const out = c.data.slice();
  be.free(a);
  be.free(b);
  be.free(c);
  return out;
}

/** float64 reference: C within k·2^-23·(|alpha|·Σ|a·b| + |beta·C|) of it, and C's padding untouched. */
function checkAgainstReference(p: Product, seed: number, got: Float32Array): void {
  const { A, B, C, lda, ldb, ldc, offs } = inputs(p, seed);
  for (let i = 0; i < p.m; i++) {
    for (let j = 0; j < ldc; j++) {
      const at = offs[2] + i * ldc + j;
      if (j >= p.n) {
        expect(got[at]).toBe(C[at]);
        continue;
      }
      let s = 0;
      let mag = 0;
      for (let q = 0; q < p.k; q++) {
        const av = A[offs[0] + (p.transA ? q * lda + i : i * lda + q)]!;
        const bv = B[offs[1] + (p.transB ? j * ldb + q : q * ldb + j)]!;
        s += av * bv;
        mag += Math.abs(av * bv);
      }
      const want = p.alpha * s + (p.beta === 0 ? 0 : p.beta * C[at]!);
      const bound = (p.k + 2) * 2 ** -23 * (Math.abs(p.alpha) * mag + Math.abs(p.beta * C[at]!)) + 1e-30;
      if (Math.abs(got[at]! - want) > bound) {
        throw new Error(`C[${i}, ${j}] = ${got[at]}, want ${want} ± ${bound}`);
      }
    }
  }
}

/** Waits for `cond`; the bound is only a backstop under the test timeout (workers start slowly on a loaded machine). */
async function until(cond: () => boolean, ms = 45_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting for the wasm workers to start');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const products: Product[] = [
  // the MLP's two large products (forward x·W1ᵀ, weight gradient dhᵀ·x): cut along columns
  { transA: false, transB: true, m: 128, n: 256, k: 784, alpha: 1, beta: 0 },
  { transA: true, transB: false, m: 256, n: 784, k: 128, alpha: 1, beta: 1 },
  // taller than wide: cut along rows; sizes off every tile and block edge; alpha and beta not 1; k over KC
  { transA: false, transB: false, m: 517, n: 67, k: 301, alpha: -0.7, beta: 0.5 },
  { transA: true, transB: true, m: 203, n: 299, k: 257, alpha: 1.5, beta: 0 },
  { transA: false, transB: true, m: 61, n: 1100, k: 70, alpha: 1, beta: -2 },
];

describe('threaded wasm backend', () => {
  let be: WasmBackend;
  beforeAll(async () => {
    const b = createWasmBackend(undefined, { threads: 2 });
    expect(b, 'wasm/gradguard-mt.wasm must load in Node (run `npm run build:wasm`)').not.toBeNull();
    be = b!;
    await until(() => be.workersReady >= 1);
  }, 60_000);
  afterAll(() => be.close());

  /**
   * `f()` once, then again until the worker has computed a chunk of one of them (at most WORKER_TRIES times in all);
   * the last result. A sleeping worker wakes after the caller has taken every chunk of a short job, and on a machine
   * busy with other processes it may miss many in a row (20 tries were once not enough there); back-to-back calls keep
   * it spinning, so on a quiet machine the second call or so has it.
   */
  const WORKER_TRIES = 2000;
  function untilWorkerTakesPart<T>(f: () => T): T {
    const before = be.chunksByWorkers;
    let out = f();
    for (let t = 1; t < WORKER_TRIES && be.chunksByWorkers === before; t++) out = f();
    return out;
  }

  it('starts the asked number of threads', () => {
    expect(be.name).toBe('wasm');
    expect(be.threads).toBe(2);
    expect(be.workersReady).toBe(1);
  });

  it('gives the same bits on one and two threads, within float32 rounding of float64, with the worker taking part', () => {
    products.forEach((p, i) => {
      be.setThreads(2);
      const before = be.chunksByWorkers;
      const two = untilWorkerTakesPart(() => run(be, p, i));
      expect(be.chunksByWorkers, `the worker computed part of ${JSON.stringify(p)}`).toBeGreaterThan(before);
      be.setThreads(1);
      const workerChunks = be.chunksByWorkers;
      const one = run(be, p, i);
      expect(be.chunksByWorkers).toBe(workerChunks);
      expect(Buffer.from(two.buffer).equals(Buffer.from(one.buffer)), `bits of ${JSON.stringify(p)}`).toBe(true);
      checkAgainstReference(p, i, two);
    });
    be.setThreads(2);
  });

  it('shares the Adam update of a large tensor out, with the same bits as the one-thread module', () => {
    const one = createWasmBackend(undefined, { threads: 1 })!;
    const n = 200_003;
    const r = lcg(21);
    const g0 = Float32Array.from({ length: n }, r);
    const m0 = Float32Array.from({ length: n }, () => r() * 0.1);
    const v0 = Float32Array.from({ length: n }, () => Math.abs(r()) * 0.01);
    const update = (b: WasmBackend) => {
      const g = load(b, g0);
      const m = load(b, m0);
      const v = load(b, v0);
      b.adamUpdate(g, m, v, n, 0.9, 0.999, 1e-8, 0.1, 0.001, 1, 1);
      return [g, m, v].map((x) => Buffer.from(x.data.slice().buffer));
    };
    const want = update(one);
    be.setThreads(2);
    const before = be.chunksByWorkers;
    const got = untilWorkerTakesPart(() => update(be));
    expect(be.chunksByWorkers).toBeGreaterThan(before);
    for (let i = 0; i < 3; i++) expect(got[i]!.equals(want[i]!)).toBe(true);
  });

  it('shares Adam applied to the weights out: the same weights, moments and sums on any thread count', () => {
    const one = createWasmBackend(undefined, { threads: 1 })!;
    const n = 200_003; // 49 measured blocks of 4096, the last one short
    const r = lcg(22);
    const g0 = Float32Array.from({ length: n }, r);
    const m0 = Float32Array.from({ length: n }, () => r() * 0.1);
    const v0 = Float32Array.from({ length: n }, () => Math.abs(r()) * 0.01);
    const w0 = Float32Array.from({ length: n }, r);
    const out = new Float64Array(2);
    const apply = (b: WasmBackend) => {
      const bufs = [g0, m0, v0, w0].map((a) => load(b, a));
      b.adamApply(bufs[0]!, bufs[1]!, bufs[2]!, bufs[3]!, n, 0.9, 0.999, 1e-8, 0.1, 0.001, 0.5, -1e-3, true, out);
      return [...bufs.map((x) => Buffer.from(x.data.slice().buffer)), Buffer.from(out.slice().buffer)];
    };
    const want = apply(one);
    be.setThreads(2);
    const before = be.chunksByWorkers;
    const got = untilWorkerTakesPart(() => apply(be));
    expect(be.chunksByWorkers).toBeGreaterThan(before);
    for (let i = 0; i < 5; i++) expect(got[i]!.equals(want[i]!), `array ${i}`).toBe(true);
  });

  it('shares large reductions out: the same sum of squares on any thread count, exact maximum and count', () => {
    const n = 300_001; // 19 blocks of 16384, the last one short
    const r = lcg(31);
    const x0 = Float32Array.from({ length: n }, () => r() * 3);
    x0[123_457] = 40.5;
    let want = 0;
    for (const v of x0) want += v * v;
    const x = load(be, x0);
    be.setThreads(1);
    const one = be.sumSquares(x, n);
    be.setThreads(2);
    const before = be.chunksByWorkers;
    // a sum this size takes ~30 µs on one thread, so the caller often takes every block before a sleeping worker wakes
    const two = untilWorkerTakesPart(() => be.sumSquares(x, n));
    expect(be.chunksByWorkers).toBeGreaterThan(before);
    expect(two).toBe(one);
    // blocks of 512 squares are summed in float32 (native/kernels/reduce.c), then in float64
    expect(Math.abs(two - want) / want).toBeLessThan(1e-6);
    const fused1 = new Float64Array(2);
    const fused2 = new Float64Array(2);
    be.setThreads(1);
    be.sumSquaresMaxAbs(x, n, fused1);
    be.setThreads(2);
    be.sumSquaresMaxAbs(x, n, fused2);
    expect(Array.from(fused2)).toEqual(Array.from(fused1));
    expect(Math.abs(fused2[0]! - want) / want).toBeLessThan(1e-6);
    expect(fused2[1]).toBe(40.5);
    expect(be.maxAbs(x, n)).toBe(40.5);
    expect(be.countNonFinite(x, n)).toBe(0);
    x.data[200_000] = Number.POSITIVE_INFINITY;
    x.data[299_999] = Number.NaN;
    x.data[5] = Number.NEGATIVE_INFINITY;
    expect(be.countNonFinite(x, n)).toBe(3);
    expect(be.maxAbs(x, n)).toBeNaN();
    x.data[299_999] = 0;
    expect(be.maxAbs(x, n)).toBe(Number.POSITIVE_INFINITY);
    be.free(x);
  });

  it('keeps small products on the calling thread', () => {
    const before = be.chunksByWorkers;
    const p: Product = { transA: false, transB: false, m: 64, n: 64, k: 64, alpha: 1, beta: 0 };
    checkAgainstReference(p, 9, run(be, p, 9));
    expect(be.chunksByWorkers).toBe(before);
  });

  it('lets workers see memory that grew after they started', () => {
    const big = be.alloc(30_000_000); // 120 MB: the shared memory grows
    be.fill(big, 0, 1);
    const p = products[0]!;
    const before = be.chunksByWorkers;
    const out = untilWorkerTakesPart(() => run(be, p, 11));
    expect(be.chunksByWorkers).toBeGreaterThan(before);
    checkAgainstReference(p, 11, out);
    be.free(big);
  });

  it('refuses a thread count that is not a whole number, and caps it at the threads started', () => {
    expect(() => be.setThreads(0)).toThrow(/whole number of threads/);
    expect(() => be.setThreads(1.5)).toThrow(/whole number of threads/);
    be.setThreads(64);
    expect(be.threads).toBe(2);
  });
});

describe('threaded wasm backend, failure and shutdown', () => {
  it('finishes products on the calling thread when a worker stopped without notice', async () => {
    const be = createWasmBackend(undefined, { threads: 2 })!;
    await until(() => be.workersReady >= 1);
    // stop the workers behind the backend's back: the control words still count one ready
    (be as unknown as { workers: { close(): void } }).workers.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(be.workersReady).toBe(1);
    const p = products[0]!;
    checkAgainstReference(p, 3, run(be, p, 3));
    be.close();
  });

  it('close() stops the workers; products still work after it', async () => {
    const be = createWasmBackend(undefined, { threads: 2 })!;
    await until(() => be.workersReady >= 1);
    be.close();
    expect(be.threads).toBe(1);
    const before = be.chunksByWorkers;
    const p = products[2]!;
    checkAgainstReference(p, 4, run(be, p, 4));
    expect(be.chunksByWorkers).toBe(before);
    be.close(); // twice is fine
  });
});

describe('GRADGUARD_THREADS', () => {
  const saved = process.env.GRADGUARD_THREADS;
  afterAll(() => {
    if (saved === undefined) delete process.env.GRADGUARD_THREADS;
    else process.env.GRADGUARD_THREADS = saved;
  });

  it('sets the thread count; 1 gives the one-thread module', () => {
    process.env.GRADGUARD_THREADS = '3';
    expect(wantedThreads()).toBe(3);
    process.env.GRADGUARD_THREADS = '1';
    const be = createWasmBackend()!;
    expect(be.threads).toBe(1);
    expect(be.workersReady).toBe(0);
    delete process.env.GRADGUARD_THREADS;
    expect(wantedThreads()).toBeGreaterThanOrEqual(1);
  });

  it('rejects what is not a thread count, naming the variable and the fix', () => {
    for (const bad of ['0', '-2', 'two', '1.5', '100000']) {
      process.env.GRADGUARD_THREADS = bad;
      expect(() => createWasmBackend()).toThrow(/GRADGUARD_THREADS='.*' is not a thread count: set it to an integer/);
    }
  });
});

describe('process exit', () => {
  it('does not wait for the workers', () => {
    const mod = fileURLToPath(new URL('./wasm.ts', import.meta.url));
    const code = `
      const { createWasmBackend } = await import(${JSON.stringify(mod)});
      const be = createWasmBackend(undefined, { threads: 2 });
      for (let t = 0; t < 4500 && be.workersReady < 1; t++) await new Promise((r) => setTimeout(r, 10));
      const a = be.alloc(128 * 784), b = be.alloc(784 * 256), c = be.alloc(128 * 256);
      be.sgemm(false, false, 128, 256, 784, 1, a, 0, 784, b, 0, 256, 0, c, 0, 256);
      console.log('threads', be.threads, 'ready', be.workersReady);
    `;
    // A process kept alive by its workers would run into the timeout and be killed (signal set, status null).
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      timeout: 55_000,
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('threads 2 ready 1');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
  });
});
