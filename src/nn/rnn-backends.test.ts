/**
 * LSTM and GRU layers, forward and backward through time, on every backend against the reference (js), and on the
 * native backend on one and two threads (the same bits): the step kernels write h into the layer's output and read
 * the output's gradient from there, their σ and tanh run over whole vectors where the CPU has them, and a step of
 * the bench's size is shared out over the pool's threads. Shapes: odd hidden sizes (not multiples of a vector),
 * batch 1, batch-first, two layers, bidirectional, initial states, and the through-time tap (‖∂L/∂h_t‖²).
 */
import { afterAll, describe, expect, it } from 'vitest';
import '../tensor/methods.js';
import { availableBackends, getBackend, useBackend } from '../backend/index.js';
import type { NativeBackend } from '../backend/native.js';
import type { TimeTap } from '../tensor/ops/recurrent.js';
import { randn } from '../tensor/random.js';
import { GRU, LSTM } from './rnn.js';

interface Case {
  mode: 'LSTM' | 'GRU';
  seq: number;
  batch: number;
  input: number;
  hidden: number;
  numLayers?: number;
  bidirectional?: boolean;
  batchFirst?: boolean;
  initial?: boolean;
}

const CASES: Case[] = [
  { mode: 'LSTM', seq: 7, batch: 5, input: 3, hidden: 33, numLayers: 2, bidirectional: true, initial: true },
  { mode: 'GRU', seq: 7, batch: 5, input: 3, hidden: 33, numLayers: 2, bidirectional: true, initial: true },
  { mode: 'LSTM', seq: 6, batch: 1, input: 4, hidden: 17, batchFirst: true },
  { mode: 'GRU', seq: 6, batch: 1, input: 4, hidden: 17, batchFirst: true },
  // the bench's step size (hidden 128, batch 64): large enough to be shared out over two threads
  { mode: 'LSTM', seq: 3, batch: 64, input: 8, hidden: 128, batchFirst: true },
  { mode: 'GRU', seq: 3, batch: 64, input: 8, hidden: 128, batchFirst: true },
];

/** The output, final states, every input's and parameter's gradient, and the tap's records, as plain arrays. */
function run(c: Case, threads: number): Float32Array[] {
  getBackend().setThreads(threads);
  const D = c.bidirectional ? 2 : 1;
  const L = c.numLayers ?? 1;
  const opts = { numLayers: L, bidirectional: c.bidirectional ?? false, batchFirst: c.batchFirst ?? false, seed: 3 };
  const m = c.mode === 'LSTM' ? new LSTM(c.input, c.hidden, opts) : new GRU(c.input, c.hidden, opts);
  const taps: number[] = [];
  m.timeTap = (): TimeTap => ({ wants: () => true, record: (_t, _T, ss) => taps.push(ss) });
  const xShape = c.batchFirst ? [c.batch, c.seq, c.input] : [c.seq, c.batch, c.input];
  const x = randn(xShape, { seed: 1, requiresGrad: true });
  const h0 = c.initial ? randn([L * D, c.batch, c.hidden], { seed: 2, requiresGrad: true }) : undefined;
  const c0 =
    c.initial && c.mode === 'LSTM' ? randn([L * D, c.batch, c.hidden], { seed: 4, requiresGrad: true }) : undefined;
  const out = m.call(x, h0 ? (c0 ? { h: h0, c: c0 } : { h: h0 }) : undefined) as {
    output: ReturnType<typeof randn>;
    h: ReturnType<typeof randn>;
    c?: ReturnType<typeof randn>;
  };
  const outs = [out.output, out.h, ...(out.c ? [out.c] : [])];
  // a loss that weighs every element differently, so that every output's gradient reaches the backward
  let loss = outs[0]!.mul(randn(outs[0]!.shape, { seed: 5 })).sum();
  for (let k = 1; k < outs.length; k++) loss = loss.add(outs[k]!.mul(randn(outs[k]!.shape, { seed: 5 + k })).sum());
  loss.backward();
  const leaves = [x, ...(h0 ? [h0] : []), ...(c0 ? [c0] : []), ...m.parameters()];
  return [...outs.map((t) => t.data.slice()), ...leaves.map((t) => t.grad!.data.slice()), Float32Array.from(taps)];
}

function maxRelError(got: Float32Array, want: Float32Array): number {
  let worst = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (scale || 1));
  return worst;
}

const name = (c: Case) =>
  `${c.mode} seq ${c.seq}, batch ${c.batch}, in ${c.input}, hidden ${c.hidden}` +
  `${c.numLayers ? `, ${c.numLayers} layers` : ''}${c.bidirectional ? ', bidirectional' : ''}` +
  `${c.batchFirst ? ', batch first' : ''}${c.initial ? ', initial states' : ''}`;

const before = getBackend().name;
afterAll(() => {
  useBackend(before as Parameters<typeof useBackend>[0]);
});

describe('LSTM and GRU layers on every backend', () => {
  const want = new Map<Case, Float32Array[]>();
  for (const backend of availableBackends()) {
    for (const c of CASES) {
      it(`${backend}: ${name(c)} matches the reference`, () => {
        useBackend('js');
        if (!want.has(c)) want.set(c, run(c, 1));
        useBackend(backend);
        const got = run(c, 1);
        const ref = want.get(c)!;
        expect(got.length).toBe(ref.length);
        // σ and tanh differ from the reference's by an ulp or two; everything else rounds the same way
        for (let k = 0; k < ref.length; k++) expect(maxRelError(got[k]!, ref[k]!), `array ${k}`).toBeLessThan(2e-5);
      });
    }
  }

  // The products' implementation pinned (ours): the default policy chooses OpenBLAS or ours per shape and thread count
  // (see native/addon.c), which may round a product differently on one thread than on two.
  it.skipIf(!availableBackends().includes('native'))('native: the same bits on one and two threads', () => {
    const be = useBackend('native') as NativeBackend;
    const threads = be.threads;
    be.selectGemm('own');
    try {
      for (const c of CASES) {
        const one = run(c, 1);
        const two = run(c, 2);
        for (let k = 0; k < one.length; k++) {
          const a = new Uint32Array(one[k]!.buffer);
          const b = new Uint32Array(two[k]!.buffer);
          const at = a.findIndex((v, i) => v !== b[i]);
          expect(at, `${name(c)}: array ${k} differs at ${at}`).toBe(-1);
        }
      }
    } finally {
      be.selectGemm('auto');
      be.setThreads(threads);
    }
  });
});
