/**
 * What the through-time rules read: per recurrent layer (and stacked layer and direction), the summaries of
 * ‖∂L/∂h_t‖ over the records (monitor/through-time.ts), at the start of the run and recently.
 */
import { summarizeTimeFlow, type TimeFlow, type TimeFlowSummary } from '../through-time.js';
import type { Context } from './context.js';
import { median } from './format.js';

/** One recurrent layer's record over the records judged. */
export interface TimeTrend {
  /** The recurrent module (a layer of the report). */
  layer: string;
  /** `l0`, `l1`, `l0_reverse`. */
  sub: string;
  /** The sequence length. */
  length: number;
  /** The first record's summary (the run's first when `initial` was given): where the run started. */
  start: TimeFlowSummary;
  /** Medians over the later half of the records: where it is now. */
  recent: TimeFlowSummary;
  /** How many records it was read from. */
  records: number;
  /** The latest record (its time steps and norms go into the finding). */
  latest: TimeFlow;
}

/** Every recurrent layer's trend, in the order the layers ran; empty when the records carry no `timeFlow`. */
export function timeTrends(ctx: Context): TimeTrend[] {
  const byKey = new Map<string, TimeFlow[]>();
  const firstOf = new Map<string, TimeFlow>();
  for (const f of ctx.first.timeFlow ?? []) firstOf.set(`${f.layer}\u0000${f.sub}`, f);
  for (const r of ctx.clean) {
    for (const f of r.timeFlow ?? []) {
      const k = `${f.layer}\u0000${f.sub}`;
      const list = byKey.get(k);
      if (list) list.push(f);
      else byKey.set(k, [f]);
    }
  }
  const out: TimeTrend[] = [];
  for (const [k, flows] of byKey) {
    const sums = flows.map((f) => summarizeTimeFlow(f));
    const later = sums.slice(Math.floor(sums.length / 2));
    const pick = (key: keyof TimeFlowSummary) => median(later.map((s) => s[key]).filter((v) => !Number.isNaN(v)));
    const latest = flows[flows.length - 1]!;
    out.push({
      layer: latest.layer,
      sub: latest.sub,
      length: latest.length,
      start: summarizeTimeFlow(firstOf.get(k) ?? flows[0]!),
      recent: { horizon: pick('horizon'), firstLast: pick('firstLast'), spread: pick('spread') },
      records: flows.length,
      latest,
    });
  }
  return out;
}

/** `net.rnn` or `net.rnn (l1)` for a stacked or bidirectional one. */
export function trendName(t: TimeTrend, all: readonly TimeTrend[]): string {
  return all.some((o) => o.layer === t.layer && o.sub !== t.sub) ? `${t.layer} (${t.sub})` : t.layer;
}
