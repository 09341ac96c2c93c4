/**
 * Not learning: after enough steps the loss is still at the dataset's trivial baseline (the loss of predicting the
 * prior or the mean), so the model has learned nothing a constant could not; the likely cause is read from the
 * gradient-flow findings.
 */
import type { Context } from './context.js';
import { lrFix, lstmFix, shorterSequenceFix } from './fixes.js';
import { fmt, median } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import type { Detection, Finding, Rule } from './types.js';

/** The run's recent loss: the median of the last `notLearningWindow` finite losses (NaN when none). */
export function recentLoss(ctx: Context): number {
  const finite = ctx.losses.filter((v) => Number.isFinite(v));
  return median(finite.slice(-THRESHOLDS.notLearningWindow));
}

/** Training steps the run has made by its last record (its step number counts from 0). */
function stepsMade(ctx: Context): number {
  const last = ctx.training[ctx.training.length - 1];
  return last ? last.step + 1 : 0;
}

/** The more severe gradient-flow finding that most likely keeps the run at its baseline. */
function causeOf(ctx: Context): Finding | undefined {
  return ctx.flowFound[0];
}

function detect(ctx: Context): Detection | null {
  const T = THRESHOLDS;
  const b = ctx.baseline;
  if (!b || !(b.loss > 0)) return null;
  const steps = stepsMade(ctx);
  if (steps < T.notLearningMinSteps) return null;
  const loss = recentLoss(ctx);
  // NOTE: a NaN loss is the non-finite finding's; a loss far above the baseline is no better than it either
  if (!Number.isFinite(loss)) return null;
  const ratio = loss / b.loss;
  if (ratio < 1 - T.notLearningTolerance) return null;
  const cause = causeOf(ctx);
  const acc = b.accuracy !== undefined ? ` (accuracy ${(b.accuracy * 100).toFixed(1)}%)` : '';
  const why = ctx.lossOnly
    ? 'monitoring was off (monitor.enabled: false), so no gradient-flow statistics tell why'
    : cause
      ? `likely cause: ${cause.kind}${cause.layers.length ? ` in ${cause.layers.slice(0, 3).join(', ')}${cause.layers.length > 3 ? ', ...' : ''}` : ''}`
      : ctx.names.some((n) => ctx.isRecurrent(n))
        ? 'the per-layer statistics show no gradient-flow problem; in a recurrent net the gradient can still vanish through time, which one norm per layer does not show'
        : 'the per-layer statistics show no gradient-flow problem: the steps may be too small, or the inputs carry little the model can use';
  return {
    layers: [],
    evidence: `Not learning: after ${steps} steps the loss is ${fmt(loss)}, ${fmt(ratio)}x the trivial baseline ${fmt(b.loss)}${acc} of ${b.predictor}; ${why}.`,
    metrics: {
      loss,
      baselineLoss: b.loss,
      ratio,
      steps,
      ...(b.accuracy !== undefined ? { baselineAccuracy: b.accuracy } : {}),
    },
  };
}

export const notLearning: Rule = {
  kind: 'not-learning',
  severity: 60,
  flow: false,
  perLayer: false,
  severe: false,
  docs: 'not-learning',
  thresholds: ['notLearningTolerance', 'notLearningMinSteps', 'notLearningWindow'],
  lossOnly: true,
  detect,
  fixes(ctx, f) {
    // the cause's own fixes first, then what gets a plateaued recurrent or feed-forward net moving
    const cause = causeOf(ctx);
    // NOTE: larger steps would make exploding or non-finite gradients worse: only without such a cause
    if (cause && cause.kind !== 'vanishing') return cause.fixes;
    return [
      ...(cause?.fixes ?? []),
      lrFix(f, 10),
      lstmFix(
        f,
        'an LSTM instead of a vanilla RNN',
        "the LSTM's additive cell state carries gradients across many time steps (Hochreiter & Schmidhuber 1997)",
      ),
      shorterSequenceFix(f),
    ];
  },
};
