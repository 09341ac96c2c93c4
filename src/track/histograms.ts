/**
 * The run store's histograms (schema 3): one row per (run, step, layer, kind), its data one blob of the histogram's
 * six header numbers as little-endian float64 (min, max, num, sum, sumSquares, nonFinite) then its bucket counts as
 * little-endian uint32. 30 buckets and a header cost 168 bytes per histogram.
 */
import type Database from 'better-sqlite3';
import { HISTOGRAM_KINDS, type Histogram, type HistogramKind, type LayerHistograms } from '../monitor/histogram.js';
import { TrackError } from './types.js';

/** One stored histogram. */
export interface HistogramRow {
  step: number;
  layer: string;
  kind: HistogramKind;
  hist: Histogram;
}

const HEADER_BYTES = 6 * 8;

/** A histogram as one blob (see the module note). */
export function encodeHistogram(h: Histogram): Buffer {
  const buf = Buffer.alloc(HEADER_BYTES + h.counts.length * 4);
  const header = [h.min, h.max, h.num, h.sum, h.sumSquares, h.nonFinite];
  for (let i = 0; i < header.length; i++) buf.writeDoubleLE(header[i]!, i * 8);
  for (let i = 0; i < h.counts.length; i++) buf.writeUInt32LE(h.counts[i]!, HEADER_BYTES + i * 4);
  return buf;
}

/** The histogram of a blob {@link encodeHistogram} wrote. */
export function decodeHistogram(data: Buffer, where: string): Histogram {
  if (data.byteLength < HEADER_BYTES || (data.byteLength - HEADER_BYTES) % 4 !== 0) {
    throw new TrackError('BAD_STORE', `${where}: a histogram has the wrong size (${data.byteLength} bytes)`);
  }
  const d = (i: number) => data.readDoubleLE(i * 8);
  const counts = new Uint32Array((data.byteLength - HEADER_BYTES) / 4);
  for (let i = 0; i < counts.length; i++) counts[i] = data.readUInt32LE(HEADER_BYTES + i * 4);
  return { min: d(0), max: d(1), num: d(2), sum: d(3), sumSquares: d(4), nonFinite: d(5), counts };
}

/** Writes a step's histograms for run row `rid`, replacing any the step had (call inside a transaction). */
export function writeHistograms(db: Database.Database, rid: number, step: number, layers: readonly LayerHistograms[]) {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new TrackError('BAD_ARGUMENT', `logHistograms: step must be an integer >= 0, got ${step}`);
  }
  db.prepare('DELETE FROM histograms WHERE rid = ? AND step = ?').run(rid, step);
  const insert = db.prepare('INSERT INTO histograms (rid, step, layer, kind, data) VALUES (?, ?, ?, ?, ?)');
  for (const [i, l] of layers.entries()) {
    if (typeof l?.name !== 'string') throw new TrackError('BAD_ARGUMENT', `logHistograms: layers[${i}] has no name`);
    for (const kind of HISTOGRAM_KINDS) {
      const h = l[kind];
      if (h) insert.run(rid, step, l.name, kind, encodeHistogram(h));
    }
  }
}

/** A run's histograms from `fromStep` on (none in a store older than schema 3), by step, then in the order they were written. */
export function readHistograms(db: Database.Database, rid: number, fromStep: number, where: string): HistogramRow[] {
  // a store of schema 2 opened read-only (it cannot migrate) has no histograms table
  if (!db.prepare(`SELECT 1 FROM sqlite_schema WHERE name = 'histograms'`).get()) return [];
  const rows = db
    .prepare('SELECT step, layer, kind, data FROM histograms WHERE rid = ? AND step >= ? ORDER BY step, hid')
    .raw()
    .all(rid, fromStep) as [number, string, HistogramKind, Buffer][];
  return rows.map(([step, layer, kind, data]) => ({ step, layer, kind, hist: decodeHistogram(data, where) }));
}

/** Drops a run's histograms after `step` (all of them for -1): a resume from a checkpoint, or a removed run. */
export function truncateHistograms(db: Database.Database, rid: number, step: number): void {
  db.prepare('DELETE FROM histograms WHERE rid = ? AND step > ?').run(rid, step);
}
