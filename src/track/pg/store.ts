/**
 * `PgStore`: the run store in a PostgreSQL database, shared by every machine of a team (`--store
 * postgres://user:password@host:5432/db`, or `GRADGUARD_STORE`). Same contract as the SQLite store (store.ts,
 * store-api.ts), with these differences:
 *
 * - **Steps are written in the background.** `logStep` returns at once; the steps of up to 50 ms go to the
 *   connection's thread together and are written in one statement (link.ts, worker.ts). Every other call waits
 *   for the steps before it, so `hasRun` (the trainer's check before each checkpoint) and `finishRun` are flushes: a
 *   checkpoint never names a step the store does not have. A process killed outright loses the steps logged since the
 *   last flush, which a resume from the checkpoint drops anyway.
 * - **Liveness by the server, not by pid.** A run's writer holds a session advisory lock on (LOCK_CLASS, rid) while it
 *   writes the run; a `running` run whose lock nobody holds has lost its writer (the server releases a dead
 *   connection's locks; TCP keepalives find a vanished machine in about a minute) and reads back `interrupted`. A run
 *   written on another machine is therefore alive exactly as long as its writer is, whatever its pid means here.
 * - **Checkpoints in a shared directory**, `?checkpoints=/shared/dir` in the URL or `GRADGUARD_CHECKPOINTS` (default
 *   ./gradguard-runs): the same atomic checkpoint directories as with SQLite, under `<dir>/checkpoints/<run id>/`.
 * - **Credentials** come from the URL or the PG* variables and are never shown: `path` is the URL without its
 *   password, and every error from the server or the client is scrubbed of it.
 */
import { hostname } from 'node:os';
import type { LayerHistograms } from '../../monitor/histogram.js';
import type { TimeFlow } from '../../monitor/through-time.js';
import { decodeHistogram, type HistogramRow } from '../histograms.js';
import { checkRunId, newRunId } from '../ids.js';
import { encodeLayers } from '../layer-blob.js';
import { readProcStart } from '../process.js';
import type { CreateRunOptions, LayerReadOptions, ListFilter, OpenOptions, ReadOptions, Store } from '../store-api.js';
import { removedError } from '../store-files.js';
import {
  checkBackend,
  checkFinalStatus,
  checkFinding,
  checkFromStep,
  checkLayerBlob,
  checkStep,
  decodeLayerRows,
  filterRuns,
  layerFieldColumn,
  layerMatrix,
  layerSetKey,
  matchError,
  metricColumns,
  type RunRow,
  rowToInfo,
  runIdText,
} from '../store-rows.js';
import { encodeSummary } from '../summary.js';
import { decodeTimeFlow, type TimeFlowRow } from '../time-flow.js';
import {
  type Finding,
  type FindingRow,
  type LayerField,
  type LayerMatrix,
  type LayerStat,
  type LayerStatRow,
  type MetricSeries,
  type RunInfo,
  type RunStatus,
  type RunSummary,
  TrackError,
} from '../types.js';
import { histogramStatements, timeFlowStatements } from './blobs.js';
import { isConnectionError, openError, pgError, pgWriteError } from './errors.js';
import { PgLink } from './link.js';
import { INTEGRITY_SQL, integrityProblems, LOCK_CLASS } from './schema.js';
import { type PgSpec, parsePgSpec } from './url.js';
import type { QueryResult, Statement, StepMessage } from './worker.js';

export { isPostgresUrl, storeSpecFromEnv } from './url.js';

interface PgRunRow extends RunRow {
  /** Whether a session holds the run's writer lock. */
  alive: boolean;
}

/** Whether a session holds the writer lock of run `r` (advisory locks with two int4 keys have objsubid 2). */
const ALIVE = `EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND l.classid = ${LOCK_CLASS} AND l.objid = r.rid::oid)`;

const RUN_COLUMNS = `SELECT r.*,
  (SELECT s.step FROM steps s WHERE s.rid = r.rid ORDER BY s.step DESC LIMIT 1) AS max_step,
  (SELECT s.time FROM steps s WHERE s.rid = r.rid ORDER BY s.step DESC LIMIT 1) AS last_time,
  ${ALIVE} AS alive
  FROM runs r`;

