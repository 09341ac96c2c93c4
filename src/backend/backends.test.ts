/**
 * The native and wasm backends against the reference (JsBackend): every kernel they override, on seeded random
 * inputs, including broadcasting, transposed sgemm with offsets and leading dimensions, convolution geometries with
 * stride, padding and dilation, pooling with padding, and NaN/Inf handling.
 *
 * Each case runs the same kernel on both backends with identical buffers (outputs pre-filled with the same garbage)
 * and compares every buffer afterwards, so a kernel that writes outside its output, skips part of it or modifies an
 * input fails too. Kernels whose arithmetic the C code reproduces exactly (see native/kernels/) are compared
 * exactly; those with transcendental functions to ~1e-6 relative; sgemm within float32 rounding bounds.
 *
 * The wasm module is committed, so its suite always runs; the native one is skipped where the addon was not built.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nativeVariant } from '../../test/native-variant.js';
import { canRun } from '../../test/suites.js';
import { ArrayBuf, JsBackend } from './js.js';
import { createNativeBackend } from './native.js';
import { KERNELS, type KernelSpec } from './spec.js';
import { type Backend, Binary, type Buf, type ConvGeom, type PoolGeom, Unary } from './types.js';
import { createWasmBackend, type WasmBuf } from './wasm.js';

const js = new JsBackend();

/** A small LCG (Numerical Recipes constants): deterministic inputs without Math.random. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function uniform(rand: () => number, n: number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

interface Tol {
  rel: number;
  abs: number;
}
const EXACT: Tol = { rel: 0, abs: 0 };
/** Transcendental functions: float32 implementations within 1-2.5 ulp of the correctly rounded value. */
const ULPS: Tol = { rel: 4e-7, abs: 1e-30 };

/**
 * Whether `got` is `want` within `tol`; NaN matches NaN (payloads aside: the reference's NaN is JavaScript's canonical
 * one, the kernels' whatever the hardware makes). With EXACT, -0 and +0 differ (a kernel that turns -0 into +0, or
 * the other way, has different bits from the reference's), as in `sameBits` but for NaN payloads.
 */
function close(got: number, want: number, tol: Tol): boolean {
  if (Number.isNaN(want) || Number.isNaN(got)) return Number.isNaN(want) && Number.isNaN(got);
  if (tol.rel === 0 && tol.abs === 0) return Object.is(got, want);
  if (got === want) return true;
  return Math.abs(got - want) <= tol.abs + tol.rel * Math.abs(want);
}

function expectClose(got: Float32Array, want: Float32Array, tol: Tol, what: string): void {
  expect(got.length, `${what}: length`).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (!close(got[i]!, want[i]!, tol)) {
      throw new Error(`${what}[${i}]: got ${got[i]}, want ${want[i]} (tolerance rel ${tol.rel}, abs ${tol.abs})`);
    }
  }
}

function load(be: Backend, a: Float32Array): Buf {
  const b = be.alloc(a.length);
  b.data.set(a);
  return b;
}

/**
 * Runs `fn` on the reference and on `be` with copies of `arrays` (inputs and outputs alike) and compares every
 * buffer afterwards, and the return value if there is one.
 */
function same(be: Backend, arrays: Float32Array[], fn: (b: Backend, bufs: Buf[]) => unknown, tol: Tol): void {
  const jb = arrays.map((a) => load(js, a));
  const tb = arrays.map((a) => load(be, a));
  const rj = fn(js, jb);
  const rt = fn(be, tb);
  if (typeof rj === 'number') {
    if (typeof rt !== 'number' || !close(rt, rj, tol)) throw new Error(`result: got ${rt}, want ${rj}`);
  }
  for (let i = 0; i < arrays.length; i++) expectClose(tb[i]!.data, jb[i]!.data, tol, `buffer ${i}`);
  for (const b of jb) js.free(b);
  for (const b of tb) be.free(b);
}

/** As `same` with EXACT, but comparing bit patterns, so that -0 against +0 and NaN payloads count. */
function sameBits(be: Backend, arrays: Float32Array[], fn: (b: Backend, bufs: Buf[]) => unknown): void {
  const jb = arrays.map((a) => load(js, a));
  const tb = arrays.map((a) => load(be, a));
  fn(js, jb);
  fn(be, tb);
  for (let i = 0; i < arrays.length; i++) {
    const w = new Uint32Array(jb[i]!.data.slice().buffer);
    const g = new Uint32Array(tb[i]!.data.slice().buffer);
    const k = w.findIndex((v, j) => g[j] !== v);
    if (k >= 0) throw new Error(`buffer ${i}[${k}]: got ${tb[i]!.data[k]}, want ${jb[i]!.data[k]} (bits)`);
  }
  for (const b of jb) js.free(b);
  for (const b of tb) be.free(b);
}

/** Inputs that exercise the special cases, then random values in [lo, hi]. */
function withSpecials(rand: () => number, n: number, lo: number, hi: number): Float32Array {
  const specials = [
    0,
    -0,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    1e-40,
    -1e-40,
    1,
    -1,
    0.5,
    100,
    -100,
    3.4e38,
    -3.4e38,
  ];
  const a = uniform(rand, n, lo, hi);
  a.set(specials.slice(0, Math.min(n, specials.length)));
  return a;
}

/** Row-major strides of `shape`, with 0 where `inShape` (right-aligned, as NumPy) broadcasts. */
function bcastStrides(shape: number[], inShape: number[]): number[] {
  const out = new Array<number>(shape.length).fill(0);
  let s = 1;
  for (let i = inShape.length - 1; i >= 0; i--) {
    const d = shape.length - inShape.length + i;
    out[d] = inShape[i] === 1 && shape[d] !== 1 ? 0 : s;
    s *= inShape[i]!;
  }
  return out;
}

