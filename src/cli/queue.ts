/**
 * The sweep queue: distributed sweeps on pg-boss 10, on the same PostgreSQL as the run store (one service to run).
 *
 * - `gradguard_queue.sweep` and `gradguard_queue.trial` hold what a sweep is and where each trial stands (queued,
 *   running, done, failed), its run id and its result. A trial's result is written once: the update that records it
 *   requires the trial to be running under the recording worker's lease, and it completes the trial's pg-boss job in
 *   the same transaction.
 * - pg-boss (schema `gradguard_boss`, queue `gradguard-trials`) carries one job per trial and does the fetching
 *   (`FOR UPDATE SKIP LOCKED`: a job goes to one worker), the retries and its own maintenance.
 * - A worker holds a PostgreSQL advisory lock (session level, on a connection of its own with TCP keepalives) for each
 *   trial it runs. A worker that dies loses its connection, and PostgreSQL releases its locks: any worker, or the
 *   `sweep` that follows the trials, that can take a running trial's lock knows its worker is gone, puts the trial back
 *   and fails its job, which pg-boss retries (the run resumes from its last checkpoint).
 *
 * NOTE: why locks rather than pg-boss's expiry. pg-boss 10 has no heartbeat: an active job is failed (and retried)
 * `expireInSeconds` after it started, alive or not, and its `work()` gives up on a handler after that long too. A
 * short expiry would retry long trials while they train; a long one would leave a dead worker's trial for hours. So
 * the jobs here expire after 23 hours (pg-boss allows less than 24), a backstop only, and liveness is the lock: held
 * as long as the worker's connection lives, however long the trial, and released as soon as PostgreSQL sees the
 * connection go (at once when the process dies; within about 25 s of keepalives when its machine vanishes). The
 * check runs every `CHECK_SECONDS` in every worker and follower.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { decodeNumber, encodeNumber, isNonFiniteString } from '../base/json.js';
import { UsageError } from './errors.js';

/** The pg-boss queue of trials. */
export const QUEUE = 'gradguard-trials';
/** The schema of pg-boss's own tables. */
const BOSS_SCHEMA = 'gradguard_boss';
/** The first key of every trial's advisory lock (the second is the trial's row id): "ggtr". */
const LOCK_SPACE = 0x67677472;
/** How often a trial whose worker died is retried before it is recorded as failed. */
export const RETRY_LIMIT = 3;
/** pg-boss's expiry of an active job: a backstop only (liveness is the advisory lock; see the NOTE above). */
const EXPIRE_SECONDS = 23 * 3600;
/** How often workers and followers look for trials whose worker died (seconds). */
export const CHECK_SECONDS = 5;
/** The NOTIFY channel: the payload is the sweep id whose trials changed. */
const CHANNEL = 'gradguard_queue';
/** The version of the tables below; a database with a newer one is refused. */
const SCHEMA_VERSION = 1;

const MIGRATION = `
CREATE SCHEMA IF NOT EXISTS gradguard_queue;
CREATE TABLE IF NOT EXISTS gradguard_queue.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS gradguard_queue.sweep (
  id text PRIMARY KEY,
  kind text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  spec jsonb NOT NULL,
  size int NOT NULL
);
CREATE TABLE IF NOT EXISTS gradguard_queue.trial (
  id serial PRIMARY KEY,
  sweep_id text NOT NULL REFERENCES gradguard_queue.sweep (id) ON DELETE CASCADE,
  idx int NOT NULL,
  params jsonb NOT NULL,
  sets jsonb NOT NULL,
  config jsonb NOT NULL,
  name text NOT NULL,
  state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done', 'failed')),
  job_id uuid NOT NULL,
  lease uuid,
  worker text,
  attempts int NOT NULL DEFAULT 0,
  run_id text,
  result jsonb,
  error text,
  bug boolean NOT NULL DEFAULT false,
  started_at timestamptz,
  finished_at timestamptz,
  UNIQUE (sweep_id, idx)
);
CREATE INDEX IF NOT EXISTS trial_running ON gradguard_queue.trial (state) WHERE state = 'running';
`;

