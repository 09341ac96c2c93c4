/**
 * What the sequence-regression experiments (`pascanu2013`, `clipping`, both on the adding problem) share: a run's
 * outcome against the trivial baseline (MSE 1/6 ≈ 0.167 on the adding problem), and the step where its training
 * blew up, read back from the run store.
 */
import type { RunStore } from '../../track/store.js';
import { type ArmRun, fmtNum, type RunOutcome } from '../framework.js';

/** A run solves the task when its MSE is under this fraction of the baseline (0.017 on the adding problem). */
export const SOLVED_FRACTION = 0.1;
/** It learns something when under this fraction (0.083), and stalls otherwise. */
export const LEARNS_FRACTION = 0.5;
/** A final MSE above this multiple of the baseline means the run blew up (always predicting 0 scores about 7x). */
export const BLOWN_UP_MULTIPLE = 10;
/** A training step whose loss passes this multiple of the baseline is where a run blew up (far above any init's). */
export const BLOW_UP_STEP_MULTIPLE = 100;

/**
 * A run's outcome on a regression task with a trivial baseline, by its training MSE (the trained model on the whole
 * training split, as the framework's default outcome reads it): `diverged` (the trainer stopped it on non-finite
 * values), `blew up` (finite but over 10x the baseline), `solves` (under 10% of the baseline), `learns` (under half)
 * or `stalls`. `solves` and `learns` are the outcomes a healthy network should have.
 */
export function regressionOutcome(run: ArmRun): RunOutcome {
  const loss = run.train.loss;
  const base = run.baselineLoss ?? Number.NaN;
  const vs = `train MSE ${fmtNum(loss)}, test ${fmtNum(run.test.loss)}, against the baseline ${fmtNum(base)}`;
  if (run.status === 'diverged' || !Number.isFinite(loss))
    return { label: 'diverged', ok: false, detail: `status ${run.status} after ${run.steps} steps, ${vs}` };
  if (loss > BLOWN_UP_MULTIPLE * base) return { label: 'blew up', ok: false, detail: vs };
  if (loss < SOLVED_FRACTION * base) return { label: 'solves', ok: true, detail: vs };
  if (loss < LEARNS_FRACTION * base) return { label: 'learns', ok: true, detail: vs };
  return { label: 'stalls', ok: false, detail: vs };
}

/**
 * The first step at which a run's training blew up: its loss was not finite, the step was skipped (non-finite
 * gradients or update), or its loss exceeded `BLOW_UP_STEP_MULTIPLE` x the baseline; null when none did.
 */
export function blowUpStep(store: RunStore, run: string, baseline: number | null): number | null {
  const m = store.getMetrics(run);
  const loss = m.series.loss ?? [];
  const skipped = m.series.skipped ?? [];
  const limit = baseline !== null ? BLOW_UP_STEP_MULTIPLE * baseline : Number.POSITIVE_INFINITY;
  for (let i = 0; i < m.steps.length; i++) {
    const l = loss[i];
    if (l === undefined || l === null) {
      if (skipped[i] === 1) return m.steps[i]!;
      continue;
    }
    if (!Number.isFinite(l) || l > limit || skipped[i] === 1) return m.steps[i]!;
  }
  return null;
}
