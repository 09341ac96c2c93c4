/** Exploding gradients: a large or growing global norm, or gradients growing backwards through depth. */
import type { Context } from './context.js';
import { clipFix, initFix, lrFix, lstmFix, recurrentGainFix, warmupFix, zeroInitFix } from './fixes.js';
import { fmt, median } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import type { Detection, Rule } from './types.js';

function detect(ctx: Context): Detection | null {
  const T = THRESHOLDS;
  const norms = ctx.history.map((r) => r.globalNormBefore).filter((v) => Number.isFinite(v));
  const med = median(norms);
  const reasons: string[] = [];
  const metrics: Record<string, number> = { globalNorm: med };
  const atInit = ctx.clean.filter((r) => !r.updated).map((r) => r.globalNormBefore);
  const over = norms.filter((v) => v > T.explodeNorm);
  if (med > T.explodeNorm) reasons.push(`the global gradient norm is ${fmt(med)} (median over ${norms.length} steps)`);
  else if (atInit.length && median(atInit) > T.explodeNorm) {
    metrics.globalNormAtInit = median(atInit);
    reasons.push(
      `at initialisation the global gradient norm is ${fmt(median(atInit))} (median over the ${atInit.length} batches before training)`,
    );
  } else if (over.length >= T.explodeMinSteps) {
    metrics.stepsOver = over.length;
    reasons.push(
      `the global gradient norm exceeded ${fmt(T.explodeNorm)} on ${over.length} of ${norms.length} steps (up to ${fmt(Math.max(...over))})`,
    );
  }
  // growth over training
  const tr = ctx.training.filter((r) => Number.isFinite(r.globalNormBefore) && r.globalNormBefore > 0);
  if (tr.length >= 3) {
    const first = tr[0]!.globalNormBefore;
    const last = tr[tr.length - 1]!.globalNormBefore;
    const growth = last / first;
    metrics.growth = growth;
    metrics.growthPerStep = growth ** (1 / Math.max(1, tr[tr.length - 1]!.step - tr[0]!.step));
    if (growth > T.explodeGrowth && last > 1) {
      reasons.push(
        `it grew ${fmt(growth)}x over ${tr.length} steps (x${fmt(metrics.growthPerStep)} per step), from ${fmt(first)} to ${fmt(last)}`,
      );
    }
  }
  // growth backwards through depth
  const withGrad = ctx.names.filter((n) => ctx.median(n, 'gradNorm') > 0);
  if (withGrad.length >= 3) {
    const gFirst = ctx.median(withGrad[0]!, 'gradNorm');
    const gLast = ctx.median(withGrad[withGrad.length - 1]!, 'gradNorm');
    const ratio = gFirst / gLast;
    metrics.firstLastRatio = ratio;
    if (ratio > T.explodeRatio) {
      reasons.push(
        `the first layer's gradient norm is ${fmt(ratio)}x the last layer's (${withGrad[0]} ${fmt(gFirst)}, ${withGrad[withGrad.length - 1]} ${fmt(gLast)})`,
      );
    }
  }
  // a non-finite global norm with large finite values before it is the same story
  const nonFiniteNorm = ctx.history.some((r) => !Number.isFinite(r.globalNormBefore));
  const losses = ctx.losses;
  const l0 = losses.find((v) => Number.isFinite(v));
  const lEnd = losses[losses.length - 1];
  if (l0 !== undefined && lEnd !== undefined && reasons.length) {
    if (!Number.isFinite(lEnd) || lEnd > T.divergeFactor * Math.max(l0, 1e-12)) {
      metrics.lossFirst = l0;
      metrics.lossLast = lEnd;
      reasons.push(`the loss went from ${fmt(l0)} to ${fmt(lEnd)}`);
    }
  }
  if (!reasons.length) return null;
  if (nonFiniteNorm) reasons.push('and it overflowed to NaN/Inf');
  const forward = ctx.names
    .map((n) => [n, ctx.median(n, 'actStd')] as const)
    .filter(([, s]) => Number.isFinite(s) && s > 0);
  if (forward.length >= 2) {
    const s0 = forward[0]![1];
    const s1 = Math.max(...forward.map(([, s]) => s));
    if (s1 > 1e3 * Math.max(s0, 1e-12) || s1 > 1e3) {
      metrics.maxActStd = s1;
      reasons.push(`activations grow on the way forward to a standard deviation of ${fmt(s1)}`);
    }
  }
  // the layers concerned: those whose own gradient norm went above the threshold, else all with gradients
  let layers = explodingLayers(ctx);
  if (!layers.length) layers = withGrad.length ? withGrad : [...ctx.names];
  return { layers, evidence: `Gradients explode: ${reasons.join('; ')}.`, metrics };
}

/** The layers whose own gradient norm went above `explodeNorm` on some record. */
export function explodingLayers(ctx: Context): string[] {
  return ctx.names.filter((n) => (ctx.byName.get(n) ?? []).some((l) => l.gradNorm > THRESHOLDS.explodeNorm));
}

export const exploding: Rule = {
  kind: 'exploding',
  severity: 10,
  flow: true,
  perLayer: true,
  mark: 'E',
  severe: true,
  docs: 'exploding-gradients',
  thresholds: ['explodeNorm', 'explodeMinSteps', 'explodeGrowth', 'explodeRatio', 'divergeFactor'],
  detect,
  fixes(ctx, f, found) {
    if (found.layers.some((n) => ctx.isRecurrent(n))) {
      // through the recurrent layer: clipping first, then the recurrent gain, then gated memory
      return [
        clipFix(f),
        recurrentGainFix(f),
        lstmFix(f, 'an LSTM', 'gated, additive memory (Hochreiter & Schmidhuber 1997)'),
      ];
    }
    if (ctx.explodesAtInit()) {
      // the initialisation (or the architecture) makes gradients large before any step
      return [f.norm === 'none' ? zeroInitFix(f) : null, initFix(f), clipFix(f), lrFix(f, 0.1)];
    }
    // gradients were fine at initialisation and grew with training: the step size
    return [lrFix(f, 0.1), clipFix(f), warmupFix(f)];
  },
};