/** Where a trial stands. */
export type TrialState = 'queued' | 'running' | 'done' | 'failed';

/** A trial as the queue holds it. */
export interface QueuedTrial {
  id: number;
  sweep: string;
  index: number;
  params: Record<string, unknown>;
  sets: string[];
  config: unknown;
  name: string;
  state: TrialState;
  jobId: string;
  worker: string | null;
  attempts: number;
  run: string | null;
  /** The recorded result: a sweep's `TrialRow`, a doctor trial's probe outcome. */
  result: unknown;
  error: string | null;
  bug: boolean;
  /** The sweep's kind (`sweep`, `doctor`) and spec. */
  kind: string;
  spec: Record<string, unknown>;
}

/** A sweep as the queue holds it. */
export interface SweepInfo {
  id: string;
  kind: string;
  createdAt: number;
  size: number;
  spec: Record<string, unknown>;
}

/** What `enqueue` takes per trial. */
export interface TrialSpec {
  index: number;
  params: Record<string, unknown>;
  sets: string[];
  config: unknown;
  name: string;
}

/** A queue URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(the --queue URL)';
  }
}

/** Checks a `--queue` URL: a postgres:// or postgresql:// URL. */
export function checkQueueUrl(url: string): void {
  if (!/^postgres(ql)?:\/\//.test(url))
    throw new UsageError(
      `--queue ${redactUrl(url)}: give a PostgreSQL URL, postgres://user@host:5432/db (password from the URL or PGPASSWORD)`,
    );
}

/** A sweep id: UTC time and 6 random hex digits, `sw-20261203-104512-3fa9c1`. */
export function newSweepId(now: number = Date.now()): string {
  const iso = new Date(now).toISOString();
  return `sw-${iso.slice(0, 10).replace(/-/g, '')}-${iso.slice(11, 19).replace(/:/g, '')}-${randomBytes(3).toString('hex')}`;
}

/** A result as JSON text, its non-finite numbers as their strings (base/json.ts). */
function encodeResult(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'number' ? encodeNumber(x) : x));
}

/** A stored result with its non-finite numbers decoded (the inverse of `encodeResult`). */
function decodeResult(v: unknown): unknown {
  if (isNonFiniteString(v)) return decodeNumber(v);
  if (Array.isArray(v)) return v.map(decodeResult);
  if (v !== null && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, decodeResult(x)]));
  return v;
}

function toTrial(r: Record<string, unknown>): QueuedTrial {
  return {
    id: r.id as number,
    sweep: r.sweep_id as string,
    index: r.idx as number,
    params: r.params as Record<string, unknown>,
    sets: r.sets as string[],
    config: r.config,
    name: r.name as string,
    state: r.state as TrialState,
    jobId: r.job_id as string,
    worker: (r.worker as string | null) ?? null,
    attempts: r.attempts as number,
    run: (r.run_id as string | null) ?? null,
    result: r.result === null ? null : decodeResult(r.result),
    kind: (r.kind as string | undefined) ?? 'sweep',
    spec: (r.spec as Record<string, unknown> | undefined) ?? {},
    error: (r.error as string | null) ?? null,
    bug: r.bug as boolean,
  };
}

/** A pg-boss `db` that runs its statements on one client (inside that client's transaction). */
function onClient(client: pg.PoolClient): PgBoss.Db {
  return { executeSql: (text, values) => client.query(text, values) };
}

/**
 * A connection to the sweep queue: a pool for queries and transactions, pg-boss on that pool, and (for workers and
 * followers) a connection of its own for the trials' advisory locks.
 */
