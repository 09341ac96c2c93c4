/** A run's summary as the store keeps it: JSON, with non-finite final metrics as strings. */
import { decodeNumber, encodeNumber } from '../base/json.js';
import type { RunSummary } from './types.js';

/** JSON of a summary; non-finite final metrics are kept as strings ('NaN', 'Infinity', '-Infinity'). */
export function encodeSummary(summary: RunSummary): string {
  const metrics = summary.metrics;
  if (metrics === undefined) return JSON.stringify(summary);
  const encoded: Record<string, number | string> = {};
  for (const [k, v] of Object.entries(metrics)) encoded[k] = encodeNumber(v);
  return JSON.stringify({ ...summary, metrics: encoded });
}

export function decodeSummary(text: string): RunSummary {
  const summary = JSON.parse(text) as RunSummary;
  const metrics = summary.metrics as Record<string, number | string | null> | undefined;
  if (metrics && typeof metrics === 'object') {
    for (const [k, v] of Object.entries(metrics)) {
      if (typeof v === 'string' || v === null) metrics[k] = decodeNumber(v);
    }
  }
  return summary;
}
