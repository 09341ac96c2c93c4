/**
 * sgemmRowSums (spec-rnn.ts: the recurrent op's weight gradients with their biases') gives the bits of sgemm and then
 * sumAxis over A's rows, C and the sums, on every backend: natively with our sgemm pinned, where the sums are taken
 * from A's slivers while the product reads them (gg_gemm_own_row_sums: several depth blocks, a k that leaves a tail
 * past the last eight, row counts that leave partial slivers and partial groups of four rows, offsets), on one thread
 * and two (split by columns, and by rows), and with OpenBLAS pinned or where ours declines (more than eight slivers of
 * columns, rows whose stride aliases in L1, a single tile with a long k), where the kernel runs the two as before.
 * And gruWeightGrads (the GRU's three weight-gradient products, natively sharing B's packing) gives the bits of its three
 * products taken apart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { nativeVariant } from '../../test/native-variant.js';
import { availableBackends, getBackend, installBackend, useBackend } from './index.js';
import type { NativeBackend } from './native.js';
import type { Backend } from './types.js';

const initial = getBackend().name;
afterEach(() => {
  useBackend(initial);
});

/** [m, n, k]: C's rows and columns, the sums' depth. */
const SHAPES: [number, number, number][] = [
  [13, 7, 9],
  [37, 33, 1001], // 3 depth blocks (AVX-512 KC 384; 4 with AVX2's 256), k mod 8 = 1, m mod 12 = 1, m mod 4 = 1
  [100, 160, 800], // five slivers of columns: split by columns on two threads
  [130, 32, 1600], // one sliver: split by rows on two threads
  [24, 300, 770], // ten slivers: ours declines, the two kernels run
  [30, 40, 1024], // rows 4 KiB apart (k = 1024): ours packs A there and declines
  [1, 1, 3100], // one tile, a long k: k-sliced, ours declines
];

let seed = 7;
function fill(be: Backend, n: number) {
  const b = be.alloc(n);
  const d = b.data;
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    d[i] = (seed / 4294967296 - 0.5) * 2;
  }
  return b;
}

/** The shapes where sgemmRowSums' C and sums differ from sgemm's and sumAxis's (bit patterns), on the backend in use. */
function differences(be: Backend): string[] {
  const problems: string[] = [];
  for (const [m, n, k] of SHAPES) {
    const [aOff, bOff, cOff, sOff, ldb, ldc] = [5, 3, 7, 2, k + 5, n + 3];
    const a = fill(be, aOff + m * k);
    const b = fill(be, bOff + n * ldb);
    const c1 = fill(be, cOff + m * ldc);
    const c2 = be.alloc(c1.size);
    c2.data.set(c1.data);
    const rows = be.alloc(m * k);
    rows.data.set(a.data.subarray(aOff, aOff + m * k));
    const s1 = be.alloc(sOff + m);
    const s2 = be.alloc(sOff + m);
    s1.data.fill(3);
    s2.data.fill(3);
    be.sgemm(false, true, m, n, k, 1, a, aOff, k, b, bOff, ldb, 0, c1, cOff, ldc);
    const sums = be.alloc(m);
    be.sumAxis(rows, sums, m, k, 1);
    s1.data.set(sums.data, sOff);
    be.sgemmRowSums(m, n, k, a, aOff, b, bOff, ldb, c2, cOff, ldc, s2, sOff);
    const bits = (x: Float32Array) => new Uint32Array(x.slice().buffer);
    const [gc1, gc2, gs1, gs2] = [bits(c1.data), bits(c2.data), bits(s1.data), bits(s2.data)];
    const cAt = gc1.findIndex((v, i) => v !== gc2[i]);
    const sAt = gs1.findIndex((v, i) => v !== gs2[i]);
    if (cAt >= 0) problems.push(`${m}x${n}x${k}: C at ${cAt}`);
    if (sAt >= 0) problems.push(`${m}x${n}x${k}: sums at ${sAt} (${gs1[sAt]} against ${gs2[sAt]})`);
    for (const x of [a, b, c1, c2, rows, s1, s2, sums]) be.free(x);
  }
  return problems;
}

