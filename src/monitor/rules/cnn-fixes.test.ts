/**
 * A deep plain CNN whose gradients vanish is offered residual connections (`model.residual=true`, which a CNN takes
 * since issue 17, item 5), the statistics shaped as doctor measured them on the 20-layer plain CNN (first layer's
 * gradient norm about 1e-4 of the last one's); a CNN too shallow or already residual is not.
 */
import { describe, expect, it } from 'vitest';
import { diagnose } from '../diagnose.js';
import type { LayerInfo, StepRecord } from '../monitor.js';
import type { ConfigFacts } from './types.js';

const DEPTH = 20;
const names = [...Array.from({ length: DEPTH }, (_, i) => `net.${2 * i}`), 'net.43', 'net.45'];
const layers: LayerInfo[] = names.map((name, i) => ({
  name,
  type: i < DEPTH ? 'Conv2d' : 'Linear',
  size: 1000,
  params: [`${name}.weight`],
  activation: i < names.length - 1 ? 'relu' : 'none',
}));
// the gradient norm grows ~1.5x per layer from the input: 2e-5 at the first layer, 0.17 at the last
const history: StepRecord[] = Array.from({ length: 5 }, (_, step) => ({
  step,
  loss: 2.3,
  globalNormBefore: 0.3,
  globalNormAfter: 0.3,
  clipped: false,
  skipped: false,
  updated: true,
  layers: names.map((name, i) => ({
    name,
    gradNorm: 2e-5 * 1.55 ** i,
    gradMaxAbs: 1e-5 * 1.55 ** i,
    weightNorm: 5,
    updateRatio: 2e-3,
    actMean: 0.01,
    actStd: 0.02,
    nonFinite: 0,
  })),
}));
const config = (model: Partial<ConfigFacts['model']>): ConfigFacts => ({
  model: {
    type: 'cnn',
    activation: 'relu',
    residual: false,
    norm: 'none',
    zeroInitResidual: false,
    rezero: false,
    ...model,
  },
  init: { weight: 'xavier-normal', bias: 'zeros' },
  optim: { lr: 1e-3 },
  schedule: { warmupSteps: 0 },
  clip: [{ type: 'global-norm' }],
  data: { name: 'mnist' },
});
const sets = (model: Partial<ConfigFacts['model']>) => {
  const d = diagnose(history, { config: config(model), layers });
  const v = d.findings.find((f) => f.kind === 'vanishing');
  expect(v, JSON.stringify(d.findings.map((f) => f.kind))).toBeDefined();
  return v!.fixes.flatMap((f) => f.set);
};

describe('vanishing gradients in a deep plain CNN', () => {
  it('offers residual blocks (their branches starting at zero), in config keys a CNN takes', () => {
    const s = sets({ depth: DEPTH });
    expect(s).toContain('model.residual=true');
    expect(s).toContain('model.zeroInitResidual=true');
  });

  it('not for a residual CNN (it gets zero-initialised branches), nor for depths residual blocks cannot split', () => {
    expect(sets({ depth: DEPTH, residual: true })).not.toContain('model.residual=true');
    expect(sets({ depth: DEPTH, residual: true })).toContain('model.zeroInitResidual=true');
    expect(sets({ depth: 19 })).not.toContain('model.residual=true'); // 19 - 2 stage convolutions: odd
  });
});
