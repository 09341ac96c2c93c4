/** Loss spikes: a step far above the steps before it, beyond batch noise; or a loss that ends far above its start. */
import type { Context } from './context.js';
import { clipFix, lrFix, warmupFix } from './fixes.js';
import { fmt, median } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import type { Detection, Rule } from './types.js';

function detect(ctx: Context): Detection | null {
  const T = THRESHOLDS;
  const L = ctx.losses;
  const l0 = ctx.initialLoss ?? L.find((v) => Number.isFinite(v));
  if (l0 === undefined) return null;
  const firstStep = ctx.history[0]!.step;
  const spikes: { at: number; loss: number; med: number }[] = [];
  for (let i = T.spikeMinHistory; i < L.length; i++) {
    const v = L[i]!;
    if (!Number.isFinite(v)) continue;
    const prev = L.slice(Math.max(0, i - T.spikeWindow), i).filter((x) => Number.isFinite(x));
    if (prev.length < T.spikeMinHistory) continue;
    const med = median(prev);
    const mad = median(prev.map((x) => Math.abs(x - med)));
    if (v > T.spikeFactor * med && v - med > Math.max(T.spikeMinRise * Math.abs(l0), T.spikeNoise * mad)) {
      spikes.push({ at: i, loss: v, med });
    }
  }
  const lEnd = L[L.length - 1]!;
  const diverged = Number.isFinite(lEnd) && lEnd > T.divergeFactor * Math.max(l0, 1e-12) && L.length > 1;
  if (!spikes.length && !diverged) return null;
  const metrics: Record<string, number> = { spikes: spikes.length, lossFirst: l0, lossLast: lEnd };
  const parts: string[] = [];
  if (spikes.length) {
    const big = spikes.reduce((a, b) => (b.loss / b.med > a.loss / a.med ? b : a));
    metrics.worstFactor = big.loss / big.med;
    metrics.worstStep = firstStep + big.at;
    parts.push(
      `${spikes.length} spike${spikes.length > 1 ? 's' : ''}; the largest at step ${metrics.worstStep}: ${fmt(big.loss)}, ${fmt(metrics.worstFactor)}x the median of the ${T.spikeWindow} steps before`,
    );
  }
  if (diverged) parts.push(`the loss rose from ${fmt(l0)} to ${fmt(lEnd)}`);
  return { layers: [], evidence: `The loss jumps: ${parts.join('; ')}.`, metrics };
}

export const lossSpike: Rule = {
  kind: 'loss-spike',
  severity: 70,
  flow: false,
  perLayer: false,
  severe: false,
  docs: 'loss-spikes',
  thresholds: ['spikeFactor', 'spikeWindow', 'spikeMinHistory', 'spikeNoise', 'spikeMinRise', 'divergeFactor'],
  lossOnly: true,
  detect,
  fixes: (_ctx, f) => [clipFix(f), warmupFix(f), lrFix(f, 0.3)],
};
