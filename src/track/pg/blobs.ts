/**
 * The PostgreSQL store's writes of per-step blobs that are not steps: a step's histograms (track/histograms.ts has
 * the layout) and its gradient norms through time (track/time-flow.ts), each replacing what the step had, as
 * statements for one transaction; the arguments checked as the SQLite store checks them.
 */
import { HISTOGRAM_KINDS, type LayerHistograms } from '../../monitor/histogram.js';
import type { TimeFlow } from '../../monitor/through-time.js';
import { encodeHistogram } from '../histograms.js';
import { encodeTimeFlow } from '../time-flow.js';
import { TrackError } from '../types.js';
import type { Statement } from './worker.js';

function checkStepOf(what: string, step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new TrackError('BAD_ARGUMENT', `${what}: step must be an integer >= 0, got ${step}`);
  }
}

/** Replaces step `step`'s histograms of run row `rid`; `hid` keeps the order they are given in. */
export function histogramStatements(rid: number, step: number, layers: readonly LayerHistograms[]): Statement[] {
  checkStepOf('logHistograms', step);
  const cols: [string[], string[], Buffer[]] = [[], [], []];
  for (const [i, l] of layers.entries()) {
    if (typeof l?.name !== 'string') throw new TrackError('BAD_ARGUMENT', `logHistograms: layers[${i}] has no name`);
    for (const kind of HISTOGRAM_KINDS) {
      const h = l[kind];
      if (!h) continue;
      cols[0].push(l.name);
      cols[1].push(kind);
      cols[2].push(encodeHistogram(h));
    }
  }
  return [
    { sql: 'DELETE FROM histograms WHERE rid = $1 AND step = $2', params: [rid, step] },
    {
      sql: `INSERT INTO histograms (rid, step, layer, kind, data)
            SELECT $1::bigint, $2::bigint, h.layer, h.kind, h.data
            FROM unnest($3::text[], $4::text[], $5::bytea[]) WITH ORDINALITY AS h(layer, kind, data, o) ORDER BY h.o`,
      params: [rid, step, ...cols],
    },
  ];
}

/** Replaces step `step`'s through-time records of run row `rid`. */
export function timeFlowStatements(rid: number, step: number, flows: readonly TimeFlow[]): Statement[] {
  checkStepOf('logTimeFlow', step);
  const cols: [string[], string[], number[], Buffer[]] = [[], [], [], []];
  flows.forEach((f, i) => {
    if (typeof f?.layer !== 'string' || typeof f.sub !== 'string' || !Number.isSafeInteger(f.length)) {
      throw new TrackError('BAD_ARGUMENT', `logTimeFlow: flows[${i}] needs a layer, a sub and a length`);
    }
    if (!Array.isArray(f.steps) || !Array.isArray(f.norms) || f.steps.length !== f.norms.length) {
      throw new TrackError('BAD_ARGUMENT', `logTimeFlow: flows[${i}] needs as many norms as time steps`);
    }
    cols[0].push(f.layer);
    cols[1].push(f.sub);
    cols[2].push(f.length);
    cols[3].push(encodeTimeFlow(f.steps, f.norms));
  });
  return [
    { sql: 'DELETE FROM time_flow WHERE rid = $1 AND step = $2', params: [rid, step] },
    {
      sql: `INSERT INTO time_flow (rid, step, layer, sub, length, data)
            SELECT $1::bigint, $2::bigint, * FROM unnest($3::text[], $4::text[], $5::int[], $6::bytea[])`,
      params: [rid, step, ...cols],
    },
  ];
}
