/**
 * Judging a `doctor --fix` trial by its outcome: what the fix was meant to cure (the findings of the original that
 * listed it), whether they are gone, which flow findings remain, the loss against the original's and the dataset's
 * trivial baseline, the non-finite steps, and for a clipping fix the gradient after clipping beside the raw one. The
 * trial says it in words (`outcome`), and names the cause's fix where a fix only bounds the symptom.
 */
import { type Diagnosis, type FindingKind, FLOW_KINDS, fmt, THRESHOLDS } from './diagnose.js';
import type { StepRecord } from './monitor.js';
import type { TrialResult } from './report.js';
import { median } from './rules/format.js';

/** What a probe of one config left: its diagnosis, its mean loss over the last steps, and its records. */
export interface TrialInput {
  diagnosis: Diagnosis;
  loss: number;
  records: readonly StepRecord[];
}

/** Steps whose loss or gradients were not finite, or whose update was skipped. */
function nonFiniteSteps(records: readonly StepRecord[]): number {
  return records.filter((r) => r.skipped || !Number.isFinite(r.loss) || !Number.isFinite(r.globalNormBefore)).length;
}

/**
 * The loss is at the trivial baseline: within `notLearningTolerance` of the loss of predicting the prior or the mean
 * (neither better, nor diverging above it).
 */
function atBaseline(loss: number, baseline: number | undefined): boolean {
  return baseline !== undefined && Math.abs(loss / baseline - 1) <= THRESHOLDS.notLearningTolerance;
}

/**
 * Judges a trial against the original (null: the original itself).
 *
 * A trial `works` when the findings the fix was meant to cure are gone, no gradient-flow finding remains, it has no
 * more non-finite steps than the original, and its loss is lower, or (both still at the trivial baseline, where the
 * loss of a short probe says nothing yet) not worse than the baseline's tolerance allows.
 */
export function judgeTrial(label: string, set: string[], p: TrialInput, original: TrialInput | null): TrialResult {
  const kinds = p.diagnosis.findings.map((f) => f.kind);
  const flowLeft = kinds.filter((k) => FLOW_KINDS.has(k));
  const restoresFlow = !flowLeft.length;
  const base = { label, set, verdict: p.diagnosis.verdict, kinds, loss: p.loss, restoresFlow };
  if (!original) return { ...base, lowersLoss: false, works: false };
  const key = set.join(' ');
  const meant = original.diagnosis.findings.filter((f) => f.fixes.some((x) => x.set.join(' ') === key));
  const target: FindingKind[] = [...new Set(meant.map((f) => f.kind))];
  const cured = target.filter((k) => !kinds.includes(k));
  const baseline = original.diagnosis.baseline?.loss;
  const finite = Number.isFinite(p.loss);
  const lowersLoss = finite && (!Number.isFinite(original.loss) || p.loss < original.loss);
  const bothAtBase = finite && atBaseline(p.loss, baseline) && atBaseline(original.loss, baseline);
  const nfTrial = nonFiniteSteps(p.records);
  const nfOrig = nonFiniteSteps(original.records);
  const works = restoresFlow && cured.length === target.length && nfTrial <= nfOrig && (lowersLoss || bothAtBase);
  const words: string[] = [];
  if (cured.length) words.push(`cures ${cured.join(', ')}`);
  const still = target.filter((k) => kinds.includes(k));
  if (still.length) words.push(`${still.join(', ')} ${still.length > 1 ? 'remain' : 'remains'}`);
  const others = flowLeft.filter((k) => !target.includes(k));
  if (others.length) words.push(`${[...new Set(others)].join(', ')} found`);
  words.push(lossWords(p.loss, original.loss, baseline, bothAtBase));
  if (nfTrial !== nfOrig) words.push(`non-finite steps ${nfOrig} → ${nfTrial}`);
  const clip = clipWords(set, p, original, still);
  if (clip) words.push(clip);
  return { ...base, lowersLoss, works, outcome: words.join('; ') };
}

function lossWords(loss: number, orig: number, baseline: number | undefined, bothAtBase: boolean): string {
  const b = baseline !== undefined ? ` (baseline ${fmt(baseline)})` : '';
  if (!Number.isFinite(loss)) return `the loss is not finite (original ${fmt(orig)})`;
  if (bothAtBase) return `loss ${fmt(loss)} against ${fmt(orig)}, both still at the trivial baseline${b}`;
  const gap = baseline !== undefined && loss > baseline ? `, still above the baseline${b}` : b;
  return `loss ${fmt(loss)} against ${fmt(orig)}${gap}`;
}

/** A `--set` that configures gradient clipping (not the skipping of non-finite steps, which is a clip entry too). */
function isClipping(s: string): boolean {
  return s.startsWith('clip') && !s.includes('skip-non-finite');
}

/**
 * A clipping fix whose finding remains: the gradient after clipping beside the raw one, and that clipping bounds the
 * step but not the cause, with the cause's fix (the original finding's first fix that is not clipping).
 */
function clipWords(set: string[], p: TrialInput, original: TrialInput, still: FindingKind[]): string {
  if (!set.some(isClipping) || !still.length) return '';
  const train = p.records.filter((r) => r.updated);
  const raw = median(train.map((r) => r.globalNormBefore).filter(Number.isFinite));
  const after = median(train.map((r) => r.globalNormAfter).filter(Number.isFinite));
  const ratios = train.flatMap((r) => r.layers.map((l) => l.updateRatio)).filter(Number.isFinite);
  const cause = original.diagnosis.findings
    .filter((f) => still.includes(f.kind))
    .flatMap((f) => f.fixes)
    .find((x) => !x.set.some(isClipping));
  const causeText = cause ? `; the cause's fix: ${cause.label} (${cause.set.map((s) => `--set ${s}`).join(' ')})` : '';
  const forward = original.diagnosis.findings.some((f) => f.metrics.maxActStd !== undefined);
  const why = forward
    ? 'the activations grow on the way forward, which clipping the gradient cannot change'
    : 'the raw gradients are as large as before';
  return `clipping bounds the step (gradient norm ${fmt(raw)} clipped to ${fmt(after)}, update/weight ratio ${fmt(median(ratios))}) but only the symptom: ${why}${causeText}`;
}