export class SweepQueue {
  /** This process, as recorded in the trials it runs. */
  readonly me = `${hostname()}:${process.pid}`;
  private lockClient: pg.Client | null = null;
  private lockChain: Promise<unknown> = Promise.resolve();
  private listener: pg.Client | null = null;
  /** Ids of the trials this process runs (never judged dead by its own check). */
  readonly mine = new Set<number>();

  private constructor(
    readonly url: string,
    private readonly pool: pg.Pool,
    readonly boss: PgBoss,
  ) {}

  /**
   * Opens the queue at `url`: connects, creates or checks its tables, starts pg-boss (whose maintenance then runs in
   * this process too) and makes sure the trials' queue exists.
   * @throws UsageError (one line, the URL without its password) when the server cannot be reached or refuses
   */
  static async open(url: string, options: { supervise?: boolean } = {}): Promise<SweepQueue> {
    checkQueueUrl(url);
    const pool = new pg.Pool({ connectionString: url, max: 4, keepAlive: true });
    pool.on('error', () => {}); // an idle client's error: the next query reports it
    try {
      await migrate(pool);
      const boss = new PgBoss({
        db: { executeSql: (text, values) => pool.query(text, values) },
        schema: BOSS_SCHEMA,
        schedule: false,
        supervise: options.supervise ?? true,
      });
      boss.on('error', () => {}); // maintenance errors are retried by pg-boss on its next round
      await boss.start();
      if (!(await boss.getQueue(QUEUE))) {
        try {
          await boss.createQueue(QUEUE, {
            name: QUEUE,
            retryLimit: RETRY_LIMIT,
            retryDelay: 0,
            expireInSeconds: EXPIRE_SECONDS,
          });
        } catch (e) {
          if (!(await boss.getQueue(QUEUE))) throw e; // else another process created it first
        }
      }
      return new SweepQueue(url, pool, boss);
    } catch (e) {
      await pool.end().catch(() => {});
      throw queueError(url, e);
    }
  }

  /** Stops pg-boss and closes every connection (a worker's locks are released with its lock connection). */
  async close(): Promise<void> {
    await this.boss.stop({ graceful: false, close: false, wait: true, timeout: 1000 }).catch(() => {});
    await this.listener?.end().catch(() => {});
    await this.lockClient?.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }

