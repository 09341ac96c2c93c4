/**
 * The native sgemm, both implementations (OpenBLAS and our own native/gemm_x86.c, where this build has it), against
 * a float64 reference: shapes around every block and register-tile edge (MR 12/6, NR 32/16, KC 384/256, MC, NC),
 * transposes, offsets, leading dimensions, alpha and beta (beta = 0 must ignore C, NaN included), and products big
 * enough to run on several threads. Skipped where the addon was not built. The same checks run on the addon built
 * for AVX2 (test/native-variant.ts), whose 6x16 kernel this AVX-512 machine would otherwise never run.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeVariant } from '../../test/native-variant.js';
import { createNativeBackend, type NativeBackend } from './native.js';
import type { Buf } from './types.js';

/** The per-shape choices this file makes go to a cache of its own (read by the addon at each new shape). */
const cacheDir = mkdtempSync(join(tmpdir(), 'gg-gemm-cache-'));
process.env.GRADGUARD_CACHE_DIR = cacheDir;
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

const native = createNativeBackend();
/** The addon as an AVX2 machine builds it, so that the 6x16 AVX2 kernel is checked on this AVX-512 machine too. */
const avx2 = nativeVariant('haswell');

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}
function uniform(r: () => number, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = r() * 2 - 1;
  return a;
}
const buf = (d: Float32Array): Buf => ({ data: d }) as unknown as Buf;

/** C = A·Bᵀ (A m×k, B n×k) on a given number of threads, C filled with NaN first (beta 0 must ignore it). */
function productOn(
  be: NativeBackend,
  m: number,
  n: number,
  k: number,
  a: Float32Array,
  b: Float32Array,
): (threads: number) => Float32Array {
  return (threads) => {
    be.setThreads(threads);
    const c = new Float32Array(m * n).fill(Number.NaN);
    be.sgemm(false, true, m, n, k, 1, buf(a), 0, k, buf(b), 0, k, 0, buf(c), 0, n);
    return c;
  };
}

/** Runs one product natively and checks C (all of it, padding included) against float64 within a rounding bound. */
function check(
  be: NativeBackend,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  beta: number,
  r: () => number,
  pad = [3, 1, 2],
  off = [5, 3, 7],
): void {
  const aRows = transA ? k : m;
  const aCols = transA ? m : k;
  const bRows = transB ? n : k;
  const bCols = transB ? k : n;
  const lda = aCols + pad[0]!;
  const ldb = bCols + pad[1]!;
  const ldc = n + pad[2]!;
  const [aOff, bOff, cOff] = off as [number, number, number];
  const A = uniform(r, aOff + aRows * lda + 4);
  const B = uniform(r, bOff + bRows * ldb + 4);
  const C = uniform(r, cOff + m * ldc + 4);
  if (beta === 0) for (let i = 0; i < m; i++) C.fill(Number.NaN, cOff + i * ldc, cOff + i * ldc + n);
  const got = C.slice();
  be.sgemm(transA, transB, m, n, k, alpha, buf(A), aOff, lda, buf(B), bOff, ldb, beta, buf(got), cOff, ldc);
  const u = (k + 2) * 2 ** -24;
  const a = (i: number, p: number) => A[aOff + (transA ? p * lda + i : i * lda + p)]!;
  const b = (p: number, j: number) => B[bOff + (transB ? j * ldb + p : p * ldb + j)]!;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let sa = 0;
      for (let p = 0; p < k; p++) {
        const t = a(i, p) * b(p, j);
        s += t;
        sa += Math.abs(t);
      }
      const c0 = C[cOff + i * ldc + j]!;
      const want = alpha * s + (beta === 0 ? 0 : beta * c0);
      const bound = u * (Math.abs(alpha) * sa + (beta === 0 ? 0 : Math.abs(beta * c0))) + 1e-30;
      const g = got[cOff + i * ldc + j]!;
      if (!(Math.abs(g - want) <= bound)) {
        throw new Error(
          `sgemm ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} m=${m} n=${n} k=${k} alpha=${alpha} beta=${beta}: C[${i}, ${j}] got ${g}, want ${want}`,
        );
      }
    }
  }
  // nothing outside the m×n window of C changed
  for (let i = 0; i < C.length; i++) {
    const at = i - cOff;
    const inside = at >= 0 && Math.floor(at / ldc) < m && at % ldc < n;
    if (!inside && !Object.is(got[i], C[i])) throw new Error(`sgemm wrote outside C at ${i} (m=${m} n=${n} k=${k})`);
  }
}

