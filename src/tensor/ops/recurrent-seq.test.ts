/**
 * The LSTM's and the GRU's loops over time as one kernel call each way (lstmSeq/lstmSeqGrad, gruSeq/gruSeqGrad) give
 * the bits of the same loops run step by step from JavaScript (`recurrentLoop.fused = false`), on every backend:
 * outputs, final states and every gradient, with and without biases, batch first, several layers both ways, and
 * without a tape (one set of step buffers). Natively also with our sgemm pinned (the weights then packed once per
 * call: rows and depths that leave partial slivers and several depth blocks) and on two threads, the worker held off.
 * And W_ih's and W_hh's gradients taken together, one product split in two, give the bits of each taken alone, and the
 * biases' gradients that product takes (sgemmRowSums) the bits of sumAxis's.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { nativeVariant } from '../../../test/native-variant.js';
import { availableBackends, getBackend, installBackend, useBackend } from '../../backend/index.js';
import type { NativeBackend } from '../../backend/native.js';
import type { Backend } from '../../backend/types.js';
import { GRU, LSTM } from '../../nn/rnn.js';
import '../methods.js';
import { randn } from '../random.js';
import { noGrad, type Tensor } from '../tensor.js';
import { GATES, type RecurrentMode, recurrentLayer, recurrentLoop, timeTaps } from './recurrent.js';

const initial = getBackend().name;
afterEach(() => {
  recurrentLoop.fused = true;
  useBackend(initial);
});

/** A layer's outputs, states and every gradient, as bit patterns. */
function run(
  Cell: typeof LSTM | typeof GRU,
  size: { T: number; B: number; In: number; H: number },
  opts: { bias: boolean; batchFirst: boolean; grad: boolean },
): Uint32Array[] {
  const { T, B, In, H } = size;
  const m = new Cell(In, H, {
    seed: 1,
    numLayers: 2,
    bidirectional: true,
    bias: opts.bias,
    batchFirst: opts.batchFirst,
  });
  const x = randn(opts.batchFirst ? [B, T, In] : [T, B, In], { seed: 2 }).requiresGrad_();
  const h0 = randn([4, B, H], { seed: 3 }).mul(0.5).requiresGrad_();
  const c0 = randn([4, B, H], { seed: 4 }).mul(0.5).requiresGrad_();
  const lstm = Cell === LSTM;
  const call = () => m.call(x, lstm ? { h: h0, c: c0 } : { h: h0 }) as { output: Tensor; h: Tensor; c?: Tensor };
  if (!opts.grad) {
    const out = noGrad(call);
    return [out.output, out.h, ...(out.c ? [out.c] : [])].map(bitsOf);
  }
  const out = call();
  let loss = out.output.mul(randn(out.output.shape, { seed: 5 })).sum();
  loss = loss.add(out.h.mul(randn(out.h.shape, { seed: 6 })).sum());
  if (out.c) loss = loss.add(out.c.mul(randn(out.c.shape, { seed: 7 })).sum());
  loss.backward();
  const grads = [x, h0, ...(lstm ? [c0] : []), ...m.parameters()].map((t) => t.grad!);
  return [out.output, out.h, ...(out.c ? [out.c] : []), ...grads].map(bitsOf);
}

const bitsOf = (t: Tensor) => new Uint32Array(t.data.slice().buffer);

/** '' where the runs agree bit for bit, else where they first differ. */
function firstDifference(a: Uint32Array[], b: Uint32Array[]): string {
  if (a.length !== b.length) return `${a.length} arrays against ${b.length}`;
  for (let k = 0; k < a.length; k++) {
    if (a[k]!.length !== b[k]!.length) return `array ${k}: ${a[k]!.length} values against ${b[k]!.length}`;
    const at = a[k]!.findIndex((v, i) => v !== b[k]![i]);
    if (at >= 0) return `array ${k} at ${at}`;
  }
  return '';
}

