/**
 * Our sgemm's weight gradients with columns of zeros (native/gemm_sparse_x86.h): C = alpha·Aᵀ·B where A (a ReLU
 * layer's gradient, batch × units) has columns of zeros (units off for the whole batch), columns of few nonzeros and
 * dense ones. Every row of C must have the bits the dense kernels give it, on one thread and two (every job on the
 * pool's workers), with the zero columns' −0 and a negative alpha (whose product with +0 is −0), an Inf or NaN in B
 * (0·Inf = NaN, which the dense product spreads to the zero rows), depth past one tile (64) and past one block (384:
 * no sparse rows then), edges of 16 in every dimension. And the path must be taken where it should (its count of
 * products), and not where a gradient has no zeros. Skipped where the addon was not built or has no AVX-512 (the
 * path is AVX-512 only).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { linearRelu } from '../tensor/ops/matmul.js';
import { sum } from '../tensor/ops/reduce.js';
import { tensor } from '../tensor/tensor.js';
import { getBackend, installBackend, useBackend } from './index.js';
import { createNativeBackend, type NativeBackend } from './native.js';
import type { Buf } from './types.js';

const cacheDir = mkdtempSync(join(tmpdir(), 'gg-sparse-cache-'));
process.env.GRADGUARD_CACHE_DIR = cacheDir;
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

const native = createNativeBackend();
/** The path exists in this build: AVX-512 (own-avx512), not pinned to OpenBLAS. */
const usable = native?.gemmImpl.includes('own-avx512') === true;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}
const buf = (d: Float32Array): Buf => ({ data: d }) as unknown as Buf;

/** Column kinds of A (k×m): 'z' all zeros (−0 in odd columns), 's' ~10% nonzero, 'd' ~90%, cycling through `kinds`. */
function gradient(k: number, m: number, kinds: string, seed: number): Float32Array {
  const r = lcg(seed);
  const a = new Float32Array(k * m);
  for (let i = 0; i < m; i++) {
    const kind = kinds[i % kinds.length];
    const density = kind === 'z' ? 0 : kind === 's' ? 0.1 : 0.9;
    for (let p = 0; p < k; p++) a[p * m + i] = r() < density ? r() * 2 - 1 : i % 2 ? -0 : 0;
  }
  return a;
}

/** C = alpha·Aᵀ·B through our sgemm (ours pinned: the per-shape policy could give a shape to OpenBLAS), C first NaN. */
function product(be: NativeBackend, m: number, n: number, k: number, a: Float32Array, b: Float32Array, alpha: number) {
  const c = new Float32Array(m * n).fill(Number.NaN);
  be.sgemm(true, false, m, n, k, alpha, buf(a), 0, m, buf(b), 0, n, 0, buf(c), 0, n);
  return c;
}

/** The product in every mode and thread count: its bits against the dense path's, and how many took the path. */
function compare(m: number, n: number, k: number, a: Float32Array, b: Float32Array, alpha: number) {
  const be = native!;
  be.selectGemm('own');
  be.sparseGemm('off');
  be.setThreads(1);
  const want = new Uint32Array(product(be, m, n, k, a, b, alpha).buffer);
  const taken: Record<string, number> = {};
  for (const mode of ['auto', 'always'] as const) {
    for (const threads of [1, 2]) {
      be.setThreads(threads);
      // on two threads every job posted to the pool's workers (they read the caller's lists), however busy the machine
      be.choosePool(threads > 1 ? 'threads' : 'measure');
      be.sparseGemm(mode);
      const before = be.sparseGemm();
      const got = new Uint32Array(product(be, m, n, k, a, b, alpha).buffer);
      taken[`${mode}/${threads}`] = be.sparseGemm() - before;
      let diff = -1;
      for (let i = 0; i < got.length && diff < 0; i++) if (got[i] !== want[i]) diff = i;
      expect(diff, `${mode}, ${threads} thread(s): first differing element`).toBe(-1);
    }
  }
  be.sparseGemm('auto');
  be.choosePool('measure');
  be.setThreads(1);
  be.selectGemm('auto');
  return taken;
}

