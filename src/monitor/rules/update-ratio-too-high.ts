/** Update-to-weight ratio too high: every step rewrites a good part of the weights. */
import { lrFix } from './fixes.js';
import { fmt, listLayers } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import type { Rule } from './types.js';
import { ratiosBeyond } from './update-ratio.js';

export const updateRatioTooHigh: Rule = {
  kind: 'update-ratio-too-high',
  severity: 80,
  flow: false,
  perLayer: true,
  mark: 'U',
  severe: false,
  docs: 'update-to-weight-ratio',
  thresholds: ['updateRatioHigh', 'updateRatioMinSteps', 'updateRatioMinSize'],
  detect(ctx) {
    const high = ratiosBeyond(ctx, (r) => r > THRESHOLDS.updateRatioHigh, true);
    if (!high.length) return null;
    const lr = ctx.config?.optim.lr;
    const max = Math.max(...high.map(([, r]) => r));
    return {
      layers: high.map(([n]) => n),
      evidence: `Updates are too large: ‖Δw‖/‖w‖ is ${fmt(max)} at most (${listLayers(high.map(([n]) => n))}), against about 1e-3 for steady training${lr ? ` (lr ${lr})` : ''}.`,
      metrics: { maxRatio: max, layers: high.length },
    };
  },
  fixes: (_ctx, f) => [lrFix(f, 0.1)],
};
