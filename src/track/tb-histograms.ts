/**
 * A run's stored histograms as TensorBoard histogram summaries (`gradguard export ID --format tensorboard`): each
 * under `<kind>/<layer>` (`grad/layers.0`, `weight/layers.0`, `act/layers.0`), in the event of its step.
 */
import { bucketLimits } from '../monitor/histogram.js';
import type { HistogramRow } from './histograms.js';
import type { TbHistogram, TfEvent } from './tfevents.js';

/**
 * `events` (by step, as `tensorboardEvents` returns them) with each histogram added to its step's event; a step
 * with histograms and no event gets one at `fallbackTimeMs`. Histograms without a finite value are left out.
 */
export function withHistograms(events: TfEvent[], rows: readonly HistogramRow[], fallbackTimeMs = 0): TfEvent[] {
  const byStep = new Map<number, TbHistogram[]>();
  for (const { step, layer, kind, hist } of rows) {
    if (hist.num === 0) continue;
    const list = byStep.get(step) ?? [];
    list.push({
      tag: `${kind}/${layer}`,
      min: hist.min,
      max: hist.max,
      num: hist.num,
      sum: hist.sum,
      sumSquares: hist.sumSquares,
      bucketLimit: bucketLimits(hist),
      bucket: [...hist.counts],
    });
    byStep.set(step, list);
  }
  if (byStep.size === 0) return events;
  const out = events.map((e) => {
    const hs = e.step === undefined ? undefined : byStep.get(e.step);
    if (hs === undefined) return e;
    byStep.delete(e.step!);
    return { ...e, histograms: hs };
  });
  for (const [step, hs] of byStep) out.push({ step, wallTime: fallbackTimeMs / 1000, histograms: hs });
  return out.sort((a, b) => (a.step ?? 0) - (b.step ?? 0));
}
