/**
 * Vanishing gradients: layers that get a tiny fraction of the gradient the best-placed layer gets, or no layer that
 * gets any.
 */
import type { Context } from './context.js';
import { initFix, lstmFix, orthogonalFix, reluFix, residualFix, zeroInitFix } from './fixes.js';
import { fmt, listLayers, median } from './format.js';
import { THRESHOLDS } from './thresholds.js';
import type { Detection, Rule } from './types.js';

function detect(ctx: Context): Detection | null {
  const T = THRESHOLDS;
  const dead = ctx.finding('dead-units');
  const exploding = new Set(ctx.finding('exploding')?.layers ?? []);
  const norms = ctx.names.map((n) => [n, ctx.median(n, 'gradNorm')] as const).filter(([, g]) => Number.isFinite(g));
  if (!norms.length) return null;
  const [maxName, gMax] = norms.reduce((a, b) => (b[1] > a[1] ? b : a));
  const losses = ctx.losses.filter((v) => Number.isFinite(v));
  const lossMed = median(losses);
  if (gMax < T.vanishAbsolute && !(lossMed < 1e-3)) {
    if (dead) return null;
    return {
      layers: ctx.unclaimed(norms.map(([n]) => n)),
      evidence: `Gradients vanish everywhere: the largest layer gradient norm is ${fmt(gMax)} (${maxName}) while the loss is ${fmt(lossMed)}.`,
      metrics: { maxGradNorm: gMax, loss: lossMed },
    };
  }
  // NOTE: the scale is the largest layer that is not exploding: beside an exploding layer a healthy one is small
  // only by comparison (an output layer with norm 3.5 next to a recurrent layer at 1e4 has not vanished)
  const judged = norms.filter(([n]) => !exploding.has(n));
  if (judged.length < 2) return null;
  const [refName, gRef] = judged.reduce((a, b) => (b[1] > a[1] ? b : a));
  if (gRef === 0) return null;
  const shadow = ctx.shadowed();
  const low = judged.filter(([n, g]) => g < T.vanishRatio * gRef && !shadow.has(n) && !ctx.claimed.has(n));
  if (!low.length) return null;
  // dead units already explain layers that get no gradient at all
  if (dead && low.every(([, g]) => g === 0)) return null;
  const [firstName, gFirst] = norms[0]!;
  const [lastName, gLast] = norms[norms.length - 1]!;
  const minRatio = Math.min(...low.map(([, g]) => g)) / gRef;
  const beside = exploding.size ? ' that is not exploding' : '';
  return {
    layers: low.map(([n]) => n),
    evidence: `Gradients vanish: ${low.length} of ${norms.length} layers (${listLayers(low.map(([n]) => n))}) get less than ${fmt(T.vanishRatio)} of the largest layer gradient norm${beside} (${fmt(gRef)}, ${refName}); the first layer's norm is ${fmt(gFirst / gLast)}x the last layer's (${firstName} ${fmt(gFirst)}, ${lastName} ${fmt(gLast)}).`,
    metrics: { firstLastRatio: gFirst / gLast, minRatio, maxGradNorm: gRef, layers: low.length },
  };
}

export const vanishing: Rule = {
  kind: 'vanishing',
  severity: 50,
  flow: true,
  perLayer: true,
  mark: 'V',
  severe: false,
  docs: 'vanishing-gradients',
  thresholds: ['vanishRatio', 'vanishAbsolute'],
  detect,
  fixes(ctx, f, found) {
    if (found.layers.some((n) => ctx.isRecurrent(n))) {
      // through time, in the recurrent layer: gated memory, orthogonal recurrent weights
      return [
        lstmFix(
          f,
          'an LSTM instead of a vanilla RNN',
          "the LSTM's additive cell state carries gradients across many time steps (Hochreiter & Schmidhuber 1997)",
        ),
        orthogonalFix(f),
      ];
    }
    // NOTE: a layer of a recurrent model that is not the recurrent one (its input or output layer) has no
    // through-depth story the fixes below tell: they are written for feed-forward stacks
    if (f.recurrent) return [];
    // NOTE: no Xavier for a sigmoid net: it fixes tanh, not the sigmoid's derivative of at most 1/4 (Glorot & Bengio)
    return [reluFix(f), f.activation !== 'sigmoid' ? initFix(f) : null, residualFix(f), zeroInitFix(f)];
  },
};