function prod(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function convGeom(
  n: number,
  c: number,
  h: number,
  w: number,
  kh: number,
  kw: number,
  s: [number, number],
  p: [number, number],
  d: [number, number],
): ConvGeom {
  const oh = Math.floor((h + 2 * p[0] - d[0] * (kh - 1) - 1) / s[0]) + 1;
  const ow = Math.floor((w + 2 * p[1] - d[1] * (kw - 1) - 1) / s[1]) + 1;
  return { n, c, h, w, kh, kw, sh: s[0], sw: s[1], ph: p[0], pw: p[1], dh: d[0], dw: d[1], oh, ow };
}

function poolGeom(
  planes: number,
  h: number,
  w: number,
  kh: number,
  kw: number,
  s: [number, number],
  p: [number, number],
  ceil = false,
): PoolGeom {
  const r = ceil ? Math.ceil : Math.floor;
  let oh = r((h + 2 * p[0] - kh) / s[0]) + 1;
  let ow = r((w + 2 * p[1] - kw) / s[1]) + 1;
  // PyTorch's ceil mode: the last window must start inside the input or the left padding.
  if (ceil && (oh - 1) * s[0] >= h + p[0]) oh--;
  if (ceil && (ow - 1) * s[1] >= w + p[1]) ow--;
  return { planes, h, w, kh, kw, sh: s[0], sw: s[1], ph: p[0], pw: p[1], oh, ow };
}

const native = createNativeBackend();
/** The addon as an AVX2 machine builds it (test/native-variant.ts): skipped where it cannot be built or run. */
const nativeAvx2 = nativeVariant('haswell');
canRun('native', native !== null, 'the native addon did not build or load (needs build-essential and libopenblas-dev)');
canRun('native-avx2', nativeAvx2.backend !== null, nativeAvx2.skipReason);
const wasm = createWasmBackend();
/** The portable module (wasm/gradguard.wasm), which browsers and GRADGUARD_THREADS=1 get. */
const wasmOne = createWasmBackend(undefined, { threads: 1 });

describe('reference NaN semantics (as PyTorch)', () => {
  it('relu keeps NaN, its gradient there is 0; leaky relu keeps NaN', () => {
    const x = load(js, new Float32Array([Number.NaN, -0, 0, -1, 2]));
    const o = js.alloc(5);
    js.unary(Unary.Relu, x, o, 5, 0, 0);
    expect(Array.from(o.data)).toEqual([Number.NaN, 0, 0, 0, 2]);
    expect(Object.is(o.data[1], 0)).toBe(true); // -0 gives +0
    js.unary(Unary.LeakyRelu, x, o, 5, 0.1, 0);
    expect(o.data[0]).toBeNaN();
    const gx = js.alloc(5);
    js.unaryGrad(Unary.Relu, x, x, load(js, new Float32Array([1, 1, 1, 1, 1])), gx, 5, 0, 0);
    expect(Array.from(gx.data)).toEqual([0, 0, 0, 0, 1]);
  });

  it('maxPool2dGrad gives the gradient to the last NaN of the window', () => {
    // one 3×3 window over a 3×3 plane, NaN at positions 1 and 2 (one row) and 6: 6 takes it, and without it 2
    const x = new Float32Array([0, Number.NaN, Number.NaN, 1, 9, 2, Number.NaN, 3, 4]);
    const g = poolGeom(1, 3, 3, 3, 3, [1, 1], [0, 0]);
    const dx = js.alloc(9);
    js.maxPool2dGrad(load(js, x), load(js, new Float32Array([7])), dx, g);
    expect(Array.from(dx.data)).toEqual([0, 0, 0, 0, 0, 0, 7, 0, 0]);
    x[6] = 8;
    js.maxPool2dGrad(load(js, x), load(js, new Float32Array([7])), dx, g);
    expect(Array.from(dx.data)).toEqual([0, 0, 7, 0, 0, 0, 0, 0, 0]);
    // 2×2: NaN in both top positions: the top-right
    const x2 = new Float32Array([Number.NaN, Number.NaN, 1, 2]);
    const dx2 = js.alloc(4);
    js.maxPool2dGrad(load(js, x2), load(js, new Float32Array([3])), dx2, poolGeom(1, 2, 2, 2, 2, [2, 2], [0, 0]));
    expect(Array.from(dx2.data)).toEqual([0, 3, 0, 0]);
  });
});

describe('which kernels run in C', () => {
  // every kernel the spec gives a C function runs it on native and wasm (where the module has it: not wasm: false),
  // none falls back to the JS reference silently
  const cKernels = (inWasm: boolean) =>
    Object.entries(KERNELS as Record<string, KernelSpec>)
      .filter(([, spec]) => spec.c !== null && (!inWasm || spec.wasm !== false))
      .map(([name]) => name);
  const ref = JsBackend.prototype as unknown as Record<string, unknown>;
  for (const [name, be] of [
    ['native', native],
    ['wasm', wasm],
    ['wasm (one thread)', wasmOne],
  ] as const) {
    const withC = cKernels(name !== 'native');
    it.skipIf(!be)(`${name}: its own method for each of the ${withC.length} kernels with C`, () => {
      const own = withC.filter((k) => (be as unknown as Record<string, unknown>)[k] !== ref[k]);
      expect(own).toEqual(withC);
      expect(withC).toEqual(
        expect.arrayContaining([
          'batchNorm',
          'batchNormGrad',
          'layerNorm',
          'layerNormGrad',
          'lstmCell',
          'lstmCellGrad',
        ]),
      );
    });
  }
});

describe.skipIf(!native)('native whole convolution on the thread pool', () => {
  // Images are shared out between the threads and the weight gradient sums blocks fixed by the batch, so the bits
  // must not depend on the thread count, nor on whether a worker ever runs (the caller then takes its images).
  const many = CONV_CASES.filter(([g]) => g.n >= 6);
  const runAll = (be: NonNullable<typeof native>, threads: number, hold: boolean, cases = many): Float32Array[] => {
    be.setThreads(threads);
    const outs: Float32Array[] = [];
    const r = lcg(31);
    for (const [g, oc, groups] of cases) {
      const [xs, ws, ys] = convSizes(g, oc, groups);
      const [x, w, y] = [xs, ws, ys].map((n) => load(be, uniform(r, n)));
      const byWorkers = hold ? be.holdPoolWorkers(true) : 0;
      try {
        be.conv2d(x!, w!, y!, g, oc, groups, true);
        outs.push(y!.data.slice());
        const bias = load(be, uniform(r, oc));
        be.conv2dBias(x!, w!, bias, y!, g, oc, groups, false);
        outs.push(y!.data.slice());
        be.conv2dBias(x!, w!, bias, y!, g, oc, groups, true);
        outs.push(y!.data.slice());
        be.free(bias);
        be.conv2dGradWeight(x!, y!, w!, g, oc, groups);
        outs.push(w!.data.slice());
        be.conv2dGradInput(y!, w!, x!, g, oc, groups);
        outs.push(x!.data.slice());
      } finally {
        if (hold) expect(be.holdPoolWorkers(false)).toBe(byWorkers);
      }
      for (const b of [x, w, y]) be.free(b!);
    }
    return outs;
  };
  it('gives the same bits on one thread and on two, with a worker held off, for our sgemm and OpenBLAS', () => {
    const be = native!;
    const before = be.threads;
    be.choosePool('threads'); // every job on two threads posted to them, however busy the machine
    try {
      for (const gemm of ['own', 'openblas'] as const) {
        be.selectGemm(gemm);
        // (OpenBLAS: the reference's composition, image by image; the smaller cases are enough)
        const cases = gemm === 'own' ? many : many.filter(([g]) => g.c < 100);
        const one = runAll(be, 1, false, cases);
        for (const o of one) expect(o.every(Number.isFinite)).toBe(true);
        expect(runAll(be, 2, false, cases)).toEqual(one);
        expect(runAll(be, 2, true, cases)).toEqual(one);
      }
    } finally {
      be.holdPoolWorkers(false);
      be.choosePool('measure');
      be.selectGemm('auto');
      be.setThreads(before);
    }
  });
  it('with OpenBLAS pinned, runs the reference composition of im2col and sgemm', () => {
    const be = native!;
    try {
      const [g, oc, groups] = CONV_CASES[0]!;
      const [xs, ws, ys] = convSizes(g, oc, groups);
      const r = lcg(32);
      const [x, w, y] = [xs, ws, ys].map((n) => uniform(r, n));
      // the weight gradient's float64 block sums are the C kernel's alone: the reference accumulates image by image
      const gw = (b: Backend) => {
        const [bx, bw, by] = [x!, w!, y!].map((a) => load(b, a));
        b.conv2dGradWeight(bx!, by!, bw!, g, oc, groups);
        return bw!.data.slice();
      };
      be.selectGemm('openblas');
      const pinned = gw(be);
      be.selectGemm('own');
      const own = gw(be);
      // the reference's composition on the native kernels (OpenBLAS's products): im2col, products image after image
      be.selectGemm('openblas');
      const composed = (() => {
        const { ckk, P } = { ckk: g.c * g.kh * g.kw, P: g.oh * g.ow };
        const [bx, bw, by] = [x!, w!, y!].map((a) => load(be, a));
        const cols = be.alloc(ckk * P);
        for (let i = 0; i < g.n; i++) {
          be.im2col(bx!, i * g.c * g.h * g.w, cols, { ...g, n: 1 });
          be.sgemm(false, true, oc, ckk, P, 1, by!, i * oc * P, P, cols, 0, P, i === 0 ? 0 : 1, bw!, 0, ckk);
        }
        return bw!.data.slice();
      })();
      expect(pinned).toEqual(composed);
      // (and the C kernel's sums differ from it in the last bits: this case tells the two apart)
      expect(own).not.toEqual(composed);
    } finally {
      be.selectGemm('auto');
    }
  });
  it("multiplies each image's columns with the implementation chosen for the product's shape, OpenBLAS's included", () => {
    const be = native!;
    const policy = be.selectGemm('auto');
    if (!policy.startsWith('per-shape:')) return; // OpenBLAS's generic kernels here: ours for every shape
    const ownName = policy.slice('per-shape:'.length).split('+')[0]!;
    // our kernels' revision in the cache's file names (raised when their speed changes)
    const header = readFileSync(new URL('../../native/gemm_x86.h', import.meta.url), 'utf8');
    const ownRev = /#define GG_GEMM_OWN_REV (\d+)/.exec(header)![1];
    const before = be.threads;
    const savedDir = process.env.GRADGUARD_CACHE_DIR;
    // a fresh machine cache holding the choices: each geometry's three product shapes (1+ MFLOP, so cached, not the
    // fixed rule), none multiplied elsewhere in this process; 13-wide rows keep the columns' paths (not direct)
    process.env.GRADGUARD_CACHE_DIR = mkdtempSync(join(tmpdir(), 'gg-conv-cache-'));
    const byChoice = [
      ['openblas', convGeom(6, 31, 13, 13, 3, 3, [1, 1], [1, 1], [1, 1]), 61],
      ['own', convGeom(6, 29, 13, 13, 3, 3, [1, 1], [1, 1], [1, 1]), 59],
    ] as const;
    try {
      for (const [choice, g, oc] of byChoice) {
        const [ckk, P] = [g.c * g.kh * g.kw, g.oh * g.ow];
        const shapes = [
          ['NN', false, false, oc, P, ckk],
          ['TN', true, false, ckk, P, oc],
          ['NT', false, true, oc, ckk, P],
        ] as const;
        for (const [tr, , , m, n, k] of shapes) {
          const file = `gemm-${be.blasCore}-${ownName}-r${ownRev}-${tr}-${m}x${n}x${k}`;
          writeFileSync(join(process.env.GRADGUARD_CACHE_DIR, file), `${choice}\n`);
        }
        // 1 and 2 threads and a worker held off: the same bits
        const one = runAll(be, 1, false, [[g, oc, 1]]);
        for (const o of one) expect(o.every(Number.isFinite)).toBe(true);
        expect(runAll(be, 2, false, [[g, oc, 1]])).toEqual(one);
        expect(runAll(be, 2, true, [[g, oc, 1]])).toEqual(one);
        // the kernels read the cached choice (they did not measure one)
        const want = choice === 'own' ? ownName : 'openblas';
        for (const [, ta, tb, m, n, k] of shapes) expect(be.gemmShapeChoice(ta, tb, m, n, k)).toBe(want);
        // and computed each image's product with it: the bits of the reference's composition of im2col, col2im and
        // sgemm on one thread (the weight gradient's: of one image, where no block sums are added)
        be.setThreads(1);
        const r = lcg(33);
        const one1 = { ...g, n: 1 };
        for (const [kind, geom] of [
          ['forward', g],
          ['input', g],
          ['weight', one1],
        ] as const) {
          const [xs, ws, ys] = convSizes(geom, oc, 1);
          const data = [xs, ws, ys].map((n) => uniform(r, n));
          const run = (f: (b: Buf[]) => void) => {
            const bufs = data.map((a) => load(be, a));
            f(bufs);
            const out = bufs[kind === 'forward' ? 2 : kind === 'input' ? 0 : 1]!.data.slice();
            for (const b of bufs) be.free(b);
            return out;
          };
          const ref = JsBackend.prototype;
          const kernel = run(([x, w, y]) =>
            kind === 'forward'
              ? be.conv2d(x!, w!, y!, geom, oc, 1, false)
              : kind === 'input'
                ? be.conv2dGradInput(y!, w!, x!, geom, oc, 1)
                : be.conv2dGradWeight(x!, y!, w!, geom, oc, 1),
          );
          const composed = run(([x, w, y]) =>
            kind === 'forward'
              ? ref.conv2d.call(be, x!, w!, y!, geom, oc, 1, false)
              : kind === 'input'
                ? ref.conv2dGradInput.call(be, y!, w!, x!, geom, oc, 1)
                : ref.conv2dGradWeight.call(be, x!, y!, w!, geom, oc, 1),
          );
          expect(firstDifference([kernel], [composed]), `${choice} ${kind}`).toBe('');
        }
      }
    } finally {
      if (savedDir === undefined) delete process.env.GRADGUARD_CACHE_DIR;
      else process.env.GRADGUARD_CACHE_DIR = savedDir;
      be.holdPoolWorkers(false);
      be.setThreads(before);
    }
  });
});

describe.skipIf(!native)('native Winograd F(2×2, 3×3) convolutions', () => {
  // One kernel on the native backend, with the Winograd path on (the default) or off (GRADGUARD_WINO=0, read by the
  // C on every call: the direct paths).
  const runNative = (wino: boolean, f: (be: Backend, bufs: Buf[]) => void, data: Float32Array[], out: number) => {
    const be = native!;
    const saved = process.env.GRADGUARD_WINO;
    if (wino) delete process.env.GRADGUARD_WINO;
    else process.env.GRADGUARD_WINO = '0';
    try {
      const bufs = data.map((a) => load(be, a));
      f(be, bufs);
      const got = bufs[out]!.data.slice();
      for (const b of bufs) be.free(b);
      return got;
    } finally {
      if (saved === undefined) delete process.env.GRADGUARD_WINO;
      else process.env.GRADGUARD_WINO = saved;
    }
  };
  const kinds = ['forward', 'accumulate', 'bias', 'bias+relu', 'input', 'weight'] as const;
  const run = (kind: (typeof kinds)[number], g: ConvGeom, oc: number, groups: number) => {
    return (b: Backend, [x, w, y, bias]: Buf[]) => {
      if (kind === 'forward' || kind === 'accumulate') b.conv2d(x!, w!, y!, g, oc, groups, kind === 'accumulate');
      else if (kind === 'input') b.conv2dGradInput(y!, w!, x!, g, oc, groups);
      else if (kind === 'weight') b.conv2dGradWeight(x!, y!, w!, g, oc, groups);
      else b.conv2dBias(x!, w!, bias!, y!, g, oc, groups, kind === 'bias+relu');
    };
  };

  it('takes the shapes it should: its bits differ from the direct paths, within the float32 bound of the reference', () => {
    const r = lcg(41);
    for (const [cases, wino] of [
      [WINO_CASES, true],
      [NOT_WINO_CASES, false],
    ] as const) {
      for (const [g, oc, groups] of cases) {
        const [xs, ws, ys] = convSizes(g, oc, groups);
        for (const kind of kinds) {
          const data = [uniform(r, xs), uniform(r, ws), uniform(r, ys), uniform(r, oc)];
          const out = kind === 'input' ? 0 : kind === 'weight' ? 1 : 2;
          const f = run(kind, g, oc, groups);
          const on = runNative(true, f, data, out);
          const off = runNative(false, f, data, out);
          const what = `${kind} n=${g.n} c=${g.c} ${g.h}x${g.w} oc=${oc} groups=${groups}`;
          // (the direct paths' bits are checked against the reference elsewhere; here the path taken)
          if (wino) expect(firstDifference([on], [off]), what).not.toBe('');
          else expect(firstDifference([on], [off]), what).toBe('');
          // the reference, and its bound: the same kernel over absolute values (the bias's too, no ReLU, which only
          // shrinks a difference), times (K + 2)·2^-24, K the terms of a sum
          const want = data.map((a) => load(js, a));
          f(js, want);
          const bound = data.map((a) => load(js, a.map(Math.abs)));
          run(kind === 'bias+relu' ? 'bias' : kind === 'accumulate' ? 'accumulate' : kind, g, oc, groups)(js, bound);
          const K = kind === 'input' ? (oc / groups) * 9 : kind === 'weight' ? g.n * g.oh * g.ow + 16 : g.c * 9 + 1;
          const u = (K + 2) * 2 ** -24;
          const wd = want[out]!.data;
          const bd = bound[out]!.data;
          for (let j = 0; j < wd.length; j++)
            if (!(Math.abs(on[j]! - wd[j]!) <= u * bd[j]! + 1e-30))
              throw new Error(`${what}: element ${j} got ${on[j]}, want ${wd[j]}`);
          for (const b of [...want, ...bound]) js.free(b);
        }
      }
    }
  });

  it('keeps the ReLU of conv2dBias: NaN stays NaN, -0 and 0 give +0', () => {
    // a weight of zeros and a bias of -0, NaN, -1, 2: the outputs are bias + 0 (-0 + 0 = +0), through the ReLU
    const [g, oc, groups] = WINO_CASES[0]!;
    const [xs, ws, ys] = convSizes(g, oc, groups);
    const bias = new Float32Array(oc).map((_, i) => [-0, Number.NaN, -1, 2][i % 4]!);
    const data = [uniform(lcg(42), xs), new Float32Array(ws), new Float32Array(ys), bias];
    const on = runNative(true, run('bias+relu', g, oc, groups), data, 2);
    const P = g.oh * g.ow;
    for (let j = 0; j < on.length; j++) {
      const want = [0, Number.NaN, 0, 2][(Math.floor(j / P) % oc) % 4]!;
      if (!Object.is(on[j], want)) throw new Error(`element ${j}: got ${on[j]}, want ${want}`);
    }
  });

  it('gives the same bits on one thread and on two, with a worker held off', () => {
    const be = native!;
    const before = be.threads;
    const r = lcg(43);
    const [g0, oc, groups] = WINO_CASES[1]!;
    const g = { ...g0, n: 7 };
    const [xs, ws, ys] = convSizes(g, oc, groups);
    const data = [uniform(r, xs), uniform(r, ws), uniform(r, ys), uniform(r, oc)];
    const all = (threads: number, hold: boolean) => {
      be.setThreads(threads);
      const byWorkers = hold ? be.holdPoolWorkers(true) : 0;
      try {
        return kinds.map((kind) =>
          runNative(true, run(kind, g, oc, groups), data, kind === 'input' ? 0 : kind === 'weight' ? 1 : 2),
        );
      } finally {
        if (hold) expect(be.holdPoolWorkers(false)).toBe(byWorkers);
      }
    };
    try {
      const one = all(1, false);
      expect(all(2, false)).toEqual(one);
      expect(all(2, true)).toEqual(one);
    } finally {
      be.holdPoolWorkers(false);
      be.setThreads(before);
    }
  });
});

describe('backend loading', () => {
  it('loads the committed wasm module', () => {
    expect(wasm, 'wasm/gradguard.wasm must load (run `npm run build:wasm`)').not.toBeNull();
    expect(wasm!.name).toBe('wasm');
    expect(wasm!.threads).toBeGreaterThanOrEqual(1);
    expect(wasmOne, 'wasm/gradguard.wasm must load').not.toBeNull();
    expect(wasmOne!.threads).toBe(1);
  });
  it('sets the thread count of matrix products, and refuses what is not one', () => {
    const js = new JsBackend();
    js.setThreads(4);
    expect(js.threads).toBe(1);
    expect(() => js.setThreads(0)).toThrow(/setThreads\(0\): give a whole number of threads/);
    if (native) {
      const before = native.threads;
      native.setThreads(1);
      expect(native.threads).toBe(1);
      native.setThreads(2);
      expect(native.threads).toBe(2);
      expect(() => native.setThreads(-1)).toThrow(/whole number of threads/);
      const saved = process.env.GRADGUARD_THREADS;
      process.env.GRADGUARD_THREADS = '1';
      try {
        expect(createNativeBackend()!.threads).toBe(1);
      } finally {
        if (saved === undefined) delete process.env.GRADGUARD_THREADS;
        else process.env.GRADGUARD_THREADS = saved;
        native.setThreads(before);
      }
    }
  });
  it.skipIf(!native)('reports the native backend and its OpenBLAS threads', () => {
    expect(native!.name).toBe('native');
    expect(native!.threads).toBeGreaterThanOrEqual(1);
    expect(native!.blasCore).toMatch(/^\w+$/);
  });
});

describe('wasm memory', () => {
  for (const threads of [1, 2]) {
    it(`keeps buffers valid across memory growth and reuses freed ones (${threads} thread${threads > 1 ? 's' : ''})`, () => {
      const be = createWasmBackend(undefined, { threads })!;
      const a = be.alloc(1000);
      a.data.fill(7);
      const view = a.data;
      const big = be.alloc(40_000_000); // 160 MB: the memory must grow
      // growing detaches the views of a module's own memory; those of a shared memory stay valid
      expect(view.length).toBe(threads === 1 ? 0 : 1000);
      expect(a.data.length).toBe(1000);
      expect(a.data[999]).toBe(7);
      be.fill(big, 2, big.size);
      expect(big.data[big.size - 1]).toBe(2);
      expect(be.sumSquares(a, 1000)).toBe(49000);
      const ptr = (big as WasmBuf).ptr;
      be.free(big);
      const again = be.alloc(40_000_000);
      expect(again.ptr).toBe(ptr);
      expect(be.stats().freshAllocs).toBe(2);
      const empty = be.alloc(0);
      expect(empty.data.length).toBe(0);
      expect(a.ptr % 64).toBe(0);
      be.close();
    });
  }
  it('refuses buffers that do not live in its memory', () => {
    const be = createWasmBackend()!;
    expect(() => be.fill(new ArrayBuf(new Float32Array(4)), 1, 4)).toThrow(/not allocated by the wasm backend/);
  });
  it('works from given bytes and asynchronously', async () => {
    const { readFileSync } = await import('node:fs');
    const bytes = readFileSync(new URL('../../wasm/gradguard.wasm', import.meta.url));
    expect(createWasmBackend(new Uint8Array(bytes))).not.toBeNull();
    const { createWasmBackendAsync } = await import('./wasm.js');
    const be = await createWasmBackendAsync();
    const b = be.alloc(3);
    be.fill(b, 1.5, 3);
    expect(Array.from(b.data)).toEqual([1.5, 1.5, 1.5]);
    expect(createWasmBackend(new Uint8Array([0, 1, 2]))).toBeNull();
    expect((await createWasmBackendAsync(new Response(new Uint8Array(bytes)))).name).toBe('wasm');
    expect((await createWasmBackendAsync(new Uint8Array(bytes))).name).toBe('wasm');
    await expect(createWasmBackendAsync(new URL('file:///nonexistent/gradguard.wasm'))).rejects.toThrow();
  });
});

const suites: [string, Backend | null][] = [
  ['native', native],
  [`native, built for AVX2${nativeAvx2.backend ? '' : ` (skipped: ${nativeAvx2.skipReason})`}`, nativeAvx2.backend],
  ['wasm', wasm],
  ['wasm (one thread)', wasmOne],
];

for (const [name, maybe] of suites) {
  describe.skipIf(!maybe)(`${name} backend matches the js reference`, () => {
    const be = maybe!;

    it('fill, copy, copyBlocks, axpy', () => {
      const r = lcg(1);
      same(be, [uniform(r, 37)], (b, [o]) => b.fill(o!, 0.1, 30), EXACT);
      same(be, [uniform(r, 37)], (b, [o]) => b.fill(o!, Number.NaN, 37), EXACT);
      same(be, [uniform(r, 50), uniform(r, 60)], (b, [s, d]) => b.copy(s!, 3, d!, 7, 40), EXACT);
      // overlapping ranges of one buffer: memmove semantics, both directions
      same(be, [uniform(r, 50)], (b, [s]) => b.copy(s!, 0, s!, 5, 40), EXACT);
      same(be, [uniform(r, 50)], (b, [s]) => b.copy(s!, 5, s!, 0, 40), EXACT);
      for (const acc of [false, true]) {
        same(
          be,
          [uniform(r, 200), uniform(r, 300)],
          (b, [s, d]) => b.copyBlocks(s!, 2, 17, d!, 5, 29, 13, 9, acc),
          EXACT,
        );
        same(be, [uniform(r, 100)], (b, [s]) => b.copyBlocks(s!, 0, 10, s!, 3, 10, 9, 8, acc), EXACT);
      }
      for (const alpha of [1, -1, -0.37, 1e-3])
        same(be, [uniform(r, 101), uniform(r, 101)], (b, [x, y]) => b.axpy(alpha, x!, y!, 99), EXACT);
    });

    it('unary ops on tensors large enough to be shared out between threads', () => {
      const r = lcg(12);
      const n = 300_017;
      const x = uniform(r, n, -3, 3);
      for (let i = 7; i < n; i += 1001) x[i] = i % 2 ? Number.NaN : -0;
      for (const op of [Unary.Relu, Unary.Sigmoid, Unary.Tanh, Unary.Abs]) {
        const tol = op === Unary.Relu || op === Unary.Abs ? EXACT : ULPS;
        same(be, [x, uniform(r, n)], (b, [xx, o]) => b.unary(op, xx!, o!, n, 0, 0), tol);
        same(
          be,
          [x, uniform(r, n), uniform(r, n), uniform(r, n)],
          (b, [xx, yy, gy, gx]) => b.unaryGrad(op, xx!, yy!, gy!, gx!, n, 0, 0),
          EXACT,
        );
      }
    });

    it('unary ops, forward and gradient, including the special values', () => {
      const r = lcg(2);
      const n = 1003;
      const params: Partial<Record<Unary, [number, number][]>> = {
        [Unary.LeakyRelu]: [
          [0.01, 0],
          [0.2, 0],
        ],
        [Unary.Elu]: [[1, 0]],
        [Unary.Softplus]: [
          [1, 20],
          [2, 10],
        ],
        [Unary.PowScalar]: [
          [2, 0],
          [0.5, 0],
          [3, 0],
        ],
        [Unary.Clamp]: [
          [-0.5, 0.5],
          [Number.NaN, 0.25],
          [-0.25, Number.NaN],
          [0.5, -0.5],
        ],
        [Unary.Affine]: [
          [1.7, -0.3],
          [-2, 1e-3],
        ],
        [Unary.ScalarDiv]: [[2, 0]],
        [Unary.ScalarPow]: [
          [2, 0],
          [0.5, 0],
        ],
      };
      // ranges where each op is interesting; exp/tanh/sigmoid well into saturation and underflow
      const range: Partial<Record<Unary, [number, number]>> = {
        [Unary.Exp]: [-110, 90],
        [Unary.Log]: [0, 50],
        [Unary.Sqrt]: [0, 50],
        [Unary.Sigmoid]: [-30, 30],
        [Unary.Tanh]: [-12, 12],
      };
      const transcendental = new Set<Unary>([Unary.Exp, Unary.Log, Unary.Sigmoid, Unary.Tanh]);
      for (let op = 0 as Unary; op <= Unary.ScalarPow; op++) {
        const [lo, hi] = range[op] ?? [-4, 4];
        for (const [a, b2] of params[op] ?? [[0, 0]]) {
          const x = withSpecials(r, n, lo, hi);
          const tol = transcendental.has(op) ? ULPS : EXACT;
          same(be, [x, uniform(r, n)], (b, [xb, out]) => b.unary(op, xb!, out!, n - 2, a, b2), tol);
          // in place
          same(be, [x], (b, [xb]) => b.unary(op, xb!, xb!, n, a, b2), tol);
          // gradient: y is the reference's forward output, so only the derivative formula is compared
          const xb = load(js, x);
          const yb = js.alloc(n);
          js.unary(op, xb, yb, n, a, b2);
          const y = yb.data.slice();
          same(
            be,
            [x, y, withSpecials(r, n, -2, 2), uniform(r, n)],
            (b, [xx, yy, gy, gx]) => b.unaryGrad(op, xx!, yy!, gy!, gx!, n - 1, a, b2),
            EXACT,
          );
        }
      }
    });

    it('binary ops with broadcasting, odd strides and NaN', () => {
      const r = lcg(3);
      const cases: [number[], number[], number[]][] = [
        [[1000], [1000], [1000]],
        [[7, 33], [7, 33], [33]],
        [
          [7, 33],
          [7, 1],
          [7, 33],
        ],
        [
          [4, 5, 6],
          [1, 5, 1],
          [4, 1, 6],
        ],
        [[2, 3, 4, 5], [5], [2, 3, 4, 1]],
        [[3, 1, 4], [3, 1, 4], [1]],
        [[], [], []],
        [
          [2, 1, 3, 1, 2, 3, 2, 2],
          [2, 1, 3, 1, 2, 3, 2, 2],
          [1, 1, 3, 1, 1, 3, 1, 2],
        ],
        [[2, 1, 2, 1, 2, 1, 2, 1, 2], [2, 1, 2, 1, 2, 1, 2, 1, 2], [2]], // 9 axes: falls back to JS
        [[0, 3], [0, 3], [3]],
      ];
      for (let op = 0 as Binary; op <= Binary.Minimum; op++) {
        for (const [shape, as, bs] of cases) {
          const a = withSpecials(r, Math.max(prod(as), 1), -3, 3);
          const b = uniform(r, Math.max(prod(bs), 1), -3, 3);
          if (b.length > 3) b[2] = Number.NaN;
          const sa = bcastStrides(shape, as);
          const sb = bcastStrides(shape, bs);
          same(
            be,
            [a, b, uniform(r, Math.max(prod(shape), 1))],
            (k, [x, y, o]) => k.binary(op, x!, y!, o!, shape, sa, sb),
            EXACT,
          );
        }
        // a transposed (non-contiguous) operand: a is stored 9×5, read as its 5×9 transpose
        const a = uniform(r, 45, 0.5, 2);
        const b = uniform(r, 45, 0.5, 2);
        same(be, [a, b, uniform(r, 45)], (k, [x, y, o]) => k.binary(op, x!, y!, o!, [5, 9], [1, 5], [9, 1]), EXACT);
      }
    });

    it('sumSquaresMaxAbs gives sumSquares and maxAbs (both to the bit) in one call', () => {
      const r = lcg(44);
      const out = new Float64Array(2);
      for (const n of [0, 1, 7, 512, 545, 4096, 4097, 8200, 16_384, 16_385, 200_003, 200_704, 300_001]) {
        const x0 = uniform(r, n, -4, 4);
        if (n > 10) x0[Math.floor(n / 3)] = -9.25;
        const x = load(be, x0);
        be.sumSquaresMaxAbs(x, n, out);
        const ss = be.sumSquares(x, n);
        // NOTE: the same bits, so the monitor's gradient norms and the global-norm clip's can be one measurement
        expect(out[0]).toBe(ss);
        expect(out[1]).toBe(be.maxAbs(x, n));
        if (n > 10) {
          expect(out[1]).toBe(9.25);
          // the largest |x| anywhere: in the first values (the SIMD blocks) and the last (the tail)
          for (const at of [3, n - 2]) {
            const keep = x.data[at]!;
            x.data[at] = 11.5;
            be.sumSquaresMaxAbs(x, n, out);
            expect(out[1]).toBe(11.5);
            expect(out[0]).toBe(be.sumSquares(x, n));
            x.data[at] = keep;
          }
          x.data[5] = Number.NaN;
          be.sumSquaresMaxAbs(x, n, out);
          expect(out[1]).toBeNaN();
          x.data[5] = x0[5]!;
          x.data[n - 1] = Number.NaN;
          be.sumSquaresMaxAbs(x, n, out);
          expect(out[0]).toBeNaN();
          expect(out[1]).toBeNaN();
          x.data[n - 1] = Number.NEGATIVE_INFINITY;
          be.sumSquaresMaxAbs(x, n, out);
          expect(out[1]).toBe(Number.POSITIVE_INFINITY);
        }
        // magnitudes from 2^-30 to 2^30, where the float64 sums round and so depend on the order they are taken in
        const wide = load(
          be,
          x0.map((v, i) => v * 2 ** (((i * 37) % 61) - 30)),
        );
        be.sumSquaresMaxAbs(wide, n, out);
        expect(out[0]).toBe(be.sumSquares(wide, n));
        expect(out[1]).toBe(be.maxAbs(wide, n));
      }
    });

    it('countOutside counts the values below lo or above hi as JavaScript compares them (NaN neither)', () => {
      const r = lcg(46);
      // float32 values on both sides of the thresholds: fround(0.99) is just above 0.99, its neighbour below
      const edge = [0.99, -0.99, 0.01, 1, -1, 0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN];
      const near = edge.flatMap((v) => {
        const f = new Float32Array([v]);
        const u = new Uint32Array(f.buffer);
        return Number.isFinite(v)
          ? [v, ...[-1, 1].map((d) => new Float32Array(new Uint32Array([u[0]! + d]).buffer)[0]!)]
          : [v];
      });
      for (const n of [0, 1, 15, 16, 17, 1000, 65_537]) {
        const x0 = uniform(r, n, -1.01, 1.01);
        for (let i = 3, k = 0; i < n; i += 7, k++) x0[i] = near[k % near.length]!;
        const x = load(be, x0);
        for (const [lo, hi] of [
          [-0.99, 0.99],
          [0.01, 0.99],
        ] as const) {
          let want = 0;
          for (const v of x0) if (v < lo || v > hi) want++;
          expect(be.countOutside(x, n, lo, hi)).toBe(want);
        }
        be.free(x);
      }
    });

    /** A layer's output three ways: uniform, a ReLU's (zeros where `dead(i)`), and magnitudes from 2^-30 to 2^30
     * (where the sums round and so depend on the order they are taken in). */
    const outputsOf = (x0: Float32Array, dead: (i: number) => boolean) =>
      [
        ['uniform', x0],
        ['relu', x0.map((v, i) => (dead(i) ? 0 : Math.max(v, 0)))],
        ['wide', x0.map((v, i) => v * 2 ** (((i * 37) % 61) - 30))],
      ] as const;
    /** 64×96 values with a NaN, +Inf and -Inf among them. */
    const nonFinite = (r: ReturnType<typeof lcg>) => {
      const a = uniform(r, 64 * 96, -2, 2);
      a[100] = Number.NaN;
      a[4000] = Number.POSITIVE_INFINITY;
      a[5000] = Number.NEGATIVE_INFINITY;
      return a;
    };

    it('sumSquaresColumns gives sumAxis (its column sums) and sumSquares, both to the bit, in one call', () => {
      const r = lcg(45);
      // rows × cols: one row, one column (sumAxis's float64 lanes), columns that wrap inside the blocks of 512 and
      // of 4096, a ReLU layer's output of the MLP and of a convolution, ragged ends, more than one wasm block
      for (const [rows, cols] of [
        [0, 5],
        [3, 0],
        [1, 1],
        [1, 7],
        [5, 1],
        [1031, 1],
        [1, 600],
        [7, 13],
        [128, 256],
        [128, 10],
        [3, 4097],
        [9, 1024],
        [33, 517],
        [64, 1568],
        [40, 1000],
        [16, 16_385],
        [1025, 4099], // past 256 wasm blocks of 16,384 (wider blocks)
      ] as const) {
        const n = rows * cols;
        // (a ReLU's output: zeros in most places, a dead column)
        for (const [what, a] of outputsOf(uniform(r, n, -4, 4), (i) => cols > 2 && i % cols === 1)) {
          const x = load(be, a);
          const cols1 = be.alloc(Math.max(cols, 1));
          const cols2 = be.alloc(Math.max(cols, 1));
          cols1.data.fill(7);
          const ss = be.sumSquaresColumns(x, cols1, rows, cols);
          be.sumAxis(x, cols2, 1, rows, cols);
          expect(ss, `${rows}×${cols} ${what}: Σx²`).toBe(be.sumSquares(x, n));
          expect([...cols1.data.slice(0, cols)], `${rows}×${cols} ${what}: columns`).toEqual([
            ...cols2.data.slice(0, cols),
          ]);
          // and against the reference (sumAxis exactly; the sum of squares within float32 blocks' rounding)
          same(be, [a, uniform(r, cols)], (b, [xx, o]) => b.sumSquaresColumns(xx!, o!, rows, cols), {
            rel: be.name === 'js' || n < 512 ? 1e-12 : 1e-6,
            abs: 0,
          });
          for (const b of [x, cols1, cols2]) be.free(b);
        }
      }
      // NaN and infinities: the sum of squares is NaN or +Inf as sumSquares', the column sums as sumAxis'
      const x = load(be, nonFinite(r));
      const c1 = be.alloc(96);
      const c2 = be.alloc(96);
      expect(be.sumSquaresColumns(x, c1, 64, 96)).toBeNaN();
      be.sumAxis(x, c2, 1, 64, 96);
      expect([...c1.data.slice(0, 96)]).toEqual([...c2.data.slice(0, 96)]);
      for (const b of [x, c1, c2]) be.free(b);
    });

    it("sumSquaresRows gives sumAxis (its row sums) to the bit and sumSquares' Σx², in one call", () => {
      const r = lcg(46);
      const bits = (b: Buf, k: number) => [...new Uint32Array(b.data.buffer, b.data.byteOffset, k)];
      // Σx² natively: sumSquares over blocks of whole rows (at least 32,768 values each, at most 256 blocks), the
      // blocks' sums added in order (shared out over the threads); elsewhere sumSquares itself
      const blockwise = (a: Float32Array, rows: number, cols: number) => {
        if (be.name !== 'native' || rows * cols === 0) return null;
        let per = Math.ceil(32768 / cols);
        if (Math.ceil(rows / per) > 256) per = Math.ceil(rows / 256);
        let s = 0;
        for (let r0 = 0; r0 < rows; r0 += per) {
          const part = load(be, a.slice(r0 * cols, Math.min(rows, r0 + per) * cols));
          const p = be.sumSquares(part, part.size);
          s = r0 === 0 ? p : s + p;
          be.free(part);
        }
        return s;
      };
      // rows × cols: no rows, empty rows, one value a row, runs four at a time and the rest, rows shorter and longer
      // than a block of 512 values and than the 4,096 the pass sums rows after, ragged ends, a conv's ReLU planes
      for (const [rows, cols] of [
        [0, 5],
        [3, 0],
        [1, 1],
        [6, 1],
        [1, 7],
        [5, 9],
        [7, 45],
        [13, 784],
        [9, 511],
        [4, 4097],
        [3, 9000],
        [257, 196],
        [2048, 784],
      ] as const) {
        const n = rows * cols;
        // (a ReLU's output with a dead plane)
        for (const [what, a] of outputsOf(uniform(r, n, -4, 4), (i) => cols > 0 && Math.floor(i / cols) === 1)) {
          const x = load(be, a);
          const rows1 = be.alloc(Math.max(rows, 1));
          const rows2 = be.alloc(Math.max(rows, 1));
          rows1.data.fill(7);
          const ss = be.sumSquaresRows(x, rows1, rows, cols);
          be.sumAxis(x, rows2, rows, cols, 1);
          expect(ss, `${rows}×${cols} ${what}: Σx²`).toBe(blockwise(a, rows, cols) ?? be.sumSquares(x, n));
          if (n <= 32768) expect(ss, `${rows}×${cols} ${what}: one block`).toBe(be.sumSquares(x, n));
          expect(Math.abs(ss - be.sumSquares(x, n))).toBeLessThanOrEqual(1e-6 * ss);
          expect(bits(rows1, rows), `${rows}×${cols} ${what}: rows`).toEqual(bits(rows2, rows));
          same(be, [a, uniform(r, rows)], (b, [xx, o]) => b.sumSquaresRows(xx!, o!, rows, cols), {
            rel: be.name === 'js' || n < 512 ? 1e-12 : 1e-6,
            abs: 0,
          });
          for (const b of [x, rows1, rows2]) be.free(b);
        }
      }
      // NaN and infinities: the sum of squares is NaN as sumSquares', the row sums as sumAxis'
      const x = load(be, nonFinite(r));
      const c1 = be.alloc(64);
      const c2 = be.alloc(64);
      expect(be.sumSquaresRows(x, c1, 64, 96)).toBeNaN();
      be.sumAxis(x, c2, 64, 96, 1);
      expect(bits(c1, 64)).toEqual(bits(c2, 64));
      for (const b of [x, c1, c2]) be.free(b);
      // the same bits on one thread and on two (the blocks are fixed by the shape)
      if (be.name === 'native') {
        const nb = be as NonNullable<typeof native>;
        const before = nb.threads;
        const big = load(be, uniform(r, 2048 * 784, 0, 3));
        const o = be.alloc(2048);
        try {
          const run = (t: number) => {
            nb.setThreads(t);
            const ss = be.sumSquaresRows(big, o, 2048, 784);
            return [ss, ...bits(o, 2048)];
          };
          expect(run(2)).toEqual(run(1));
        } finally {
          nb.setThreads(before);
          be.free(big);
          be.free(o);
        }
      }
    });

    it('reductions: sumAxis, maxAxis, sumSquares, maxAbs, countNonFinite', () => {
      const r = lcg(4);
      for (const [outer, mid, inner] of [
        [1, 128, 256],
        [3, 17, 1],
        [5, 1, 9],
        [4, 9, 7],
        [1, 1000, 1],
        [2, 43, 1],
        [32, 4003, 1],
        // runs taken four at a time natively (gg_run_sums), then the rest one by one
        [7, 45, 1],
        [13, 784, 1],
        // large enough to be shared out between threads: a conv's bias gradient, and inner > 1
        [64, 7744, 1],
        [37, 301, 130],
      ] as const) {
        const n = outer * mid * inner;
        const x = uniform(r, n, -5, 5);
        same(be, [x, uniform(r, outer * inner)], (b, [xx, o]) => b.sumAxis(xx!, o!, outer, mid, inner), EXACT);
        // ties and NaN: the first maximum wins, a NaN wins and stops the scan
        for (let i = 0; i < n; i += 7) x[i] = 4.5;
        for (let i = 3; i < n; i += 23) x[i] = Number.NaN;
        same(
          be,
          [x, uniform(r, outer * inner), uniform(r, outer * inner)],
          (b, [xx, o, ar]) => b.maxAxis(xx!, o!, ar!, outer, mid, inner),
          EXACT,
        );
      }
      const allNegInf = new Float32Array(12).fill(Number.NEGATIVE_INFINITY);
      same(
        be,
        [allNegInf, new Float32Array(4), new Float32Array(4)],
        (b, [xx, o, ar]) => b.maxAxis(xx!, o!, ar!, 2, 3, 2),
        EXACT,
      );

      for (const n of [0, 1, 7, 8, 1001, 100_000]) {
        const x = uniform(r, n + 3, -10, 10);
        // NOTE: native (AVX-512) and wasm sum blocks of 512 squares in float32 (then float64 across blocks): ~1e-7
        // relative; below 512 values, and in the js reference, every square is summed in float64
        same(be, [x], (b, [xx]) => b.sumSquares(xx!, n), { rel: be.name === 'js' || n < 512 ? 1e-12 : 1e-6, abs: 0 });
        same(be, [x], (b, [xx]) => b.maxAbs(xx!, n), EXACT);
        same(be, [x], (b, [xx]) => b.countNonFinite(xx!, n), EXACT);
      }
      const x = uniform(r, 1000, -10, 10);
      x[500] = Number.NaN;
      x[10] = Number.POSITIVE_INFINITY;
      x[20] = Number.NEGATIVE_INFINITY;
      x[999] = 3e38;
      same(be, [x], (b, [xx]) => b.maxAbs(xx!, 1000), EXACT);
      same(be, [x], (b, [xx]) => b.maxAbs(xx!, 400), EXACT); // Inf, no NaN
      same(be, [x], (b, [xx]) => b.countNonFinite(xx!, 1000), EXACT);
      expect(be.maxAbs(load(be, x), 1000)).toBeNaN();
    });

    it('sgemm: all transposes, offsets, leading dimensions, alpha and beta', () => {
      const r = lcg(5);
      const shapes: [number, number, number][] = [
        [1, 1, 1],
        [7, 13, 19],
        [33, 65, 129],
        [4, 8, 256],
        [1, 300, 17],
        [130, 1030, 300], // past every block edge of the wasm kernel (MC 64, NC 1024, KC 256)
        [5, 6, 0],
        [0, 6, 5],
      ];
      for (const [m, n, k] of shapes) {
        for (const transA of [false, true]) {
          for (const transB of [false, true]) {
            const big = m * n * k > 1e7;
            if (big && (transA || transB)) continue; // the reference is slow; one big case suffices
            for (const [alpha, beta] of big
              ? [[1, 0]]
              : [
                  [1, 0],
                  [-0.5, 1],
                  [2, 0.25],
                ]) {
              const aRows = transA ? k : m;
              const aCols = transA ? m : k;
              const bRows = transB ? n : k;
              const bCols = transB ? k : n;
              const lda = aCols + 3;
              const ldb = bCols + 1;
              const ldc = n + 2;
              const aOff = 5;
              const bOff = 3;
              const cOff = 7;
              const A = uniform(r, aOff + aRows * lda + 4);
              const B = uniform(r, bOff + bRows * ldb + 4);
              const C = uniform(r, cOff + m * ldc + 4);
              // beta = 0 must ignore C entirely, NaN included
              if (beta === 0) C.fill(Number.NaN);
              sgemmSame(be, transA, transB, m, n, k, alpha!, A, aOff, lda, B, bOff, ldb, beta!, C, cOff, ldc);
            }
          }
        }
      }
      // one-row matrices with a leading dimension smaller than a row: legal in the reference, rejected by cblas
      const A = uniform(r, 20);
      const B = uniform(r, 40);
      sgemmSame(be, false, false, 1, 4, 5, 1, A, 0, 1, B, 0, 4, 0, uniform(r, 4), 0, 1);
    });

    it('permute', () => {
      const r = lcg(6);
      const cases: [number[], number[]][] = [
        [
          [37, 53],
          [1, 0],
        ],
        [
          [2, 3, 4],
          [2, 0, 1],
        ],
        [
          [2, 3, 4],
          [0, 2, 1],
        ],
        [
          [3, 5, 7, 9],
          [0, 2, 3, 1],
        ], // NCHW -> NHWC
        [
          [3, 7, 9, 5],
          [0, 3, 1, 2],
        ], // NHWC -> NCHW
        [
          [2, 1, 3, 1, 4],
          [4, 3, 2, 1, 0],
        ],
        [
          [4, 5, 6],
          [0, 1, 2],
        ],
        [
          [70, 65],
          [1, 0],
        ],
        [
          [33, 33],
          [1, 0],
        ], // tile edges: one column past a 32-wide tile
        [
          [32, 48],
          [1, 0],
        ], // whole 16×16 blocks only (AVX-512: through the registers, no masks)
        [
          [4, 65, 97],
          [0, 2, 1],
        ],
        [
          [2, 3, 2, 3, 2, 3, 2],
          [6, 5, 4, 3, 2, 1, 0],
        ],
        [[], []],
        [
          [2, 2, 2, 2, 2, 2, 2, 2, 2],
          [8, 7, 6, 5, 4, 3, 2, 1, 0],
        ], // 9 axes: JS fallback
        // large enough to be shared out between threads: a conv's layout change, a batch of transposes, 4 axes
        [
          [64, 32, 676],
          [1, 0, 2],
        ],
        [
          [8, 300, 257],
          [0, 2, 1],
        ],
        [
          [12, 37, 41, 31],
          [2, 0, 3, 1],
        ],
      ];
      for (const [shape, perm] of cases) {
        const n = prod(shape);
        same(be, [uniform(r, n), uniform(r, n)], (b, [x, o]) => b.permute(x!, o!, shape, perm), EXACT);
      }
    });

    it('softmax, log-softmax and their gradients', () => {
      const r = lcg(7);
      for (const [rows, cols] of [
        [128, 10],
        [3, 1000],
        [5, 1],
      ] as const) {
        const x = uniform(r, rows * cols, -8, 8);
        x[0] = 80; // large logits
        if (cols > 2) x[1] = Number.NEGATIVE_INFINITY;
        for (const log of [false, true]) {
          same(be, [x, uniform(r, rows * cols)], (b, [xx, o]) => b.softmax(xx!, o!, rows, cols, log), ULPS);
          const yb = js.alloc(rows * cols);
          js.softmax(load(js, x), yb, rows, cols, log);
          const y = yb.data.slice();
          same(
            be,
            [y, uniform(r, rows * cols), uniform(r, rows * cols)],
            (b, [yy, gy, gx]) => b.softmaxGrad(yy!, gy!, gx!, rows, cols, log),
            {
              rel: 1e-6,
              abs: 1e-7,
            },
          );
        }
      }
      // log-softmax entries near 0 come from a cancellation: an absolute tolerance
      const x = uniform(r, 64 * 10, -3, 3);
      same(be, [x, new Float32Array(640)], (b, [xx, o]) => b.softmax(xx!, o!, 64, 10, true), { rel: 1e-6, abs: 1e-7 });
    });

    it("crossEntropy's rows exponentiated in blocks: each row's bits as alone, and the scalar exponential's bits", () => {
      const r = lcg(18);
      const bits = (b: Buf, n: number) => Array.from(new Uint32Array(b.data.slice(0, n).buffer));
      const run = (x: Float32Array, t: Float32Array, rows: number, cols: number) => {
        const [xb, tb, pb, lb] = [x, t, new Float32Array(rows * cols), new Float32Array(rows)].map((a) => load(be, a));
        be.crossEntropy(xb!, tb!, pb!, lb!, rows, cols, 0, -100);
        const out = [bits(pb!, rows * cols), bits(lb!, rows)];
        for (const b of [xb!, tb!, pb!, lb!]) be.free(b);
        return out;
      };
      // 130 rows of 7: blocks of 73 rows (512 values), the second one short; every row as if computed alone
      const rows = 130;
      const cols = 7;
      const x = uniform(r, rows * cols, -20, 20);
      x[5] = Number.NEGATIVE_INFINITY;
      const t = Float32Array.from({ length: rows }, () => Math.floor(r() * cols));
      const [probs, loss] = run(x, t, rows, cols);
      for (let i = 0; i < rows; i++) {
        const [p1, l1] = run(x.subarray(i * cols, (i + 1) * cols), t.subarray(i, i + 1), 1, cols);
        expect(probs!.slice(i * cols, (i + 1) * cols), `row ${i}`).toEqual(p1);
        expect(loss![i], `row ${i}`).toBe(l1![0]);
      }
      // a row of 512 takes the vectorized exponential, one of 513 (a -Inf more, adding exp(-Inf) = 0) the scalar one
      const wide = uniform(r, 513, -30, 30);
      wide[512] = Number.NEGATIVE_INFINITY;
      // (the probabilities: the loss of the second is NaN, 0·(−Inf) in its smoothing term)
      const [pv] = run(wide.subarray(0, 512), new Float32Array([3]), 1, 512);
      const [ps] = run(wide, new Float32Array([3]), 1, 513);
      expect(ps!.slice(0, 512)).toEqual(pv);
    });

    it('crossEntropy with smoothing and ignored rows, and its gradient', () => {
      const r = lcg(8);
      const rows = 67;
      const cols = 10;
      for (const smoothing of [0, 0.1]) {
        const x = uniform(r, rows * cols, -6, 6);
        const t = new Float32Array(rows);
        for (let i = 0; i < rows; i++) t[i] = Math.floor(r() * cols);
        t[3] = -100;
        t[40] = -100;
        const tol = { rel: 1e-6, abs: 1e-7 };
        same(
          be,
          [x, t, uniform(r, rows * cols), uniform(r, rows)],
          (b, [xx, tt, p, l]) => b.crossEntropy(xx!, tt!, p!, l!, rows, cols, smoothing, -100),
          tol,
        );
        const pb = js.alloc(rows * cols);
        js.crossEntropy(load(js, x), load(js, t), pb, js.alloc(rows), rows, cols, smoothing, -100);
        const probs = pb.data.slice();
        const scale = uniform(r, rows, 0, 1 / rows);
        same(
          be,
          [probs, t, scale, uniform(r, rows * cols)],
          (b, [p, tt, s, gx]) => b.crossEntropyGrad(p!, tt!, s!, gx!, rows, cols, smoothing, -100),
          EXACT,
        );
      }
    });

    it('im2col and col2im over strides, padding and dilation', () => {
      const r = lcg(9);
      const geoms = [
        convGeom(2, 3, 7, 6, 3, 3, [1, 1], [1, 1], [1, 1]),
        convGeom(2, 2, 9, 8, 3, 3, [2, 2], [0, 0], [1, 1]),
        convGeom(1, 2, 11, 10, 3, 3, [2, 3], [2, 1], [2, 2]),
        convGeom(3, 1, 6, 9, 1, 5, [1, 2], [0, 2], [1, 1]),
        convGeom(2, 4, 5, 5, 5, 5, [1, 1], [0, 0], [1, 1]),
        convGeom(1, 1, 4, 4, 2, 2, [3, 3], [3, 3], [1, 1]), // windows entirely in the padding
        convGeom(64, 1, 28, 28, 5, 5, [1, 1], [2, 2], [1, 1]),
        // stride 1 (the vectorized row paths): the CNN's shapes, rows over 16 with padding and dilation, 1×1
        convGeom(3, 4, 13, 13, 3, 3, [1, 1], [0, 0], [1, 1]),
        convGeom(2, 2, 9, 37, 3, 3, [1, 1], [1, 1], [1, 2]),
        convGeom(2, 3, 6, 35, 3, 4, [1, 1], [2, 3], [2, 1]),
        convGeom(2, 3, 5, 7, 1, 1, [1, 1], [0, 0], [1, 1]),
        convGeom(2, 2, 9, 20, 3, 3, [2, 1], [1, 1], [1, 1]),
        convGeom(2, 2, 9, 20, 3, 3, [1, 2], [1, 1], [1, 1]),
        // large enough to be shared out between threads: the CNN's second conv, and a strided, padded one
        convGeom(64, 32, 13, 13, 3, 3, [1, 1], [0, 0], [1, 1]),
        convGeom(48, 8, 30, 30, 3, 3, [2, 2], [1, 1], [1, 1]),
      ];
      for (const g of geoms) {
        const xs = g.n * g.c * g.h * g.w;
        const cs = g.c * g.kh * g.kw * g.n * g.oh * g.ow;
        same(be, [uniform(r, xs), uniform(r, cs)], (b, [x, c]) => b.im2col(x!, 0, c!, g), EXACT);
        same(be, [uniform(r, cs), uniform(r, xs)], (b, [c, dx]) => b.col2im(c!, dx!, 0, g), EXACT);
        // one image of the batch at a time, as conv2d runs them: the offsets select it, the rest of dx is untouched
        const one = { ...g, n: 1 };
        const xsOne = g.c * g.h * g.w;
        const csOne = g.c * g.kh * g.kw * g.oh * g.ow;
        const last = (g.n - 1) * xsOne;
        same(be, [uniform(r, xs), uniform(r, csOne)], (b, [x, c]) => b.im2col(x!, last, c!, one), EXACT);
        same(be, [uniform(r, csOne), uniform(r, xs)], (b, [c, dx]) => b.col2im(c!, dx!, last, one), EXACT);
      }
    });

    it('the whole convolution and its gradients over strides, padding, dilation, groups and batch sizes', () => {
      const r = lcg(21);
      for (const [g, oc, groups] of CONV_CASES) {
        for (const accumulate of [false, true]) convSame(be, r, g, oc, groups, 'forward', accumulate);
        convSame(be, r, g, oc, groups, 'input', false);
        convSame(be, r, g, oc, groups, 'weight', false);
      }
    });

    it('max and average pooling with padding, and their gradients', () => {
      const r = lcg(10);
      const geoms = [
        poolGeom(6, 8, 8, 2, 2, [2, 2], [0, 0]),
        poolGeom(4, 7, 9, 3, 3, [2, 2], [1, 1]),
        poolGeom(3, 10, 7, 3, 2, [1, 2], [1, 1]),
        poolGeom(2, 7, 7, 3, 3, [2, 2], [1, 1], true),
        poolGeom(2, 5, 6, 2, 3, [3, 2], [0, 1], true),
        poolGeom(128, 12, 12, 2, 2, [2, 2], [0, 0]),
        poolGeom(5, 7, 9, 2, 2, [2, 2], [0, 0]), // the 2×2 fast path with a last odd row and column
        poolGeom(3, 41, 38, 2, 2, [2, 2], [0, 0]), // ... and rows of 19 outputs: one full 16-wide step and a tail
        // large enough to be shared out between threads (a CNN's first pooling), and an odd number of planes
        poolGeom(515, 26, 26, 2, 2, [2, 2], [0, 0]),
        poolGeom(301, 25, 27, 3, 3, [2, 2], [1, 1]),
      ];
      for (const g of geoms) {
        const xs = g.planes * g.h * g.w;
        const os = g.planes * g.oh * g.ow;
        const x = uniform(r, xs);
        for (let i = 0; i < xs; i += 13) x[i] = x[i + 1] ?? 0; // ties
        same(be, [x, uniform(r, os)], (b, [xx, o]) => b.maxPool2d(xx!, o!, g), EXACT);
        same(be, [x, uniform(r, os), uniform(r, xs)], (b, [xx, gy, dx]) => b.maxPool2dGrad(xx!, gy!, dx!, g), EXACT);
        // (x as a ReLU's output, zeros included: the ReLU's gradient folded in)
        const xr = x.map((v) => (v <= 0 ? 0 : v));
        same(
          be,
          [xr, uniform(r, os), uniform(r, xs), uniform(r, g.planes)],
          (b, [xx, gy, dx, sums]) => b.maxPool2dGradRelu(xx!, gy!, dx!, sums!, g),
          EXACT,
        );
        for (const cip of [true, false]) {
          same(be, [x, uniform(r, os)], (b, [xx, o]) => b.avgPool2d(xx!, o!, g, cip), EXACT);
          same(be, [uniform(r, os), uniform(r, xs)], (b, [gy, dx]) => b.avgPool2dGrad(gy!, dx!, g, cip), EXACT);
        }
        // NaN in the input: it wins the window (and the gradient), as in PyTorch
        for (const every of [31, 3, 2]) {
          const xn = x.slice();
          for (let i = 5; i < xs; i += every) xn[i] = Number.NaN;
          same(be, [xn, uniform(r, os)], (b, [xx, o]) => b.maxPool2d(xx!, o!, g), EXACT);
          same(be, [xn, uniform(r, os), uniform(r, xs)], (b, [xx, gy, dx]) => b.maxPool2dGrad(xx!, gy!, dx!, g), EXACT);
          const xr = xn.map((v) => (v <= 0 ? 0 : v));
          same(
            be,
            [xr, uniform(r, os), uniform(r, xs), uniform(r, g.planes)],
            (b, [xx, gy, dx, sums]) => b.maxPool2dGradRelu(xx!, gy!, dx!, sums!, g),
            EXACT,
          );
        }
      }
    });

    it("maxPool2dSums gives maxPool2d's output and sumSquaresRows' plane sums and Σx² to the bit, in one call", () => {
      const r = lcg(47);
      const bits = (b: Buf, k: number) => [...new Uint32Array(b.data.buffer, b.data.byteOffset, k)];
      // (the CLI CNN's two: several blocks of whole planes, shared out over the threads natively; odd sizes, a
      // padded window, a last row and column no window reads, which the sums still count)
      const geoms = [
        poolGeom(2048, 28, 28, 2, 2, [2, 2], [0, 0]),
        poolGeom(4096, 14, 14, 2, 2, [2, 2], [0, 0]),
        poolGeom(5, 7, 9, 2, 2, [2, 2], [0, 0]),
        poolGeom(4, 7, 9, 3, 3, [2, 2], [1, 1]),
        poolGeom(301, 25, 27, 3, 3, [2, 2], [1, 1]),
      ];
      for (const g of geoms) {
        const xs = g.planes * g.h * g.w;
        const os = g.planes * g.oh * g.ow;
        // a ReLU's output (a dead plane), and NaN and ±Inf in it
        const relu = uniform(r, xs, -1, 3).map((v, i) => (v <= 0 || Math.floor(i / (g.h * g.w)) === 2 ? 0 : v));
        const odd = relu.slice();
        for (let i = 11; i < xs; i += 997) odd[i] = i % 3 === 0 ? Number.NaN : Number.POSITIVE_INFINITY;
        for (const a of [relu, odd]) {
          const x = load(be, a);
          const [o1, o2, s1, s2] = [be.alloc(os), be.alloc(os), be.alloc(g.planes), be.alloc(g.planes)] as const;
          s1.data.fill(7);
          const ss = be.maxPool2dSums(x, o1, s1, g);
          be.maxPool2d(x, o2, g);
          const ss2 = be.sumSquaresRows(x, s2, g.planes, g.h * g.w);
          const what = `${g.planes}×${g.h}×${g.w} ${a === odd ? 'non-finite' : 'finite'}`;
          expect(Object.is(ss, ss2), `${what}: Σx² ${ss} against ${ss2}`).toBe(true);
          expect(bits(o1, os), `${what}: pooled`).toEqual(bits(o2, os));
          expect(bits(s1, g.planes), `${what}: plane sums`).toEqual(bits(s2, g.planes));
          for (const b of [x, o1, o2, s1, s2]) be.free(b);
        }
      }
      // the same bits on one thread and on two (the blocks are fixed by the shape)
      if (be.name === 'native') {
        const nb = be as NonNullable<typeof native>;
        const before = nb.threads;
        const g = geoms[0]!;
        const x = load(be, uniform(r, g.planes * g.h * g.w, 0, 3));
        const o = be.alloc(g.planes * g.oh * g.ow);
        const s = be.alloc(g.planes);
        try {
          const run = (t: number) => {
            nb.setThreads(t);
            const ss = be.maxPool2dSums(x, o, s, g);
            return [ss, ...bits(o, g.planes * g.oh * g.ow), ...bits(s, g.planes)];
          };
          expect(run(2)).toEqual(run(1));
        } finally {
          nb.setThreads(before);
          for (const b of [x, o, s]) be.free(b);
        }
      }
    });

    it('NaN: relu keeps it, the last NaN of a max-pooling window takes the gradient', () => {
      const x = new Float32Array([Number.NaN, -0, 0, -1, 2, Number.NaN, Number.POSITIVE_INFINITY, -3, 5, 7, -2, 1]);
      const gy = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      for (const op of [Unary.Relu, Unary.LeakyRelu]) {
        same(be, [x, new Float32Array(12)], (b, [xx, o]) => b.unary(op, xx!, o!, 12, 0.1, 0), EXACT);
        same(
          be,
          [x, x, gy, new Float32Array(12)],
          (b, [xx, y, g, o]) => b.unaryGrad(op, xx!, y!, g!, o!, 12, 0.1, 0),
          EXACT,
        );
      }
      const r = lcg(12);
      for (const g of [
        poolGeom(8, 6, 6, 2, 2, [2, 2], [0, 0]), // the 2×2 fast path
        poolGeom(8, 7, 7, 3, 3, [2, 2], [1, 1]),
        poolGeom(4, 6, 8, 3, 2, [1, 2], [0, 1]),
      ]) {
        const xs = g.planes * g.h * g.w;
        const os = g.planes * g.oh * g.ow;
        for (const every of [2, 3, 5]) {
          const xn = uniform(r, xs);
          for (let i = 0; i < xs; i += every) xn[i] = Number.NaN;
          same(be, [xn, uniform(r, os)], (b, [xx, o]) => b.maxPool2d(xx!, o!, g), EXACT);
          same(
            be,
            [xn, uniform(r, os), uniform(r, xs)],
            (b, [xx, gy2, dx]) => b.maxPool2dGrad(xx!, gy2!, dx!, g),
            EXACT,
          );
        }
      }
    });

    it('the LSTM step (lstmCell) and its backward (lstmCellGrad, bit for bit), strided in and out', () => {
      const r = lcg(13);
      // [hidden, batch]: the bench's shape, a tail shorter than a vector, one unit, one sample
      for (const [H, B] of [
        [128, 64],
        [5, 3],
        [1, 17],
        [9, 1],
      ] as const) {
        const n = H * B;
        // pre-activations in column block 2 of a [4H, 5B] matrix (ld 5B); h into block 3 of an [H, 6B] one
        const ldp = 5 * B;
        const ldh = 6 * B;
        const p = uniform(r, 4 * H * ldp, -6, 6);
        p[2 * B] = 40; // saturated gates
        p[(H + 1) * ldp + 2 * B] = -40;
        const cPrev = uniform(r, n, -2, 2);
        // h also into block 1 of the layer's output [3, B, H], and into step 1 of a batch-first output [B, 3, H]
        // (batch rows 3H apart)
        for (const [y0, ldy] of [
          [n, H],
          [H, 3 * H],
        ] as const)
          same(
            be,
            [p, cPrev, uniform(r, 4 * n), uniform(r, n), uniform(r, n), uniform(r, H * ldh), uniform(r, 3 * n)],
            (b, [pp, cp, act, c, tc, h, y]) =>
              b.lstmCell(pp!, 2 * B, ldp, cp!, act!, c!, tc!, h!, 3 * B, ldh, y!, y0, ldy, H, B),
            { rel: 2e-6, abs: 2e-7 },
          );
        // gradients into column block 1 of a [4H, 3B] matrix (ld 3B)
        const ldg = 3 * B;
        const act = uniform(r, 4 * n, 0, 1);
        for (let e = 2 * n; e < 3 * n; e++) act[e] = 2 * act[e]! - 1; // g = tanh in (-1, 1)
        // the output's gradient from block 2 of [3, B, H], and from step 2 of a batch-first [B, 3, H]
        for (const [y0, ldy] of [
          [2 * n, H],
          [2 * H, 3 * H],
        ] as const)
          same(
            be,
            [
              act,
              cPrev,
              uniform(r, n, -1, 1),
              uniform(r, n),
              uniform(r, n),
              uniform(r, 4 * H * ldg),
              uniform(r, n),
              uniform(r, 3 * n),
            ],
            (b, [a, cp, tc, dh, dc, dG, dcp, dy]) =>
              b.lstmCellGrad(a!, cp!, tc!, dh!, dy!, y0, ldy, dc!, dG!, B, ldg, dcp!, H, B),
            EXACT,
          );
      }
    });

    it('the GRU step (gruCell) and its backward (gruCellGrad, bit for bit), strided in and out', () => {
      const r = lcg(14);
      for (const [H, B] of [
        [128, 64],
        [5, 3],
        [1, 17],
        [9, 1],
      ] as const) {
        const n = H * B;
        // pre-activations in column block 1 of a [3H, 4B] matrix; h_prev in block 2 and h into block 3 of [H, 5B]
        const ldp = 4 * B;
        const ldh = 5 * B;
        const p = uniform(r, 3 * H * ldp, -6, 6);
        p[B] = 40; // saturated gates
        p[H * ldp + B] = -40;
        const hs = uniform(r, H * ldh, -1, 1);
        const hn = uniform(r, n, -2, 2);
        // the output into block 2 of [3, B, H], and into step 2 of a batch-first [B, 3, H]
        for (const [y0, ldy] of [
          [2 * n, H],
          [2 * H, 3 * H],
        ] as const)
          same(
            be,
            [p, hn, hs, uniform(r, 3 * n), uniform(r, 3 * n)],
            (b, [pp, hh, hv, act, y]) =>
              b.gruCell(pp!, B, ldp, hh!, hv!, 2 * B, hv!, 3 * B, ldh, y!, y0, ldy, act!, H, B),
            { rel: 2e-6, abs: 2e-7 },
          );
        // gradients into column block 2 of a [4H, 3B] matrix (ld 3B)
        const ldg = 3 * B;
        const act = uniform(r, 3 * n, 0, 1);
        for (let e = 2 * n; e < 3 * n; e++) act[e] = 2 * act[e]! - 1; // n = tanh in (-1, 1)
        // the output's gradient from block 1 of [3, B, H], and from step 1 of a batch-first [B, 3, H]
        for (const [y0, ldy] of [
          [n, H],
          [H, 3 * H],
        ] as const)
          same(
            be,
            [act, hn, hs, uniform(r, n), uniform(r, 4 * H * ldg), uniform(r, n), uniform(r, 3 * n)],
            (b, [a, hh, hv, dh, dG, dhp, dy]) =>
              b.gruCellGrad(a!, hh!, hv!, 2 * B, ldh, dh!, dy!, y0, ldy, dG!, 2 * B, ldg, dhp!, H, B),
            EXACT,
          );
      }
    });

    it('the LSTM and GRU steps at extreme pre-activations, in the vector lanes and the tails, odd sizes', () => {
      // The x86 cells compute σ and tanh over whole vectors of the batch (16 or 8 lanes) and the rest of a row with the
      // scalar functions: special values (±Inf, NaN, ±0, subnormals, saturation at ±100 and ±3.4e38, tanh's branch
      // point 0.625, exp's clamps 89 and -104) go everywhere in the rows, in batches that are and are not multiples
      // of a vector, and hidden sizes that are not multiples of 16; NaN must propagate, saturated gates be 0 or 1.
      const r = lcg(15);
      const specials = [
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        0,
        -0,
        1e-40,
        -1e-40,
        100,
        -100,
        3.4e38,
        -3.4e38,
        0.625,
        -0.625,
        0.62500006,
        89.5,
        -104.5,
        1e-20,
      ];
      const sprinkle = (a: Float32Array, every: number): Float32Array => {
        for (let i = 0, k = 0; i < a.length; i += every, k++) a[i] = specials[k % specials.length]!;
        return a;
      };
      for (const [H, B] of [
        [33, 35],
        [17, 16],
        [3, 48],
        [19, 1],
      ] as const) {
        const n = H * B;
        for (const every of [3, 7]) {
          const ldp = 2 * B;
          const p = sprinkle(uniform(r, 4 * H * ldp, -6, 6), every);
          const cPrev = sprinkle(uniform(r, n, -2, 2), 5 * every);
          same(
            be,
            [p, cPrev, uniform(r, 4 * n), uniform(r, n), uniform(r, n), uniform(r, H * 3 * B), uniform(r, n)],
            (b, [pp, cp, act, c, tc, h, y]) =>
              b.lstmCell(pp!, B, ldp, cp!, act!, c!, tc!, h!, B, 3 * B, y!, 0, H, H, B),
            { rel: 2e-6, abs: 2e-7 },
          );
          const hs = sprinkle(uniform(r, H * 3 * B, -1, 1), 5 * every);
          same(
            be,
            [
              p.subarray(0, 3 * H * ldp),
              sprinkle(uniform(r, n, -2, 2), 4 * every),
              hs,
              uniform(r, 3 * n),
              uniform(r, n),
            ],
            (b, [pp, hh, hv, act, y]) => b.gruCell(pp!, B, ldp, hh!, hv!, 0, hv!, B, 3 * B, y!, 0, H, act!, H, B),
            { rel: 2e-6, abs: 2e-7 },
          );
          // the backward's inputs with specials too: bit for bit, NaN where the reference has it
          const act = sprinkle(uniform(r, 4 * n, 0, 1), 2 * every);
          same(
            be,
            [
              act,
              cPrev,
              uniform(r, n, -1, 1),
              sprinkle(uniform(r, n), every),
              uniform(r, n),
              uniform(r, 4 * H * B),
              uniform(r, n),
              sprinkle(uniform(r, n), 3 * every),
            ],
            (b, [a, cp, tc, dh, dc, dG, dcp, dy]) =>
              b.lstmCellGrad(a!, cp!, tc!, dh!, dy!, 0, H, dc!, dG!, 0, B, dcp!, H, B),
            EXACT,
          );
          same(
            be,
            [
              act.subarray(0, 3 * n),
              uniform(r, n),
              hs,
              sprinkle(uniform(r, n), every),
              uniform(r, 4 * H * B),
              uniform(r, n),
              sprinkle(uniform(r, n), 3 * every),
            ],
            (b, [a, hh, hv, dh, dG, dhp, dy]) =>
              b.gruCellGrad(a!, hh!, hv!, 0, 3 * B, dh!, dy!, 0, H, dG!, 0, B, dhp!, H, B),
            EXACT,
          );
        }
      }
    });

    it('the ReLU and the ops fused with it (addRelu, reluGradSum, batchNormRelu, batchNormReluGrad), bit for bit', () => {
      const r = lcg(14);
      // -0 (which must give +0), NaN and infinities at every lane position of a vector, and a tail
      const n = 1037;
      const x = uniform(r, n, -2, 2);
      for (let i = 0; i < n; i += 3)
        x[i] = [-0, 0, Number.NaN, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY][i % 5]!;
      sameBits(be, [x, uniform(r, n)], (b, [xx, o]) => b.unary(Unary.Relu, xx!, o!, n, 0, 0));
      const y = uniform(r, n, -2, 2);
      for (let i = 1; i < n; i += 4) y[i] = i % 3 ? -0 : 0;
      sameBits(be, [x, y, uniform(r, n)], (b, [a, bb, o]) => b.addRelu(a!, bb!, o!, n));
      sameBits(be, [x, y, uniform(r, n)], (b, [a, bb, o]) => b.addRelu(a!, bb!, o!, n - 5)); // a tail untouched
      // two gradients of a ReLU output y (+0, -0, NaN, positives), infinite where the mask drops them
      const ry = uniform(r, n, -1, 2);
      for (let i = 0; i < n; i++) if (!(ry[i]! > 0)) ry[i] = [0, -0, Number.NaN][i % 3]!;
      sameBits(be, [x, y, ry, uniform(r, n)], (b, [a, bb, yy, o]) => b.reluGradSum(a!, bb!, yy!, o!, n));
      // [n, c, inner] as batchNorm's test: groups of 4 runs and the rest, runs with tails, inner = 1
      for (const [bn, c, inner] of [
        [9, 3, 21],
        [6, 2, 64],
        [8, 16, 1],
        [5, 4, 36],
      ] as const) {
        const size = bn * c * inner;
        const xx = uniform(r, size, -2, 3);
        // channel 0 weight 0 and bias 0: every output +0 (the mask at exactly 0)
        const w = uniform(r, c, 0.5, 1.5);
        const bias = uniform(r, c, -0.5, 0.5);
        w[0] = 0;
        bias[0] = 0;
        for (const training of [true, false]) {
          for (const update of training ? [true, false] : [false]) {
            sameBits(
              be,
              [
                xx,
                w,
                bias,
                uniform(r, c, -0.1, 0.1),
                uniform(r, c, 0.5, 2),
                uniform(r, c),
                uniform(r, c),
                uniform(r, size),
              ],
              (b, [x1, ww, bb, rm, rv, mu, is, o]) =>
                b.batchNormRelu(x1!, ww!, bb!, rm!, rv!, mu!, is!, o!, bn, c, inner, training, update, 0.1, 1e-5),
            );
          }
          const mu = uniform(r, c, -0.1, 0.2);
          const is = uniform(r, c, 0.5, 1.5);
          // the ReLU's output: +0, -0, NaN and positives; gy infinite where the mask drops it
          const yy = uniform(r, size, -1, 2);
          const gy = uniform(r, size);
          for (let i = 0; i < size; i++) {
            const v = yy[i]!;
            if (v < 0) yy[i] = i % 7 === 0 ? -0 : i % 11 === 0 ? Number.NaN : 0;
            if (!(yy[i]! > 0) && i % 5 === 0) gy[i] = Number.POSITIVE_INFINITY;
          }
          sameBits(
            be,
            [xx, gy, yy, w, mu, is, uniform(r, size), uniform(r, c), uniform(r, c)],
            (b, [x1, g, y1, ww, m, s1, gx, gw, gb]) =>
              b.batchNormReluGrad(x1!, g!, y1!, ww!, m!, s1!, gx!, gw!, gb!, bn, c, inner, training),
          );
        }
      }
    });

    it('batchNorm and layerNorm, forward and backward, bit for bit', () => {
      const r = lcg(12);
      // [n, c, inner]: the CNN's shapes, runs shorter than 8 and with a tail, BatchNorm1d's inner = 1; images in
      // groups of 4 runs (AVX-512: their lane sums at once) and the rest one by one
      for (const [n, c, inner] of [
        [9, 3, 21],
        [6, 2, 64],
        [4, 3, 25],
        [2, 5, 8],
        [8, 16, 1],
        [3, 2, 67],
        [1, 4, 3],
      ] as const) {
        const size = n * c * inner;
        const x = uniform(r, size, -2, 3);
        const w = uniform(r, c, 0.5, 1.5);
        const bias = uniform(r, c, -0.5, 0.5);
        for (const training of [true, false]) {
          for (const update of training ? [true, false] : [false]) {
            same(
              be,
              [
                x,
                w,
                bias,
                uniform(r, c, -0.1, 0.1),
                uniform(r, c, 0.5, 2),
                uniform(r, c),
                uniform(r, c),
                uniform(r, size),
              ],
              (b, [xx, ww, bb, rm, rv, mu, is, o]) =>
                b.batchNorm(xx!, ww!, bb!, rm!, rv!, mu!, is!, o!, n, c, inner, training, update, 0.1, 1e-5),
              EXACT,
            );
          }
          const mu = new Float32Array(c);
          const is = new Float32Array(c);
          for (let ch = 0; ch < c; ch++) {
            mu[ch] = 0.3 * r() - 0.1;
            is[ch] = 0.5 + r();
          }
          same(
            be,
            [x, uniform(r, size), w, mu, is, uniform(r, size), uniform(r, c), uniform(r, c)],
            (b, [xx, gy, ww, m, s, gx, gw, gb]) =>
              b.batchNormGrad(xx!, gy!, ww!, m!, s!, gx!, gw!, gb!, n, c, inner, training),
            EXACT,
          );
        }
      }
      // [rows, d]: more columns than one block of the C column loop (64), a tail, a single column
      for (const [rows, d] of [
        [6, 10],
        [33, 130],
        [5, 1],
        [2, 8],
      ] as const) {
        const size = rows * d;
        const x = uniform(r, size, -3, 3);
        x[0] = 100;
        const w = uniform(r, d, 0.5, 1.5);
        const bias = uniform(r, d, -0.5, 0.5);
        same(
          be,
          [x, w, bias, uniform(r, rows), uniform(r, rows), uniform(r, size)],
          (b, [xx, ww, bb, mu, rs, o]) => b.layerNorm(xx!, ww!, bb!, mu!, rs!, o!, rows, d, 1e-5),
          EXACT,
        );
        const mu = uniform(r, rows, -0.2, 0.2);
        const rs = uniform(r, rows, 0.5, 1.5);
        same(
          be,
          [x, uniform(r, size), w, mu, rs, uniform(r, size), uniform(r, d), uniform(r, d)],
          (b, [xx, gy, ww, m, s, gx, gw, gb]) => b.layerNormGrad(xx!, gy!, ww!, m!, s!, gx!, gw!, gb!, rows, d),
          EXACT,
        );
      }
    });

    it('nllLoss, bceWithLogits and adaptiveAvgPool2d with their gradients (the reference, on this memory)', () => {
      const r = lcg(13);
      const rows = 9;
      const cols = 7;
      const t = new Float32Array(rows);
      for (let i = 0; i < rows; i++) t[i] = Math.floor(r() * cols);
      t[2] = -100;
      same(
        be,
        [uniform(r, rows * cols, -5, 0), t, uniform(r, rows)],
        (b, [x, tt, l]) => b.nllLoss(x!, tt!, l!, rows, cols, -100),
        EXACT,
      );
      same(
        be,
        [t, uniform(r, rows), uniform(r, rows * cols)],
        (b, [tt, s, gx]) => b.nllLossGrad(tt!, s!, gx!, rows, cols, -100),
        EXACT,
      );
      const n = 50;
      const x = withSpecials(r, n, -30, 30);
      const y = uniform(r, n, 0, 1);
      const w = uniform(r, n, 0.5, 3);
      same(be, [x, y, w, uniform(r, n)], (b, [xx, yy, ww, o]) => b.bceWithLogits(xx!, yy!, ww!, o!, n), EXACT);
      same(
        be,
        [x, y, w, uniform(r, n), uniform(r, n), uniform(r, n)],
        (b, [xx, yy, ww, g, gx, gt]) => b.bceWithLogitsGrad(xx!, yy!, ww!, g!, gx!, gt!, n),
        EXACT,
      );
      for (const [planes, h, wd, oh, ow] of [
        [3, 7, 5, 3, 2],
        [2, 4, 4, 4, 4],
        [1, 5, 9, 1, 1],
      ] as const) {
        same(
          be,
          [uniform(r, planes * h * wd), uniform(r, planes * oh * ow)],
          (b, [xx, o]) => b.adaptiveAvgPool2d(xx!, o!, planes, h, wd, oh, ow),
          EXACT,
        );
        same(
          be,
          [uniform(r, planes * oh * ow), uniform(r, planes * h * wd)],
          (b, [gy, dx]) => b.adaptiveAvgPool2dGrad(gy!, dx!, planes, h, wd, oh, ow),
          EXACT,
        );
      }
    });

    it('linearBias: the bits of its composition on this backend (bias, sgemm with beta 1, ReLU), with either sgemm', () => {
      const r = lcg(37);
      const ref = JsBackend.prototype;
      const pinnable = be as Backend & { selectGemm?: (w: 'auto' | 'openblas' | 'own') => string };
      const pins = pinnable.selectGemm ? (['own', 'openblas', 'auto'] as const) : ([null] as const);
      // full and partial register tiles (rows not a multiple of 12, columns of 32), depth past one block (384), and
      // outputs narrower than a tile over many rows (ours computes those transposed: the kernel declines and the
      // backend composes)
      const shapes = [
        [60, 500, 128],
        [13, 45, 70],
        [37, 800, 33],
        [64, 20, 10],
        [1, 5, 3],
      ] as const;
      try {
        for (const [rows, inF, outF] of shapes) {
          for (const relu of [false, true]) {
            const x = uniform(r, rows * inF);
            x.fill(0, 0, inF); // a row of zeros: its outputs are the bias (and its ReLU)
            const data = [x, uniform(r, outF * inF), withSpecials(r, outF, -2, 2), uniform(r, rows * outF)];
            const run = (b: Backend, f: (bufs: Buf[]) => void) => {
              const bufs = data.map((a) => load(b, a));
              f(bufs);
              const out = bufs[3]!.data.slice();
              for (const buf of bufs) b.free(buf);
              return out;
            };
            const args = [rows, inF, outF, relu] as const;
            // the reference's numbers, and the bound on float32 rounding: the product over absolute values
            const want = run(js, ([xx, w, bias, out]) => js.linearBias(xx!, w!, bias!, out!, ...args));
            const bound = run(js, ([xx, w, bias, out]) => {
              for (const buf of [xx!, w!, bias!]) buf.data.set(buf.data.map(Math.abs));
              js.linearBias(xx!, w!, bias!, out!, rows, inF, outF, false);
            });
            for (const pin of pins) {
              if (pin) pinnable.selectGemm!(pin);
              const fused = run(be, ([xx, w, bias, out]) => be.linearBias(xx!, w!, bias!, out!, ...args));
              const composed = run(be, ([xx, w, bias, out]) => ref.linearBias.call(be, xx!, w!, bias!, out!, ...args));
              expect(firstDifference([fused], [composed]), `${pin} ${rows}x${inF}x${outF} relu ${relu}`).toBe('');
              for (let i = 0; i < want.length; i++) {
                if (!Number.isFinite(want[i]!)) expect(fused[i], `[${i}]`).toBe(want[i]);
                else expect(Math.abs(fused[i]! - want[i]!), `[${i}]`).toBeLessThanOrEqual(2e-6 * bound[i]! + 1e-30);
              }
            }
          }
        }
      } finally {
        if (pinnable.selectGemm) pinnable.selectGemm('auto');
      }
    });

    it('reluBiasGrad: the ReLU mask and the bias gradient in one pass, exactly', () => {
      const r = lcg(38);
      for (const [rows, cols] of [
        [128, 256],
        [7, 3],
        [1, 40],
        [33, 17],
      ] as const) {
        const n = rows * cols;
        const data = [withSpecials(r, n, -1, 1), withSpecials(r, n, -1, 1), uniform(r, n), uniform(r, cols)];
        data[1]![20 % n] = -0; // the ReLU's output is +0 there, but a -0 must mask too
        same(be, data, (b, [gy, y, gx, gb]) => b.reluBiasGrad(gy!, y!, gx!, gb!, rows, cols), EXACT);
      }
    });

    it('adamUpdate', () => {
      const r = lcg(11);
      for (const [step, n] of [
        [1, 1000],
        [57, 33],
      ] as const) {
        const b1 = 0.9;
        const b2 = 0.999;
        const g = uniform(r, n + 2, -1, 1);
        g[0] = 0;
        const m = uniform(r, n + 2, -0.1, 0.1);
        const v = uniform(r, n + 2, 0, 0.01);
        same(
          be,
          [g, m, v],
          (b, [gg, mm, vv]) => b.adamUpdate(gg!, mm!, vv!, n, b1, b2, 1e-8, 1 - b1 ** step, 1 - b2 ** step, 1, 1),
          EXACT,
        );
      }
    });

    it('scale: float32 products by the factor rounded to float32, exactly; -0, infinities and NaN as IEEE gives them', () => {
      const r = lcg(41);
      for (const [n, s] of [
        [1037, -1e-3],
        [33, 0.37],
        [5, Number.NaN],
        [200_003, 1 / 3], // shared out over the threads where there are several
        [7, -0],
        [40, 1e38],
      ] as const) {
        const x = withSpecials(r, n, -2, 2);
        x[1 % n] = -0;
        sameBits(be, [x], (b, [xb]) => b.scale(xb!, n, s));
        // and what PyTorch's mul_ computes on float32: the factor rounded, one rounding a product
        const xb = load(be, x);
        be.scale(xb, n, s);
        const f = Math.fround(s);
        for (let i = 0; i < n; i++)
          expect(Object.is(xb.data[i], Math.fround(f * x[i]!)), `n ${n}, s ${s}, [${i}]`).toBe(true);
        be.free(xb);
      }
    });

    it('adamUpdate with pre and post scales: bit for bit the scale pass, Adam, the scale pass', () => {
      const r = lcg(12);
      const n = 1037;
      for (const [pre, post] of [
        [0.37, -1e-3],
        [1, -0.01],
        [0.5, 1],
        [Number.NaN, -1e-3],
        [1e-30, -3],
      ] as const) {
        const g = withSpecials(r, n, -2, 2);
        const m = uniform(r, n, -0.1, 0.1);
        const v = uniform(r, n, 0, 0.01);
        const fused = [g, m, v].map((a) => load(be, a));
        const apart = [g, m, v].map((a) => load(be, a));
        be.adamUpdate(fused[0]!, fused[1]!, fused[2]!, n, 0.9, 0.999, 1e-8, 0.19, 0.002, pre, post);
        const [ga, ma, va] = apart as [Buf, Buf, Buf];
        if (pre !== 1) be.scale(ga, n, pre);
        be.adamUpdate(ga, ma, va, n, 0.9, 0.999, 1e-8, 0.19, 0.002, 1, 1);
        if (post !== 1) be.scale(ga, n, post);
        for (let k = 0; k < 3; k++)
          expectClose(fused[k]!.data, apart[k]!.data, EXACT, `pre ${pre}, post ${post}: ${k}`);
        for (const b of [...fused, ...apart]) be.free(b);
      }
    });

    it('adamApply: bit for bit adamUpdate and then axpy(1, u, p), g untouched; its sums those of axpySumSquares', () => {
      const r = lcg(13);
      const out = new Float64Array(2);
      const xss = new Float64Array(1);
      // lengths: within one turn of 512, several turns, several measured blocks of 4096 and a ragged end
      for (const [n, pre, post, specials] of [
        [1037, 0.37, -1e-3, true],
        [33, 1, 1, true],
        [7, 1e-30, -3, false],
        [40_005, 1, -0.01, false],
        [16_384 * 3, 0.5, -3e-4, false],
      ] as const) {
        const g = specials ? withSpecials(r, n, -2, 2) : uniform(r, n, -2, 2);
        const m = uniform(r, n, -0.1, 0.1);
        const v = uniform(r, n, 0, 0.01);
        const w = uniform(r, n, -1, 1);
        for (const measure of [false, true]) {
          const fused = [g, m, v, w].map((a) => load(be, a));
          const apart = [g, m, v, w].map((a) => load(be, a));
          out.fill(-1);
          be.adamApply(
            fused[0]!,
            fused[1]!,
            fused[2]!,
            fused[3]!,
            n,
            0.9,
            0.999,
            1e-8,
            0.19,
            0.002,
            pre,
            post,
            measure,
            out,
          );
          const [ga, ma, va, wa] = apart as [Buf, Buf, Buf, Buf];
          be.adamUpdate(ga, ma, va, n, 0.9, 0.999, 1e-8, 0.19, 0.002, pre, post);
          const wss = be.axpySumSquares(1, ga, wa, n, xss);
          const what = `n ${n}, pre ${pre}, post ${post}, measure ${measure}`;
          expectClose(fused[0]!.data, g, EXACT, `${what}: g`);
          for (let k = 1; k < 4; k++) expectClose(fused[k]!.data, apart[k]!.data, EXACT, `${what}: ${k}`);
          if (!measure) expect([...out]).toEqual([-1, -1]);
          else if (!specials) {
            expect(Math.abs(out[0]! - wss) / wss, `${what}: Σw²`).toBeLessThan(1e-6);
            expect(Math.abs(out[1]! - xss[0]!) / xss[0]!, `${what}: Σu²`).toBeLessThan(1e-6);
          }
          for (const b of [...fused, ...apart]) be.free(b);
        }
        // and the same bits as the reference
        sameBits(be, [g, m, v, w], (b, [gg, mm, vv, ww]) =>
          b.adamApply(gg!, mm!, vv!, ww!, n, 0.9, 0.999, 1e-8, 0.19, 0.002, pre, post, false, out),
        );
      }
    });

    it("adamApply's measured sums: the C kernels' order (turns of 512 in 16 float32 lanes, blocks of 4096) to the bit", () => {
      const r = lcg(14);
      const out = new Float64Array(2);
      // within a turn, a ragged turn (a tail in lane 0), several blocks, and more than 256 blocks (wider blocks)
      for (const [n, pre, post] of [
        [37, 1, -1e-3],
        [1037, 0.37, -1e-3],
        [4096 * 3 + 517, 1, 1],
        [200_704, 0.5, -3e-4],
        ...(be.name === 'native' ? ([[256 * 4096 + 4099, 1, -1e-3]] as const) : []),
      ] as const) {
        const g = uniform(r, n, -2, 2);
        const m = uniform(r, n, -0.1, 0.1);
        const v = uniform(r, n, 0, 0.01);
        // magnitudes from 2^-20 to 2^20, where the float32 lanes round and so depend on the order they are taken in
        const w = uniform(r, n, -1, 1).map((x, i) => x * 2 ** (((i * 37) % 41) - 20));
        const [gb, mb, vb, wb] = [g, m, v, w].map((a) => load(be, a)) as [Buf, Buf, Buf, Buf];
        be.adamApply(gb, mb, vb, wb, n, 0.9, 0.999, 1e-8, 0.19, 0.002, pre, post, true, out);
        // the steps u and the new weights, from the unfused kernels (the same bits, tested above)
        const [ga, ma, va] = [g, m, v].map((a) => load(be, a)) as [Buf, Buf, Buf];
        be.adamUpdate(ga, ma, va, n, 0.9, 0.999, 1e-8, 0.19, 0.002, pre, post);
        const u = ga.data.slice(0, n);
        const wn = wb.data.slice(0, n);
        const f = Math.fround;
        let block = 4096;
        if (Math.ceil(n / block) > 256) block = Math.ceil(Math.ceil(n / 256) / 16) * 16;
        let sp = 0;
        let su = 0;
        for (let b0 = 0; b0 < n; b0 += block) {
          let bp = 0;
          let bu = 0;
          const end = Math.min(n, b0 + block);
          for (let t0 = b0; t0 < end; t0 += 512) {
            const len = Math.min(512, end - t0);
            const lp = new Float32Array(16);
            const lu = new Float32Array(16);
            for (let j = 0; j < len; j++) {
              const lane = j < len - (len % 16) ? j % 16 : 0;
              lp[lane] = f(lp[lane]! + f(wn[t0 + j]! * wn[t0 + j]!));
              lu[lane] = f(lu[lane]! + f(u[t0 + j]! * u[t0 + j]!));
            }
            let tp = 0;
            let tu = 0;
            for (let l = 0; l < 16; l++) {
              tp += lp[l]!;
              tu += lu[l]!;
            }
            bp += tp;
            bu += tu;
          }
          sp += bp;
          su += bu;
        }
        expect(out[0], `n ${n}: Σw²`).toBe(sp);
        expect(out[1], `n ${n}: Σu²`).toBe(su);
        for (const b of [gb, mb, vb, wb, ga, ma, va]) be.free(b);
      }
    });
  });
}

/**
 * The whole convolution's cases: [one group's geometry (n images), output channels, groups]. Odd sizes, stride 2,
 * padding, dilation, groups and depthwise, 1×1 with and without stride, a batch of 1, batches that are not a multiple
 * of the weight gradient's blocks, and a few large enough for the pool's threads to share out.
 */
const CONV_CASES: [ConvGeom, number, number][] = [
  [convGeom(5, 4, 8, 8, 3, 3, [1, 1], [1, 1], [1, 1]), 6, 1],
  [convGeom(3, 3, 9, 9, 3, 3, [2, 2], [1, 1], [1, 1]), 5, 1],
  [convGeom(2, 2, 11, 10, 3, 3, [1, 1], [2, 2], [2, 2]), 4, 1],
  [convGeom(4, 3, 7, 7, 3, 3, [1, 1], [1, 1], [1, 1]), 4, 2],
  [convGeom(3, 1, 9, 8, 3, 3, [2, 1], [1, 0], [1, 1]), 4, 4], // depthwise
  [convGeom(3, 5, 6, 6, 1, 1, [1, 1], [0, 0], [1, 1]), 7, 1], // 1×1: the input is its own columns
  [convGeom(4, 2, 6, 6, 1, 1, [1, 1], [0, 0], [1, 1]), 6, 3], // ... per group
  [convGeom(2, 3, 7, 7, 1, 1, [2, 2], [0, 0], [1, 1]), 4, 1], // 1×1 with stride: unfolded
  [convGeom(1, 3, 10, 10, 3, 3, [1, 1], [1, 1], [1, 1]), 8, 1], // a batch of 1
  [convGeom(37, 2, 6, 6, 3, 3, [1, 1], [0, 0], [1, 1]), 3, 1], // 37 images: 13 blocks of 3 and one of 1
  [convGeom(17, 16, 16, 16, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1], // a ResNet stage, on several threads
  [convGeom(9, 8, 15, 15, 3, 3, [2, 2], [1, 1], [1, 1]), 24, 2],
  [convGeom(6, 1, 28, 28, 3, 3, [1, 1], [0, 0], [1, 1]), 32, 1], // the CLI CNN's first conv
  // output rows of 32 or more (runs across output rows, padding, stride, dilation, groups): the weight gradient of
  // 512+ positions runs as dot products, stride-1 rows of 16·k directly
  [convGeom(8, 4, 32, 32, 3, 3, [1, 1], [1, 1], [1, 1]), 8, 1], // a ResNet's first stage
  [convGeom(3, 3, 9, 37, 3, 3, [1, 1], [1, 1], [1, 1]), 5, 1],
  [convGeom(2, 2, 8, 70, 3, 3, [1, 2], [1, 1], [1, 1]), 4, 2],
  [convGeom(2, 2, 9, 40, 3, 3, [2, 1], [2, 2], [2, 2]), 3, 1],
  [convGeom(1, 3, 5, 33, 5, 2, [1, 1], [2, 0], [1, 1]), 7, 1],
  // stride 1, rows of 16·k, 512+ positions: the weight gradient's dot products read the input itself
  [convGeom(2, 8, 20, 48, 3, 3, [1, 1], [2, 2], [2, 2]), 9, 1],
  [convGeom(6, 2, 20, 36, 5, 5, [1, 1], [0, 0], [1, 1]), 4, 2],
  // stride 1, rows of 16·k, 8+ channels: the forward and the input gradient run directly (an odd number of
  // 16-position chunks, 9 = 8 + 1 channels)
  [convGeom(3, 9, 7, 16, 3, 3, [1, 1], [1, 1], [1, 1]), 9, 1],
  // tiles of 3 chunks (conv_direct3.c): 8 chunks make two tiles of 3 and one of 2; 12 channels, a tile of 8 and 4;
  // one chunk alone, a tile of 1
  [convGeom(3, 8, 4, 32, 3, 3, [1, 1], [1, 1], [1, 1]), 12, 1],
  [convGeom(2, 8, 1, 16, 3, 3, [1, 1], [1, 1], [1, 1]), 8, 1],
  // input rows of 16·k: the input gradient runs directly, padded by d·(k-1) - p, which is negative here
  [convGeom(2, 8, 6, 16, 3, 3, [1, 1], [3, 3], [1, 1]), 8, 1],
  [convGeom(2, 8, 5, 16, 1, 1, [1, 1], [1, 1], [1, 1]), 4, 1],
  // rows of 8: directly on a plan, a chunk two rows (ResNet-20's third stage), a last chunk of half, groups
  [convGeom(6, 8, 8, 8, 3, 3, [1, 1], [1, 1], [1, 1]), 8, 1],
  [convGeom(3, 8, 7, 8, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(2, 8, 9, 8, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 2],
  // rows of 8 in and out, an even number of them: one load per chunk (conv_direct3.c), in tiles of 3, 2 and 1
  // chunks, with dilation and wider padding
  [convGeom(2, 8, 12, 8, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(2, 8, 6, 8, 3, 3, [1, 1], [1, 2], [1, 2]), 8, 1],
  [convGeom(3, 8, 2, 8, 3, 3, [1, 1], [1, 1], [1, 1]), 8, 1],
  // stride 2 on the phases (conv_direct.c; the forward on the image's, the input gradient on gx's): phases of rows
  // of 16 (ResNet-20's stage 2), of rows of 8 (stage 3) in tiles of 3 and 2 chunks, a 5×5 and a 4×4 window (phases
  // shifted by -1 and +1, odd padding), a 2×2 without padding with groups, a 1×4 whose odd rows take no tap
  [convGeom(2, 16, 32, 32, 3, 3, [2, 2], [1, 1], [1, 1]), 32, 1],
  [convGeom(6, 8, 16, 16, 3, 3, [2, 2], [1, 1], [1, 1]), 16, 1],
  [convGeom(2, 8, 24, 16, 5, 5, [2, 2], [2, 2], [1, 1]), 9, 1],
  [convGeom(2, 9, 16, 32, 4, 4, [2, 2], [1, 1], [1, 1]), 8, 1],
  [convGeom(2, 8, 4, 32, 2, 2, [2, 2], [0, 0], [1, 1]), 16, 2],
  [convGeom(2, 8, 8, 32, 1, 4, [2, 2], [0, 1], [1, 1]), 8, 1],
  // a weight of 295k floats: only 14 blocks' partials fit the kept buffer, so 17 images make 9 blocks of 2 and 1
  [convGeom(17, 512, 3, 3, 3, 3, [1, 1], [1, 1], [1, 1]), 64, 1],
  // 16·k output channels per group, 64+ weight columns: the weight gradient as outer products over the positions
  // (conv_dw.c), 32·k channels in tiles of 2 vectors, 16·k in 1, padded copies of the input through stride,
  // padding, dilation and groups, positions not a multiple of 16
  [convGeom(6, 8, 9, 11, 3, 3, [2, 1], [1, 2], [1, 2]), 64, 2],
  [convGeom(3, 3, 12, 12, 5, 5, [1, 1], [0, 0], [1, 1]), 32, 1],
  [convGeom(4, 16, 10, 9, 3, 3, [2, 2], [1, 1], [1, 1]), 48, 1],
  // 3×3, stride 1, padding 1, 16+ channels in and out: the forward, the input gradient and (16·k channels) the
  // weight gradient by Winograd F(2×2, 3×3) natively (conv_wino.c): tile rows of 16 (rows of 32), of 32 (two
  // vectors a row), of 8 and of 4 (a vector spans 2 and 4 tile rows); 16, 8, 2 and 1 vectors of tiles per image
  // (product tiles of 3, 2 and 1 vectors); 24 outputs (3 panels of 8) and 40 inputs to the input gradient; groups
  [convGeom(3, 16, 32, 32, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(2, 40, 8, 64, 3, 3, [1, 1], [1, 1], [1, 1]), 24, 1],
  [convGeom(2, 16, 8, 16, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(6, 16, 8, 8, 3, 3, [1, 1], [1, 1], [1, 1]), 32, 1],
  [convGeom(6, 16, 16, 16, 3, 3, [1, 1], [1, 1], [1, 1]), 32, 2],
];

/**
 * The shapes the native Winograd path takes (3×3, stride 1, padding 1, 16+ channels in and out, 16·k for the weight
 * gradient, tiles that fill at least 70% of whole vectors), as [one group's geometry, output channels, groups]:
 * ResNet-20's three stages at a small batch, a group case; planes computed zero-extended (the CLI CNN's 14×14 as
 * 16×16, 12×12 as 16×12, an odd 7×7 as 8×8 and 15×16 as 16×16, 30×30's rows of 15 tiles as 16, 32 values read as 30;
 * a single row, and 31×29, odd both ways);
 * and shapes it leaves to the direct paths (8 channels; 10×10 and 5×5, whose tiles would fill half the vectors).
 */
const WINO_CASES: [ConvGeom, number, number][] = [
  [convGeom(2, 16, 32, 32, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(2, 32, 16, 16, 3, 3, [1, 1], [1, 1], [1, 1]), 32, 1],
  [convGeom(2, 64, 8, 8, 3, 3, [1, 1], [1, 1], [1, 1]), 64, 1],
  [convGeom(2, 16, 8, 16, 3, 3, [1, 1], [1, 1], [1, 1]), 32, 2],
  [convGeom(2, 32, 14, 14, 3, 3, [1, 1], [1, 1], [1, 1]), 64, 1],
  [convGeom(2, 16, 12, 12, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(3, 16, 7, 7, 3, 3, [1, 1], [1, 1], [1, 1]), 32, 1],
  [convGeom(2, 16, 15, 16, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(2, 16, 30, 30, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(2, 16, 1, 32, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(2, 32, 31, 29, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
];
const NOT_WINO_CASES: [ConvGeom, number, number][] = [
  [convGeom(2, 8, 16, 16, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(2, 16, 10, 10, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
  [convGeom(2, 16, 5, 5, 3, 3, [1, 1], [1, 1], [1, 1]), 16, 1],
];

/** Input sizes of the whole convolution's buffers: x, weight, y (gy). */
function convSizes(g: ConvGeom, oc: number, groups: number): [number, number, number] {
  return [g.n * g.c * groups * g.h * g.w, oc * g.c * g.kh * g.kw, g.n * oc * g.oh * g.ow];
}

/**
 * One of the whole convolution's kernels on `be` and the reference, compared against a float32 rounding bound (as
 * sgemmSame): the same kernel over absolute values, times (K + 2)·2^-24 where K counts the terms of a sum.
 */
function convSame(
  be: Backend,
  r: () => number,
  g: ConvGeom,
  oc: number,
  groups: number,
  kind: 'forward' | 'input' | 'weight',
  accumulate: boolean,
): void {
  const [xs, ws, ys] = convSizes(g, oc, groups);
  const x = uniform(r, xs);
  const w = uniform(r, ws);
  const y = uniform(r, ys);
  const run = (b: Backend, [xx, ww, yy]: Buf[]) => {
    if (kind === 'forward') b.conv2d(xx!, ww!, yy!, g, oc, groups, accumulate);
    else if (kind === 'input') b.conv2dGradInput(yy!, ww!, xx!, g, oc, groups);
    else b.conv2dGradWeight(xx!, yy!, ww!, g, oc, groups);
  };
  const want = [x, w, y].map((a) => load(js, a));
  run(js, want);
  const got = [x, w, y].map((a) => load(be, a));
  run(be, got);
  const bound = [x, w, y].map((a) => load(js, a.map(Math.abs)));
  run(js, bound);
  const out = kind === 'forward' ? 2 : kind === 'input' ? 0 : 1;
  const K =
    kind === 'forward'
      ? g.c * g.kh * g.kw + 1
      : kind === 'input'
        ? (oc / groups) * g.kh * g.kw
        : g.n * g.oh * g.ow + 16;
  const u = (K + 2) * 2 ** -24;
  const what = `${kind} n=${g.n} c=${g.c} ${g.h}x${g.w} k=${g.kh}x${g.kw} s=${g.sh},${g.sw} p=${g.ph},${g.pw} d=${g.dh},${g.dw} oc=${oc} groups=${groups}`;
  for (let i = 0; i < 3; i++) {
    const gd = got[i]!.data;
    const wd = want[i]!.data;
    if (i !== out) {
      // the inputs are untouched
      expectClose(gd, wd, EXACT, `${what}: buffer ${i}`);
      continue;
    }
    const bd = bound[i]!.data;
    for (let j = 0; j < wd.length; j++) {
      if (!(Math.abs(gd[j]! - wd[j]!) <= u * bd[j]! + 1e-30))
        throw new Error(`${what}: element ${j} got ${gd[j]}, want ${wd[j]}`);
    }
  }
  for (const b of [...want, ...bound]) js.free(b);
  for (const b of got) be.free(b);
}

/** sgemm on both backends; C is compared against a float32 rounding bound: k·2^-24·(|alpha|·|A|·|B| + |beta·C|). */
function sgemmSame(
  be: Backend,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  A: Float32Array,
  aOff: number,
  lda: number,
  B: Float32Array,
  bOff: number,
  ldb: number,
  beta: number,
  C: Float32Array,
  cOff: number,
  ldc: number,
): void {
  const run = (b: Backend, a: Buf, bb: Buf, c: Buf) =>
    b.sgemm(transA, transB, m, n, k, alpha, a, aOff, lda, bb, bOff, ldb, beta, c, cOff, ldc);
  const want = load(js, C);
  run(js, load(js, A), load(js, B), want);
  const got = load(be, C);
  run(be, load(be, A), load(be, B), got);
  // the bound: the same product over absolute values
  const bound = load(js, C.map(Math.abs));
  js.sgemm(
    transA,
    transB,
    m,
    n,
    k,
    Math.abs(alpha),
    load(js, A.map(Math.abs)),
    aOff,
    lda,
    load(js, B.map(Math.abs)),
    bOff,
    ldb,
    beta === 0 ? 0 : Math.abs(beta),
    bound,
    cOff,
    ldc,
  );
  const g = got.data;
  const w = want.data;
  const bd = bound.data;
  const u = (Math.max(k, 1) + 2) * 2 ** -24;
  for (let i = 0; i < C.length; i++) {
    if (Number.isNaN(w[i]!) && Number.isNaN(g[i]!)) continue;
    if (!(Math.abs(g[i]! - w[i]!) <= u * bd[i]! + 1e-30)) {
      const at = i - cOff;
      throw new Error(
        `sgemm ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} m=${m} n=${n} k=${k} alpha=${alpha} beta=${beta}: C[${Math.floor(at / ldc)}, ${at % ldc}] got ${g[i]}, want ${w[i]}`,
      );
    }
  }
}

/** '' where the buffers are the same bit for bit, else where the first difference is (fast on large buffers). */
function firstDifference(got: Float32Array[], want: Float32Array[]): string {
  for (let k = 0; k < want.length; k++) {
    const g = new Uint32Array(got[k]!.buffer, got[k]!.byteOffset, got[k]!.length);
    const w = new Uint32Array(want[k]!.buffer, want[k]!.byteOffset, want[k]!.length);
    for (let i = 0; i < w.length; i++) if (g[i] !== w[i]) return `buffer ${k}[${i}]: ${got[k]![i]} vs ${want[k]![i]}`;
  }
  return '';
}

describe.skipIf(!native)('linearBias on two threads', () => {
  // the product's columns (or rows) are shared out as for any of our products, the bias and the ReLU applied by
  // whoever stores an element: the bits of one thread, also when the worker never runs
  it('gives the same bits on one thread and on two, with a worker held off, with our sgemm', () => {
    const be = native!;
    const before = be.threads;
    const r = lcg(39);
    const shapes = [
      [128, 784, 256],
      [300, 100, 40],
    ] as const;
    const data = shapes.map(([rows, inF, outF]) => [uniform(r, rows * inF), uniform(r, outF * inF), uniform(r, outF)]);
    const runAll = (threads: number, hold: boolean) => {
      be.setThreads(threads);
      const byWorkers = hold ? be.holdPoolWorkers(true) : 0;
      try {
        return shapes.flatMap(([rows, inF, outF], i) =>
          [false, true].map((relu) => {
            const [x, w, b] = data[i]!.map((a) => load(be, a));
            const out = be.alloc(rows * outF);
            be.linearBias(x!, w!, b!, out, rows, inF, outF, relu);
            const o = out.data.slice();
            for (const buf of [x, w, b, out]) be.free(buf!);
            return o;
          }),
        );
      } finally {
        if (hold) expect(be.holdPoolWorkers(false)).toBe(byWorkers);
      }
    };
    try {
      be.selectGemm('own');
      const one = runAll(1, false);
      expect(firstDifference(runAll(2, false), one)).toBe('');
      expect(firstDifference(runAll(2, true), one)).toBe('');
    } finally {
      be.holdPoolWorkers(false);
      be.selectGemm('auto');
      be.setThreads(before);
    }
  });
});

describe.skipIf(!native)('the fused ReLU kernels on two threads', () => {
  // batchNormRelu and its gradient share out whole channels, addRelu elements: the bits of one thread, also when the
  // worker never runs
  it('gives the same bits on one thread and on two, with a worker held off', () => {
    const be = native!;
    const before = be.threads;
    const r = lcg(41);
    const [n, c, inner] = [16, 16, 256];
    const size = n * c * inner;
    const data = [uniform(r, size, -2, 2), uniform(r, c, 0.5, 1.5), uniform(r, c), uniform(r, size), uniform(r, size)];
    const runAll = (threads: number, hold: boolean) => {
      be.setThreads(threads);
      const byWorkers = hold ? be.holdPoolWorkers(true) : 0;
      try {
        const [x, w, b, gy, other] = data.map((a) => load(be, a));
        const [rm, rv, mean, invstd, gw, gb] = [0, 1, 2, 3, 4, 5].map(() => be.alloc(c));
        const [y, gx, sum] = [0, 1, 2].map(() => be.alloc(size));
        be.fill(rm!, 0, c);
        be.fill(rv!, 1, c);
        be.batchNormRelu(x!, w!, b!, rm!, rv!, mean!, invstd!, y!, n, c, inner, true, true, 0.1, 1e-5);
        be.batchNormReluGrad(x!, gy!, y!, w!, mean!, invstd!, gx!, gw!, gb!, n, c, inner, true);
        be.addRelu(y!, other!, sum!, size);
        const masked = be.alloc(size);
        be.reluGradSum(gy!, other!, y!, masked, size);
        const outs = [y, gx, gw, gb, rm, rv, sum, masked].map((t) => t!.data.slice());
        be.free(masked);
        for (const t of [x, w, b, gy, other, rm, rv, mean, invstd, gw, gb, y, gx, sum]) be.free(t!);
        return outs;
      } finally {
        if (hold) expect(be.holdPoolWorkers(false)).toBe(byWorkers);
      }
    };
    try {
      const one = runAll(1, false);
      expect(firstDifference(runAll(2, false), one)).toBe('');
      expect(firstDifference(runAll(2, true), one)).toBe('');
    } finally {
      be.holdPoolWorkers(false);
      be.setThreads(before);
    }
  });
});

describe.skipIf(!native)('the recurrent cells on two threads', () => {
  // A step of the bench's size (hidden 128, batch 64) is shared out over the pool's threads by hidden units; each
  // unit's row is computed whole by one thread, so the bits are those of one thread, also when the worker never runs.
  it('LSTM and GRU, forward and backward: the same bits as on one thread, with the worker taking part or not', () => {
    const be = native!;
    const r = lcg(16);
    const H = 128;
    const B = 64;
    const n = H * B;
    const p = uniform(r, 4 * H * 2 * B, -6, 6);
    const act = uniform(r, 4 * n, 0, 1);
    const cases: [string, Float32Array[], (b: Backend, x: Buf[]) => void][] = [
      [
        'lstmCell',
        [
          p,
          uniform(r, n),
          new Float32Array(4 * n),
          new Float32Array(n),
          new Float32Array(n),
          new Float32Array(3 * n),
          new Float32Array(n),
        ],
        (b, [pp, cp, a, c, tc, h, y]) => b.lstmCell(pp!, B, 2 * B, cp!, a!, c!, tc!, h!, B, 3 * B, y!, 0, H, H, B),
      ],
      [
        'lstmCellGrad',
        [
          act,
          uniform(r, n),
          uniform(r, n),
          uniform(r, n),
          uniform(r, n),
          new Float32Array(4 * n),
          new Float32Array(n),
          uniform(r, n),
        ],
        (b, [a, cp, tc, dh, dc, dG, dcp, dy]) =>
          b.lstmCellGrad(a!, cp!, tc!, dh!, dy!, 0, H, dc!, dG!, 0, B, dcp!, H, B),
      ],
      [
        'gruCell',
        [p.subarray(0, 3 * H * 2 * B), uniform(r, n), uniform(r, 3 * n), new Float32Array(3 * n), new Float32Array(n)],
        (b, [pp, hn, hs, a, y]) => b.gruCell(pp!, B, 2 * B, hn!, hs!, 0, hs!, B, 3 * B, y!, 0, H, a!, H, B),
      ],
      [
        'gruCellGrad',
        [
          act.subarray(0, 3 * n),
          uniform(r, n),
          uniform(r, 3 * n),
          uniform(r, n),
          new Float32Array(4 * n),
          new Float32Array(n),
          uniform(r, n),
        ],
        (b, [a, hn, hs, dh, dG, dhp, dy]) =>
          b.gruCellGrad(a!, hn!, hs!, 0, 3 * B, dh!, dy!, 0, H, dG!, 0, B, dhp!, H, B),
      ],
    ];
    const before = be.threads;
    try {
      for (const [name, arrays, fn] of cases) {
        const run = (threads: number): Float32Array[] => {
          be.setThreads(threads);
          const bufs = arrays.map((a) => load(be, a));
          fn(be, bufs);
          const out = bufs.map((b) => b.data.slice());
          for (const b of bufs) be.free(b);
          return out;
        };
        const one = run(1);
        run(2); // starts the pool
        const byWorkers = be.holdPoolWorkers(true);
        let held: Float32Array[];
        try {
          held = run(2);
        } finally {
          expect(be.holdPoolWorkers(false), `${name}: no worker ran while held`).toBe(byWorkers);
        }
        expect(firstDifference(held, one), `${name}, worker held`).toBe('');
        expect(firstDifference(run(2), one), name).toBe('');
      }
    } finally {
      be.holdPoolWorkers(false);
      be.setThreads(before);
    }
  });
});