/** The implementations to check on each build: OpenBLAS, and our own where the build has it. */
function implsOf(be: NativeBackend): string[] {
  const own = be.selectGemm('own');
  be.selectGemm('auto');
  return ['openblas', ...(own === 'openblas' ? [] : ['own'])];
}

describe.skipIf(!native)('GRADGUARD_POOL_ADAPT', () => {
  it('takes 0, 1 or nothing, and names the variable and the fix for anything else', () => {
    const before = process.env.GRADGUARD_POOL_ADAPT;
    try {
      for (const ok of ['0', '1', '']) {
        process.env.GRADGUARD_POOL_ADAPT = ok;
        expect(createNativeBackend()).not.toBeNull();
      }
      for (const bad of ['yes', 'off', '2', ' 0']) {
        process.env.GRADGUARD_POOL_ADAPT = bad;
        expect(() => createNativeBackend()).toThrow(
          /GRADGUARD_POOL_ADAPT='.*' is not 0 or 1: set it to 0 .* or unset it/,
        );
      }
    } finally {
      if (before === undefined) delete process.env.GRADGUARD_POOL_ADAPT;
      else process.env.GRADGUARD_POOL_ADAPT = before;
    }
  });
});

describe.skipIf(!native)('native sgemm', () => {
  afterAll(() => {
    native?.selectGemm('auto');
  });

  it('reports which implementation runs', () => {
    expect(native!.selectGemm('auto')).toMatch(/^(openblas|own-avx512|own-avx2|per-shape:own-avx(512|2)\+openblas)$/);
    expect(native!.gemmImpl).toBe(native!.selectGemm('auto'));
    expect(native!.selectGemm('openblas')).toBe('openblas');
    expect(native!.gemmShapeChoice(false, true, 128, 256, 784)).toBe('openblas');
  });

  it('per shape: a large shape is measured on its first product and keeps its choice; C is computed once', () => {
    const policy = native!.selectGemm('auto');
    if (!policy.startsWith('per-shape:')) return; // OpenBLAS's generic kernels here: ours for every shape
    const own = policy.slice('per-shape:'.length).split('+')[0]!;
    // below 1 MFLOP: the fixed rule, no measurement (the same choice in every process)
    expect(native!.gemmShapeChoice(false, false, 16, 16, 16)).toMatch(/^(openblas|own-avx512|own-avx2)$/);
    // a shape no other test multiplies: not measured yet, then measured by its first product
    const [m, n, k] = [97, 211, 389];
    expect(native!.gemmShapeChoice(false, true, m, n, k)).toBe('');
    const r = lcg(21);
    // beta = 1 and 0: the measurement runs into a scratch C, so the caller's C is updated exactly once
    check(native!, false, true, m, n, k, 1, 1, r);
    const chosen = native!.gemmShapeChoice(false, true, m, n, k);
    expect([own, 'openblas']).toContain(chosen);
    check(native!, false, true, m, n, k, 0.5, 0, r);
    expect(native!.gemmShapeChoice(false, true, m, n, k)).toBe(chosen);
    // the same inputs give the same bits every time in this process
    const A = uniform(r, m * k);
    const B = uniform(r, n * k);
    const once = () => {
      const C = new Float32Array(m * n);
      native!.sgemm(false, true, m, n, k, 1, buf(A), 0, k, buf(B), 0, k, 0, buf(C), 0, n);
      return C;
    };
    const first = once();
    for (let i = 0; i < 3; i++) expect(once()).toEqual(first);
    // each transposition is a shape of its own
    expect(native!.gemmShapeChoice(true, true, m, n, k)).toBe('');
    // the choice is the machine's: kept in its cache, one file per shape, for every later process to read
    const files = readdirSync(cacheDir).filter((f) => f.endsWith(`-NT-${m}x${n}x${k}`));
    expect(files).toHaveLength(1);
    expect(readFileSync(join(cacheDir, files[0]!), 'utf8')).toBe(chosen === 'openblas' ? 'openblas\n' : 'own\n');
  });

  it('per shape: a choice another process cached is used, not measured again', () => {
    const policy = native!.selectGemm('auto');
    if (!policy.startsWith('per-shape:')) return;
    const own = policy.slice('per-shape:'.length).split('+')[0]!;
    const written = readdirSync(cacheDir).find((f) => f.endsWith('-NT-97x211x389'));
    expect(written).toBeDefined();
    const r = lcg(5);
    // two fresh shapes, one cached as OpenBLAS's and one as ours, whatever a measurement would say
    for (const [shape, text, want] of [
      [[101, 203, 397], 'openblas\n', 'openblas'],
      [[103, 207, 401], 'own\n', own],
    ] as const) {
      const [m, n, k] = shape;
      writeFileSync(join(cacheDir, written!.replace('97x211x389', `${m}x${n}x${k}`)), text);
      expect(native!.gemmShapeChoice(false, true, m, n, k)).toBe('');
      check(native!, false, true, m, n, k, 1, 0, r);
      expect(native!.gemmShapeChoice(false, true, m, n, k)).toBe(want);
    }
  });

  it("per shape: the choice is the shape's whatever the thread count, and ours gives the same bits on 1 and 2 threads", () => {
    const before = native!.threads;
    const r = lcg(9);
    // shapes large enough to be measured (1 MFLOP) and cut across the pool (2 MFLOP, 64 columns)
    const shapes: [boolean, boolean, number, number, number][] = [
      [false, true, 128, 256, 784],
      [true, false, 256, 784, 128],
      [false, false, 113, 389, 157],
    ];
    const product = (ta: boolean, tb: boolean, m: number, n: number, k: number, A: Float32Array, B: Float32Array) => {
      const C = new Float32Array(m * n);
      native!.sgemm(ta, tb, m, n, k, 1, buf(A), 0, ta ? m : k, buf(B), 0, tb ? k : n, 0, buf(C), 0, n);
      return C;
    };
    native!.choosePool('threads'); // every job on two threads posted to them, however busy the machine
    try {
      for (const which of ['auto', 'own'] as const) {
        const policy = native!.selectGemm(which);
        for (const [ta, tb, m, n, k] of shapes) {
          const A = uniform(r, m * k);
          const B = uniform(r, k * n);
          native!.setThreads(1);
          const one = product(ta, tb, m, n, k, A, B);
          const choice = native!.gemmShapeChoice(ta, tb, m, n, k);
          native!.setThreads(2);
          // already chosen: a shape measured on one thread is not measured again on two
          expect(native!.gemmShapeChoice(ta, tb, m, n, k)).toBe(choice);
          const two = product(ta, tb, m, n, k, A, B);
          // OpenBLAS may round a product cut into column chunks differently (docs/benchmarks.md, "The native sgemm")
          if (policy.startsWith('own-') || choice.startsWith('own-')) expect(two).toEqual(one);
        }
      }
    } finally {
      native!.choosePool('measure');
      native!.setThreads(before);
      native!.selectGemm('auto');
    }
  });

  for (const impl of native ? implsOf(native) : []) gemmSuite(native!, impl, /^own-/);
});

