/** Judging a `doctor --fix` trial by its outcome, on synthetic probes. */
import { describe, expect, it } from 'vitest';
import type { Diagnosis, Finding, FindingKind } from './diagnose.js';
import type { StepRecord } from './monitor.js';
import { judgeTrial, type TrialInput } from './trial.js';

const clip = {
  label: 'clip the global gradient norm at 1',
  set: ['clip[0].type=global-norm', 'clip[0].max=1'],
  why: '',
};
const gain = { label: 'recurrent weights with gain 1', set: ['init.recurrentGain=1'], why: '' };
const lstm = { label: 'an LSTM instead of a vanilla RNN', set: ['model.type=lstm'], why: '' };
const kaiming = { label: 'Kaiming (He) initialisation', set: ['init.weight=kaiming-normal'], why: '' };

function finding(kind: FindingKind, fixes = [clip, gain], metrics: Record<string, number> = {}): Finding {
  return { kind, layers: ['net.rnn'], evidence: '', metrics, suggestion: '', fixes };
}

function record(step: number, loss: number, before: number, after = before): StepRecord {
  return {
    step,
    loss,
    globalNormBefore: before,
    globalNormAfter: after,
    clipped: after < before,
    skipped: !Number.isFinite(loss),
    updated: true,
    layers: [
      {
        name: 'net.rnn',
        gradNorm: before,
        gradMaxAbs: 1,
        weightNorm: 10,
        updateRatio: 1e-3,
        actMean: 0,
        actStd: 1,
        nonFinite: 0,
      },
    ],
  };
}

function probe(findings: Finding[], loss: number, records: StepRecord[], baseline = 0.167): TrialInput {
  const diagnosis: Diagnosis = {
    verdict: findings[0]?.kind ?? 'healthy',
    findings: findings.length ? findings : [{ ...finding('healthy', []), layers: [] }],
    baseline: { loss: baseline, predictor: 'the mean', runLoss: loss, ratio: loss / baseline },
  };
  return { diagnosis, loss, records };
}

describe('judgeTrial', () => {
  it('credits clipping where it cures the explosion: healthy flow, a lower loss, no non-finite steps', () => {
    const original = probe([finding('exploding')], Number.NaN, [record(0, 2, 1e4), record(1, Number.NaN, Number.NaN)]);
    const trial = probe([], 0.3, [record(0, 2, 1e4, 1), record(1, 0.3, 5, 1)]);
    const t = judgeTrial(clip.label, clip.set, trial, original);
    expect(t.works).toBe(true);
    expect(t.outcome).toContain('cures exploding');
    expect(t.outcome).toContain('non-finite steps 1 → 0');
  });

  it('says clipping only bounds the symptom when the explosion remains, with the norms after clipping and the cause’s fix', () => {
    // recurrent gain 2 under Adam: clipping halves the loss (0.74 to 0.41) but it stays far above the 0.167 baseline
    const original = probe([finding('exploding')], 0.74, [record(0, 0.8, 300), record(1, 0.74, 400)]);
    const trial = probe([finding('exploding')], 0.41, [record(0, 0.8, 300, 1), record(1, 0.41, 350, 1)]);
    const t = judgeTrial(clip.label, clip.set, trial, original);
    expect(t.works).toBe(false);
    expect(t.lowersLoss).toBe(true);
    expect(t.outcome).toContain('exploding remains');
    expect(t.outcome).toMatch(/gradient norm 3\d\d clipped to 1/);
    expect(t.outcome).toContain('only the symptom');
    expect(t.outcome).toContain("the cause's fix: recurrent weights with gain 1 (--set init.recurrentGain=1)");
  });

  it('names forward-growing activations as what clipping cannot change', () => {
    const ex = finding('exploding', [kaiming, clip], { maxActStd: 1e5 });
    const original = probe([ex], 2.3, [record(0, 2.3, 1e8)]);
    const trial = probe([ex], 2.1, [record(0, 2.1, 1e8, 1)]);
    const t = judgeTrial(clip.label, clip.set, trial, original);
    expect(t.works).toBe(false);
    expect(t.outcome).toContain('activations grow on the way forward');
    expect(t.outcome).toContain("the cause's fix: Kaiming (He) initialisation");
  });

  it('credits a fix that restores the flow while both losses are still at the baseline, and not one that is worse than it', () => {
    const vt = finding('vanishing-through-time', [lstm]);
    const original = probe([vt], 0.165, [record(0, 0.165, 1)]);
    const atBase = judgeTrial(lstm.label, lstm.set, probe([], 0.18, [record(0, 0.18, 1)]), original);
    expect(atBase.works).toBe(true);
    expect(atBase.lowersLoss).toBe(false);
    expect(atBase.outcome).toContain('both still at the trivial baseline');
    // the original learned (below the baseline): the trial must then lower the loss
    const learned = probe([vt], 0.1, [record(0, 0.1, 1)]);
    expect(judgeTrial(lstm.label, lstm.set, probe([], 0.18, [record(0, 0.18, 1)]), learned).works).toBe(false);
    // far above the baseline is not "at" it: a loss of 3e16 against 3e15 is worse, not undecided
    const diverged = probe([vt], 3e15, [record(0, 3e15, 1)]);
    const worse = judgeTrial(lstm.label, lstm.set, probe([], 3e16, [record(0, 3e16, 1)]), diverged);
    expect(worse.works).toBe(false);
    expect(worse.outcome).not.toContain('both still at the trivial baseline');
  });

  it('does not call skipping non-finite steps clipping', () => {
    const skip = { label: 'skip steps with NaN/Inf gradients', set: ['clip[0].type=skip-non-finite'], why: '' };
    const original = probe([finding('non-finite', [skip])], Number.NaN, [record(0, Number.NaN, Number.NaN)]);
    const t = judgeTrial(skip.label, skip.set, probe([finding('non-finite', [skip])], Number.NaN, []), original);
    expect(t.outcome).toContain('non-finite remains');
    expect(t.outcome).not.toContain('clipping');
  });

  it('judges the original itself as nothing to credit', () => {
    const t = judgeTrial('original', [], probe([finding('exploding')], 1, [record(0, 1, 1e3)]), null);
    expect(t).toMatchObject({ works: false, lowersLoss: false, restoresFlow: false });
  });
});