/**
 * gruWeightGrads against its three products taken apart (sgemmRowSums, or sgemm without the sums), C and sums as bit
 * patterns: [hidden, inputs, k] with hidden a multiple of 32 (natively one job sharing B's packing: several depth
 * blocks, a k past the last eight) and one that is not (the products apart).
 */
function gruDifferences(be: Backend): string[] {
  const problems: string[] = [];
  for (const [H, In, k] of [
    [128, 32, 1001],
    [32, 40, 600],
    [20, 7, 90],
  ] as const) {
    for (const withSums of [true, false]) {
      const [zOff, ldz] = [3 * (k + 9), k + 9];
      const dG = fill(be, 4 * H * k);
      const z = fill(be, zOff + (H + In) * ldz);
      const out = () => [fill(be, 2 * H * (H + In)), fill(be, 3 * H * In), fill(be, 3 * H * H), fill(be, 4 * H)];
      const want = out();
      const got = out();
      for (let i = 0; i < 4; i++) got[i]!.data.set(want[i]!.data);
      const [both, wi, wh, sums] = want as [
        ReturnType<typeof fill>,
        ReturnType<typeof fill>,
        ReturnType<typeof fill>,
        ReturnType<typeof fill>,
      ];
      const parts: [number, number, number, number, typeof both, number, number, number][] = [
        [0, 2 * H, zOff, H + In, both, 0, H + In, 0],
        [2 * H * k, H, zOff + H * ldz, In, wi, 2 * H * In, In, 2 * H],
        [3 * H * k, H, zOff, H, wh, 2 * H * H, H, 3 * H],
      ];
      for (const [aOff, m, bOff, n, c, cOff, ldc, sOff] of parts) {
        if (withSums) be.sgemmRowSums(m, n, k, dG, aOff, z, bOff, ldz, c, cOff, ldc, sums, sOff);
        else be.sgemm(false, true, m, n, k, 1, dG, aOff, k, z, bOff, ldz, 0, c, cOff, ldc);
      }
      be.gruWeightGrads(dG, k, z, zOff, ldz, H, In, got[0]!, got[1]!, got[2]!, got[3]!, withSums);
      const bits = (x: Float32Array) => new Uint32Array(x.slice().buffer);
      ['both', 'wi', 'wh', 'sums'].forEach((name, i) => {
        const [a, b] = [bits(want[i]!.data), bits(got[i]!.data)];
        const at = a.findIndex((v, j) => v !== b[j]);
        if (at >= 0) problems.push(`${H}x${In}x${k} ${withSums ? 'with' : 'without'} sums: ${name} at ${at}`);
      });
      for (const x of [dG, z, ...want, ...got]) be.free(x);
    }
  }
  return problems;
}

const avx2 = nativeVariant('haswell');
const backends: [string, () => Backend][] = [
  ...availableBackends().map((name): [string, () => Backend] => [name, () => useBackend(name)]),
  ...(avx2.backend ? [['native-avx2', () => installBackend(avx2.backend!)] as [string, () => Backend]] : []),
];

describe('sgemmRowSums', () => {
  for (const [name, use] of backends) {
    it(`${name}: the bits of sgemm and then sumAxis over A's rows`, () => {
      const be = use();
      if (!name.startsWith('native')) {
        expect(differences(be)).toEqual([]);
        expect(gruDifferences(be)).toEqual([]);
        return;
      }
      const nb = be as NativeBackend;
      const threads = nb.threads;
      try {
        for (const pin of ['own', 'openblas'] as const) {
          nb.selectGemm(pin);
          for (const t of [1, 2]) {
            nb.setThreads(t);
            // on two threads, the pool's jobs on its threads and on the caller alone (its choice per kind of job)
            for (const mode of t === 1 ? (['measure'] as const) : (['threads', 'alone'] as const)) {
              nb.choosePool(mode);
              expect(differences(be), `${pin}, ${t} threads, ${mode}`).toEqual([]);
              expect(gruDifferences(be), `gruWeightGrads, ${pin}, ${t} threads, ${mode}`).toEqual([]);
            }
            nb.choosePool('measure');
          }
        }
      } finally {
        nb.selectGemm('auto');
        nb.choosePool('measure');
        nb.setThreads(threads);
      }
    });
  }
});
