/** ‖∂L/∂h_t‖ through time: the tap in the backward through time, the monitor's record of it, and what is read from it. */
import { describe, expect, it } from 'vitest';
import '../tensor/methods.js';
import { LSTM, RNN } from '../nn/rnn.js';
import { timeTaps } from '../tensor/ops/recurrent.js';
import { slice } from '../tensor/ops/shape.js';
import { randn } from '../tensor/random.js';
import { Monitor } from './monitor.js';
import { sampledSteps, summarizeTimeFlow, TIME_SAMPLES } from './through-time.js';

describe('sampledSteps and summarizeTimeFlow', () => {
  it('keeps every step of a short sequence and an even sample with both ends of a long one', () => {
    expect(sampledSteps(5)).toEqual([0, 1, 2, 3, 4]);
    const s = sampledSteps(100);
    expect(s).toHaveLength(TIME_SAMPLES);
    expect(s[0]).toBe(0);
    expect(s[s.length - 1]).toBe(99);
    expect(s.every((v, i) => i === 0 || v > s[i - 1]!)).toBe(true);
  });

  it('reads the horizon, the first/last ratio and the spread', () => {
    // the norm halves at every step back from the last: within 1e-2 of it for 7 steps (2^-6 = 0.016, 2^-7 = 0.008)
    const steps = Array.from({ length: 20 }, (_, i) => i);
    const norms = steps.map((t) => 2 ** (t - 19));
    const s = summarizeTimeFlow({ layer: 'rnn', sub: 'l0', length: 20, steps, norms });
    expect(s.horizon).toBe(7);
    expect(s.firstLast).toBeCloseTo(2 ** -19, 12);
    expect(s.spread).toBeCloseTo(2 ** 19, 3);
    const flat = summarizeTimeFlow({ layer: 'rnn', sub: 'l0', length: 20, steps, norms: steps.map(() => 1) });
    expect(flat.horizon).toBe(20);
    // an overflowed last step gives no scale: no horizon (the report then prints no line)
    const over = summarizeTimeFlow({ layer: 'rnn', sub: 'l0', length: 3, steps: [0, 1, 2], norms: [1, 2, Number.NaN] });
    expect(over.horizon).toBeNaN();
  });
});

/** ‖∂L/∂h_t‖ by another route: run the layer up to t, then from h_t (a leaf) to the end, and read h_t's gradient. */
function referenceNorm(make: () => RNN | LSTM, x: ReturnType<typeof randn>, t: number): number {
  const T = x.shape[0]!;
  const a = make();
  const first = a.call(slice(x, 0, 0, t + 1));
  const h = first.h.detach().requiresGrad_();
  const state = 'c' in first ? { h, c: (first as { c: typeof h }).c.detach() } : { h };
  const b = make();
  const { output } = b.call(slice(x, 0, t + 1, T), state);
  slice(output, 0, T - t - 2, T - t - 1)
    .sum()
    .backward();
  const g = h.grad!.toArray() as number[];
  return Math.sqrt(g.reduce((s, v) => s + v * v, 0));
}

describe('the monitor records ‖∂L/∂h_t‖ through time', () => {
  for (const [name, make] of [
    ['tanh RNN', () => new RNN(3, 8, { seed: 1 })],
    ['LSTM', () => new LSTM(3, 8, { seed: 1 })],
  ] as const) {
    it(`${name}: at every step of a short sequence, as the gradient of h_t computed another way`, () => {
      const T = 6;
      const x = randn([T, 4, 3], { seed: 2 });
      const model = make();
      const mon = new Monitor(model).attach();
      mon.beginStep(0);
      const { output } = model.call(x);
      slice(output, 0, T - 1, T)
        .sum()
        .backward();
      mon.afterBackward(Object.fromEntries(model.namedParameters()));
      mon.endStep(0);
      const [flow] = mon.latest()!.timeFlow!;
      expect(flow!.sub).toBe('l0');
      expect(flow!.length).toBe(T);
      expect(flow!.steps).toEqual([0, 1, 2, 3, 4, 5]);
      // the last step gets dL/dy_{T-1} = ones [4, 8]
      expect(flow!.norms[T - 1]).toBeCloseTo(Math.sqrt(32), 4);
      for (const t of [0, 2, 4]) expect(flow!.norms[t]).toBeCloseTo(referenceNorm(make, x, t), 4);
      expect(timeTaps.current).toBeNull();
      mon.detach();
    });
  }

  it('samples a long sequence, records each layer of a stacked one, and nothing on steps it does not monitor', () => {
    const model = new RNN(2, 4, { seed: 0, numLayers: 2 });
    const mon = new Monitor(model, { every: 2 }).attach();
    const x = randn([100, 2, 2], { seed: 3 });
    for (let step = 0; step < 2; step++) {
      mon.beginStep(step);
      model.call(x).output.sum().backward();
      mon.afterBackward(Object.fromEntries(model.namedParameters()));
      mon.endStep(1);
      model.zeroGrad();
    }
    const [rec] = mon.history;
    expect(mon.history).toHaveLength(1);
    expect(rec!.timeFlow!.map((f) => f.sub).sort()).toEqual(['l0', 'l1']);
    for (const f of rec!.timeFlow!) expect(f.steps).toEqual(sampledSteps(100));
    mon.detach();
    expect(model.timeTap).toBeNull();
  });
});
