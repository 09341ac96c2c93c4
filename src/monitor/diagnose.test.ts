import { describe, expect, it } from 'vitest';
import { type ConfigFacts, diagnose, LiveDiagnosis, shellQuote, suggestionText, THRESHOLDS } from './diagnose.js';
import type { LayerInfo, LayerStats, ParamStats, StepRecord } from './monitor.js';
import { WarningLog } from './warnings.js';

/** A record with per-layer gradient norms `g` (and optional overrides per layer). */
function rec(
  step: number,
  g: number[],
  o: Partial<StepRecord> = {},
  layer: (i: number) => Partial<LayerStats> = () => ({}),
): StepRecord {
  const layers: LayerStats[] = g.map((gn, i) => ({
    name: `layers.${i}`,
    gradNorm: gn,
    gradMaxAbs: gn / 3,
    weightNorm: 5,
    updateRatio: 1e-3,
    actMean: 0.3,
    actStd: 0.6,
    nonFinite: 0,
    ...layer(i),
  }));
  const global = Math.sqrt(g.reduce((s, x) => s + x * x, 0));
  return {
    step,
    loss: 2.3 - step * 0.01,
    globalNormBefore: global,
    globalNormAfter: global,
    clipped: false,
    skipped: false,
    updated: true,
    layers,
    ...o,
  };
}

const info = (n: number, activation: LayerInfo['activation'] = 'relu', size = 1000): LayerInfo[] =>
  Array.from({ length: n }, (_, i) => ({
    name: `layers.${i}`,
    type: 'Linear',
    size,
    params: [`layers.${i}.weight`],
    activation,
  }));

const config = (o: {
  activation?: string;
  weight?: string;
  residual?: boolean;
  depth?: number;
  clip?: { type: string }[];
  bias?: string | number;
  type?: string;
  lr?: number;
}): ConfigFacts => ({
  model: {
    type: o.type ?? 'mlp',
    activation: o.activation ?? 'relu',
    residual: o.residual ?? false,
    norm: 'none',
    zeroInitResidual: false,
    rezero: false,
    depth: o.depth ?? 20,
    width: 32,
  },
  init: { weight: o.weight ?? 'xavier-normal', bias: o.bias ?? 'zeros' },
  optim: { lr: o.lr ?? 1e-3 },
  schedule: { warmupSteps: 0 },
  clip: o.clip ?? [{ type: 'global-norm' }],
});

