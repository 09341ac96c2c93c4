import { describe, expect, it } from 'vitest';
import { diagnose } from '../diagnose.js';
import type { LayerInfo, StepRecord } from '../monitor.js';
import { renderFindings } from '../report.js';
import { THRESHOLDS } from './thresholds.js';
import type { ConfigFacts } from './types.js';

const layers: LayerInfo[] = [
  { name: 'net.rnn', type: 'GRU', size: 50_000, params: [], activation: 'none' },
  { name: 'net.head', type: 'Linear', size: 1000, params: [], activation: 'none' },
];

/** Records of steps 0..n-1 with the given loss per step and per-layer gradient norms `g`. */
function run(n: number, loss: (s: number) => number, g: [number, number] = [0.5, 0.3]): StepRecord[] {
  return Array.from({ length: n }, (_, step) => ({
    step,
    loss: loss(step),
    globalNormBefore: Math.hypot(...g),
    globalNormAfter: Math.hypot(...g),
    clipped: false,
    skipped: false,
    updated: true,
    layers: layers.map((l, i) => ({
      name: l.name,
      gradNorm: g[i]!,
      gradMaxAbs: g[i]!,
      weightNorm: 5,
      updateRatio: 1e-3,
      actMean: 0,
      actStd: 0.5,
      nonFinite: 0,
    })),
  }));
}

const gru: ConfigFacts = {
  model: { type: 'gru', activation: 'relu', residual: false, norm: 'none', zeroInitResidual: false, rezero: false },
  init: { weight: 'xavier-normal', bias: 'zeros' },
  optim: { lr: 1e-3 },
  schedule: { warmupSteps: 0 },
  clip: [{ type: 'global-norm' }],
  data: { name: 'copy', length: 20 },
};
/** The copy task's memoryless baseline at T = 20, S = 10, A = 8. */
const copy = { loss: 0.52, accuracy: 0.781, predictor: "each position's class frequencies" };
/** A noisy loss around `level` (deterministic). */
const around = (level: number) => (s: number) => level * (1 + 0.02 * Math.sin(s * 1.7));

describe('not-learning', () => {
  it('finds a run that sits at its baseline after enough steps, with the fixes in config terms', () => {
    const d = diagnose(
      run(400, (s) => (s < 10 ? 2.4 - 0.2 * s : 0.534 * (1 + 0.02 * Math.sin(s)))),
      {
        layers,
        config: gru,
        baseline: copy,
      },
    );
    expect(d.verdict).toBe('not-learning');
    const f = d.findings[0]!;
    expect(f.layers).toEqual([]);
    expect(f.metrics.ratio).toBeCloseTo(0.534 / 0.52, 1);
    expect(f.metrics.steps).toBe(400);
    expect(f.evidence).toContain('78.1%');
    expect(f.evidence).toMatch(/vanish through time/);
    expect(f.fixes.map((x) => x.set.join(' '))).toEqual(['optim.lr=0.01', 'data.length=10']);
    expect(d.baseline).toMatchObject({ loss: 0.52, accuracy: 0.781 });
    expect(d.baseline!.runLoss).toBeGreaterThan(0.52);
    expect(renderFindings(d)).toMatch(
      /^Loss 0\.53\d against the trivial baseline 0\.52, accuracy 78\.1% \(each position/m,
    );
  });

  it('is not called before enough steps, nor for a run clearly below its baseline', () => {
    const early = diagnose(run(THRESHOLDS.notLearningMinSteps - 1, around(0.52)), { layers, baseline: copy });
    expect(early.verdict).toBe('healthy');
    // the baseline is still carried beside the metric
    expect(early.baseline!.ratio).toBeCloseTo(1, 1);
    const below = (1 - THRESHOLDS.notLearningTolerance) * 0.95;
    const learning = diagnose(run(400, around(0.52 * below)), { layers, baseline: copy });
    expect(learning.verdict).toBe('healthy');
    const at = (1 - THRESHOLDS.notLearningTolerance) * 1.05;
    expect(diagnose(run(400, around(0.52 * at)), { layers, baseline: copy }).verdict).toBe('not-learning');
    // without a baseline there is nothing to compare with
    expect(diagnose(run(400, around(0.52)), { layers }).baseline).toBeUndefined();
  });

  it('names the gradient-flow finding as the likely cause, and its fixes first', () => {
    const d = diagnose(run(400, around(0.17), [1e-6, 1]), {
      layers,
      config: { ...gru, data: { name: 'adding', length: 50 } },
      baseline: { loss: 0.167, predictor: 'the mean' },
    });
    expect(d.findings.map((f) => f.kind)).toEqual(['vanishing', 'not-learning']);
    const f = d.findings[1]!;
    expect(f.evidence).toContain('likely cause: vanishing in net.rnn');
    expect(f.fixes[0]).toEqual(d.findings[0]!.fixes[0]);
    expect(f.fixes.map((x) => x.set.join(' '))).toContain('optim.lr=0.01');
    // an exploding cause: its fixes only, never larger steps
    const e = diagnose(run(400, around(0.2), [5e3, 1]), {
      layers,
      config: gru,
      baseline: { loss: 0.167, predictor: 'the mean' },
    });
    const nl = e.findings.find((x) => x.kind === 'not-learning')!;
    expect(nl.evidence).toContain('likely cause: exploding');
    expect(nl.fixes).toEqual(e.findings[0]!.fixes);
  });
});
