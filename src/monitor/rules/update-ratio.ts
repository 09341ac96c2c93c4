/** What the two update-to-weight ratio rules share: the parameters judged, with ratios beyond a line, by layer. */
import type { Context } from './context.js';

/**
 * The layers (forward order) with a parameter whose median ‖Δw‖/‖w‖ is beyond a line (`beyond(r)`), each with its
 * most extreme such ratio, leaving out the layers a more severe verdict already names.
 */
export function ratiosBeyond(ctx: Context, beyond: (r: number) => boolean, high: boolean): [string, number][] {
  const hit: [string, number][] = [];
  for (const [layer, r] of ctx.updateRatios()) {
    if (!beyond(r) || ctx.claimed.has(layer)) continue;
    const prev = hit.find(([n]) => n === layer);
    if (!prev) hit.push([layer, r]);
    else if (high ? r > prev[1] : r < prev[1]) prev[1] = r;
  }
  return hit.sort((x, y) => ctx.names.indexOf(x[0]) - ctx.names.indexOf(y[0]));
}
