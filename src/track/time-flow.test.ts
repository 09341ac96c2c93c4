import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STORE_KINDS, type TestStore, testStore } from '../../test/services/stores.js';
import type { TimeFlow } from '../monitor/through-time.js';
import { DB_FILE, MIGRATIONS, RunStore } from './store.js';
import { decodeTimeFlow, encodeTimeFlow } from './time-flow.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-time-flow-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Float32-exact norms, so that what comes back equals what went in. */
function flows(step: number): TimeFlow[] {
  return [
    { layer: 'net.rnn', sub: 'l0', length: 5, steps: [0, 1, 2, 3, 4], norms: [0.125, 0.25, 0.5, 1, 2 + step] },
    { layer: 'net.rnn', sub: 'l1', length: 5, steps: [0, 4], norms: [Number.NaN, 4] },
  ];
}

describe('gradient norms through time in the run store (schema 4)', () => {
  it('encode as 8 bytes a time step and decode to the same steps and norms', () => {
    const blob = encodeTimeFlow([0, 7, 99], [1e-20, 0.5, Number.POSITIVE_INFINITY]);
    expect(blob.byteLength).toBe(24);
    const back = decodeTimeFlow(blob, 'x');
    expect(back.steps).toEqual([0, 7, 99]);
    expect(back.norms[1]).toBe(0.5);
    expect(back.norms[0]).toBeCloseTo(1e-20, 25);
    expect(back.norms[2]).toBe(Number.POSITIVE_INFINITY);
    expect(() => decodeTimeFlow(blob.subarray(0, 20), 'runs.db')).toThrow(
      /runs.db: a through-time record has the wrong size/,
    );
  });

  it('a schema-3 store reads read-only as it is (no records) and gains the table in place when opened to write', () => {
    const db = new Database(join(dir, DB_FILE));
    db.pragma('journal_mode = WAL');
    for (const m of MIGRATIONS.slice(0, 3)) db.exec(m);
    db.pragma(`application_id = ${0x67677264}`);
    db.pragma('user_version = 3');
    db.prepare(
      `INSERT INTO runs (id, status, created_at, updated_at, config, backend) VALUES ('20260101-000000-0001', 'finished', 1, 1, '{}', 'js')`,
    ).run();
    db.close();
    const reader = RunStore.open(dir, { readonly: true });
    try {
      expect(reader.getTimeFlow('20260101-000000-0001')).toEqual([]);
    } finally {
      reader.close();
    }
    const store = RunStore.open(dir);
    try {
      store.resumeRun('20260101-000000-0001');
      store.logTimeFlow('20260101-000000-0001', 0, flows(0));
      expect(store.getTimeFlow('20260101-000000-0001')).toHaveLength(2);
      expect(store.listRuns()).toHaveLength(1);
    } finally {
      store.close();
    }
  });
});

describe.each(STORE_KINDS)('gradient norms through time in the run store on %s', (kind) => {
  let t: TestStore;
  beforeEach(async () => {
    t = await testStore(kind, 'gg-time-flow-');
  });
  afterEach(() => t.drop());

  it('are logged per step and read back by step, layer and sub; a step logged again is replaced; resume and removal truncate', async () => {
    const store = RunStore.open(t.spec);
    try {
      const id = store.createRun({ config: {}, backend: 'js' });
      for (const s of [0, 10, 20]) {
        store.logStep(id, s, { loss: 1 });
        store.logTimeFlow(id, s, flows(s));
      }
      store.logTimeFlow(id, 20, flows(21));
      const rows = store.getTimeFlow(id);
      expect(rows.map((r) => [r.step, r.layer, r.sub, r.length])).toEqual([
        [0, 'net.rnn', 'l0', 5],
        [0, 'net.rnn', 'l1', 5],
        [10, 'net.rnn', 'l0', 5],
        [10, 'net.rnn', 'l1', 5],
        [20, 'net.rnn', 'l0', 5],
        [20, 'net.rnn', 'l1', 5],
      ]);
      expect(rows[4]!.norms).toEqual(flows(21)[0]!.norms);
      expect(rows[5]!.steps).toEqual([0, 4]);
      expect(rows[5]!.norms[0]).toBeNaN();
      expect(store.getTimeFlow(id, { fromStep: 11 })).toHaveLength(2);
      expect(() => store.logTimeFlow(id, 3, [{ ...flows(0)[0]!, norms: [1] }])).toThrow(
        /flows\[0\] needs as many norms as time steps/,
      );
      store.finishRun(id, 'interrupted');
      store.resumeRun(id, { fromStep: 15 });
      expect([...new Set(store.getTimeFlow(id).map((r) => r.step))]).toEqual([0, 10]);
      store.finishRun(id, 'finished');
      store.deleteRun(id);
      expect(Number((await t.sql('SELECT count(*) FROM time_flow'))[0]![0])).toBe(0);
    } finally {
      store.close();
    }
  });

  it('a running run carries the summary set at its start (the baseline) until finishRun replaces it', () => {
    const store = RunStore.open(t.spec);
    try {
      const id = store.createRun({ config: {}, backend: 'js' });
      store.setSummary(id, { baseline: { loss: 2.3, accuracy: 0.1, predictor: 'the prior' } });
      expect(store.getRun(id).summary?.baseline).toEqual({ loss: 2.3, accuracy: 0.1, predictor: 'the prior' });
      expect(store.getRun(id).status).toBe('running');
      store.finishRun(id, 'finished', { verdict: 'healthy' });
      expect(store.getRun(id).summary).toEqual({ verdict: 'healthy' });
    } finally {
      store.close();
    }
  });
});