/**
 * Steps are posted to the connection's thread in batches of up to this many ms (or BATCH_MAX steps). NOTE: a message
 * per step woke the thread per step, and a transaction per step cost a round trip and a commit each: at the
 * headline's few ms per step, that took as much CPU again as the training (bench/store-write.ts). A reader (the
 * dashboard) sees a step at most this much later; every other call posts what is pending first.
 */
const BATCH_MS = 50;
const BATCH_MAX = 256;

/** The tables whose rows belong to a run step by step (a resume from a checkpoint truncates them). */
const STEP_TABLES = ['steps', 'metrics', 'layer_stats', 'findings', 'histograms', 'time_flow'];

interface WriteTarget {
  id: string;
  rid: number;
}

export class PgStore implements Store {
  readonly dir: string;
  readonly path: string;
  readonly readonly: boolean;
  private readonly spec: PgSpec;
  private readonly link: PgLink;
  private readonly targets = new Map<string, WriteTarget>();
  private readonly metricKeys = new Map<number, string>();
  private readonly layerSets = new Map<number, string[]>();
  /** Layer-set JSON by the names joined with newlines (what a step sends). */
  private readonly layerJson = new Map<string, string>();
  private readonly host = hostname();
  private readonly ownStart = readProcStart(process.pid);
  private closed = false;
  /** Steps logged and not yet posted, the time the first of them was, and the timer that posts them. */
  private pending: StepMessage[] = [];
  private pendingSince = 0;
  private timer: NodeJS.Timeout | null = null;

  private constructor(spec: PgSpec, link: PgLink, readonly: boolean) {
    this.spec = spec;
    this.link = link;
    this.readonly = readonly;
    this.path = spec.shown;
    this.dir = spec.checkpoints;
  }

  /**
   * Connects, and (unless read-only) creates or migrates the store's schema.
   * @throws TrackError `STORE_UNAVAILABLE` (server unreachable, login refused, no such database), `NO_STORE`,
   *   `BAD_STORE`, `STORE_TOO_NEW`
   */
  static open(url: string, options: OpenOptions = {}): PgStore {
    const readonly = options.readonly ?? false;
    const spec = parsePgSpec(url);
    const link = new PgLink();
    try {
      link.call('connect', spec.connection, readonly, !readonly && (options.create ?? true));
    } catch (err) {
      try {
        link.close();
      } catch {}
      throw openError(err as Error & { code?: string; track?: string }, spec);
    }
    return new PgStore(spec, link, readonly);
  }

