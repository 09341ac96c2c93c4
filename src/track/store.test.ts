import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { adminQuery, freshDatabase, hasPostgres } from '../../test/services/pg.js';
import { STORE_KINDS, type StoreKind, type TestStore, testStore } from '../../test/services/stores.js';
import { DB_FILE, newRunId, RunStore, SCHEMA_VERSION } from './store.js';
import { type LayerStat, TrackError } from './types.js';

/**
 * Every test of the store's contract runs on both stores: SQLite in a temporary directory, and PostgreSQL in a fresh
 * database of the test server (test/services/postgres.ts; skipped where there is none, failed where CI requires it).
 */
let t: TestStore;
let dir: string;
/** The store's spec: the directory or the database URL. */
let spec: string;
let store: RunStore;

async function setUp(kind: StoreKind): Promise<void> {
  t = await testStore(kind);
  dir = t.dir;
  spec = t.spec;
  store = RunStore.open(spec);
}

async function tearDown(): Promise<void> {
  store.close();
  await t.drop();
}

const sql = (text: string, ...params: unknown[]) => t.sql(text, ...params);

function layersAt(step: number, n = 3): LayerStat[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `layers.${i}`,
    gradNorm: (i + 1) / (step + 1),
    gradMaxAbs: 0.5 + i,
    weightNorm: 3 + step,
    updateRatio: 1e-3 * (i + 1),
    actMean: -0.25,
    actStd: 0.75,
    ...(i % 2 === 0 ? { deadFrac: 0.125 } : { satFrac: 0.5 }),
    nonFinite: i === 2 ? 4 : 0,
  }));
}