/** Fused against step by step on the backend in use, for both cells and every option; returns what differed. */
function compareAll(sizes: { T: number; B: number; In: number; H: number }[]): string[] {
  const problems: string[] = [];
  for (const Cell of [LSTM, GRU]) {
    for (const size of sizes) {
      for (const [bias, batchFirst, grad] of [
        [true, false, true],
        [false, true, true],
        [true, true, false],
      ] as const) {
        const opts = { bias, batchFirst, grad };
        recurrentLoop.fused = false;
        const want = run(Cell, size, opts);
        recurrentLoop.fused = true;
        const got = run(Cell, size, opts);
        const d = firstDifference(got, want);
        if (d) problems.push(`${Cell.name} ${JSON.stringify(size)} ${JSON.stringify(opts)}: ${d}`);
      }
    }
  }
  return problems;
}

/** The through-time tap's records (t, T, ‖dh_t‖²) of an LSTM and a GRU layer, on every other step and the last. */
function tapRecords(): number[][] {
  const records: number[][] = [];
  const [T, B, In, H] = [7, 5, 3, 6];
  for (const mode of ['LSTM', 'GRU'] as RecurrentMode[]) {
    const G = mode === 'LSTM' ? 4 : 3;
    const x = randn([T, B, In], { seed: 1 });
    const wih = randn([G * H, In], { seed: 2 })
      .mul(0.4)
      .requiresGrad_();
    const whh = randn([G * H, H], { seed: 3 })
      .mul(0.4)
      .requiresGrad_();
    timeTaps.current = { wants: (t, n) => t % 2 === 0 || t === n - 1, record: (t, n, ss) => records.push([t, n, ss]) };
    let y: Tensor;
    try {
      y = recurrentLayer(mode, x, wih, whh, null, null, null, null);
    } finally {
      timeTaps.current = null;
    }
    y.mul(randn(y.shape, { seed: 4 }))
      .sum()
      .backward();
  }
  return records;
}

/**
 * W_ih's and W_hh's gradients taken together (one product over Z's adjacent rows of the states and the inputs, split
 * into the two; the GRU's for r and z) against each taken alone (its own products), every cell; returns what differed.
 */
function weightGradsApart(sizes: { T: number; B: number; In: number; H: number }[]): string[] {
  const problems: string[] = [];
  for (const mode of ['LSTM', 'GRU', 'RNN_TANH'] as RecurrentMode[]) {
    for (const { T, B, In, H } of sizes) {
      for (const [bias, bf] of [
        [true, false],
        [false, true],
      ] as const) {
        const G = GATES[mode];
        const x = randn(bf ? [B, T, In] : [T, B, In], { seed: 1 });
        const grads = (wantIh: boolean, wantHh: boolean) => {
          const wih = randn([G * H, In], { seed: 2 })
            .mul(0.4)
            .requiresGrad_(wantIh);
          const whh = randn([G * H, H], { seed: 3 })
            .mul(0.4)
            .requiresGrad_(wantHh);
          const b = bias ? randn([G * H], { seed: 4 }).requiresGrad_() : null;
          const y = recurrentLayer(mode, x, wih, whh, b, null, null, null, bf);
          y.mul(randn(y.shape, { seed: 5 }))
            .sum()
            .backward();
          return [wih.grad, whh.grad, b?.grad ?? null];
        };
        const [ih, hh, db] = grads(true, true);
        const [ihAlone, , dbIh] = grads(true, false);
        const [, hhAlone, dbHh] = grads(false, true);
        const d = firstDifference([bitsOf(ih!), bitsOf(hh!)], [bitsOf(ihAlone!), bitsOf(hhAlone!)]);
        if (d) problems.push(`${mode} ${JSON.stringify({ T, B, In, H, bias, bf })}: ${d}`);
        // the bias's gradient taken by the products (sgemmRowSums) and by sumAxis apart (one weight wanted)
        if (bias) {
          const [, , dbNone] = grads(false, false);
          const e = firstDifference([db!, db!, db!].map(bitsOf), [dbIh!, dbHh!, dbNone!].map(bitsOf));
          if (e) problems.push(`${mode} ${JSON.stringify({ T, B, In, H, bf })}, the bias: ${e}`);
        }
      }
    }
  }
  return problems;
}

