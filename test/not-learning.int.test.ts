/**
 * `not-learning` end to end: a run that stays at its dataset's trivial baseline is reported by `train` and `doctor`,
 * in the terminal and in their JSON, with the baseline beside the loss; a run that learns is not.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { diagnose } from '../src/monitor/diagnose.js';
import { loadConfig } from '../src/train/config.js';

let out = '';
beforeEach(() => {
  out = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
});
afterEach(() => vi.restoreAllMocks());

/** A small MLP on 3 spirals, 10 epochs of 32 steps: 320 steps, past `notLearningMinSteps`. */
const spirals = (lr: number) =>
  [
    'data.name=spirals',
    'data.trainSize=1024',
    'model.hidden=[16]',
    'train.batchSize=32',
    'train.epochs=10',
    `optim.lr=${lr}`,
  ].flatMap((s) => ['--set', s]);

describe('not-learning', () => {
  it('train --json reports a run stuck at the baseline (lr 1e-6), with the baseline in the diagnosis', async () => {
    expect(await main(['train', '--no-store', '--json', ...spirals(1e-6)])).toBe(0);
    const r = JSON.parse(out);
    expect(r.steps).toBe(320);
    expect(r.diagnosis.findings.map((f: { kind: string }) => f.kind)).toContain('not-learning');
    expect(r.diagnosis.baseline.loss).toBeCloseTo(Math.log(3), 1);
    expect(r.diagnosis.baseline.accuracy).toBeGreaterThan(0.25);
    expect(r.diagnosis.baseline.ratio).toBeGreaterThan(0.9);
    const f = r.diagnosis.findings.find((x: { kind: string }) => x.kind === 'not-learning');
    expect(f.fixes[0].set).toEqual(['optim.lr=0.00001']);
  });

  it('train prints the baseline beside the loss, and a run that learns (lr 0.01) is not called not-learning', async () => {
    expect(await main(['train', '--no-store', '--quiet', ...spirals(0.01)])).toBe(0);
    expect(out).toMatch(
      /Loss [\d.]+ against the trivial baseline 1\.1, accuracy \d+\.\d% \(predicting the class frequencies/,
    );
    expect(out).not.toContain('not-learning');
  });

  it('doctor --json with enough steps reports it too', async () => {
    expect(await main(['doctor', '--json', '--steps', '300', ...spirals(1e-6)])).toBe(0);
    const r = JSON.parse(out);
    expect(r.findings.map((f: { kind: string }) => f.kind)).toContain('not-learning');
    expect(r.baseline.ratio).toBeGreaterThan(0.9);
  });
});

describe('the fixes of not-learning', () => {
  it('load on top of the config they were written for', () => {
    const rec = (step: number, g: number[]) => ({
      step,
      loss: 0.52,
      globalNormBefore: Math.hypot(...g),
      globalNormAfter: Math.hypot(...g),
      clipped: false,
      skipped: false,
      updated: true,
      layers: g.map((x, i) => ({
        name: `${i}`,
        gradNorm: x,
        gradMaxAbs: x,
        weightNorm: 1,
        updateRatio: 1e-3,
        actMean: 0,
        actStd: 1,
        nonFinite: 0,
      })),
    });
    const bases = [
      [],
      ['model.type=rnn', 'data.name=adding', 'data.length=50'],
      ['model.type=gru', 'data.name=copy'],
      ['model.type=lstm', 'data.name=adding', 'optim.lr=0.5'],
    ];
    const grads = [
      [1, 1],
      [1e-6, 1],
    ];
    let seen = 0;
    for (const base of bases) {
      const { config } = loadConfig(undefined, base);
      for (const g of grads) {
        const h = Array.from({ length: 400 }, (_, s) => rec(s, g));
        const d = diagnose(h, { config, baseline: { loss: 0.5, predictor: 'a constant' } });
        const f = d.findings.find((x) => x.kind === 'not-learning')!;
        expect(f).toBeDefined();
        for (const fix of f.fixes) {
          seen++;
          expect(() => loadConfig(undefined, [...base, ...fix.set]), `${base} + ${fix.set}`).not.toThrow();
        }
      }
    }
    expect(seen).toBeGreaterThan(8);
  });
});
