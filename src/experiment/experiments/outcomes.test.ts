/**
 * The outcome rules of the residual, pascanu2013 and clipping experiments, and the blow-up step they read from the
 * store: what each label means at its thresholds (the tiny-size runs in test/experiments.int.test.ts check the pages).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunStore } from '../../track/store.js';
import type { ArmRun } from '../framework.js';
import { BLOW_UP_STEP_MULTIPLE, blowUpStep, regressionOutcome } from './regression.js';
import { residualOutcome } from './residual.js';

const dir = mkdtempSync(join(tmpdir(), 'gg-outcomes-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A run with the fields the outcome rules read. */
function run(trainLoss: number, o: { status?: string; baseline?: number; accuracy?: number } = {}): ArmRun {
  return {
    status: o.status ?? 'finished',
    steps: 10,
    train: { loss: trainLoss, ...(o.accuracy !== undefined ? { accuracy: o.accuracy } : {}) },
    test: { loss: trainLoss },
    baselineLoss: o.baseline ?? 0.2,
  } as ArmRun;
}

describe('regressionOutcome (adding problem: baseline 0.2 here)', () => {
  it('labels by the training MSE against the baseline', () => {
    expect(regressionOutcome(run(0.019)).label).toBe('solves');
    expect(regressionOutcome(run(0.021)).label).toBe('learns');
    expect(regressionOutcome(run(0.11)).label).toBe('stalls');
    expect(regressionOutcome(run(2.1)).label).toBe('blew up');
    expect(regressionOutcome(run(0.01, { status: 'diverged' })).label).toBe('diverged');
    expect(regressionOutcome(run(Number.POSITIVE_INFINITY)).label).toBe('diverged');
  });

  it('counts only solves and learns as what a healthy network does', () => {
    expect([0.01, 0.05, 0.15, 3].map((l) => regressionOutcome(run(l)).ok)).toEqual([true, true, false, false]);
  });
});

describe('residualOutcome (MNIST: baseline 2.3)', () => {
  it('learns under half the baseline, stalls above, diverged when the trainer stopped it', () => {
    expect(residualOutcome(run(1.1, { baseline: 2.3, accuracy: 0.7 }))).toMatchObject({ label: 'learns', ok: true });
    expect(residualOutcome(run(1.2, { baseline: 2.3 }))).toMatchObject({ label: 'stalls', ok: false });
    expect(residualOutcome(run(0.1, { baseline: 2.3, status: 'diverged' }))).toMatchObject({ label: 'diverged' });
    expect(residualOutcome(run(0.5, { baseline: 2.3, accuracy: 0.9 })).detail).toContain('accuracy 90.00%');
  });
});

describe('blowUpStep', () => {
  const store = RunStore.open(join(dir, 'store'));
  afterAll(() => store.close());
  const logged = (losses: number[], skipped: number[] = []) => {
    const id = store.createRun({ config: {}, backend: 'js' });
    for (const [step, loss] of losses.entries())
      store.logStep(id, step, { loss, skipped: skipped.includes(step) ? 1 : 0 });
    return id;
  };

  it(`is the first step whose loss passes ${BLOW_UP_STEP_MULTIPLE}x the baseline`, () => {
    expect(blowUpStep(store, logged([0.5, 0.3, 25, 1e30]), 0.2)).toBe(2);
    expect(blowUpStep(store, logged([0.5, 0.3, 19, 0.2]), 0.2)).toBeNull();
  });

  it('or the first skipped step (non-finite loss or gradients), whichever comes first', () => {
    expect(blowUpStep(store, logged([0.5, 0.4, 0.3, 0.2], [1]), 0.2)).toBe(1);
    expect(blowUpStep(store, logged([0.5, Number.NaN, 0.3]), 0.2)).toBe(1);
  });

  it('never without a baseline unless a step was skipped', () => {
    expect(blowUpStep(store, logged([0.5, 1e30]), null)).toBeNull();
    expect(blowUpStep(store, logged([0.5, 1e30, 2], [2]), null)).toBe(2);
  });
});
