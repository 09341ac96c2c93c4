/** Non-finite values: NaN or Inf in a loss, a gradient norm, or a layer's gradients, parameters or activations. */
import type { Context } from './context.js';
import { clipFix, lrFix, skipNonFiniteFix } from './fixes.js';
import type { Detection, Rule } from './types.js';

function detect(ctx: Context): Detection | null {
  const firstBad = ctx.history.find(
    (r) => !Number.isFinite(r.loss) || !Number.isFinite(r.globalNormBefore) || r.layers.some((l) => l.nonFinite > 0),
  );
  const badLoss = ctx.losses.findIndex((v) => !Number.isFinite(v));
  if (!firstBad && badLoss < 0) return null;
  const skipped = ctx.history.filter((r) => r.skipped).length;
  const metrics: Record<string, number> = { skippedSteps: skipped };
  if (!firstBad) {
    metrics.firstStep = ctx.history[0]!.step + badLoss;
    return { layers: [], evidence: `The loss became NaN or Inf at step ${metrics.firstStep}.`, metrics };
  }
  const layers = firstBad.layers.filter((l) => l.nonFinite > 0);
  const count = layers.reduce((s, l) => s + l.nonFinite, 0);
  metrics.firstStep = firstBad.step;
  metrics.count = count;
  const where = layers.length
    ? `${count} NaN/Inf values, first in ${layers[0]!.name}${layers.length > 1 ? ` (and ${layers.length - 1} more layers)` : ''}`
    : 'a NaN/Inf loss or gradient norm';
  const skip = skipped ? `; ${skipped} of ${ctx.history.length} monitored steps were skipped` : '';
  return {
    layers: layers.map((l) => l.name),
    evidence: `Non-finite values at step ${firstBad.step}: ${where}${skip}.`,
    metrics,
  };
}

export const nonFinite: Rule = {
  kind: 'non-finite',
  severity: 20,
  flow: true,
  // NOTE: an event (where the first NaN/Inf appeared), not a verdict on the layers: it names them beside any verdict
  perLayer: false,
  mark: 'N',
  severe: true,
  docs: 'non-finite-values',
  thresholds: [],
  lossOnly: true,
  detect,
  fixes: (_ctx, f) => [clipFix(f), skipNonFiniteFix(f), lrFix(f, 0.1)],
};
