/**
 * The PostgreSQL run store's schema: everything in the schema `gradguard` (so the database can hold other things,
 * pg-boss's queue among them), its migrations numbered as the SQLite ones (track/schema.ts) so that one
 * SCHEMA_VERSION names both, and applied on open under a transaction-scoped advisory lock, so that two workers
 * opening a fresh database at once migrate it once.
 *
 * Differences from SQLite, and why: row ids are identity columns (never reused, which SQLite's migration 2 had to
 * add); every per-run table references `runs` with ON DELETE CASCADE, so removing a run is one statement and a
 * writer that still holds a removed run's id fails on the foreign key (RUN_REMOVED) instead of writing orphans.
 */
export const PG_SCHEMA = 'gradguard';

/** Advisory lock keys: (LOCK_CLASS, 0) guards migrations; (LOCK_CLASS, rid) is held by a run's live writer. */
export const LOCK_CLASS = 0x6767; // 'gg'

const RUN_REF = 'rid bigint NOT NULL REFERENCES runs (rid) ON DELETE CASCADE';

/** Migrations; `meta.schema_version` = how many have run. Append, never edit; number them as track/schema.ts. */
export const PG_MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE runs (
    rid         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          text NOT NULL UNIQUE,
    name        text,
    status      text NOT NULL CHECK (status IN ('running', 'finished', 'diverged', 'failed', 'interrupted')),
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL,
    finished_at bigint,
    config      text NOT NULL,
    backend     text NOT NULL,
    summary     text,
    pid         integer,
    host        text,
    proc_start  text
  );
  CREATE INDEX runs_created ON runs (created_at);
  CREATE INDEX runs_name ON runs (name);
  CREATE TABLE metric_keys (kid integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key text NOT NULL UNIQUE);
  CREATE TABLE steps (${RUN_REF}, step bigint NOT NULL, time bigint NOT NULL, PRIMARY KEY (rid, step));
  CREATE TABLE metrics (${RUN_REF}, step bigint NOT NULL, kid integer NOT NULL, value double precision,
                        PRIMARY KEY (rid, step, kid));
  CREATE TABLE layer_sets (lsid integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, names text NOT NULL UNIQUE);
  CREATE TABLE layer_stats (${RUN_REF}, step bigint NOT NULL, lsid integer NOT NULL, data bytea NOT NULL,
                            PRIMARY KEY (rid, step));
  CREATE TABLE findings (
    fid        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ${RUN_REF},
    step       bigint NOT NULL,
    kind       text NOT NULL,
    layers     text NOT NULL,
    evidence   text,
    suggestion text,
    severity   text,
    time       bigint NOT NULL
  );
  CREATE INDEX findings_run ON findings (rid, step);
  `,
  // 2: in SQLite, row ids that are never reused; identity columns never reuse theirs.
  'SELECT 1',
  // 3: per-layer histograms (track/histograms.ts has the blob's layout); hid keeps the order they were written in.
  `
  CREATE TABLE histograms (
    hid   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ${RUN_REF},
    step  bigint NOT NULL,
    layer text NOT NULL,
    kind  text NOT NULL CHECK (kind IN ('grad', 'weight', 'act')),
    data  bytea NOT NULL
  );
  CREATE INDEX histograms_run ON histograms (rid, step);
  `,
  // 4: gradient norms through time of the recurrent layers (track/time-flow.ts has the blob's layout).
  `
  CREATE TABLE time_flow (
    ${RUN_REF},
    step   bigint NOT NULL,
    layer  text NOT NULL,
    sub    text NOT NULL,
    length integer NOT NULL,
    data   bytea NOT NULL,
    PRIMARY KEY (rid, step, layer, sub)
  );
  `,
];

/** What `integrityCheck` counts: layer statistics whose size does not fit their layer set, metrics without their step. */
export const INTEGRITY_SQL = `SELECT
  (SELECT count(*) FROM layer_stats s JOIN layer_sets l USING (lsid)
    WHERE length(s.data) <> 72 * json_array_length(l.names::json)) AS bad_layers,
  (SELECT count(*) FROM metrics m WHERE NOT EXISTS
    (SELECT 1 FROM steps s WHERE s.rid = m.rid AND s.step = m.step)) AS orphan_metrics`;

/** `'ok'`, or the problems that {@link INTEGRITY_SQL} counted, one a line. */
export function integrityProblems([badLayers, orphans]: [number, number]): string {
  const problems = [
    ...(badLayers ? [`${badLayers} layer statistics rows have the wrong size for their layer set`] : []),
    ...(orphans ? [`${orphans} metric rows have no step row`] : []),
  ];
  return problems.length ? problems.join('\n') : 'ok';
}