// T odd and even (the backward's two state blocks end the other way round), one step, a batch of one
const SMALL = [
  { T: 5, B: 3, In: 2, H: 4 },
  { T: 4, B: 1, In: 3, H: 7 },
  { T: 1, B: 2, In: 1, H: 3 },
];
// natively with our sgemm: a batch wider than a register tile (33 columns: one whole sliver and a partial one), 4·H
// = 400 rows (partial slivers of A) and the backward's depth 4·H past one depth block (384 with AVX-512, 256 AVX2)
const WIDE = [{ T: 3, B: 33, In: 7, H: 100 }];

const avx2 = nativeVariant('haswell');
const backends: [string, () => Backend][] = [
  ...availableBackends().map((name): [string, () => Backend] => [name, () => useBackend(name)]),
  ...(avx2.backend ? [['native-avx2', () => installBackend(avx2.backend!)] as [string, () => Backend]] : []),
];

describe('the recurrent loops as one kernel call', () => {
  for (const [name, use] of backends) {
    it(`${name}: the bits of the loop step by step (LSTM, GRU; biases or not, batch first, no tape)`, () => {
      use();
      expect(compareAll(name === 'js' ? SMALL : [...SMALL, ...WIDE])).toEqual([]);
    });

    it(`${name}: the through-time tap records what it recorded step by step`, () => {
      use();
      recurrentLoop.fused = false;
      const want = tapRecords();
      recurrentLoop.fused = true;
      const got = tapRecords();
      expect(want.map(([t]) => t)).toEqual([6, 4, 2, 0, 6, 4, 2, 0]);
      expect(got).toEqual(want);
    });

    it(`${name}: dW_hh and dW_ih as one product give the bits of each alone, the bias's those of sumAxis (LSTM, GRU, RNN; biases or not, batch first)`, () => {
      const be = use();
      // natively our sgemm for every shape: the per-shape choice may take OpenBLAS for the one product and not the two
      const native = name.startsWith('native') ? (be as NativeBackend) : null;
      native?.selectGemm('own');
      try {
        expect(weightGradsApart(name === 'js' ? SMALL : [...SMALL, ...WIDE])).toEqual([]);
      } finally {
        native?.selectGemm('auto');
      }
    });

    if (!name.startsWith('native')) continue;
    it(`${name}: the same with our sgemm pinned (weights packed once) and on two threads, the worker held`, () => {
      const be = use() as NativeBackend;
      const threads = be.threads;
      be.choosePool('threads'); // every job on two threads posted to them, however busy the machine
      try {
        for (const pin of ['own', 'openblas'] as const) {
          be.selectGemm(pin);
          for (const t of [1, 2]) {
            be.setThreads(t);
            expect(compareAll([...SMALL, ...WIDE]), `${pin}, ${t} threads`).toEqual([]);
          }
        }
        // the fused loop on two threads against one thread, with the pool's worker never running
        be.selectGemm('own');
        be.setThreads(1);
        const one = run(LSTM, WIDE[0]!, { bias: true, batchFirst: false, grad: true });
        be.setThreads(2);
        const byWorkers = be.holdPoolWorkers(true);
        let held: Uint32Array[];
        let ran: number;
        try {
          held = run(LSTM, WIDE[0]!, { bias: true, batchFirst: false, grad: true });
        } finally {
          ran = be.holdPoolWorkers(false);
        }
        expect(ran, 'no worker ran while held').toBe(byWorkers);
        expect(firstDifference(held, one)).toBe('');
      } finally {
        be.choosePool('measure');
        be.selectGemm('auto');
        be.setThreads(threads);
      }
    });
  }
});
