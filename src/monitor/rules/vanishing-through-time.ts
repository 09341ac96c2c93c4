/**
 * Vanishing gradients through time: in a recurrent layer, ‖∂L/∂h_t‖ at the first time step is a vanishing fraction of
 * its value at the last, and training is not bringing it back (Bengio, Simard & Frasconi 1994; Pascanu, Mikolov &
 * Bengio 2013). Judged on the trend: gated nets start with a vanishing ratio and learn to keep the gradient alive.
 */
import { HORIZON_FRACTION } from '../through-time.js';
import type { Context } from './context.js';
import { forgetBiasFix, lstmFix, orthogonalFix, shorterSequenceFix } from './fixes.js';
import { fmt } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import { type TimeTrend, timeTrends, trendName } from './time-flow.js';
import type { Detection, Rule, TimeFinding } from './types.js';

/** A trend's part of a through-time finding: the steps whose norm passes `bound` x the last step's. */
export function timeFinding(t: TimeTrend, past: (norm: number, last: number) => boolean): TimeFinding {
  const { steps, norms } = t.latest;
  const last = norms[norms.length - 1]!;
  return {
    layer: t.layer,
    sub: t.sub,
    length: t.length,
    horizon: t.recent.horizon,
    firstLast: t.recent.firstLast,
    steps: steps.filter((_, i) => past(norms[i]!, last)),
    recorded: { steps: [...steps], norms: [...norms] },
  };
}

function detect(ctx: Context): Detection | null {
  const T = THRESHOLDS;
  const all = timeTrends(ctx);
  const step = ctx.history[ctx.history.length - 1]!.step;
  const gated = (t: TimeTrend) => ['lstm', 'gru'].includes(ctx.layerType(t.layer) ?? '');
  const bad = all.filter(
    (t) =>
      t.length >= T.timeMinLength &&
      !(gated(t) && step < T.timeGatedMinSteps) &&
      !ctx.claimed.has(t.layer) &&
      t.recent.firstLast < T.timeVanishRatio &&
      // NOTE: rising by timeRecovery since the start is a net learning to carry the gradient (LSTM, GRU): not a verdict
      !(t.recent.firstLast >= T.timeRecovery * t.start.firstLast),
  );
  if (!bad.length) return null;
  const worst = bad.reduce((a, b) => (b.recent.firstLast < a.recent.firstLast ? b : a));
  const words = bad.map(
    (t) =>
      `${trendName(t, all)}: ‖∂L/∂h_0‖ is ${fmt(t.recent.firstLast)}x ‖∂L/∂h_${t.length - 1}‖ (${fmt(t.start.firstLast)}x at the start), gradient horizon ${fmt(t.recent.horizon)} of ${t.length} steps`,
  );
  return {
    layers: [...new Set(bad.map((t) => t.layer))],
    evidence: `Gradients vanish through time: ${words.join('; ')}; earlier steps get less than ${fmt(HORIZON_FRACTION)} of the last step's gradient, so the net cannot learn what happened there.`,
    metrics: {
      firstLast: worst.recent.firstLast,
      startFirstLast: worst.start.firstLast,
      horizon: worst.recent.horizon,
      length: worst.length,
    },
    time: bad.map((t) => timeFinding(t, (v, last) => !(v >= HORIZON_FRACTION * last))),
  };
}

export const vanishingThroughTime: Rule = {
  kind: 'vanishing-through-time',
  severity: 45,
  flow: true,
  perLayer: true,
  mark: 'T',
  severe: false,
  docs: 'vanishing-gradients-through-time',
  thresholds: ['timeVanishRatio', 'timeRecovery', 'timeGatedMinSteps', 'timeMinLength'],
  detect,
  fixes(_ctx, f) {
    return [
      lstmFix(
        f,
        'an LSTM instead of a vanilla RNN',
        "the LSTM's additive cell state carries gradients across many time steps (Hochreiter & Schmidhuber 1997)",
      ),
      forgetBiasFix(f),
      f.type === 'rnn' ? orthogonalFix(f) : null,
      shorterSequenceFix(f),
    ];
  },
};