describe('diagnose', () => {
  it('calls a net healthy when gradient norms are close across layers and nothing else is off', () => {
    const h = Array.from({ length: 10 }, (_, s) => rec(s, [0.5, 0.8, 1.1, 0.9]));
    const d = diagnose(h, { layers: info(4) });
    expect(d.verdict).toBe('healthy');
    expect(d.findings).toHaveLength(1);
    expect(d.findings[0]!.kind).toBe('healthy');
    expect(d.findings[0]!.metrics.spread).toBeCloseTo(1.1 / 0.5);
  });

  it('finds vanishing gradients and names the early layers whose norm is below the ratio', () => {
    const g = Array.from({ length: 8 }, (_, i) => 10 ** (i - 7)); // 1e-7 ... 1
    const h = Array.from({ length: 6 }, (_, s) => rec(s, g));
    const d = diagnose(h, { layers: info(8, 'sigmoid'), config: config({ activation: 'sigmoid', weight: 'normal' }) });
    expect(d.verdict).toBe('vanishing');
    const f = d.findings[0]!;
    // 1e-7 .. 1e-4 are below 1e-3 of the largest (1); 1e-3 is not below
    expect(f.layers).toEqual(['layers.0', 'layers.1', 'layers.2', 'layers.3']);
    expect(f.metrics.firstLastRatio).toBeCloseTo(1e-7);
    expect(f.evidence).toContain('1.0e-7');
    expect(f.fixes[0]!.set).toEqual(['model.activation=relu', 'init.weight=kaiming-normal']);
    expect(f.fixes.some((x) => x.set.includes('model.residual=true'))).toBe(true);
  });

  it('does not call a 3-decade spread vanishing (the threshold is strict)', () => {
    const h = Array.from({ length: 6 }, (_, s) => rec(s, [1.01e-3, 0.1, 1]));
    expect(diagnose(h, { layers: info(3) }).verdict).toBe('healthy');
  });

  it('finds exploding gradients from the global norm and suggests init and clipping in config terms', () => {
    const h = Array.from({ length: 6 }, (_, s) => rec(s, [3e3, 2e3, 1e3]));
    const d = diagnose(h, { layers: info(3), config: config({ weight: 'normal', clip: [] }) });
    expect(d.verdict).toBe('exploding');
    const f = d.findings[0]!;
    expect(f.metrics.globalNorm).toBeGreaterThan(THRESHOLDS.explodeNorm);
    expect(f.layers).toEqual(['layers.0', 'layers.1', 'layers.2']);
    const sets = f.fixes.map((x) => x.set.join(' '));
    expect(sets).toContain('init.weight=kaiming-normal');
    expect(sets).toContain('clip[0].type=global-norm clip[0].max=1');
  });

  it('finds exploding gradients from growth over training', () => {
    const h = Array.from({ length: 8 }, (_, s) => rec(s, [0.1 * 3 ** s]));
    const d = diagnose(h, { layers: info(1) });
    expect(d.findings.map((f) => f.kind)).toContain('exploding');
    const f = d.findings.find((x) => x.kind === 'exploding')!;
    expect(f.metrics.growth).toBeCloseTo(3 ** 7, 0);
    expect(f.evidence).toMatch(/grew/);
  });

  it('reports non-finite values with the first step and layer; exploding takes precedence', () => {
    const h = [
      rec(0, [1, 1]),
      rec(1, [1, 1]),
      rec(2, [Number.NaN, 1], { loss: Number.NaN, globalNormBefore: Number.NaN }, (i) => ({
        nonFinite: i === 0 ? 12 : 0,
      })),
    ];
    const d = diagnose(h, { layers: info(2) });
    expect(d.verdict).toBe('non-finite');
    const f = d.findings[0]!;
    expect(f.layers).toEqual(['layers.0']);
    expect(f.metrics.firstStep).toBe(2);
    expect(f.metrics.count).toBe(12);
    const h2 = [
      rec(0, [1e4, 1e4]),
      rec(1, [1e5, 1e5]),
      rec(2, [Number.NaN, 1], { loss: Number.NaN, globalNormBefore: Number.NaN }),
    ];
    expect(diagnose(h2, { layers: info(2) }).verdict).toBe('exploding');
  });

  it('finds dead ReLU units and suggests zero biases when the config sets them negative', () => {
    const h = Array.from({ length: 5 }, (_, s) => rec(s, [0, 0, 0.1], {}, (i) => (i < 2 ? { deadFrac: 1 } : {})));
    const d = diagnose(h, { layers: info(3), config: config({ bias: -5 }) });
    expect(d.verdict).toBe('dead-units');
    expect(d.findings[0]!.layers).toEqual(['layers.0', 'layers.1']);
    expect(d.findings[0]!.fixes[0]!.set).toEqual(['init.bias=zeros']);
    // layers with no gradient at all are explained by the dead units, not reported again as vanishing
    expect(d.findings.map((f) => f.kind)).not.toContain('vanishing');
  });

  it('finds saturation above the threshold only', () => {
    const sat = (f: number) =>
      Array.from({ length: 5 }, (_, s) => rec(s, [1, 1], {}, (i) => (i === 1 ? { satFrac: f } : { satFrac: 0 })));
    expect(diagnose(sat(0.49), { layers: info(2, 'tanh') }).verdict).toBe('healthy');
    const d = diagnose(sat(0.9), { layers: info(2, 'tanh'), config: config({ activation: 'tanh', weight: 'normal' }) });
    expect(d.verdict).toBe('saturation');
    expect(d.findings[0]!.layers).toEqual(['layers.1']);
  });

  it('judges update/weight ratios per parameter, leaving out parameters that start at zero', () => {
    const p = (step: number, ratio: number, w0: number, r1 = 0.5): ParamStats[] => [
      {
        name: 'layers.0.weight',
        layer: 'layers.0',
        size: 1000,
        gradNorm: 1,
        gradMaxAbs: 1,
        weightNorm: 5,
        updateRatio: ratio,
        nonFinite: 0,
      },
      {
        name: 'layers.1.weight',
        layer: 'layers.1',
        size: 1000,
        gradNorm: 1,
        gradMaxAbs: 1,
        weightNorm: step === 0 ? w0 : 0.01,
        updateRatio: r1,
        nonFinite: 0,
      },
    ];
    const high = Array.from({ length: 6 }, (_, s) => ({ ...rec(s, [1, 1]), params: p(s, 0.3, 0) }));
    const d = diagnose(high, { layers: info(2), config: config({ lr: 0.01 }) });
    const f = d.findings.find((x) => x.kind === 'update-ratio-too-high')!;
    expect(f.layers).toEqual(['layers.0']); // layers.1 started at zero
    expect(f.fixes[0]!.set).toEqual(['optim.lr=0.001']);
    const low = Array.from({ length: 6 }, (_, s) => ({ ...rec(s, [1, 1]), params: p(s, 1e-7, 1, 1e-7) }));
    const dl = diagnose(low, { layers: info(2), config: config({ lr: 1e-6 }) });
    expect(dl.verdict).toBe('update-ratio-too-low');
    expect(dl.findings[0]!.fixes[0]!.set).toEqual(['optim.lr=0.00001']);
    expect(dl.findings[0]!.layers).toEqual(['layers.0', 'layers.1']);
    // a layer that feeds one starting at zero gets tiny updates by design: not too low
    const shadowed = Array.from({ length: 6 }, (_, s) => ({ ...rec(s, [1, 1]), params: p(s, 1e-7, 0, 1e-3) }));
    expect(diagnose(shadowed, { layers: info(2) }).verdict).toBe('healthy');
    // records of batches without an update are not judged, nor fewer than five steps
    const none = low.map((r) => ({ ...r, updated: false }));
    expect(diagnose(none, { layers: info(2) }).verdict).toBe('healthy');
    expect(diagnose(low.slice(0, 4), { layers: info(2) }).verdict).toBe('healthy');
  });

  it('finds a loss spike against the median of the steps before it, not noise at a tiny loss', () => {
    const losses = [2.3, 2.2, 2.1, 2.0, 1.95, 1.9, 1.85, 8.0, 1.8, 1.75];
    const h = losses.map((l, s) => rec(s, [1, 1], { loss: l }));
    const d = diagnose(h, { layers: info(2) });
    expect(d.verdict).toBe('loss-spike');
    expect(d.findings[0]!.metrics.worstStep).toBe(7);
    const tiny = [2.3, 0.01, 0.011, 0.009, 0.01, 0.01, 0.04, 0.01].map((l, s) => rec(s, [1, 1], { loss: l }));
    expect(diagnose(tiny, { layers: info(2) }).verdict).toBe('healthy');
    // minibatch noise: a batch at twice the median, within five median absolute deviations, is not a spike
    const noisy = [0.2, 0.15, 0.25, 0.18, 0.12, 0.22, 0.16, 0.5, 0.19].map((l, s) => rec(s, [1, 1], { loss: l }));
    expect(diagnose(noisy, { layers: info(2), initialLoss: 2.3 }).verdict).toBe('healthy');
    // ... but one far outside it is
    const spiky = [0.2, 0.19, 0.21, 0.2, 0.2, 0.19, 0.21, 0.9, 0.2].map((l, s) => rec(s, [1, 1], { loss: l }));
    expect(diagnose(spiky, { layers: info(2), initialLoss: 2.3 }).verdict).toBe('loss-spike');
  });

  it('gives an empty history a healthy verdict that says nothing was monitored', () => {
    const d = diagnose([]);
    expect(d.verdict).toBe('healthy');
    expect(d.findings[0]!.evidence).toMatch(/no steps/);
    expect(() => diagnose('x' as never)).toThrow('diagnose(): history must be an array');
  });

  it('writes fixes for recurrent nets in their terms', () => {
    const h = Array.from({ length: 6 }, (_, s) => rec(s, [5e3, 10]));
    const c = config({ type: 'rnn', activation: 'tanh', clip: [] });
    c.init.recurrentGain = 2;
    const d = diagnose(h, { config: c });
    expect(d.verdict).toBe('exploding');
    const sets = d.findings[0]!.fixes.map((x) => x.set.join(' '));
    expect(sets[0]).toBe('clip[0].type=global-norm clip[0].max=1');
    expect(sets).toContain('init.recurrentGain=1');
  });
});

