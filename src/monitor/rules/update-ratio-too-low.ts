/** Update-to-weight ratio too low: the weights barely move. */
import { lrFix } from './fixes.js';
import { fmt, listLayers } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import type { Rule } from './types.js';
import { ratiosBeyond } from './update-ratio.js';

export const updateRatioTooLow: Rule = {
  kind: 'update-ratio-too-low',
  severity: 90,
  flow: false,
  perLayer: true,
  mark: 'u',
  severe: false,
  docs: 'update-to-weight-ratio',
  thresholds: ['updateRatioLow', 'updateRatioMinSteps', 'updateRatioMinSize'],
  detect(ctx) {
    // NOTE: layers that a vanishing gradient or dead units explain, and those that feed a layer starting at zero,
    // get small updates for that reason (the first two are claimed by their verdict already)
    const shadow = ctx.shadowed();
    const low = ratiosBeyond(ctx, (r) => r < THRESHOLDS.updateRatioLow, false).filter(([n]) => !shadow.has(n));
    if (!low.length) return null;
    const lr = ctx.config?.optim.lr;
    const min = Math.min(...low.map(([, r]) => r));
    return {
      layers: low.map(([n]) => n),
      evidence: `Updates are too small to change the weights: ‖Δw‖/‖w‖ is ${fmt(min)} at least (${listLayers(low.map(([n]) => n))}), against about 1e-3 for steady training${lr ? ` (lr ${lr})` : ''}.`,
      metrics: { minRatio: min, layers: low.length },
    };
  },
  fixes: (_ctx, f) => [lrFix(f, 10)],
};
