/**
 * The run store's SQLite schema: the migrations that build it, append-only (`PRAGMA user_version` counts those
 * applied), and the check that a file is a gradguard store this code can read.
 */
import type Database from 'better-sqlite3';
import { TrackError } from './types.js';

/** The database file inside the store directory. */
export const DB_FILE = 'runs.db';

/** `PRAGMA application_id` of a gradguard store ('ggrd'), so another program's SQLite file is not taken for one. */
const APPLICATION_ID = 0x67677264;

/**
 * Schema migrations; `user_version` = how many have run. Append, never edit: a file written by an older gradguard
 * is upgraded by running the migrations it lacks.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE runs (
    rid         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT,
    status      TEXT NOT NULL CHECK (status IN ('running', 'finished', 'diverged', 'failed', 'interrupted')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER,
    config      TEXT NOT NULL,
    backend     TEXT NOT NULL,
    summary     TEXT,
    pid         INTEGER,
    host        TEXT,
    proc_start  TEXT
  );
  CREATE INDEX runs_created ON runs (created_at);
  CREATE TABLE metric_keys (kid INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE);
  CREATE TABLE steps (
    rid  INTEGER NOT NULL,
    step INTEGER NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (rid, step)
  ) WITHOUT ROWID;
  CREATE TABLE metrics (
    rid   INTEGER NOT NULL,
    step  INTEGER NOT NULL,
    kid   INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (rid, step, kid)
  ) WITHOUT ROWID;
  -- A list of layer names (JSON array), shared by every step (and run) that logs the same layers.
  CREATE TABLE layer_sets (lsid INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE);
  -- One row per logged step: for each layer of the set, in order, the nine LAYER_FIELDS as little-endian float64
  -- (NaN for a missing deadFrac or satFrac).
  CREATE TABLE layer_stats (
    rid  INTEGER NOT NULL,
    step INTEGER NOT NULL,
    lsid INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (rid, step)
  ) WITHOUT ROWID;
  CREATE TABLE findings (
    fid        INTEGER PRIMARY KEY,
    rid        INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    layers     TEXT NOT NULL,
    evidence   TEXT,
    suggestion TEXT,
    severity   TEXT,
    time       INTEGER NOT NULL
  );
  CREATE INDEX findings_run ON findings (rid, step);
  `,
  // 2: run row ids are never reused (AUTOINCREMENT), so a writer that still holds the id of a removed run can never
  // write into a later run; the sequence starts above every row id any table has seen, and rows left by writers of
  // removed runs are dropped.
  `
  CREATE TABLE runs_v2 (
    rid         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    name        TEXT,
    status      TEXT NOT NULL CHECK (status IN ('running', 'finished', 'diverged', 'failed', 'interrupted')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    finished_at INTEGER,
    config      TEXT NOT NULL,
    backend     TEXT NOT NULL,
    summary     TEXT,
    pid         INTEGER,
    host        TEXT,
    proc_start  TEXT
  );
  INSERT INTO runs_v2 (rid, id, name, status, created_at, updated_at, finished_at, config, backend, summary, pid, host,
                       proc_start)
    SELECT rid, id, name, status, created_at, updated_at, finished_at, config, backend, summary, pid, host, proc_start
    FROM runs;
  DROP TABLE runs;
  ALTER TABLE runs_v2 RENAME TO runs;
  CREATE INDEX runs_created ON runs (created_at);
  DELETE FROM sqlite_sequence WHERE name = 'runs';
  INSERT INTO sqlite_sequence (name, seq) SELECT 'runs', coalesce(max(m), 0) FROM (
    SELECT max(rid) AS m FROM runs UNION ALL SELECT max(rid) FROM steps UNION ALL SELECT max(rid) FROM metrics
    UNION ALL SELECT max(rid) FROM layer_stats UNION ALL SELECT max(rid) FROM findings);
  DELETE FROM steps WHERE rid NOT IN (SELECT rid FROM runs);
  DELETE FROM metrics WHERE rid NOT IN (SELECT rid FROM runs);
  DELETE FROM layer_stats WHERE rid NOT IN (SELECT rid FROM runs);
  DELETE FROM findings WHERE rid NOT IN (SELECT rid FROM runs);
  `,
  // 3: per-layer histograms (track/histograms.ts has the blob's layout); hid keeps the order they were written in.
  `
  CREATE TABLE histograms (
    hid   INTEGER PRIMARY KEY,
    rid   INTEGER NOT NULL,
    step  INTEGER NOT NULL,
    layer TEXT NOT NULL,
    kind  TEXT NOT NULL CHECK (kind IN ('grad', 'weight', 'act')),
    data  BLOB NOT NULL
  );
  CREATE INDEX histograms_run ON histograms (rid, step);
  `,
  // 4: gradient norms through time of the recurrent layers (track/time-flow.ts has the blob's layout): one row per
  // monitored step, recurrent layer and stacked layer/direction (`sub`: l0, l1, l0_reverse).
  `
  CREATE TABLE time_flow (
    rid    INTEGER NOT NULL,
    step   INTEGER NOT NULL,
    layer  TEXT NOT NULL,
    sub    TEXT NOT NULL,
    length INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (rid, step, layer, sub)
  );
  `,
];

/** The oldest schema the reading code understands (a read-only open cannot migrate). */
const MIN_READABLE_VERSION = 1;

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Switches a store's file to WAL. Two processes opening one new store at once (a sweep's first trials) each hold a
 * read lock and want the write lock for the switch: SQLite answers one of them "database is locked" at once, without
 * busy_timeout (waiting would deadlock). That one waits a little and tries again; by then the file is WAL already.
 */