  /** Runs `fn` in one transaction on one client. */
  async transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const r = await fn(client);
      await client.query('COMMIT');
      return r;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      client.release();
    }
  }

  /** Records a sweep and its trials and queues one job per trial, in one transaction; returns the sweep id. */
  async enqueue(
    kind: string,
    spec: Record<string, unknown>,
    makeTrials: (id: string) => readonly TrialSpec[],
  ): Promise<string> {
    const id = newSweepId();
    const trials = makeTrials(id);
    await this.transaction(async (c) => {
      await c.query('INSERT INTO gradguard_queue.sweep (id, kind, spec, size) VALUES ($1, $2, $3, $4)', [
        id,
        kind,
        spec,
        trials.length,
      ]);
      const jobs: { id: string; name: string; priority: number; data: { sweep: string; trial: number } }[] = [];
      for (const t of trials) {
        const jobId = randomUUID();
        const row = await c.query(
          `INSERT INTO gradguard_queue.trial (sweep_id, idx, params, sets, config, name, job_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
          [id, t.index, t.params, JSON.stringify(t.sets), t.config, t.name, jobId],
        );
        // pg-boss takes the highest priority first: the trials in their order
        jobs.push({
          id: jobId,
          name: QUEUE,
          priority: trials.length - t.index,
          data: { sweep: id, trial: row.rows[0].id },
        });
      }
      await this.boss.insert(jobs, { db: onClient(c) });
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, id]);
    });
    return id;
  }

  /** The sweep `id` (a unique prefix works). @throws UsageError when there is none, or the prefix is ambiguous */
  async sweep(id: string): Promise<SweepInfo> {
    const r = await this.pool.query(
      'SELECT id, kind, created_at, size, spec FROM gradguard_queue.sweep WHERE id LIKE $1 ORDER BY id LIMIT 2',
      [`${id.replace(/[\\%_]/g, '\\$&')}%`],
    );
    if (r.rows.length === 0)
      throw new UsageError(`sweep --status ${id}: no such sweep in the queue at ${redactUrl(this.url)}`);
    if (r.rows.length > 1)
      throw new UsageError(`sweep --status ${id}: more than one sweep starts with that; give more of its id`);
    const s = r.rows[0] as Record<string, unknown>;
    return {
      id: s.id as string,
      kind: s.kind as string,
      createdAt: (s.created_at as Date).getTime(),
      size: s.size as number,
      spec: s.spec as Record<string, unknown>,
    };
  }

  /** The trials of sweep `id`, in order. */
  async trials(id: string): Promise<QueuedTrial[]> {
    const r = await this.pool.query(
      `SELECT t.*, s.kind, s.spec FROM gradguard_queue.trial t JOIN gradguard_queue.sweep s ON s.id = t.sweep_id
         WHERE t.sweep_id = $1 ORDER BY t.idx`,
      [id],
    );
    return r.rows.map(toTrial);
  }

  /** Calls `onChange(sweepId)` whenever a worker records a change to a trial (LISTEN/NOTIFY). */
  async listen(onChange: (sweep: string) => void): Promise<void> {
    this.listener = new pg.Client({ connectionString: this.url, keepAlive: true });
    this.listener.on('error', () => {}); // the follower's periodic check still reads the table
    await this.listener.connect();
    this.listener.on('notification', (n) => onChange(n.payload ?? ''));
    await this.listener.query(`LISTEN ${CHANNEL}`);
  }

  /** Runs `fn` with the lock connection, one call at a time (its locks are re-entrant, so order matters). */
  private withLocks<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
    const run = this.lockChain.then(async () => {
      if (!this.lockClient) {
        const c = new pg.Client({ connectionString: this.url, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
        await c.connect();
        // the server notices a vanished machine within about 25 s (not the system's default two hours)
        await c.query('SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3');
        c.on('error', (e) => this.onLockLost?.(e));
        this.lockClient = c;
      }
      return fn(this.lockClient);
    });
    this.lockChain = run.catch(() => {});
    return run;
  }

  /** Called when the lock connection fails: this process no longer owns its trials and must stop them. */
  onLockLost: ((e: Error) => void) | null = null;

  /**
   * Takes the next trial from the queue: fetches its job, takes the trial's lock and marks it running under a new
   * lease, all in one transaction (a worker that dies half-way leaves the job and the trial as they were). Returns
   * the trial and its lease; null when the queue is empty, or when the job's trial needs no run (it has a result
   * already, or a live worker holds it), whose job is then completed.
   */
  async claimNext(): Promise<{ trial: QueuedTrial; lease: string } | null | 'empty'> {
    let lockedId: number | null = null;
    try {
      return await this.transaction(async (c) => {
        const [job] = await this.boss.fetch<{ sweep: string; trial: number }>(QUEUE, { db: onClient(c) });
        if (!job) return 'empty' as const;
        const id = job.data.trial;
        this.mine.add(id);
        const locked = await this.withLocks(
          async (l) => (await l.query('SELECT pg_try_advisory_lock($1, $2) AS ok', [LOCK_SPACE, id])).rows[0].ok,
        );
        if (!locked) {
          this.mine.delete(id);
          await this.boss.complete(QUEUE, job.id, { skipped: 'a live worker holds this trial' }, { db: onClient(c) });
          return null;
        }
        lockedId = id;
        const r = await c.query(
          `SELECT t.*, s.kind, s.spec FROM gradguard_queue.trial t JOIN gradguard_queue.sweep s ON s.id = t.sweep_id
             WHERE t.id = $1 FOR UPDATE OF t`,
          [id],
        );
        const t = r.rows[0] ? toTrial(r.rows[0]) : null;
        if (!t || t.state === 'done' || t.state === 'failed') {
          // recorded already (its worker died between recording and completing) or removed: nothing to run
          await this.boss.complete(QUEUE, job.id, { skipped: 'recorded already' }, { db: onClient(c) });
          return null;
        }
        const lease = randomUUID();
        const u = await c.query(
          `UPDATE gradguard_queue.trial SET state = 'running', lease = $2, worker = $3, attempts = attempts + 1,
             job_id = $4, started_at = now(), error = NULL WHERE id = $1 RETURNING *`,
          [id, lease, this.me, job.id],
        );
        await c.query('SELECT pg_notify($1, $2)', [CHANNEL, t.sweep]);
        lockedId = null; // ours now, until `record` or `handBack` releases it
        return { trial: toTrial({ ...u.rows[0], kind: t.kind, spec: t.spec }), lease };
      });
    } finally {
      if (lockedId !== null) await this.release(lockedId);
    }
  }

  /** Records the run a claimed trial writes to (so a retry resumes it). */
  async setRun(trial: QueuedTrial, lease: string, run: string): Promise<void> {
    await this.pool.query('UPDATE gradguard_queue.trial SET run_id = $3 WHERE id = $1 AND lease = $2', [
      trial.id,
      lease,
      run,
    ]);
  }

  /**
   * Records a claimed trial's result and completes its job, in one transaction, once: only while the trial is still
   * running under `lease`. Returns false when the lease was lost (the trial was judged dead and handed on).
   */
  async record(
    trial: QueuedTrial,
    lease: string,
    outcome: { result: unknown; error: string | null; run: string | null },
    bug: boolean,
  ): Promise<boolean> {
    const ok = await this.transaction(async (c) => {
      const u = await c.query(
        `UPDATE gradguard_queue.trial SET state = $3, result = $4, error = $5, bug = $6, run_id = COALESCE($7, run_id),
           finished_at = now() WHERE id = $1 AND lease = $2 AND state = 'running'`,
        [
          trial.id,
          lease,
          outcome.error ? 'failed' : 'done',
          encodeResult(outcome.result),
          outcome.error,
          bug,
          outcome.run,
        ],
      );
      if (u.rowCount !== 1) return false;
      await this.boss.complete(QUEUE, trial.jobId, {}, { db: onClient(c) });
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, trial.sweep]);
      return true;
    });
    await this.release(trial.id);
    return ok;
  }

  /** Hands a claimed trial back to the queue (this worker is stopping): its job is retried elsewhere. */
  async handBack(trial: QueuedTrial, lease: string, why: string): Promise<void> {
    await this.transaction(async (c) => {
      const u = await c.query(
        `UPDATE gradguard_queue.trial SET state = 'queued', lease = NULL, worker = NULL
           WHERE id = $1 AND lease = $2 AND state = 'running'`,
        [trial.id, lease],
      );
      if (u.rowCount === 1) {
        await this.boss.fail(QUEUE, trial.jobId, { message: why }, { db: onClient(c) });
        await c.query('SELECT pg_notify($1, $2)', [CHANNEL, trial.sweep]);
      }
    });
    await this.release(trial.id);
  }

  private async release(id: number): Promise<void> {
    this.mine.delete(id);
    await this.withLocks((c) => c.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_SPACE, id]));
  }

  /**
   * Finds running trials whose worker is gone (their lock is free) and hands each back: its job fails, and pg-boss
   * retries it, or, after `RETRY_LIMIT` retries, the trial is recorded as failed. Returns how many it handed back.
   */
  async reapDead(): Promise<number> {
    const r = await this.pool.query("SELECT id FROM gradguard_queue.trial WHERE state = 'running'");
    let n = 0;
    for (const { id } of r.rows as { id: number }[]) {
      if (this.mine.has(id)) continue;
      const free = await this.withLocks(
        async (c) => (await c.query('SELECT pg_try_advisory_lock($1, $2) AS ok', [LOCK_SPACE, id])).rows[0].ok,
      );
      if (!free) continue;
      try {
        if (await this.handBackDead(id)) n++;
      } finally {
        await this.withLocks((c) => c.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_SPACE, id]));
      }
    }
    return n;
  }

  /** Hands back trial `id`, known dead (this process holds its lock); false when it was no longer running. */
  private handBackDead(id: number): Promise<boolean> {
    return this.transaction(async (c) => {
      const r = await c.query("SELECT * FROM gradguard_queue.trial WHERE id = $1 AND state = 'running' FOR UPDATE", [
        id,
      ]);
      if (!r.rows[0]) return false;
      const t = toTrial(r.rows[0]);
      const job = await this.boss.getJobById(QUEUE, t.jobId, { db: onClient(c), includeArchive: false });
      const exhausted = job !== null && job.retryCount >= job.retryLimit;
      const why = `its worker ${t.worker ?? '?'} died`;
      if (exhausted) {
        await c.query(
          `UPDATE gradguard_queue.trial SET state = 'failed', lease = NULL, error = $2, finished_at = now(), result = NULL
             WHERE id = $1`,
          [id, `${why}, ${t.attempts} attempts in all (the most is ${RETRY_LIMIT + 1})`],
        );
      } else {
        await c.query(
          "UPDATE gradguard_queue.trial SET state = 'queued', lease = NULL, worker = NULL, error = $2 WHERE id = $1",
          [id, `${why}; retried`],
        );
      }
      await this.boss.fail(QUEUE, t.jobId, { message: why }, { db: onClient(c) });
      await c.query('SELECT pg_notify($1, $2)', [CHANNEL, t.sweep]);
      return true;
    });
  }
}

/** Creates or checks the queue's tables, one process at a time. */
async function migrate(pool: pg.Pool): Promise<void> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1, 0)', [LOCK_SPACE]);
    await c.query(MIGRATION);
    const v = await c.query("SELECT value FROM gradguard_queue.meta WHERE key = 'version'");
    const have = v.rows[0] ? Number(v.rows[0].value) : 0;
    if (have > SCHEMA_VERSION)
      throw new UsageError(
        `the queue's tables are version ${have}, newer than this gradguard knows (${SCHEMA_VERSION}); upgrade gradguard on this machine`,
      );
    if (have < SCHEMA_VERSION)
      await c.query(
        "INSERT INTO gradguard_queue.meta (key, value) VALUES ('version', $1) ON CONFLICT (key) DO UPDATE SET value = $1",
        [String(SCHEMA_VERSION)],
      );
    await c.query('COMMIT');
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

/** A connection failure as one line naming the server (never its password) and what to check; else `e` itself. */
export function queueError(url: string, e: unknown): unknown {
  if (e instanceof UsageError) return e;
  const err = e as { code?: string; message?: string };
  const where = redactUrl(url);
  if (err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' || err.code === 'ETIMEDOUT')
    return new UsageError(`--queue ${where}: cannot reach the PostgreSQL server (${err.code}); is it running there?`);
  if (
    err.code === 'ECONNRESET' ||
    err.code === 'EPIPE' ||
    (typeof err.code === 'string' && /^(08|57P0)/.test(err.code))
  )
    return new UsageError(
      `--queue ${where}: lost the connection to the PostgreSQL server (${err.code}); start the worker again once it is back`,
    );
  if (err.message === 'Connection terminated unexpectedly')
    return new UsageError(
      `--queue ${where}: lost the connection to the PostgreSQL server; start the worker again once it is back`,
    );
  if (typeof err.code === 'string' && /^(28|3D|42501)/.test(err.code))
    return new UsageError(`--queue ${where}: the server refused: ${err.message ?? err.code}`);
  return e;
}