/** A TrackError's code, or a failure if `fn` does not throw one. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof TrackError) return err.code;
    throw err;
  }
  throw new Error('expected a TrackError');
}

/** A pid that is certainly not running: a child that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  return r.pid!;
}

function raw(): Database.Database {
  return new Database(join(dir, DB_FILE));
}

describe.each(STORE_KINDS)('RunStore on %s', (kind) => {
  beforeEach(() => setUp(kind));
  afterEach(tearDown);

  it('round-trips a run: config, metrics with non-finite values, layer statistics, findings, summary', () => {
    const config = { model: { type: 'mlp', hidden: [256] }, optim: { name: 'adam', lr: 1e-3 } };
    const id = store.createRun({ name: 'mlp', config, backend: 'js' });
    expect(id).toMatch(/^\d{8}-\d{6}-[0-9a-f]{4}$/);
    store.logStep(id, 0, { 'train/loss': 2.5, lr: 1e-3 }, layersAt(0));
    store.logStep(id, 1, { 'train/loss': Number.NaN, lr: 1e-3 });
    store.logStep(id, 2, { 'train/loss': Number.POSITIVE_INFINITY, lr: 5e-4, 'grad/norm': -Infinity }, layersAt(2));
    store.logStep(id, 2, { 'test/accuracy': 0.5 }); // joins step 2's metrics
    store.logFinding(id, 2, {
      kind: 'exploding-gradient',
      layers: ['layers.0'],
      evidence: { ratio: 1e6 },
      suggestion: 'clip',
      severity: 'warning',
    });
    store.logFinding(id, 1, { kind: 'note' });
    store.finishRun(id, 'diverged', {
      metrics: { 'test/accuracy': 0.5, 'test/loss': Number.NaN },
      verdict: 'exploding',
      durationMs: 1234,
      stepsSkipped: 2,
      stepsClipped: 1,
      extra: { kept: true },
    });
    store.close();

    store = RunStore.open(spec, { create: false });
    const run = store.getRun(id);
    expect(run).toMatchObject({ id, name: 'mlp', status: 'diverged', backend: 'js', config, lastStep: 2 });
    expect(run.finishedAt).toBeGreaterThanOrEqual(run.createdAt);
    expect(run.summary).toEqual({
      metrics: { 'test/accuracy': 0.5, 'test/loss': Number.NaN },
      verdict: 'exploding',
      durationMs: 1234,
      stepsSkipped: 2,
      stepsClipped: 1,
      extra: { kept: true },
    });

    const m = store.getMetrics(id);
    expect(m.steps).toEqual([0, 1, 2]);
    expect(m.times).toHaveLength(3);
    expect(m.keys).toEqual(['train/loss', 'lr', 'grad/norm', 'test/accuracy']);
    expect(m.series['train/loss']).toEqual([2.5, Number.NaN, Number.POSITIVE_INFINITY]);
    expect(m.series.lr).toEqual([1e-3, 1e-3, 5e-4]);
    expect(m.series['grad/norm']).toEqual([null, null, Number.NEGATIVE_INFINITY]);
    expect(m.series['test/accuracy']).toEqual([null, null, 0.5]);
    expect(store.getMetrics(id, { fromStep: 2 }).steps).toEqual([2]);

    const layers = store.getLayerStats(id);
    expect(layers).toEqual([
      ...layersAt(0).map((l) => ({ step: 0, ...l })),
      ...layersAt(2).map((l) => ({ step: 2, ...l })),
    ]);
    expect(store.getLayerStats(id, { last: true }).map((l) => l.step)).toEqual([2, 2, 2]);

    const matrix = store.getLayerMatrix(id, 'gradNorm');
    expect(matrix.layers).toEqual(['layers.0', 'layers.1', 'layers.2']);
    expect(matrix.steps).toEqual([0, 2]);
    expect([...matrix.values]).toEqual([1, 1 / 3, 2, 2 / 3, 3, 1]);

    expect(store.getFindings(id)).toEqual([
      { step: 1, kind: 'note', layers: [], evidence: null, suggestion: null, severity: null, time: expect.any(Number) },
      {
        step: 2,
        kind: 'exploding-gradient',
        layers: ['layers.0'],
        evidence: { ratio: 1e6 },
        suggestion: 'clip',
        severity: 'warning',
        time: expect.any(Number),
      },
    ]);
    expect(store.integrityCheck()).toBe('ok');
  });

  it('replaces a step’s layer statistics when the step is logged again with layers', () => {
    const id = store.createRun({ config: {}, backend: 'js' });
    store.logStep(id, 0, { loss: 1 }, layersAt(0, 3));
    store.logStep(id, 1, { loss: 1 }, layersAt(1, 3));
    store.logStep(id, 0, { loss: 2 }, layersAt(5, 2));
    expect(store.getMetrics(id).series.loss).toEqual([2, 1]);
    const rows = store.getLayerStats(id);
    expect(rows.filter((r) => r.step === 0)).toEqual(layersAt(5, 2).map((l) => ({ step: 0, ...l })));
    expect(rows.filter((r) => r.step === 1)).toHaveLength(3);
    const matrix = store.getLayerMatrix(id, 'weightNorm');
    expect([...matrix.values].map((v) => (Number.isNaN(v) ? null : v))).toEqual([8, 4, 8, 4, null, 4]);
  });

  it.skipIf(kind !== 'sqlite')('uses WAL mode and records the schema version', () => {
    const db = raw();
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
  });

  it('makes ids that sort by creation time', () => {
    const a = newRunId(Date.UTC(2026, 10, 26, 11, 45, 12));
    expect(a).toMatch(/^20261126-114512-[0-9a-f]{4}$/);
    expect(newRunId(Date.UTC(2026, 10, 26, 11, 45, 13)) > a).toBe(true);
    const b = store.createRun({ config: {}, backend: 'js' });
    const c = store.createRun({ config: {}, backend: 'js' });
    expect(b).not.toBe(c);
  });

  it('finds runs by unique id prefix or by name, and explains unknown and ambiguous ids', async () => {
    const ids = ['20250101-114512-a3f9', '20250101-114512-a3aa', '20250101-120000-0001'];
    store.createRun({ config: {}, backend: 'js' });
    const made = [0, 1, 2].map(() => store.createRun({ name: 'same', config: {}, backend: 'js' }));
    for (const [i, id] of made.entries())
      await sql('UPDATE runs SET id = ?, name = ? WHERE id = ?', ids[i], `n${i}`, id);
    expect(store.getRun('20250101-114512-a3f9').id).toBe(ids[0]);
    expect(store.getRun('20250101-114512-a3f').id).toBe(ids[0]);
    expect(store.getRun('20250101-12').id).toBe(ids[2]);
    expect(store.getRun('n1').id).toBe(ids[1]);
    expect(codeOf(() => store.getRun('20250101-114512-a3'))).toBe('AMBIGUOUS_RUN');
    expect(() => store.getRun('20250101-114512-a3')).toThrow(
      /'20250101-114512-a3' matches 2 runs: 20250101-114512-a3aa \(n1\), 20250101-114512-a3f9 \(n0\); give more of the id/,
    );
    expect(codeOf(() => store.getRun('nope'))).toBe('UNKNOWN_RUN');
    expect(() => store.getRun('nope')).toThrow(
      kind === 'sqlite'
        ? /no run matches 'nope' in .*runs\.db/
        : /no run matches 'nope' in postgres:\/\/postgres@127\.0\.0\.1:\d+\/gg_test_\w+ /,
    );
    expect(codeOf(() => store.getRun(''))).toBe('BAD_ARGUMENT');
    expect(codeOf(() => store.getMetrics('zzz'))).toBe('UNKNOWN_RUN');
  });

  it('lists runs newest first, filtered by status, name and limit', async () => {
    const a = store.createRun({ name: 'alpha', config: {}, backend: 'js' });
    const bb = store.createRun({ name: 'beta', config: {}, backend: 'js' });
    const c = store.createRun({ name: 'alphabet', config: {}, backend: 'js' });
    for (const [i, id] of [a, bb, c].entries()) await sql('UPDATE runs SET created_at = ? WHERE id = ?', 1000 + i, id);
    store.finishRun(bb, 'finished', {});
    expect(store.listRuns().map((r) => r.id)).toEqual([c, bb, a]);
    expect(store.listRuns({ status: 'finished' }).map((r) => r.id)).toEqual([bb]);
    expect(store.listRuns({ status: ['running'] }).map((r) => r.id)).toEqual([c, a]);
    expect(store.listRuns({ name: 'alpha' }).map((r) => r.id)).toEqual([c, a]);
    expect(store.listRuns({ limit: 1 }).map((r) => r.id)).toEqual([c]);
  });

  it.skipIf(kind !== 'sqlite')(
    'marks a run whose process died as interrupted, and keeps runs of live or remote processes running',
    () => {
      const dead = store.createRun({ config: {}, backend: 'js' });
      const recycled = store.createRun({ config: {}, backend: 'js' });
      const remote = store.createRun({ config: {}, backend: 'js' });
      const live = store.createRun({ config: {}, backend: 'js' });
      const db = raw();
      db.prepare('UPDATE runs SET pid = ? WHERE id = ?').run(deadPid(), dead);
      // Our own pid, but another process start time: the pid was recycled, the writer is gone.
      db.prepare("UPDATE runs SET proc_start = '1' WHERE id = ?").run(recycled);
      db.prepare("UPDATE runs SET host = 'elsewhere', pid = ? WHERE id = ?").run(deadPid(), remote);
      db.close();
      expect(store.getRun(dead).status).toBe('interrupted');
      expect(store.getRun(recycled).status).toBe('interrupted');
      expect(store.getRun(remote).status).toBe('running');
      expect(store.getRun(live).status).toBe('running');
      const check = raw();
      const status = check.prepare('SELECT status FROM runs WHERE id = ?').pluck();
      expect(status.get(dead)).toBe('interrupted'); // recorded, not only reported
      check.close();
      expect(
        store
          .listRuns({ status: 'interrupted' })
          .map((r) => r.id)
          .sort(),
      ).toEqual([dead, recycled].sort());
    },
  );

  it('resumes a run, dropping what was logged after the checkpoint step', () => {
    const id = store.createRun({ config: {}, backend: 'js' });
    for (let s = 0; s < 6; s++) store.logStep(id, s, { loss: s }, layersAt(s, 1));
    store.logFinding(id, 5, { kind: 'late' });
    store.finishRun(id, 'interrupted');
    expect(store.resumeRun(id.slice(0, 17), { fromStep: 3 })).toBe(id);
    const run = store.getRun(id);
    expect(run.status).toBe('running');
    expect(run.finishedAt).toBeNull();
    expect(run.lastStep).toBe(3);
    expect(store.getMetrics(id).steps).toEqual([0, 1, 2, 3]);
    expect(store.getFindings(id)).toEqual([]);
    store.logStep(id, 4, { loss: 40 }, layersAt(4, 1));
    expect(store.getMetrics(id).series.loss).toEqual([0, 1, 2, 3, 40]);
    expect(store.getLayerStats(id).map((r) => r.step)).toEqual([0, 1, 2, 3, 4]);
  });

  it('deletes a run and all it logged, refusing a live run without force', async () => {
    const keep = store.createRun({ config: {}, backend: 'js' });
    const gone = store.createRun({ config: {}, backend: 'js' });
    for (const id of [keep, gone]) {
      store.logStep(id, 0, { loss: 1 }, layersAt(0));
      store.logFinding(id, 0, { kind: 'x' });
    }
    expect(codeOf(() => store.deleteRun(gone))).toBe('RUN_ACTIVE');
    store.finishRun(gone, 'finished');
    expect(store.deleteRun(gone)).toBe(gone);
    expect(codeOf(() => store.getRun(gone))).toBe('UNKNOWN_RUN');
    expect(store.deleteRun(keep, { force: true })).toBe(keep);
    for (const table of ['runs', 'steps', 'metrics', 'layer_stats', 'findings']) {
      expect(Number((await sql(`SELECT count(*) FROM ${table}`))[0]), table).toBe(0);
    }
  });

  it('rejects bad arguments with clear errors', () => {
    const id = store.createRun({ config: {}, backend: 'js' });
    expect(() => store.logStep(id, -1, {})).toThrow('logStep: step must be an integer >= 0, got -1');
    expect(() => store.logStep(id, 1.5, {})).toThrow(TrackError);
    expect(() => store.logStep(id, 0, { loss: '1' as unknown as number })).toThrow(
      "logStep: metric 'loss' must be a number, got string",
    );
    expect(codeOf(() => store.logStep('20260101-000000-0000', 0, {}))).toBe('UNKNOWN_RUN');
    expect(codeOf(() => store.createRun({ config: {}, backend: '' }))).toBe('BAD_ARGUMENT');
    expect(codeOf(() => store.finishRun(id, 'running' as 'finished'))).toBe('BAD_ARGUMENT');
    expect(codeOf(() => store.logFinding(id, 0, { kind: '' }))).toBe('BAD_ARGUMENT');
    expect(codeOf(() => store.getLayerMatrix(id, 'nope' as 'gradNorm'))).toBe('BAD_ARGUMENT');
    store.close();
    expect(codeOf(() => store.listRuns())).toBe('CLOSED');
  });

  it.skipIf(kind !== 'sqlite')(
    'refuses a missing store when asked not to create one, a foreign file and a newer schema',
    () => {
      const other = mkdtempSync(join(tmpdir(), 'gg-store-bad-'));
      try {
        expect(codeOf(() => RunStore.open(join(other, 'missing'), { create: false }))).toBe('NO_STORE');
        expect(() => RunStore.open(join(other, 'missing'), { create: false })).toThrow(/no run store at .*missing/);

        const junkDir = join(other, 'junk');
        RunStore.open(junkDir).close();
        writeFileSync(join(junkDir, DB_FILE), 'this is not a database, just text long enough to fill a header....');
        rmSync(join(junkDir, `${DB_FILE}-wal`), { force: true });
        rmSync(join(junkDir, `${DB_FILE}-shm`), { force: true });
        expect(codeOf(() => RunStore.open(junkDir))).toBe('BAD_STORE');

        const foreignDir = join(other, 'foreign');
        RunStore.open(foreignDir).close();
        rmSync(join(foreignDir, DB_FILE));
        const foreign = new Database(join(foreignDir, DB_FILE));
        foreign.exec('CREATE TABLE t (x)');
        foreign.close();
        expect(() => RunStore.open(foreignDir)).toThrow(/is an SQLite database but not a gradguard run store/);

        const newerDir = join(other, 'newer');
        RunStore.open(newerDir).close();
        const newer = new Database(join(newerDir, DB_FILE));
        newer.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
        newer.close();
        expect(codeOf(() => RunStore.open(newerDir))).toBe('STORE_TOO_NEW');

        const fileDir = join(other, 'file');
        writeFileSync(fileDir, 'x');
        expect(codeOf(() => RunStore.open(fileDir))).toBe('BAD_STORE');
      } finally {
        rmSync(other, { recursive: true, force: true });
      }
    },
  );

  it('opens read-only for readers: reads work, writes are refused', () => {
    const id = store.createRun({ config: { a: 1 }, backend: 'js' });
    store.logStep(id, 0, { loss: 1 });
    store.flush(); // PostgreSQL posts steps in batches: another connection sees them once flushed
    const reader = RunStore.open(spec, { readonly: true });
    try {
      expect(reader.getMetrics(id).series.loss).toEqual([1]);
      expect(codeOf(() => reader.createRun({ config: {}, backend: 'js' }))).toBe('BAD_ARGUMENT');
      expect(codeOf(() => reader.logStep(id, 1, {}))).toBe('BAD_ARGUMENT');
    } finally {
      reader.close();
    }
  });

  it('logs a step with 5 metrics and 20 layers in well under a millisecond of CPU time', () => {
    const id = store.createRun({ config: {}, backend: 'js' });
    const layers = Array.from({ length: 20 }, (_, i) => ({ ...layersAt(0, 1)[0]!, name: `layers.${i}` }));
    const batchMs: number[] = [];
    let step = 0;
    for (let b = 0; b < 6; b++) {
      // CPU time (this process, all threads: PostgreSQL's connection thread too), which the other tests' load on a
      // busy machine disturbs much less than wall time
      const t0 = process.cpuUsage();
      for (let i = 0; i < 200; i++, step++) {
        store.logStep(id, step, { 'train/loss': 1 / (step + 1), 'train/acc': 0.5, lr: 1e-3, gn: 1, ms: 2 }, layers);
      }
      const cpu = process.cpuUsage(t0);
      batchMs.push((cpu.user + cpu.system) / 1000 / 200);
    }
    batchMs.sort((x, y) => x - y);
    expect(batchMs[3]).toBeLessThan(1);
    expect(store.getLayerStats(id)).toHaveLength(1200 * 20);
  });
});

describe.skipIf(!hasPostgres)('RunStore on postgres: liveness, errors, credentials', () => {
  beforeEach(() => setUp('postgres'));
  afterEach(tearDown);

  it('keeps a run running while its writer is connected, whatever its pid and host say, and marks it interrupted when the writer is gone', async () => {
    const writer = RunStore.open(spec);
    const remote = writer.createRun({ config: {}, backend: 'js' });
    const crashed = writer.createRun({ config: {}, backend: 'js' });
    writer.logStep(remote, 0, { loss: 1 });
    // Written "on another machine" by a pid that is dead here: the writer's connection is what counts.
    await sql("UPDATE runs SET host = 'elsewhere', pid = ? WHERE id = ?", deadPid(), remote);
    await sql('UPDATE runs SET pid = ? WHERE id = ?', deadPid(), crashed);
    expect(store.getRun(remote).status).toBe('running');
    expect(store.getRun(crashed).status).toBe('running');
    expect(codeOf(() => store.resumeRun(remote))).toBe('RUN_ACTIVE');
    expect(codeOf(() => store.deleteRun(remote))).toBe('RUN_ACTIVE');
    writer.finishRun(remote, 'finished');
    writer.close(); // the connection ends, as when a worker dies: its locks go with it
    expect(store.getRun(remote).status).toBe('finished');
    expect(store.getRun(crashed).status).toBe('interrupted');
    expect(await sql('SELECT status FROM runs WHERE id = ?', crashed)).toEqual([['interrupted']]); // recorded
    // A resume takes the run over: running again, and alive as long as this store is open.
    expect(store.resumeRun(crashed)).toBe(crashed);
    const reader = RunStore.open(spec, { readonly: true });
    try {
      expect(reader.getRun(crashed).status).toBe('running');
    } finally {
      reader.close();
    }
  });

  it('writes steps in the background, and any other call waits for them', () => {
    const id = store.createRun({ config: {}, backend: 'js' });
    for (let s = 0; s < 500; s++) store.logStep(id, s, { loss: s }, layersAt(s, 2));
    expect(store.hasRun(id)).toBe(true); // the trainer's call before each checkpoint: a flush
    const reader = RunStore.open(spec, { readonly: true });
    try {
      expect(reader.getRun(id).lastStep).toBe(499);
      expect(reader.getLayerStats(id)).toHaveLength(1000);
    } finally {
      reader.close();
    }
  });

  it('stops a writer whose run was removed, with RUN_REMOVED at its next write', () => {
    const id = store.createRun({ config: {}, backend: 'js' });
    store.logStep(id, 0, { loss: 1 });
    const other = RunStore.open(spec);
    try {
      other.deleteRun(id, { force: true });
    } finally {
      other.close();
    }
    store.logStep(id, 1, { loss: 1 }); // posted before the store can know
    expect(store.hasRun(id)).toBe(false);
    expect(codeOf(() => store.logStep(id, 2, { loss: 1 }))).toBe('RUN_REMOVED');
    expect(codeOf(() => store.logFinding(id, 2, { kind: 'x' }))).toBe('RUN_REMOVED');
    expect(codeOf(() => store.finishRun(id, 'finished'))).toBe('RUN_REMOVED');
  });

  it('a reader reconnects after the server dropped its connection; a writer stops with STORE_UNAVAILABLE', async () => {
    const id = store.createRun({ config: {}, backend: 'js' });
    store.logStep(id, 0, { loss: 1 });
    store.flush();
    const reader = RunStore.open(spec, { readonly: true });
    try {
      expect(reader.getRun(id).status).toBe('running');
      // as a server restart or a dropped network does to both connections
      const dropped = await adminQuery(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'gradguard'`,
        [t.db!.name],
      );
      expect(dropped.rowCount).toBe(2);
      // the writer's lock went with its connection: the reader, reconnected, sees a run without a writer
      expect(reader.getRun(id).status).toBe('interrupted');
      store.logStep(id, 1, { loss: 1 });
      expect(codeOf(() => store.flush())).toBe('STORE_UNAVAILABLE');
      expect(() => store.flush()).toThrow(
        /^lost the connection to the run store postgres:\/\/postgres@127\.0\.0\.1:\d+\/gg_test_\w+: /,
      );
    } finally {
      reader.close();
    }
  });

  it('refuses a database without a store when asked not to create one, a foreign schema and a newer schema', async () => {
    const other = await freshDatabase();
    try {
      expect(codeOf(() => RunStore.open(other.url, { create: false }))).toBe('NO_STORE');
      expect(codeOf(() => RunStore.open(other.url, { readonly: true }))).toBe('NO_STORE');
      await sql('UPDATE meta SET value = ? WHERE key = ?', String(SCHEMA_VERSION + 1), 'schema_version');
      expect(codeOf(() => RunStore.open(spec))).toBe('STORE_TOO_NEW');
      expect(() => RunStore.open(spec, { readonly: true })).toThrow(
        /newer gradguard \(schema \d+; this one reads up to/,
      );
    } finally {
      await other.drop();
    }
    const foreign = await freshDatabase();
    try {
      const client = new pg.Client({ connectionString: foreign.url });
      await client.connect();
      await client.query('CREATE SCHEMA gradguard; CREATE TABLE gradguard.t (x int)');
      await client.end();
      expect(() => RunStore.open(foreign.url)).toThrow(/has a schema 'gradguard' that is not a gradguard run store/);
    } finally {
      await foreign.drop();
    }
  });

  it('never shows the password: not in path, errors, run rows or listings', async () => {
    const password = decodeURIComponent(new URL(spec).password);
    expect(spec).toContain(password);
    expect(password.length).toBeGreaterThan(8);
    expect(store.path).not.toContain(password);
    expect(store.path).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/gg_test_[0-9a-f]+$/);
    const id = store.createRun({ config: { store: 'not here' }, backend: 'js' });
    store.logStep(id, 0, { loss: 1 });
    const everything = JSON.stringify([store.listRuns(), store.getRun(id), store.getMetrics(id)]);
    expect(everything).not.toContain(password);
    const messages: string[] = [];
    const bad = new URL(spec);
    bad.password = `${password}x`;
    const down = new URL(spec);
    down.port = String(1); // nothing listens on port 1
    for (const url of [bad.toString(), down.toString(), `${spec}&x=%zz`, 'postgres://u:se%cret@[::1']) {
      try {
        RunStore.open(url).close();
        messages.push('opened');
      } catch (err) {
        messages.push(`${(err as Error).message}\n${(err as Error).stack ?? ''}`);
      }
    }
    expect(messages[0]).toMatch(
      /^cannot connect to the run store postgres:\/\/postgres@127\.0\.0\.1:\d+\/gg_test_\w+: password authentication failed/,
    );
    expect(messages[1]).toMatch(/cannot connect to the run store .*: .*ECONNREFUSED/);
    for (const m of messages) {
      expect(m).not.toContain(password);
      expect(m).not.toContain('se%cret');
    }
  });
});