describe('LiveDiagnosis', () => {
  it('after the first window runs the rules every few records, but at once on NaN or a huge gradient norm', () => {
    const live = new LiveDiagnosis({ layers: info(2), window: 4, every: 3 });
    for (let s = 0; s < 4; s++) expect(live.push(rec(s, [1, 1]))).toEqual([]);
    // record 5 (not a multiple of 3) with NaN: judged at once
    const bad = live.push(rec(4, [1, 1], { loss: Number.NaN, globalNormBefore: Number.NaN }, () => ({ nonFinite: 2 })));
    expect(bad.map((f) => f.kind)).toEqual(['non-finite']);
    const live2 = new LiveDiagnosis({ layers: info(2), window: 2, every: 3 });
    live2.push(rec(0, [1, 1]));
    live2.push(rec(1, [1, 1]));
    // the 3rd record is judged (its window is half healthy), the 4th and 5th are skipped, the 6th is judged
    const found = [2, 3, 4, 5].map((s) => live2.push(rec(s, [1e-9, 1])).map((f) => f.kind));
    expect(found).toEqual([[], [], [], ['vanishing']]);
    expect(() => new LiveDiagnosis({ every: 0 })).toThrow('LiveDiagnosis: every must be a positive integer, got 0');
  });

  it('reports each kind and layer once', () => {
    const live = new LiveDiagnosis({ layers: info(3), window: 3, every: 1 });
    const g = [1e-6, 1e-2, 1];
    expect(live.push(rec(0, g)).map((f) => f.kind)).toEqual(['vanishing']);
    expect(live.push(rec(1, g))).toEqual([]);
    // a new layer joins the finding once the window's median says so: reported again, for it
    const g2 = [1e-6, 1e-5, 1];
    expect(live.push(rec(2, g2))).toEqual([]);
    const more = live.push(rec(3, g2));
    expect(more.map((f) => f.kind)).toEqual(['vanishing']);
    expect(more[0]!.layers).toEqual(['layers.0', 'layers.1']);
    expect(live.push(rec(4, g2))).toEqual([]);
  });

  it('prints a finding once in full, then only the layers that join it, and never ".;"', () => {
    const live = new LiveDiagnosis({ layers: info(3), window: 3, every: 1 });
    const printed = new WarningLog();
    const first = live.push(rec(0, [1e-6, 1e-2, 1]))[0]!;
    const line = printed.line(0, first);
    expect(line).toMatch(/^warning: step 0: vanishing in layers\.0: /);
    expect(line).not.toMatch(/\.;/);
    expect(line).toContain('; try ');
    live.push(rec(1, [1e-6, 1e-2, 1]));
    live.push(rec(2, [1e-6, 1e-5, 1]));
    const more = live.push(rec(3, [1e-6, 1e-5, 1]))[0]!;
    expect(printed.line(3, more)).toBe(
      'warning: step 3: vanishing now also in layers.1 (reported before for layers.0)',
    );
  });
});

describe('suggestions', () => {
  it('quotes what a shell would interpret', () => {
    expect(shellQuote('init.weight=kaiming-normal')).toBe('init.weight=kaiming-normal');
    expect(shellQuote('clip[0].type=global-norm')).toBe("'clip[0].type=global-norm'");
    expect(shellQuote('clip=[{type: global-norm, max: 1}]')).toBe("'clip=[{type: global-norm, max: 1}]'");
    expect(suggestionText([{ label: 'Kaiming', set: ['init.weight=kaiming-normal'], why: '' }])).toBe(
      'Kaiming: --set init.weight=kaiming-normal',
    );
  });
});