  createRun(options: CreateRunOptions): string {
    this.checkWritable();
    checkBackend(options.backend);
    const config = JSON.stringify(options.config ?? null);
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      const id = newRunId(now);
      try {
        // The row and its writer lock in one statement: the run is never `running` without a live writer.
        const r = this.query({
          sql: `WITH r AS (
                  INSERT INTO runs (id, name, status, created_at, updated_at, config, backend, pid, host, proc_start)
                  VALUES ($1, $2, 'running', $3, $3, $4, $5, $6, $7, $8) RETURNING rid)
                SELECT rid, pg_advisory_lock(${LOCK_CLASS}, rid::int) FROM r`,
          params: [id, options.name ?? null, now, config, options.backend, process.pid, this.host, this.ownStart],
        });
        const rid = (r.rows[0] as [number])[0];
        this.targets.set(id, { id, rid });
        return id;
      } catch (err) {
        // Two runs created in the same second drew the same 16 random bits: draw again.
        if ((err as { code?: string }).code !== '23505' || attempt >= 20) throw this.writeError(err);
      }
    }
  }

  logStep(id: string, step: number, metrics: Record<string, number>, layers?: readonly LayerStat[]): void {
    const t = this.target(id);
    checkStep(step, metrics);
    this.checkBackground(t);
    const keys = Object.keys(metrics);
    const values = keys.map((k) => metrics[k]!);
    const now = Date.now();
    if (layers === undefined) {
      this.queueStep({ t: 'step', rid: t.rid, step, time: now, keys, values });
      return;
    }
    const key = layerSetKey(layers);
    let names = this.layerJson.get(key);
    if (names === undefined) this.layerJson.set(key, (names = JSON.stringify(layers.map((l) => l.name))));
    // A copy of exactly the blob's bytes: a pooled Buffer would carry its whole 8 KiB pool across the thread.
    const blob = new Uint8Array(encodeLayers(layers));
    this.queueStep({ t: 'step', rid: t.rid, step, time: now, keys, values, names, blob });
  }

  /** Adds a step to the batch, posting the batch when it is full or old enough (a timer posts it otherwise). */
  private queueStep(m: StepMessage): void {
    if (this.pending.length === 0) {
      this.pendingSince = m.time;
      this.timer = setTimeout(() => this.post(), BATCH_MS);
      this.timer.unref();
    }
    this.pending.push(m);
    if (this.pending.length >= BATCH_MAX || m.time - this.pendingSince >= BATCH_MS) this.post();
  }

  /** Posts the pending steps to the connection's thread. */
  private post(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0 || this.closed) return;
    const steps = this.pending;
    this.pending = [];
    this.link.send(steps);
  }

  logHistograms(id: string, step: number, layers: readonly LayerHistograms[]): void {
    const t = this.target(id);
    this.write(t, histogramStatements(t.rid, step, layers));
  }

  getHistograms(idOrPrefix: string, options: ReadOptions = {}): HistogramRow[] {
    const rid = this.resolve(idOrPrefix).rid;
    const r = this.query({
      sql: 'SELECT step, layer, kind, data FROM histograms WHERE rid = $1 AND step >= $2 ORDER BY step, hid',
      params: [rid, options.fromStep ?? 0],
    });
    return (r.rows as [number, string, HistogramRow['kind'], Uint8Array][]).map(([step, layer, kind, data]) => ({
      step,
      layer,
      kind,
      hist: decodeHistogram(Buffer.from(data.buffer, data.byteOffset, data.byteLength), this.path),
    }));
  }

  logTimeFlow(id: string, step: number, flows: readonly TimeFlow[]): void {
    const t = this.target(id);
    this.write(t, timeFlowStatements(t.rid, step, flows));
  }

  getTimeFlow(idOrPrefix: string, options: ReadOptions = {}): TimeFlowRow[] {
    const rid = this.resolve(idOrPrefix).rid;
    const r = this.query({
      sql: `SELECT step, layer, sub, length, data FROM time_flow WHERE rid = $1 AND step >= $2
            ORDER BY step, layer COLLATE "C", sub COLLATE "C"`,
      params: [rid, options.fromStep ?? 0],
    });
    return (r.rows as [number, string, string, number, Uint8Array][]).map(([step, layer, sub, length, data]) => ({
      step,
      layer,
      sub,
      length,
      ...decodeTimeFlow(Buffer.from(data.buffer, data.byteOffset, data.byteLength), this.path),
    }));
  }

  setSummary(id: string, summary: RunSummary): void {
    const t = this.target(id);
    const [done] = this.write(t, [
      {
        sql: 'UPDATE runs SET summary = $1, updated_at = $2 WHERE rid = $3',
        params: [encodeSummary(summary), Date.now(), t.rid],
      },
    ]);
    if (done!.rowCount === 0) throw removedError(t.id, this.path);
  }

  logFinding(id: string, step: number, finding: Finding): void {
    const t = this.target(id);
    checkFinding(finding);
    const now = Date.now();
    this.write(t, [
      {
        sql: `INSERT INTO findings (rid, step, kind, layers, evidence, suggestion, severity, time)
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        params: [
          t.rid,
          step,
          finding.kind,
          JSON.stringify(finding.layers ?? []),
          finding.evidence === undefined ? null : JSON.stringify(finding.evidence),
          finding.suggestion ?? null,
          finding.severity ?? null,
          now,
        ],
      },
      { sql: 'UPDATE runs SET updated_at = $1 WHERE rid = $2', params: [now, t.rid] },
    ]);
  }

  finishRun(id: string, status: Exclude<RunStatus, 'running'>, summary: RunSummary = {}): void {
    const t = this.target(id);
    checkFinalStatus(status);
    this.checkBackground(t);
    const now = Date.now();
    const [done] = this.write(t, [
      {
        sql: 'UPDATE runs SET status = $1, updated_at = $2, finished_at = $2, summary = $3 WHERE rid = $4',
        params: [status, now, encodeSummary(summary), t.rid],
      },
    ]);
    // The writer lock goes with the run's end (a resume elsewhere may take it); session locks stack, so all of them.
    const unlock = { sql: `SELECT pg_advisory_unlock(${LOCK_CLASS}, $1::int)`, params: [t.rid] };
    for (let i = 0; i < 16 && (this.query(unlock).rows[0] as [boolean])[0]; i++);
    if (done!.rowCount === 0) throw removedError(t.id, this.path);
  }

  hasRun(id: string): boolean {
    this.checkOpen();
    const t = this.targets.get(id);
    if (t) this.checkBackground(t, false);
    return this.query({ sql: 'SELECT 1 FROM runs WHERE id = $1', params: [id] }).rows.length > 0;
  }

  resumeRun(idOrPrefix: string, options: { fromStep?: number | undefined } = {}): string {
    this.checkWritable();
    const row = this.resolve(idOrPrefix);
    const from = options.fromStep;
    checkFromStep(from);
    const locked = this.query({ sql: `SELECT pg_try_advisory_lock(${LOCK_CLASS}, $1::int)`, params: [row.rid] });
    if (!(locked.rows[0] as [boolean])[0]) {
      throw new TrackError(
        'RUN_ACTIVE',
        `run ${row.id} is still running (pid ${row.pid} on ${row.host}); it cannot be resumed twice`,
      );
    }
    const statements: Statement[] =
      from === undefined
        ? []
        : STEP_TABLES.map((table) => ({
            sql: `DELETE FROM ${table} WHERE rid = $1 AND step > $2`,
            params: [row.rid, from],
          }));
    statements.push({
      sql: `UPDATE runs SET status = 'running', updated_at = $1, finished_at = NULL, pid = $2, host = $3,
            proc_start = $4 WHERE rid = $5`,
      params: [Date.now(), process.pid, this.host, this.ownStart, row.rid],
    });
    this.write({ id: row.id, rid: row.rid }, statements);
    this.targets.set(row.id, { id: row.id, rid: row.rid });
    return row.id;
  }

  flush(): void {
    this.checkOpen();
    this.query({ sql: 'SELECT 1' });
    const e = this.link.takeWriteError();
    if (e) throw this.writeError(e);
  }

  listRuns(filter: ListFilter = {}): RunInfo[] {
    const rows = this.query({ sql: `${RUN_COLUMNS} ORDER BY r.created_at DESC, r.id DESC`, objects: true })
      .rows as PgRunRow[];
    return filterRuns(
      (function* (self) {
        for (const row of rows) yield self.toInfo(row);
      })(this),
      filter,
    );
  }

  getRun(idOrPrefix: string): RunInfo {
    return this.toInfo(this.resolve(idOrPrefix));
  }

  getMetrics(idOrPrefix: string, options: ReadOptions = {}): MetricSeries {
    const rid = this.resolve(idOrPrefix).rid;
    const from = options.fromStep ?? 0;
    // One snapshot for both queries while a writer goes on.
    this.post();
    const [, steps, metrics] = this.link.tx(
      { sql: 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ' },
      { sql: 'SELECT step, time FROM steps WHERE rid = $1 AND step >= $2 ORDER BY step', params: [rid, from] },
      {
        sql: 'SELECT step, kid, value FROM metrics WHERE rid = $1 AND step >= $2 ORDER BY step, kid',
        params: [rid, from],
      },
    );
    return metricColumns(steps!.rows as [number, number][], metrics!.rows as [number, number, number | null][], (kid) =>
      this.metricKey(kid),
    );
  }

  getLayerStats(idOrPrefix: string, options: LayerReadOptions = {}): LayerStatRow[] {
    const rid = this.resolve(idOrPrefix).rid;
    const order = options.last ? 'ORDER BY step DESC LIMIT 1' : 'ORDER BY step';
    const r = this.query({
      sql: `SELECT step, lsid, data FROM layer_stats WHERE rid = $1 AND step >= $2 ${order}`,
      params: [rid, options.fromStep ?? 0],
    });
    return decodeLayerRows(r.rows as [number, number, Uint8Array][], (lsid, data) => this.layerSet(lsid, data));
  }

  getLayerMatrix(idOrPrefix: string, field: LayerField, options: ReadOptions = {}): LayerMatrix {
    layerFieldColumn(field);
    const rid = this.resolve(idOrPrefix).rid;
    const r = this.query({
      sql: 'SELECT step, lsid, data FROM layer_stats WHERE rid = $1 AND step >= $2 ORDER BY step',
      params: [rid, options.fromStep ?? 0],
    });
    return layerMatrix(field, r.rows as [number, number, Uint8Array][], (lsid, data) => this.layerSet(lsid, data));
  }

  getFindings(idOrPrefix: string): FindingRow[] {
    const rid = this.resolve(idOrPrefix).rid;
    const r = this.query({
      sql: `SELECT step, kind, layers, evidence, suggestion, severity, time FROM findings
            WHERE rid = $1 ORDER BY step, fid`,
      params: [rid],
    });
    return (r.rows as [number, string, string, string | null, string | null, string | null, number][]).map(
      ([step, kind, layers, evidence, suggestion, severity, time]) => ({
        step,
        kind,
        layers: JSON.parse(layers) as string[],
        evidence: evidence === null ? null : JSON.parse(evidence),
        suggestion,
        severity,
        time,
      }),
    );
  }

  deleteRun(idOrPrefix: string, options: { force?: boolean | undefined } = {}): string {
    this.checkWritable();
    const row = this.resolve(idOrPrefix);
    const info = this.toInfo(row);
    if (info.status === 'running' && !options.force) {
      const where = row.host === this.host ? `pid ${row.pid}` : `pid ${row.pid} on ${row.host}`;
      throw new TrackError(
        'RUN_ACTIVE',
        `run ${row.id} is still running (${where}); stop it first, or delete it anyway with --force`,
      );
    }
    // Every per-run table references runs ON DELETE CASCADE.
    this.guard(() => this.query({ sql: 'DELETE FROM runs WHERE rid = $1', params: [row.rid] }));
    this.targets.delete(row.id);
    return row.id;
  }

  /**
   * `'ok'`, or what is wrong: layer statistics whose size does not fit their layer set, metrics without their step.
   * (The server keeps its own pages consistent; this checks what gradguard writes.)
   */
  integrityCheck(): string {
    this.checkOpen();
    return integrityProblems(this.query({ sql: INTEGRITY_SQL }).rows[0] as [number, number]);
  }

  close(): void {
    if (this.closed) return;
    this.post();
    this.closed = true;
    try {
      this.link.close();
    } catch {
      // The connection is gone already; the server released this writer's locks with it.
    }
  }

  // ---------------------------------------------------------------------------------------------------------------

  /** A query (after the steps sent before it), its errors scrubbed of credentials. */
  private query(s: Statement): QueryResult {
    this.checkOpen();
    this.post();
    try {
      return this.link.query(s);
    } catch (err) {
      // A reader (the dashboard, open for days) reconnects once after the server restarted or the network dropped;
      // a writer does not, as its run's writer lock went with the connection.
      if (!this.readonly || !isConnectionError(err as Error)) throw this.mapError(err);
      try {
        this.link.call('connect', this.spec.connection, true, false);
        return this.link.query(s);
      } catch (again) {
        throw this.mapError(again);
      }
    }
  }

  /** Statements of one run in one transaction; a foreign-key failure means the run was removed. */
  private write(t: WriteTarget, statements: Statement[]): QueryResult[] {
    this.checkWritable();
    this.post();
    try {
      return this.link.tx(...statements);
    } catch (err) {
      if ((err as { code?: string }).code === '23503') throw removedError(t.id, this.path);
      throw this.writeError(err);
    }
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw this.writeError(err);
    }
  }

  /** Throws what the background writes found: the run removed, or a write that failed. */
  private checkBackground(t: WriteTarget, removedToo = true): void {
    if (removedToo && this.link.removed.has(t.rid)) throw removedError(t.id, this.path);
    const e = this.link.takeWriteError();
    if (e) throw this.writeError(e);
  }

  private writeError(err: unknown): unknown {
    return pgWriteError(err, this.spec);
  }

  private mapError(err: unknown): unknown {
    return pgError(err, this.spec);
  }

  private metricKey(kid: number): string {
    if (!this.metricKeys.has(kid)) {
      for (const [k, key] of this.query({ sql: 'SELECT kid, key FROM metric_keys' }).rows as [number, string][]) {
        this.metricKeys.set(k, key);
      }
    }
    return this.metricKeys.get(kid) ?? `#${kid}`;
  }

  private layerSet(lsid: number, data: Uint8Array): string[] {
    let names = this.layerSets.get(lsid);
    if (names === undefined) {
      const r = this.query({ sql: 'SELECT names FROM layer_sets WHERE lsid = $1', params: [lsid] });
      names = r.rows.length ? (JSON.parse((r.rows[0] as [string])[0]) as string[]) : [];
      this.layerSets.set(lsid, names);
    }
    checkLayerBlob(names, data, lsid, this.path);
    return names;
  }

  private target(id: string): WriteTarget {
    this.checkWritable();
    let t = this.targets.get(id);
    if (t === undefined) {
      const r = this.query({ sql: 'SELECT rid FROM runs WHERE id = $1', params: [id] });
      if (!r.rows.length) throw new TrackError('UNKNOWN_RUN', `no run '${id}' in ${this.path}`);
      t = { id, rid: (r.rows[0] as [number])[0] };
      this.targets.set(id, t);
    }
    return t;
  }

  private resolve(idOrPrefix: string): PgRunRow {
    this.checkOpen();
    const text = runIdText(idOrPrefix);
    const q = (where: string) =>
      this.query({ sql: `${RUN_COLUMNS} WHERE ${where} ORDER BY r.id`, params: [text], objects: true })
        .rows as PgRunRow[];
    const exact = q('r.id = $1');
    if (exact.length) return this.checkRow(exact[0]!);
    let matches = q('starts_with(r.id, $1)');
    if (matches.length === 0) matches = q('r.name = $1');
    if (matches.length === 1) return this.checkRow(matches[0]!);
    throw matchError(text, matches, this.path);
  }

  private checkRow(row: PgRunRow): PgRunRow {
    checkRunId(row.id, `the run store ${this.path}`);
    return row;
  }

  /** The row as RunInfo; a `running` run whose writer lock nobody holds reads (and is marked) `interrupted`. */
  private toInfo(row: PgRunRow): RunInfo {
    let status = row.status as RunStatus;
    if (status === 'running' && !row.alive) {
      status = 'interrupted';
      if (!this.readonly) {
        try {
          this.link.query({
            sql: `UPDATE runs r SET status = 'interrupted' WHERE r.rid = $1 AND r.status = 'running' AND NOT ${ALIVE}`,
            params: [row.rid],
          });
        } catch {
          // Report it interrupted now; a later reader will record it.
        }
      }
    }
    return rowToInfo(row, status);
  }

  private checkOpen(): void {
    if (this.closed) throw new TrackError('CLOSED', `the run store ${this.path} is closed`);
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.readonly) throw new TrackError('BAD_ARGUMENT', `the run store ${this.path} was opened read-only`);
  }
}
