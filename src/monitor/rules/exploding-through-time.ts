/**
 * Exploding gradients through time: in a recurrent layer, ‖∂L/∂h_t‖ grows backwards through time, so the first time
 * step's gradient is many times the last's (Pascanu, Mikolov & Bengio 2013: a recurrent matrix whose largest singular
 * value is above 1 multiplies the gradient by it at every step).
 */
import type { Context } from './context.js';
import { clipFix, lstmFix, recurrentGainFix, shorterSequenceFix } from './fixes.js';
import { fmt } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import { timeTrends, trendName } from './time-flow.js';
import type { Detection, Rule } from './types.js';
import { timeFinding } from './vanishing-through-time.js';

function detect(ctx: Context): Detection | null {
  const T = THRESHOLDS;
  const all = timeTrends(ctx);
  const bad = all.filter((t) => t.length >= T.timeMinLength && t.recent.firstLast > T.timeExplodeRatio);
  if (!bad.length) return null;
  const worst = bad.reduce((a, b) => (b.recent.firstLast > a.recent.firstLast ? b : a));
  const words = bad.map(
    (t) =>
      `${trendName(t, all)}: ‖∂L/∂h_0‖ is ${fmt(t.recent.firstLast)}x ‖∂L/∂h_${t.length - 1}‖ (${fmt(t.start.firstLast)}x at the start)`,
  );
  return {
    layers: [...new Set(bad.map((t) => t.layer))],
    evidence: `Gradients explode through time: ${words.join('; ')}; the gradient grows at every step back, so a long sequence throws the weights far.`,
    metrics: { firstLast: worst.recent.firstLast, startFirstLast: worst.start.firstLast, length: worst.length },
    time: bad.map((t) => timeFinding(t, (v, last) => v > T.timeExplodeRatio * last)),
  };
}

export const explodingThroughTime: Rule = {
  kind: 'exploding-through-time',
  severity: 15,
  flow: true,
  // NOTE: not a per-layer verdict: the layer it names is often `exploding` too, and this says where in time
  perLayer: false,
  severe: true,
  docs: 'exploding-gradients-through-time',
  thresholds: ['timeExplodeRatio', 'timeMinLength'],
  detect,
  fixes(_ctx, f) {
    return [
      clipFix(f),
      recurrentGainFix(f),
      lstmFix(f, 'an LSTM', 'gated, additive memory (Hochreiter & Schmidhuber 1997)'),
      shorterSequenceFix(f),
    ];
  },
};