describe.skipIf(!usable)('sgemm: weight gradients with columns of zeros (the sparse path)', () => {
  it("the MLP's dW1 (256×784×128): zero, sparse and dense columns; the dense path's bits, and the path taken", () => {
    const r = lcg(7);
    const b = Float32Array.from({ length: 128 * 784 }, () => r());
    for (const kinds of ['zddd', 'zsdsd', 'sss', 'zzzd']) {
      const taken = compare(256, 784, 128, gradient(128, 256, kinds, 11), b, 1);
      expect(taken, kinds).toEqual({ 'auto/1': 1, 'auto/2': 1, 'always/1': 1, 'always/2': 1 });
    }
  });

  it('edges: rows, columns and depth off multiples of 16, depth over one tile and over one block, alpha', () => {
    const shapes: [number, number, number][] = [
      [16, 64, 1],
      [37, 100, 50],
      [130, 200, 70],
      [40, 790, 129],
      [300, 129, 17],
      [64, 96, 400],
      [33, 65, 385],
    ];
    for (const [m, n, k] of shapes) {
      const r = lcg(m * 1000 + n + k);
      const b = Float32Array.from({ length: k * n }, () => r() * 4 - 2);
      for (const alpha of [1, -0.5]) {
        const taken = compare(m, n, k, gradient(k, m, 'zsdzs', m + k), b, alpha);
        // 'always' takes every product, whatever its size; 'auto' those of at least 2 MFLOP
        expect(taken['always/1'], `${m}x${n}x${k}`).toBe(1);
        expect(taken['auto/1'], `${m}x${n}x${k}`).toBe(2 * m * n * k >= 2e6 ? 1 : 0);
      }
    }
  });

  it('an Inf or NaN in B: the zero and sparse rows get what the dense product gives them (NaN where 0·Inf is)', () => {
    const [m, n, k] = [64, 300, 96];
    const r = lcg(3);
    for (const bad of [Number.POSITIVE_INFINITY, Number.NaN]) {
      const b = Float32Array.from({ length: k * n }, () => r());
      b[17 * n + 250] = bad; // a column block past the first, a depth row that the sparse rows mostly skip
      const a = gradient(k, m, 'zsd', 5);
      compare(m, n, k, a, b, 1);
      // and the dense product does spread it: the zero rows hold NaN in that column
      native!.selectGemm('own');
      const c = product(native!, m, n, k, a, b, 1);
      native!.selectGemm('auto');
      expect(Number.isNaN(c[0 * n + 250]!)).toBe(true);
      expect(c[0 * n + 249]).toBe(0);
    }
  });

  it('not taken where the gradient has no zeros, nor where its columns all have many nonzeros', () => {
    const [m, n, k] = [128, 256, 128];
    const r = lcg(9);
    const b = Float32Array.from({ length: k * n }, () => r());
    const full = Float32Array.from({ length: k * m }, () => r() + 0.5);
    expect(compare(m, n, k, full, b, 1)['auto/1']).toBe(0);
    expect(compare(m, n, k, gradient(k, m, 'd', 2), b, 1)['auto/1']).toBe(0);
  });

  it("nn's linear + ReLU with units dead for the whole batch: the weight gradient's bits with the path and without", () => {
    const prev = getBackend();
    useBackend('native');
    try {
      const r = lcg(21);
      const [batch, inF, outF] = [128, 300, 96];
      const x = tensor(
        Float32Array.from({ length: batch * inF }, () => r()),
        [batch, inF],
      );
      const w = tensor(
        Float32Array.from({ length: outF * inF }, () => (r() - 0.5) * 0.2),
        [outF, inF],
        {
          requiresGrad: true,
        },
      );
      // a third of the units dead (a bias far below anything x·w reaches), the rest on about half the time
      const bias = tensor(
        Float32Array.from({ length: outF }, (_, j) => (j % 3 === 0 ? -100 : -1.5)),
        [outF],
        { requiresGrad: true },
      );
      const grads = (mode: 'auto' | 'off') => {
        native!.sparseGemm(mode);
        w.grad = null;
        const before = native!.sparseGemm();
        sum(linearRelu(x, w, bias)).backward();
        return { bits: new Uint32Array(Float32Array.from(w.grad!.data).buffer), taken: native!.sparseGemm() - before };
      };
      const off = grads('off');
      const on = grads('auto');
      native!.sparseGemm('auto');
      expect(off.taken).toBe(0);
      expect(on.taken).toBe(1);
      expect(on.bits).toEqual(off.bits);
      // the dead units' rows are zeros
      expect(Array.from(w.grad!.data.subarray(0, inF)).every((v) => v === 0)).toBe(true);
    } finally {
      installBackend(prev);
    }
  });
});
