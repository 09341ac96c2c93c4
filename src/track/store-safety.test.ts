/**
 * The store under attack (issue 11): a run removed while it trains, row ids that must never be reused, a v1 store
 * migrated, run ids edited into `runs.db`, a directory where nothing can be created.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkRunId, isValidRunId, runPath } from './ids.js';
import { DB_FILE, MIGRATIONS, RunStore, SCHEMA_VERSION } from './store.js';
import { TrackError } from './types.js';

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-store-safety-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof TrackError) return err.code;
    throw err;
  }
  throw new Error('expected a TrackError');
}

const rid = (id: string) => {
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  try {
    return db.prepare('SELECT rid FROM runs WHERE id = ?').pluck().get(id) as number;
  } finally {
    db.close();
  }
};

describe('a run removed while it trains', () => {
  it('never gives its row id to the next run, and its writer stops with RUN_REMOVED', () => {
    const writer = RunStore.open(dir);
    const other = RunStore.open(dir);
    try {
      const a = writer.createRun({ config: {}, backend: 'js' });
      writer.logStep(a, 0, { loss: 1 });
      const ridA = rid(a);
      expect(other.deleteRun(a, { force: true })).toBe(a);
      const b = other.createRun({ config: {}, backend: 'js' });
      expect(rid(b)).toBeGreaterThan(ridA);
      // the writer of A still holds A's id: every write is refused, none lands in B
      expect(codeOf(() => writer.logStep(a, 1, { loss: 2 }))).toBe('RUN_REMOVED');
      expect(codeOf(() => writer.logFinding(a, 1, { kind: 'x', layers: [] }))).toBe('RUN_REMOVED');
      expect(codeOf(() => writer.finishRun(a, 'finished'))).toBe('RUN_REMOVED');
      expect(writer.hasRun(a)).toBe(false);
      expect(other.getMetrics(b).steps).toEqual([]);
      expect(other.getFindings(b)).toEqual([]);
      expect(other.getRun(b).status).toBe('running');
      // the message says what happened, on one line
      try {
        writer.logStep(a, 2, { loss: 3 });
      } catch (e) {
        expect((e as Error).message).toMatch(new RegExp(`^run ${a} was removed from the run store .*runs rm`));
        expect((e as Error).message).not.toContain('\n');
      }
    } finally {
      writer.close();
      other.close();
    }
  });

  it('keeps row ids increasing after the newest run is removed', () => {
    const store = RunStore.open(dir);
    try {
      const a = store.createRun({ config: {}, backend: 'js' });
      const ridA = rid(a);
      store.deleteRun(a, { force: true });
      const b = store.createRun({ config: {}, backend: 'js' });
      expect(rid(b)).toBeGreaterThan(ridA);
    } finally {
      store.close();
    }
  });
});

describe('a store written by schema 1', () => {
  /** A version-1 store as the previous gradguard wrote it: runs 1 and 2, and rows of a removed run 3 whose writer went on. */
  function makeV1(): void {
    const db = new Database(join(dir, DB_FILE));
    db.pragma('journal_mode = WAL');
    db.exec(MIGRATIONS[0]!);
    db.pragma(`application_id = ${0x67677264}`);
    db.pragma('user_version = 1');
    const run = db.prepare(
      `INSERT INTO runs (rid, id, status, created_at, updated_at, config, backend) VALUES (?, ?, 'finished', 1, 1, '{}', 'js')`,
    );
    run.run(1, '20260101-000000-0001');
    run.run(2, '20260101-000000-0002');
    const step = db.prepare('INSERT INTO steps (rid, step, time) VALUES (?, ?, 1)');
    step.run(2, 0);
    step.run(3, 0);
    step.run(3, 1);
    db.prepare('INSERT INTO metric_keys (kid, key) VALUES (1, ?)').run('loss');
    db.prepare('INSERT INTO metrics (rid, step, kid, value) VALUES (?, 0, 1, ?)').run(2, 0.5);
    db.prepare('INSERT INTO metrics (rid, step, kid, value) VALUES (?, 0, 1, ?)').run(3, 9);
    db.close();
  }

  it('reads read-only as it is, and is migrated: runs kept, leftovers dropped, new ids above every old one', () => {
    makeV1();
    const reader = RunStore.open(dir, { readonly: true });
    try {
      expect(reader.listRuns().map((r) => r.id)).toHaveLength(2);
      expect(reader.getMetrics('20260101-000000-0002').series.loss).toEqual([0.5]);
    } finally {
      reader.close();
    }
    const store = RunStore.open(dir);
    try {
      expect(SCHEMA_VERSION).toBe(4);
      expect(store.listRuns().map((r) => r.id)).toEqual(['20260101-000000-0002', '20260101-000000-0001']);
      expect(store.getMetrics('20260101-000000-0002').series.loss).toEqual([0.5]);
      const id = store.createRun({ config: {}, backend: 'js' });
      expect(rid(id)).toBe(4);
      expect(store.getMetrics(id).steps).toEqual([]);
    } finally {
      store.close();
    }
    const db = new Database(join(dir, DB_FILE), { readonly: true });
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(4);
      expect(db.prepare('SELECT count(*) FROM steps WHERE rid = 3').pluck().get()).toBe(0);
      expect(db.prepare('SELECT count(*) FROM metrics WHERE rid = 3').pluck().get()).toBe(0);
    } finally {
      db.close();
    }
  });
});

describe('run ids as file names', () => {
  it('the validator takes what gradguard makes and refuses what leads elsewhere', () => {
    for (const ok of ['20261126-114512-a3f9', 'a', 'run_1.v2', 'A-b.c_d']) expect(isValidRunId(ok)).toBe(true);
    for (const bad of ['', '../../victim', '..', 'a..b', '.hidden', '-x', 'a/b', 'a\\b', 'x'.repeat(129), 'a b']) {
      expect(isValidRunId(bad), bad).toBe(false);
    }
    expect(codeOf(() => checkRunId('../x', 'the run store S'))).toBe('BAD_RUN_ID');
    expect(runPath('/tmp/root', 'abc', 'test')).toBe('/tmp/root/abc');
    expect(codeOf(() => runPath('/tmp/root', '../abc', 'test'))).toBe('BAD_RUN_ID');
  });

  it('a run id edited into runs.db is listed but refused as soon as a run is looked up', () => {
    const store = RunStore.open(dir);
    try {
      const id = store.createRun({ config: {}, backend: 'js' });
      store.finishRun(id, 'finished');
      const db = new Database(join(dir, DB_FILE));
      db.prepare('UPDATE runs SET id = ? WHERE id = ?').run('../../victim', id);
      db.close();
      expect(store.listRuns().map((r) => r.id)).toEqual(['../../victim']);
      for (const lookup of ['../../victim', '../', 'victim']) {
        expect(
          codeOf(() => store.getRun(lookup)),
          lookup,
        ).toMatch(/BAD_RUN_ID|UNKNOWN_RUN/);
      }
      expect(codeOf(() => store.getRun('../../victim'))).toBe('BAD_RUN_ID');
      expect(codeOf(() => store.deleteRun('../../victim', { force: true }))).toBe('BAD_RUN_ID');
    } finally {
      store.close();
    }
  });
});

describe('opening', () => {
  it('fails fast, with one line, where no directory can be created (/proc)', () => {
    let message = '';
    try {
      RunStore.open('/proc/gg-store-test');
    } catch (e) {
      expect(e).toBeInstanceOf(TrackError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/^cannot create the run store directory \/proc\/gg-store-test: ENOENT/);
  });
});