describe.skipIf(!avx2.backend)(
  `native sgemm, built for AVX2${avx2.backend ? '' : ` (skipped: ${avx2.skipReason})`}`,
  () => {
    afterAll(() => {
      avx2.backend?.selectGemm('auto');
    });

    it('runs the AVX2 kernel', () => {
      expect(avx2.backend!.selectGemm('own')).toBe('own-avx2');
      avx2.backend!.selectGemm('auto');
    });

    gemmSuite(avx2.backend!, 'own', /^own-avx2$/);
  },
);

/** The shape checks for one build and implementation; `own` matches the name its own sgemm must report. */
function gemmSuite(be: NativeBackend, impl: string, own: RegExp): void {
  if (!be) return; // a skipped describe still collects its body
  describe(impl, () => {
    it('small and odd shapes, every transpose, alpha and beta', () => {
      expect(be.selectGemm(impl as 'own' | 'openblas')).toMatch(impl === 'own' ? own : /^openblas$/);
      const r = lcg(11);
      const shapes: [number, number, number][] = [
        [1, 1, 1],
        [1, 5, 3],
        [5, 1, 3],
        [3, 7, 1],
        [7, 13, 19],
        [11, 17, 5],
        [12, 32, 8],
        [13, 33, 9],
        [6, 16, 4],
        [25, 47, 31],
        [33, 65, 129],
        [4, 8, 256],
        [1, 300, 17],
      ];
      for (const [m, n, k] of shapes) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            for (const [alpha, beta] of [
              [1, 0],
              [-0.5, 1],
              [2, 0.25],
            ]) {
              check(be, transA, transB, m, n, k, alpha!, beta!, r);
            }
          }
        }
      }
      // tight leading dimensions and no offsets
      check(be, false, false, 9, 10, 11, 1, 0, r, [0, 0, 0], [0, 0, 0]);
      check(be, true, true, 9, 10, 11, 1, 1, r, [0, 0, 0], [0, 0, 0]);
    });

    it('past every block edge, on several threads', () => {
      expect(be.selectGemm(impl as 'own' | 'openblas')).toMatch(impl === 'own' ? own : /^openblas$/);
      const r = lcg(12);
      // k over KC (384/256) twice, n over NC (768/512), m over MC (192/120), none a multiple of a tile
      check(be, false, false, 197, 781, 401, 1, 0, r);
      check(be, true, false, 61, 70, 800, 0.5, 1, r);
      check(be, false, true, 130, 1030, 300, 1, 0.5, r);
      check(be, true, true, 45, 99, 777, -1, 0, r);
      // the shapes of the benchmark's MLP and CNN (scaled down in n where the float64 reference is slow)
      check(be, false, false, 64, 1000, 288, 1, 0, r);
      check(be, false, true, 64, 288, 1000, 1, 1, r);
      check(be, true, false, 288, 64, 1000, 1, 0, r);
      check(be, false, false, 128, 256, 784, 1, 0, r);
      // its weight gradient (k <= 128, rows of B 784 = 49·16 floats apart: ours reads B where it is stored), with
      // beta, scaled down in m; and A not transposed, 304 = 19·16 columns (too many slivers to read A in place)
      check(be, true, false, 40, 784, 128, 0.5, 1, r, [3, 0, 2]);
      check(be, false, false, 30, 304, 77, 1, 0, r, [3, 0, 2]);
      // B of rows up to 256 floats over k up to 1024, read where it is stored too (a recurrent step's dG or [h; x; 1]):
      // past KC twice, a last half sliver (48 = 32 + 16), A transposed or not
      check(be, true, false, 40, 64, 900, 1, 0, r, [3, 0, 2]);
      check(be, false, false, 27, 48, 800, 0.5, 1, r, [3, 0, 2]);
      // narrow n, wider m: computed as Cᵀ (a conv weight gradient, logits)
      check(be, false, true, 32, 9, 5000, 1, 0, r);
      check(be, false, false, 64, 10, 1600, 2, 0.5, r);
      check(be, true, true, 50, 7, 400, 1, 1, r);
      check(be, true, false, 45, 3, 20, -1, 0, r);
      // one register tile over a long k: cut into k slices (up to 64 of them, summed in float64)
      check(be, true, false, 3, 5, 100_000, 0.5, 1, r);
      check(be, false, false, 12, 32, 3 * 768 + 5, 1, 0, r);
    });

    // (OpenBLAS makes no such promise)
    if (impl === 'own')
      it('gives the same bits on one thread and on two', () => {
        be.selectGemm('own');
        const r = lcg(13);
        const before = be.threads;
        // every job on two threads posted to them, however busy the test runner keeps the machine
        be.choosePool('threads');
        try {
          // a conv1 weight gradient (32 filters of 3x3 over 64 images of 26x26: cut along k), a narrow product cut by
          // rows, and the MLP's first layer (cut by columns)
          for (const [tA, tB, m, n, k] of [
            [false, true, 32, 9, 43_264],
            [false, true, 64, 10, 1600],
            [false, true, 128, 256, 784],
            // its weight gradient: B read where it is stored, cut by columns
            [true, false, 256, 784, 128],
            // an LSTM step's products: cut by rows (one chunk per thread), and by rows over a long k
            [false, false, 512, 64, 128],
            [true, false, 128, 64, 512],
            // a recurrent layer's weight gradient over the sequence: one sliver of columns, A read where it is stored
            [false, true, 100, 32, 2000],
            // and in one product for all gates: 161 = 5·32 + 1 columns, the last sliver by the one-vector kernel
            [false, true, 60, 161, 900],
          ] as const) {
            const a = uniform(r, m * k);
            const b = uniform(r, k * n);
            const out = (threads: number) => {
              be.setThreads(threads);
              const c = new Float32Array(m * n).fill(Number.NaN);
              be.sgemm(tA, tB, m, n, k, 1, buf(a), 0, tA ? m : k, buf(b), 0, tB ? k : n, 0, buf(c), 0, n);
              return c;
            };
            const one = out(1);
            expect(one.every(Number.isFinite)).toBe(true);
            expect(out(2)).toEqual(one);
          }
        } finally {
          be.choosePool('measure');
          be.setThreads(before);
        }
      });

    // Where A's rows run along k and B is narrow, ours reads A where it is stored instead of packing it, except
    // where the rows' stride would put them in the same L1 set (4 KiB apart: then it packs). Both orders of reading
    // must give the same bits: the same A at a leading dimension of k + 3 (read in place) and of 1024 (packed).
    if (impl === 'own')
      it('gives the same bits whether A is packed or read where it is stored', () => {
        be.selectGemm('own');
        const r = lcg(14);
        for (const [transB, m, n, k] of [
          [true, 29, 40, 900],
          [false, 13, 33, 500],
          [true, 100, 161, 800],
        ] as const) {
          const b = uniform(r, k * n);
          const a = uniform(r, m * k);
          const out = (lda: number) => {
            const aStored = new Float32Array(m * lda).fill(Number.NaN);
            for (let i = 0; i < m; i++) aStored.set(a.subarray(i * k, (i + 1) * k), i * lda);
            const c = new Float32Array(m * n).fill(Number.NaN);
            be.sgemm(false, transB, m, n, k, 1, buf(aStored), 0, lda, buf(b), 0, transB ? k : n, 0, buf(c), 0, n);
            return c;
          };
          const inPlace = out(k + 3);
          expect(inPlace.every(Number.isFinite)).toBe(true);
          expect(out(1024)).toEqual(inPlace);
        }
      });

    // Where B's rows run along n, k is at most 128 and B's rows lie an odd multiple of 16 floats apart, ours reads B
    // where it is stored instead of packing it (the MLP's weight gradient, rows of 784 floats); at an even multiple
    // (4 KiB aliasing among its rows) it packs; rows of up to 256 floats it reads in place over k up to 1024. Both
    // must give the same bits: the same B at ldb n and at a multiple of 512 floats; with a last half sliver (784, 304,
    // 48 = 32 + 16 columns) or none (96, 64), A transposed or not (304: too many slivers to read A in place), k past
    // KC, beta 0 or not, on one thread and two.
    if (impl === 'own')
      it('gives the same bits whether B is packed or read where it is stored', () => {
        be.selectGemm('own');
        const r = lcg(31);
        const before = be.threads;
        try {
          for (const [transA, m, n, k, beta] of [
            [true, 100, 784, 128, 0],
            [true, 37, 784, 100, 0.5],
            [false, 29, 304, 64, 0],
            [true, 13, 48, 128, 1],
            [true, 25, 96, 33, 0],
            // rows of up to 256 floats over k up to 1024, past KC
            [true, 40, 64, 900, 0],
            [false, 27, 48, 800, 0.5],
          ] as const) {
            const a = uniform(r, m * k);
            const b = uniform(r, k * n);
            const c0 = uniform(r, m * n);
            const out = (ldb: number, threads: number) => {
              be.setThreads(threads);
              const bStored = new Float32Array(k * ldb).fill(Number.NaN);
              for (let p = 0; p < k; p++) bStored.set(b.subarray(p * n, (p + 1) * n), p * ldb);
              const c = beta === 0 ? new Float32Array(m * n).fill(Number.NaN) : c0.slice();
              be.sgemm(transA, false, m, n, k, 1, buf(a), 0, transA ? m : k, buf(bStored), 0, ldb, beta, buf(c), 0, n);
              return c;
            };
            const inPlace = out(n, 1);
            expect(inPlace.every(Number.isFinite)).toBe(true);
            // rows a multiple of 512 floats apart (4 KiB aliasing, and over 256 floats): packed
            expect(out(Math.ceil((n + 16) / 512) * 512, 1)).toEqual(inPlace);
            expect(out(n, 2)).toEqual(inPlace);
          }
        } finally {
          be.setThreads(before);
        }
      });

    // Every chunk packs the whole other operand again: a small product (an MLP layer, a recurrent step's) goes to the
    // pool in one chunk per thread, a large one in two (a thread the OS holds up then leaves half a share). Both
    // implementations: OpenBLAS runs on the pool's threads by columns. The workers are held, so the caller computes
    // every chunk and the count is the job's, whatever the machine's load.
    it('cuts a small product into one chunk per thread on the pool, a large one into two', () => {
      if (!own.test(be.selectGemm('own'))) return; // no pool in this build: OpenBLAS keeps its own threads
      be.selectGemm(impl as 'own' | 'openblas');
      const r = lcg(19);
      const before = be.threads;
      try {
        be.setThreads(2);
        be.holdPoolWorkers(true);
        const shapes: [boolean, boolean, number, number, number, number][] = [
          [false, true, 128, 256, 784, 2], // the MLP's first layer, 51 MFLOP
          [false, true, 128, 512, 784, 4], // twice that
          [true, false, 256, 784, 128, 2], // its weight gradient
          [false, false, 512, 64, 128, 2], // an LSTM step's, 8.4 MFLOP
          [true, false, 128, 64, 512, 2],
        ];
        for (const [tA, tB, m, n, k, chunks] of shapes) {
          check(be, tA, tB, m, n, k, 1, 0, r);
          expect([m, n, k, be.poolLastChunks()]).toEqual([m, n, k, chunks]);
        }
      } finally {
        be.holdPoolWorkers(false);
        be.setThreads(before);
      }
    });

    // A busy machine may not run the pool's worker for a long while: the caller must not wait for it (it used to spin
    // until the worker had done its share), but take the worker's chunks itself, with the same bits.
    if (impl === 'own')
      it('finishes a product on two threads when the worker never runs, with the same bits', () => {
        be.selectGemm('own');
        const r = lcg(17);
        const before = be.threads;
        try {
          for (const [m, n, k] of [
            [32, 9, 43_264], // k slices, through gg_parallel_for
            [128, 256, 784], // cut by columns
            [384, 20, 300], // cut by rows
          ] as const) {
            const a = uniform(r, m * k);
            const b = uniform(r, k * n);
            const out = productOn(be, m, n, k, a, b);
            const one = out(1);
            out(2); // starts the pool
            const byWorkers = be.holdPoolWorkers(true);
            let held: Float32Array;
            try {
              held = out(2);
            } finally {
              expect(be.holdPoolWorkers(false)).toBe(byWorkers);
            }
            expect(held).toEqual(one);
            expect(out(2)).toEqual(one);
          }
        } finally {
          be.holdPoolWorkers(false);
          be.setThreads(before);
        }
      });

    // A busy machine may also stop the worker in the middle of its chunk: the caller then sleeps until the worker has
    // finished it, and the bits are the same. The next job goes to the workers again: the pool does not back off to
    // the caller alone (it did, for 32-256 jobs, until an A/B showed no gain: docs/benchmarks.md).
    if (impl === 'own')
      it('waits for a worker stopped mid-chunk, with the same bits, and hands the next job out again', () => {
        be.selectGemm('own');
        const r = lcg(23);
        const before = be.threads;
        const [m, n, k] = [128, 256, 784]; // two chunks of 25 MFLOP on two threads
        const a = uniform(r, m * k);
        const b = uniform(r, k * n);
        const out = productOn(be, m, n, k, a, b);
        try {
          const one = out(1);
          out(2); // starts the pool
          // the same bits, compared as bytes
          const same = (c: Float32Array) => Buffer.from(c.buffer).equals(Buffer.from(one.buffer));
          for (let i = 0; i < 3; i++) {
            const byWorkers = be.holdPoolWorkers('midChunk');
            expect(same(out(2))).toBe(true);
            const stopped = be.holdPoolWorkers(false);
            // the stopped worker finished the chunk left to it (one, or two where it had taken the first chunk
            // before the caller came: how many depends on which thread got there first, never the bits)
            expect(stopped).toBeGreaterThan(byWorkers);
            // the next job is posted to the workers, not kept on the caller: the caller leaves the last chunk to
            // them, and the worker stopped mid-chunk takes it again (a pool that backed off to the caller alone
            // would leave the count where it was)
            be.holdPoolWorkers('midChunk');
            expect(same(out(2))).toBe(true);
            expect(be.holdPoolWorkers(false)).toBeGreaterThan(stopped);
          }
        } finally {
          be.holdPoolWorkers(false);
          be.setThreads(before);
        }
      });

    // A worker that waits for the next job on a busy machine loses its CPU to the other processes and sees the job
    // late; it then sleeps right after each of the next jobs instead of waiting (a woken thread gets the CPU back
    // sooner than a waiting one that has used its share), and the products keep their bits. Told that it is late
    // (holdPoolWorkers('late')), the worker naps: the count of naps grows, one at most per job it saw.
    if (impl === 'own')
      it('lets a worker that sees its jobs late sleep right after them, with the same bits', () => {
        be.selectGemm('own');
        const r = lcg(29);
        const before = be.threads;
        const [m, n, k] = [128, 256, 784]; // two chunks of 25 MFLOP on two threads
        const a = uniform(r, m * k);
        const b = uniform(r, k * n);
        const out = productOn(be, m, n, k, a, b);
        try {
          const one = out(1);
          out(2); // starts the pool
          const same = (c: Float32Array) => Buffer.from(c.buffer).equals(Buffer.from(one.buffer));
          const naps = be.poolNaps();
          be.holdPoolWorkers('late');
          let jobs = 0;
          const run = () => {
            jobs++;
            expect(same(out(2))).toBe(true);
          };
          for (let i = 0; i < 8; i++) run();
          // a worker counts its nap after its chunks, just before it sleeps, and the caller never waits for that; on
          // a busy machine it may not have run yet: more jobs until it has (10 s at most)
          const deadline = Date.now() + 10_000;
          while (be.poolNaps() === naps && Date.now() < deadline) run();
          const napped = be.poolNaps() - naps;
          expect(napped).toBeGreaterThan(0);
          // at most one a job (and one for the job before, had the worker found itself late there)
          expect(napped).toBeLessThanOrEqual(jobs + 1);
          be.holdPoolWorkers(false);
          expect(same(out(2))).toBe(true);
        } finally {
          be.holdPoolWorkers(false);
          be.setThreads(before);
        }
      });

    // The pool times each kind of job (here: one product shape) on its threads and on the caller alone and runs it the
    // way that has been faster, so that a second thread that does not pay (a busy machine) costs nothing. The
    // timings are faked here (the clock's would make the test depend on the machine's load); the products are real,
    // and every way gives the bits of the one-thread product.
    if (impl === 'own')
      it('runs a kind of job alone or on the threads, whichever its timings favour, with the same bits', () => {
        be.selectGemm('own');
        const r = lcg(31);
        const before = be.threads;
        const [m, n, k] = [64, 256, 128]; // 4.2 MFLOP: on the pool with two threads, in one chunk a thread
        const a = uniform(r, m * k);
        const b = uniform(r, k * n);
        const out = productOn(be, m, n, k, a, b);
        // jobs run alone out of `jobs`, each product checked bit for bit against the one-thread product
        const run = (jobs: number) => {
          const { alone } = be.poolJobs();
          for (let i = 0; i < jobs; i++) expect(Buffer.from(out(2).buffer).equals(oneBytes)).toBe(true);
          return be.poolJobs().alone - alone;
        };
        const oneBytes = Buffer.from(out(1).buffer);
        try {
          be.poolCrowd(2); // two CPUs free of other processes, whatever the test runner's load
          out(2); // starts the pool
          // forced: every job posted to the threads (whether a worker wakes in time to take a chunk is the OS's
          // business), or none: then the workers compute nothing
          be.choosePool('threads');
          expect(run(20)).toBe(0);
          be.choosePool('alone');
          const idle = be.holdPoolWorkers(false);
          expect(run(20)).toBe(20);
          expect(be.holdPoolWorkers(false)).toBe(idle);
          // alone 1 us, the threads 2 us: after a few jobs on the threads (the first ones, a burst of them where the
          // workers were found asleep) and two alone to time it, the caller keeps this kind's jobs
          be.choosePool('measure', { alone: 1000, threads: 2000 });
          const first = run(300);
          expect(first).toBeGreaterThan(250);
          expect(first).toBeLessThan(300);
          // the machine turns quiet: the threads 0.5 us. The caller's jobs keep running alone until a burst of jobs
          // on the threads (after 512 alone) times them again; the jobs go back to the threads, the caller alone
          // tried now and then
          be.choosePool('measure', { alone: 1000, threads: 500 }, true);
          run(600);
          expect(run(200)).toBeLessThan(40);
          // threads faster from the start: only a few alone (two to time it, one every 256 jobs after that)
          be.choosePool('measure', { alone: 2000, threads: 1000 });
          expect(run(300)).toBeLessThan(20);
        } finally {
          be.choosePool('measure');
          be.poolCrowd(-1);
          be.setThreads(before);
        }
      });

    // Beside other processes that hold the CPUs, a woken worker takes CPU time from them and they from the caller,
    // which no kind's timings see: with fewer than 1.55 CPUs free of them (read from /proc/stat), every job runs
    // alone, whatever its kind's timings, until more than 1.75 are free; then a burst times the threads again. The
    // free CPUs are faked here, the products real, every one with the one-thread product's bits.
    if (impl === 'own')
      it('runs every job alone while other processes hold the CPUs, and goes back to the threads after', () => {
        be.selectGemm('own');
        const r = lcg(37);
        const before = be.threads;
        const [m, n, k] = [64, 256, 128];
        const a = uniform(r, m * k);
        const b = uniform(r, k * n);
        const out = productOn(be, m, n, k, a, b);
        const oneBytes = Buffer.from(out(1).buffer);
        // jobs run alone and, of them, with the CPUs crowded, out of `jobs`
        const run = (jobs: number) => {
          const { alone, crowded } = be.poolJobs();
          for (let i = 0; i < jobs; i++) expect(Buffer.from(out(2).buffer).equals(oneBytes)).toBe(true);
          const now = be.poolJobs();
          return [now.alone - alone, now.crowded - crowded];
        };
        try {
          be.poolCrowd(2);
          out(2); // starts the pool
          // the threads twice as fast as the caller alone: a few alone to time it, the rest on the threads
          be.choosePool('measure', { alone: 2000, threads: 1000 });
          expect(run(100)[0]).toBeLessThan(10);
          expect(be.poolCrowd(1)).toBe(1); // another process holds one of the two CPUs
          expect(run(100)).toEqual([100, 100]);
          expect(be.poolCrowd(1.6)).toBe(1.6); // between the two bounds: still crowded
          expect(run(20)).toEqual([20, 20]);
          be.poolCrowd(1.8); // freed: the threads again, at once (a burst), then as the timings say
          const [alone, crowded] = run(100);
          expect(crowded).toBe(0);
          expect(alone).toBeLessThan(10);
          // measured: after a few readings 50 ms apart (the jobs read /proc/stat), a count of CPUs, the machine's
          // at most (it reads only those this process may run on); 10 s at most, jobs until then
          if (process.platform === 'linux') {
            be.poolCrowd(-1);
            const deadline = Date.now() + 10_000;
            while (be.poolCrowd() < 0 && Date.now() < deadline) run(5);
            const free = be.poolCrowd();
            expect(free).toBeGreaterThanOrEqual(0);
            expect(free).toBeLessThanOrEqual(availableParallelism());
          }
        } finally {
          be.choosePool('measure');
          be.poolCrowd(-1);
          be.setThreads(before);
        }
      });
  });
}
