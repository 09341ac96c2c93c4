/** Saturation: sigmoid or tanh layers whose outputs sit at their bounds, where the derivative is about 0. */
import type { Context } from './context.js';
import { batchNormFix, initFix, reluFix } from './fixes.js';
import { listLayers, pct } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import type { Detection, Rule } from './types.js';

function detect(ctx: Context): Detection | null {
  const layers: string[] = [];
  let worst = 0;
  for (const n of ctx.unclaimed(ctx.names)) {
    const s = ctx.median(n, 'satFrac');
    if (s >= THRESHOLDS.satFrac) {
      layers.push(n);
      worst = Math.max(worst, s);
    }
  }
  if (!layers.length) return null;
  return {
    layers,
    evidence: `Saturated activations: in ${listLayers(layers)} at least ${pct(THRESHOLDS.satFrac)} of sigmoid/tanh outputs are within 1% of their bounds (up to ${pct(worst)}), where their derivative is almost 0.`,
    metrics: { satFrac: worst, layers: layers.length },
  };
}

export const saturation: Rule = {
  kind: 'saturation',
  severity: 40,
  flow: true,
  perLayer: true,
  mark: 'S',
  severe: false,
  docs: 'saturation',
  thresholds: ['satFrac'],
  detect,
  fixes: (_ctx, f) => [reluFix(f), f.activation === 'tanh' ? initFix(f) : null, batchNormFix(f)],
};