function enableWal(db: Database.Database, busyTimeoutMs: number): void {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; ; waited += 10) {
    try {
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
      return;
    } catch (e) {
      if ((e as { code?: string }).code !== 'SQLITE_BUSY' || waited >= busyTimeoutMs) throw e;
      Atomics.wait(pause, 0, 0, 10);
    }
  }
}

/** Sets the pragmas and brings the schema to {@link SCHEMA_VERSION}. */
export function migrate(db: Database.Database, path: string, readonly: boolean, busyTimeoutMs: number): void {
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  if (!readonly) {
    // NOTE: journal_mode=WAL persists in the file; synchronous=NORMAL is safe against process kills in WAL mode and
    // makes a commit cost microseconds instead of an fsync.
    enableWal(db, busyTimeoutMs);
    db.pragma('synchronous = NORMAL');
  }
  const version = () => db.pragma('user_version', { simple: true }) as number;
  const appId = () => db.pragma('application_id', { simple: true }) as number;
  const check = () => {
    const v = version();
    const a = appId();
    const hasTables = (db.prepare('SELECT count(*) FROM sqlite_schema').pluck().get() as number) > 0;
    if (a !== APPLICATION_ID && (a !== 0 || hasTables)) {
      throw new TrackError('BAD_STORE', `${path} is an SQLite database but not a gradguard run store`);
    }
    if (v > SCHEMA_VERSION) {
      throw new TrackError(
        'STORE_TOO_NEW',
        `${path} was written by a newer gradguard (schema ${v}; this one reads up to ${SCHEMA_VERSION}); upgrade gradguard`,
      );
    }
    return v;
  };
  if (readonly) {
    if (check() < MIN_READABLE_VERSION) {
      throw new TrackError('BAD_STORE', `${path} has no gradguard schema yet; open it once read-write to create it`);
    }
    return;
  }
  if (check() === SCHEMA_VERSION) return;
  db.transaction(() => {
    // Re-read inside the write lock: another process may have migrated meanwhile.
    const v = check();
    for (let i = v; i < MIGRATIONS.length; i++) db.exec(MIGRATIONS[i]!);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
