/**
 * The run store's gradient flow through time (schema 4): one row per (run, step, recurrent layer, stacked layer and
 * direction), the norms ‖∂L/∂h_t‖ a monitored step recorded (monitor/through-time.ts) in one blob: for each of the n
 * recorded time steps its index t as little-endian uint32, then the n norms as little-endian float32 (NaN where not
 * finite). 64 recorded steps cost 512 bytes.
 */
import type Database from 'better-sqlite3';
import type { TimeFlow } from '../monitor/through-time.js';
import { TrackError } from './types.js';

/** One stored record: a monitored step's ‖∂L/∂h_t‖ for one recurrent layer (and stacked layer, direction). */
export interface TimeFlowRow extends TimeFlow {
  step: number;
}

/** The time steps and norms of one record as one blob (see the module note). */
export function encodeTimeFlow(steps: readonly number[], norms: readonly number[]): Buffer {
  const n = steps.length;
  const buf = Buffer.alloc(n * 8);
  for (let i = 0; i < n; i++) {
    buf.writeUInt32LE(steps[i]!, i * 4);
    buf.writeFloatLE(norms[i]!, (n + i) * 4);
  }
  return buf;
}

/** The time steps and norms of a blob {@link encodeTimeFlow} wrote. */
export function decodeTimeFlow(data: Buffer, where: string): { steps: number[]; norms: number[] } {
  if (data.byteLength % 8 !== 0) {
    throw new TrackError('BAD_STORE', `${where}: a through-time record has the wrong size (${data.byteLength} bytes)`);
  }
  const n = data.byteLength / 8;
  const steps = new Array<number>(n);
  const norms = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    steps[i] = data.readUInt32LE(i * 4);
    norms[i] = data.readFloatLE((n + i) * 4);
  }
  return { steps, norms };
}

/** Writes a step's through-time records for run row `rid`, replacing any the step had (call inside a transaction). */
export function writeTimeFlow(db: Database.Database, rid: number, step: number, flows: readonly TimeFlow[]): void {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new TrackError('BAD_ARGUMENT', `logTimeFlow: step must be an integer >= 0, got ${step}`);
  }
  db.prepare('DELETE FROM time_flow WHERE rid = ? AND step = ?').run(rid, step);
  const insert = db.prepare('INSERT INTO time_flow (rid, step, layer, sub, length, data) VALUES (?, ?, ?, ?, ?, ?)');
  flows.forEach((f, i) => {
    if (typeof f?.layer !== 'string' || typeof f.sub !== 'string' || !Number.isSafeInteger(f.length)) {
      throw new TrackError('BAD_ARGUMENT', `logTimeFlow: flows[${i}] needs a layer, a sub and a length`);
    }
    if (!Array.isArray(f.steps) || !Array.isArray(f.norms) || f.steps.length !== f.norms.length) {
      throw new TrackError('BAD_ARGUMENT', `logTimeFlow: flows[${i}] needs as many norms as time steps`);
    }
    insert.run(rid, step, f.layer, f.sub, f.length, encodeTimeFlow(f.steps, f.norms));
  });
}

/** A run's through-time records from `fromStep` on (none in a store older than schema 4), by step then layer. */
export function readTimeFlow(db: Database.Database, rid: number, fromStep: number, where: string): TimeFlowRow[] {
  // a store of an older schema opened read-only (it cannot migrate) has no time_flow table
  if (!db.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'time_flow'`).get()) return [];
  const rows = db
    .prepare(
      'SELECT step, layer, sub, length, data FROM time_flow WHERE rid = ? AND step >= ? ORDER BY step, layer, sub',
    )
    .raw()
    .all(rid, fromStep) as [number, string, string, number, Buffer][];
  return rows.map(([step, layer, sub, length, data]) => ({ step, layer, sub, length, ...decodeTimeFlow(data, where) }));
}

/** Drops a run's through-time records after `step` (all of them for -1): a resume from a checkpoint, or a removed run. */
export function truncateTimeFlow(db: Database.Database, rid: number, step: number): void {
  db.prepare('DELETE FROM time_flow WHERE rid = ? AND step > ?').run(rid, step);
}
