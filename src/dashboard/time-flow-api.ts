/**
 * `GET /api/runs/:id/time-flow`: a run's gradient norms through time (track/time-flow.ts) as one time x steps grid
 * per recurrent layer and direction, for the run page's time heatmaps; `gradguard report` draws the same grids.
 */
import type { RunStore } from '../track/store.js';
import type { TimeFlowRow } from '../track/time-flow.js';

/** One recurrent layer's (and direction's) ‖∂L/∂h_t‖: rows are time steps, columns monitored training steps. */
export interface TimeFlowGrid {
  /** The recurrent module's path (`net.rnn`). */
  layer: string;
  /** Stacked layer and direction, PyTorch's suffix (`l0`, `l1_reverse`). */
  sub: string;
  /** The sequence length T (of the last record). */
  length: number;
  /** The recorded time steps t, ascending (every step up to 64, else a sample with the first and the last). */
  times: number[];
  /** The training steps that recorded it. */
  steps: number[];
  /** Row-major, `values[i * steps.length + j]` at time `times[i]`, step `steps[j]`; NaN where not recorded or not finite. */
  values: Float64Array;
}

/** The JSON of a grid: values as numbers, null where not recorded or not finite. */
export interface TimeFlowSeries extends Omit<TimeFlowGrid, 'values'> {
  values: (number | null)[];
}

export interface TimeFlowResponse {
  series: TimeFlowSeries[];
}

/** The grids of a run's records, one per (layer, sub), in the order they first appear. */
export function timeFlowGrids(rows: readonly TimeFlowRow[]): TimeFlowGrid[] {
  const groups = new Map<string, TimeFlowRow[]>();
  for (const r of rows) {
    const key = `${r.layer}\u0000${r.sub}`;
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  return [...groups.values()].map((recs) => {
    const times = [...new Set(recs.flatMap((r) => r.steps))].sort((a, b) => a - b);
    const steps = [...new Set(recs.map((r) => r.step))].sort((a, b) => a - b);
    const row = new Map(times.map((t, i) => [t, i]));
    const col = new Map(steps.map((s, j) => [s, j]));
    const values = new Float64Array(times.length * steps.length).fill(Number.NaN);
    for (const r of recs) {
      const j = col.get(r.step)!;
      r.steps.forEach((t, k) => {
        values[row.get(t)! * steps.length + j] = r.norms[k]!;
      });
    }
    const last = recs[recs.length - 1]!;
    return { layer: last.layer, sub: last.sub, length: last.length, times, steps, values };
  });
}

/** The payload of the route for run `idOrPrefix` (an unknown run throws the store's UNKNOWN_RUN). */
export function timeFlowJson(s: RunStore, idOrPrefix: string): TimeFlowResponse {
  const id = s.getRun(idOrPrefix).id;
  return {
    series: timeFlowGrids(s.getTimeFlow(id)).map((g) => ({
      ...g,
      values: Array.from(g.values, (v) => (Number.isFinite(v) ? v : null)),
    })),
  };
}
