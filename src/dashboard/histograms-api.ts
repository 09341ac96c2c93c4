/**
 * `GET /api/runs/:id/histograms`: a run's per-layer histograms (`monitor.histogramEvery`), every logged step, for the
 * run page's histogram view (web/histograms.ts). Bucket edges are not sent: the buckets are equal-width over
 * [min, max] (monitor/histogram.ts's `bucketLimits`).
 */
import type { HistogramKind } from '../monitor/histogram.js';

export type { HistogramKind };

import type { RunStore } from '../track/store.js';
import type { JsonNumber } from './api-types.js';

/** One histogram of one layer on one step. */
export interface HistogramItem {
  step: number;
  layer: string;
  kind: HistogramKind;
  /** NaN (as a string) when the histogram has no finite value. */
  min: JsonNumber;
  max: JsonNumber;
  num: number;
  nonFinite: number;
  counts: number[];
}

export interface HistogramsResponse {
  histograms: HistogramItem[];
}

/** The payload of the route for run `idOrPrefix` (an unknown run throws the store's UNKNOWN_RUN). */
export function histogramsJson(s: RunStore, idOrPrefix: string): HistogramsResponse {
  const id = s.getRun(idOrPrefix).id;
  return {
    histograms: s.getHistograms(id).map(({ step, layer, kind, hist: h }) => ({
      step,
      layer,
      kind,
      min: h.num > 0 ? h.min : 'NaN',
      max: h.num > 0 ? h.max : 'NaN',
      num: h.num,
      nonFinite: h.nonFinite,
      counts: [...h.counts],
    })),
  };
}
