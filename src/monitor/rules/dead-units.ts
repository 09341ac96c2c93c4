/** Dead ReLU units: layers where most units output 0 for every example of the batch. */
import type { Context } from './context.js';
import { initFix, leakyReluFix, zeroBiasFix } from './fixes.js';
import { listLayers, pct } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import type { Detection, Rule } from './types.js';

function detect(ctx: Context): Detection | null {
  const layers: string[] = [];
  let worst = 0;
  for (const n of ctx.unclaimed(ctx.names)) {
    const d = ctx.median(n, 'deadFrac');
    if (d >= THRESHOLDS.deadFrac) {
      layers.push(n);
      worst = Math.max(worst, d);
    }
  }
  if (!layers.length) return null;
  const zeroGrad = ctx.names.filter((n) => ctx.median(n, 'gradNorm') === 0).length;
  const tail = zeroGrad ? `; ${zeroGrad} layers get no gradient at all` : '';
  return {
    layers,
    evidence: `Dead ReLU units: in ${layers.length} layer${layers.length > 1 ? 's' : ''} (${listLayers(layers)}) at least ${pct(THRESHOLDS.deadFrac)} of units output 0 for every example of the batch (up to ${pct(worst)})${tail}.`,
    metrics: { deadFrac: worst, layers: layers.length, zeroGradLayers: zeroGrad },
  };
}

export const deadUnits: Rule = {
  kind: 'dead-units',
  severity: 30,
  flow: true,
  perLayer: true,
  mark: 'D',
  severe: false,
  docs: 'dead-relu-units',
  thresholds: ['deadFrac'],
  detect,
  // NOTE: dead units are ReLU's; the facts' activation is a vanilla RNN's own nonlinearity for recurrent nets
  fixes: (_ctx, f) => [zeroBiasFix(f), leakyReluFix(f), initFix(f)],
};
