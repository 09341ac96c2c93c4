/** The through-time rules on synthetic records: judged on the trend, gated layers given time to learn. */
import { describe, expect, it } from 'vitest';
import { diagnose } from '../diagnose.js';
import type { LayerInfo, StepRecord } from '../monitor.js';
import type { ConfigFacts } from './types.js';

const T = 100;
const steps = Array.from({ length: T }, (_, i) => i);

/** A record whose recurrent layer's ‖∂L/∂h_t‖ falls geometrically from the last step back to `firstLast` at t = 0. */
function rec(step: number, firstLast: number, updated = true): StepRecord {
  const layer = (name: string) => ({
    name,
    gradNorm: 0.5,
    gradMaxAbs: 0.1,
    weightNorm: 10,
    updateRatio: 1e-3,
    actMean: 0,
    actStd: 0.5,
    nonFinite: 0,
  });
  const norms = steps.map((t) => 0.1 * firstLast ** ((T - 1 - t) / (T - 1)));
  return {
    step,
    loss: 0.17,
    globalNormBefore: 0.7,
    globalNormAfter: 0.7,
    clipped: false,
    skipped: false,
    updated,
    layers: [layer('net.rnn'), layer('net.head')],
    timeFlow: [{ layer: 'net.rnn', sub: 'l0', length: T, steps, norms }],
  };
}

function facts(type: string): { config: ConfigFacts; layers: LayerInfo[] } {
  const cls = type === 'rnn' ? 'RNN' : type.toUpperCase();
  return {
    config: {
      model: { type, activation: 'tanh', residual: false, norm: 'none', zeroInitResidual: false, rezero: false },
      init: { weight: 'xavier-normal', bias: 'zeros' },
      optim: { lr: 1e-3 },
      schedule: { warmupSteps: 0 },
      clip: [{ type: 'global-norm' }],
      data: { name: 'adding', length: T },
    },
    layers: [
      { name: 'net.rnn', type: cls, size: 1000, params: [], activation: 'tanh' },
      { name: 'net.head', type: 'Linear', size: 100, params: [], activation: 'none' },
    ],
  };
}

/** Records from step `from` to `to` whose first/last ratio moves log-linearly from `a` to `b`. */
function run(a: number, b: number, from: number, to: number): StepRecord[] {
  const n = 12;
  return Array.from({ length: n }, (_, i) =>
    rec(from + Math.round(((to - from) * i) / (n - 1)), a * (b / a) ** (i / (n - 1))),
  );
}

describe('vanishing-through-time', () => {
  it('is the verdict for a tanh RNN whose gradient through time falls during training, with the time steps concerned', () => {
    const d = diagnose(run(4e-4, 1e-13, 0, 33), facts('rnn'));
    expect(d.verdict).toBe('vanishing-through-time');
    const f = d.findings[0]!;
    expect(f.layers).toEqual(['net.rnn']);
    expect(f.metrics.firstLast).toBeLessThan(1e-6);
    expect(f.time![0]!.length).toBe(T);
    // the gradient is within 1e-2 of the last step's over the last few steps only; the steps before are concerned
    expect(f.time![0]!.horizon).toBeLessThan(20);
    expect(f.time![0]!.steps[0]).toBe(0);
    expect(f.time![0]!.steps).not.toContain(T - 1);
    expect(f.fixes.map((x) => x.set.join(' '))).toEqual([
      'model.type=lstm',
      'init.weight=orthogonal',
      'data.length=50',
    ]);
    expect(d.time![0]).toMatchObject({ layer: 'net.rnn', sub: 'l0', length: T });
  });

  it('is not found for a tanh RNN whose gradient dips and recovers as it learns (adding T = 50 measured 5.4e-5 at its lowest)', () => {
    expect(diagnose(run(1.6e-2, 5.4e-5, 0, 60), facts('rnn')).verdict).toBe('healthy');
  });

  it('leaves an LSTM that starts vanishing alone before step 300, and while it recovers', () => {
    // an LSTM that will learn: 8.7e-11 at init, 1e-15 at step 100 (measured on adding T = 50, lr 0.01)
    expect(diagnose(run(8.7e-11, 1e-15, 0, 100), facts('lstm')).verdict).toBe('healthy');
    expect(diagnose(run(4e-20, 8e-13, 300, 400), facts('lstm')).verdict).toBe('healthy');
  });

  it('is found for an LSTM still falling after step 300', () => {
    const d = diagnose(run(1e-12, 1e-16, 300, 400), facts('lstm'));
    expect(d.verdict).toBe('vanishing-through-time');
    // no "use an LSTM" for an LSTM; a forget-gate bias of 1 (it has 0) and shorter sequences apply, orthogonal
    // init is written for vanilla RNNs
    expect(d.findings[0]!.fixes.map((x) => x.set.join(' '))).toEqual(['model.forgetBias=1', 'data.length=50']);
    // an LSTM that has the forget-gate bias already is not told to set it
    const withBias = facts('lstm');
    withBias.config.model.forgetBias = 1;
    const again = diagnose(run(1e-12, 1e-16, 300, 400), withBias);
    expect(again.findings[0]!.fixes.map((x) => x.set.join(' '))).toEqual(['data.length=50']);
  });
});

describe('exploding-through-time', () => {
  it('is found when the first step gets many times the last step’s gradient, with the steps concerned', () => {
    // a tanh RNN with recurrent gain 1.5 on adding T = 50: 31x at initialisation
    const d = diagnose(run(31, 22, 0, 10), facts('rnn'));
    const f = d.findings.find((x) => x.kind === 'exploding-through-time')!;
    expect(f.layers).toEqual(['net.rnn']);
    expect(f.time![0]!.steps).toContain(0);
    expect(f.fixes[0]!.label).toContain('LSTM');
  });

  it('is not found once clipping has brought the ratio down (the later records decide)', () => {
    const d = diagnose([...run(31, 7, 0, 10), ...run(0.9, 0.07, 11, 60)], facts('rnn'));
    expect(d.findings.map((x) => x.kind)).not.toContain('exploding-through-time');
  });
});
