/**
 * The run store: every training run in one embedded SQLite file (`./gradguard-runs/runs.db`, `SqliteStore` here), or
 * in a PostgreSQL database a team shares (`postgres://...`, track/pg/store.ts), written by the trainer and read by the
 * CLI, the dashboard and the exports. `RunStore.open(spec)` picks one; both keep the contract below (store-api.ts).
 *
 * - **Durable per step.** `logStep` writes a step's metrics and layer statistics in one transaction; once it returns,
 *   the step survives the process being killed. The database is in WAL mode with `synchronous=NORMAL`: a commit is
 *   in the operating system's hands when `logStep` returns, so a killed process loses nothing it committed; a power
 *   cut may lose the last few commits but never corrupts the file.
 * - **Readers never block the writer.** WAL lets the dashboard read while a run writes; a writer waits up to 5 s
 *   (`busy_timeout`) for another writer.
 * - **Dead runs are noticed.** A run records its pid, host and process start time; a run still marked `running`
 *   whose process is gone (on this host) reads back as `interrupted`, and is marked so in the file.
 * - **Versioned schema.** `PRAGMA user_version` counts the migrations applied; a file from a newer gradguard is
 *   refused rather than misread.
 *
 * Layout: metrics are long (run, step, key, value) with keys interned in `metric_keys`, so any metric can be logged at
 * any step and read as one column. Layer statistics are one row per (run, step): the layers' nine numbers as one
 * float64 blob, their names as a shared `layer_sets` entry. NOTE: one row per layer would make SQL queries per layer
 * possible, but reading 5,000 steps x 20 layers then costs ~1.1 M SQLite values (~200 ms here) against ~5,000 blobs
 * (~30 ms), and writing a step costs 20 inserts instead of one. All tables are clustered by (run, step), so a run's
 * history is one range scan; a step rewrites no page of the `runs` table.
 *
 * @example
 * const store = RunStore.open();                 // ./gradguard-runs/runs.db
 * const id = store.createRun({ name: 'mlp', config, backend: 'native' });
 * store.logStep(id, 0, { 'train/loss': 2.31, lr: 1e-3 }, monitor.latest()?.layers);
 * store.finishRun(id, 'finished', { metrics: { 'test/accuracy': 0.957 }, durationMs: 41_000 });
 * store.getMetrics(id).series['train/loss'];     // [2.31, ...]
 * store.close();
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { describeFsError, makeDirs } from '../io/atomic.js';
import type { LayerHistograms } from '../monitor/histogram.js';
import type { TimeFlow } from '../monitor/through-time.js';
import { type HistogramRow, readHistograms, truncateHistograms, writeHistograms } from './histograms.js';
import { checkRunId, newRunId } from './ids.js';
import { encodeLayers } from './layer-blob.js';
import { PgStore } from './pg/store.js';
import { isPostgresUrl, storeSpecFromEnv } from './pg/url.js';
import { processAlive, readProcStart } from './process.js';
import { DB_FILE, migrate } from './schema.js';
import {
  type CreateRunOptions,
  DEFAULT_STORE_DIR,
  type LayerReadOptions,
  type ListFilter,
  type OpenOptions,
  type ReadOptions,
  type Store,
} from './store-api.js';
import { checkWritableFiles, readOnlyError, removedError, snapshotStore, storeWriteError } from './store-files.js';
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
} from './store-rows.js';
import { encodeSummary } from './summary.js';
import { readTimeFlow, type TimeFlowRow, truncateTimeFlow, writeTimeFlow } from './time-flow.js';
import type {
  Finding,
  FindingRow,
  LayerField,
  LayerMatrix,
  LayerStat,
  LayerStatRow,
  MetricSeries,
  RunInfo,
  RunStatus,
  RunSummary,
} from './types.js';
import { TrackError } from './types.js';

export { newRunId } from './ids.js';
export { isPostgresUrl, storeLabel, storeSpecFromEnv } from './pg/url.js';
export { DB_FILE, MIGRATIONS, SCHEMA_VERSION } from './schema.js';
export type { CreateRunOptions, LayerReadOptions, ListFilter, OpenOptions, ReadOptions, Store } from './store-api.js';

/** A run store, SQLite or PostgreSQL (the type every reader and writer takes). */
export type RunStore = Store;

/**
 * Opens the run store that `spec` names: a `postgres://` (or `postgresql://`) URL opens a {@link PgStore}, anything
 * else is a directory for a {@link SqliteStore}. Without a spec: `GRADGUARD_STORE`, else `./gradguard-runs`.
 */
export function openStore(spec: string = storeSpecFromEnv(), options: OpenOptions = {}): RunStore {
  return isPostgresUrl(spec) ? PgStore.open(spec, options) : SqliteStore.open(spec, options);
}

/** `RunStore.open(spec)`: {@link openStore}. */
export const RunStore = { open: openStore } as const;

export { DEFAULT_STORE_DIR } from './store-api.js';

/** How long a writer waits for another writer's transaction, in ms. */
const BUSY_TIMEOUT_MS = 5000;

/** What the store knows of a run it writes to. */
interface WriteTarget {
  id: string;
  rid: number;
  lastStep: number;
}

/** The SQLite run store. Open with {@link RunStore.open}; one instance per process is enough (it is synchronous). */
export class SqliteStore implements Store {
  /** The store directory. */
  readonly dir: string;
  /** The database file. */
  readonly path: string;
  readonly readonly: boolean;
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<typeof prepareStatements>;
  private readonly metricKeyIds = new Map<string, number>();
  private readonly metricKeyNames = new Map<number, string>();
  /** Layer sets by their names joined with newlines (writing), and by id (reading). */
  private readonly layerSetIds = new Map<string, number>();
  private readonly layerSetNames = new Map<number, string[]>();
  private readonly targets = new Map<string, WriteTarget>();
  private readonly host = hostname();
  private readonly ownStart = readProcStart(process.pid);
  private readonly writeStep: (t: WriteTarget, step: number, m: Record<string, number>, l?: LayerStat[]) => void;
  private closed = false;

  /** The private copy a reader of a read-only directory opened (removed by `close`), or null. */
  private readonly snapshot: string | null;

  private constructor(dir: string, path: string, db: Database.Database, readonly: boolean, snapshot: string | null) {
    this.snapshot = snapshot;
    this.dir = dir;
    this.path = path;
    this.db = db;
    this.readonly = readonly;
    this.stmt = prepareStatements(db);
    this.writeStep = db.transaction((t, step, metrics, layers) => this.writeStepTx(t, step, metrics, layers)).immediate;
  }

  /**
   * Opens (and by default creates) the store in `dir`: `dir/runs.db`, WAL mode, schema migrated to the current
   * version.
   * @throws TrackError `NO_STORE` when it is missing and `create` is false; `BAD_STORE` when the file is not a
   *   gradguard store; `STORE_TOO_NEW` when a newer gradguard wrote it.
   */
  static open(dir: string = DEFAULT_STORE_DIR, options: OpenOptions = {}): SqliteStore {
    const readonly = options.readonly ?? false;
    const create = !readonly && (options.create ?? true);
    const absDir = resolve(dir);
    const path = join(absDir, DB_FILE);
    if (!existsSync(path)) {
      if (!create) {
        throw new TrackError(
          'NO_STORE',
          `no run store at ${dir} (${DB_FILE} not found); train a model first, or point --store at the directory that holds ${DB_FILE}`,
        );
      }
      if (existsSync(absDir) && !statSync(absDir).isDirectory()) {
        throw new TrackError('BAD_STORE', `the run store ${dir} is a file, not a directory; pass --store a directory`);
      }
      try {
        makeDirs(absDir);
      } catch (err) {
        throw new TrackError(
          'BAD_STORE',
          `cannot create the run store directory ${dir}: ${describeFsError(err)}; pass --store a directory you can write`,
        );
      }
    }
    if (!readonly) checkWritableFiles(dir, absDir, path);
    let db: Database.Database | undefined;
    let snapshot: string | null = null;
    try {
      try {
        db = new Database(path, { readonly, fileMustExist: !create, timeout: BUSY_TIMEOUT_MS });
        migrate(db, path, readonly, BUSY_TIMEOUT_MS);
      } catch (err) {
        // A read-only directory: SQLite cannot make the WAL index (runs.db-shm) next to the file, so a reader opens
        // a private copy of the database (and of its WAL) instead.
        const code = (err as { code?: string }).code;
        if (!readonly || !(code?.startsWith('SQLITE_READONLY') || code === 'SQLITE_CANTOPEN')) throw err;
        db?.close();
        db = undefined;
        snapshot = snapshotStore(dir, path);
        db = new Database(join(snapshot, DB_FILE), { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
        migrate(db, path, true, BUSY_TIMEOUT_MS);
      }
      return new SqliteStore(absDir, path, db, readonly, snapshot);
    } catch (err) {
      db?.close();
      if (snapshot !== null) rmSync(snapshot, { recursive: true, force: true });
      if (err instanceof TrackError) throw err;
      const e = err as { code?: string; message?: string };
      if (e.code === 'SQLITE_NOTADB' || e.code === 'SQLITE_CORRUPT') {
        throw new TrackError('BAD_STORE', `${path} is not a gradguard run store (not an SQLite database, or damaged)`);
      }
      if (e.code?.startsWith('SQLITE_READONLY')) throw readOnlyError(dir);
      if (e.code === 'SQLITE_CANTOPEN' || e.code === 'SQLITE_PERM') {
        throw new TrackError('BAD_STORE', `cannot open the run store ${path}: ${e.message ?? e.code}`);
      }
      throw storeWriteError(err, dir);
    }
  }

  /**
   * Starts a run: status `running`, this process's pid and host recorded.
   * @returns the run's id, `20261126-114512-a3f9` (UTC time and 4 random hex digits).
   */
  createRun(options: CreateRunOptions): string {
    this.checkWritable();
    checkBackend(options.backend);
    const config = JSON.stringify(options.config ?? null);
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      const id = newRunId(now);
      try {
        const info = this.stmt.insertRun.run({
          id,
          name: options.name ?? null,
          status: 'running',
          now,
          config,
          backend: options.backend,
          pid: process.pid,
          host: this.host,
          proc_start: this.ownStart,
        });
        this.targets.set(id, { id, rid: Number(info.lastInsertRowid), lastStep: -1 });
        return id;
      } catch (err) {
        // Two runs created in the same second drew the same 16 random bits: draw again.
        if ((err as { code?: string }).code !== 'SQLITE_CONSTRAINT_UNIQUE' || attempt >= 20) {
          throw storeWriteError(err, this.dir);
        }
      }
    }
  }

  /**
   * Records one step: its metrics and, on monitored steps, every layer's statistics, in one transaction. Logging the
   * same step again adds or replaces metrics by key (so evaluation metrics can join a step's training metrics) and
   * replaces the step's layer statistics when `layers` is given.
   * @param id a run id from `createRun` (the full id)
   * @param step the step number, an integer >= 0
   * @param metrics `{ 'train/loss': 0.31, lr: 1e-3, 'grad/global_norm': 0.8 }`; NaN and ±Infinity are kept
   * @param layers the monitor's per-layer statistics for this step, in forward order
   */
  logStep(id: string, step: number, metrics: Record<string, number>, layers?: readonly LayerStat[]): void {
    const target = this.target(id);
    checkStep(step, metrics);
    this.guard(() => this.writeStep(target, step, metrics, layers as LayerStat[] | undefined));
    if (step > target.lastStep) target.lastStep = step;
  }

  /** Records a step's per-layer histograms (track/histograms.ts), replacing those the step had. */
  logHistograms(id: string, step: number, layers: readonly LayerHistograms[]): void {
    const t = this.target(id);
    // IMMEDIATE like every write: a deferred one reads first, then fails with "database is locked" (no busy_timeout)
    const tx = this.db.transaction(() => {
      this.checkExists(t);
      writeHistograms(this.db, t.rid, step, layers);
    });
    this.guard(() => tx.immediate());
  }

  /** A run's histograms by step (then in the order logged), from `fromStep` on. */
  getHistograms(idOrPrefix: string, options: ReadOptions = {}): HistogramRow[] {
    return readHistograms(this.db, this.resolve(idOrPrefix).rid, options.fromStep ?? 0, this.path);
  }

  /** Records a monitored step's gradient norms through time (track/time-flow.ts), replacing those the step had. */
  logTimeFlow(id: string, step: number, flows: readonly TimeFlow[]): void {
    const t = this.target(id);
    const tx = this.db.transaction(() => {
      this.checkExists(t);
      writeTimeFlow(this.db, t.rid, step, flows);
    });
    this.guard(() => tx.immediate());
  }

  /** A run's gradient norms through time by step (then layer), from `fromStep` on. */
  getTimeFlow(idOrPrefix: string, options: ReadOptions = {}): TimeFlowRow[] {
    return readTimeFlow(this.db, this.resolve(idOrPrefix).rid, options.fromStep ?? 0, this.path);
  }

  /** Sets a running run's summary (what is known from the start: the dataset's baseline); `finishRun` replaces it. */
  setSummary(id: string, summary: RunSummary): void {
    const t = this.target(id);
    const changed = this.guard(() => this.stmt.setSummary.run(encodeSummary(summary), Date.now(), t.rid));
    if (changed.changes === 0) throw removedError(t.id, this.path);
  }

  /** Records a finding of the diagnosis at a step. */
  logFinding(id: string, step: number, finding: Finding): void {
    const target = this.target(id);
    checkFinding(finding);
    const now = Date.now();
    const tx = this.db.transaction(() => {
      this.checkExists(target);
      this.stmt.insertFinding.run(
        target.rid,
        step,
        finding.kind,
        JSON.stringify(finding.layers ?? []),
        finding.evidence === undefined ? null : JSON.stringify(finding.evidence),
        finding.suggestion ?? null,
        finding.severity ?? null,
        now,
      );
      this.stmt.touchRun.run(now, target.rid);
    });
    this.guard(() => tx.immediate());
  }

  /**
   * Ends a run: its final status (not `running`) and its summary (final metrics, verdict, duration, steps skipped
   * and clipped).
   */
  finishRun(id: string, status: Exclude<RunStatus, 'running'>, summary: RunSummary = {}): void {
    const target = this.target(id);
    checkFinalStatus(status);
    const now = Date.now();
    const changed = this.guard(() => this.stmt.finishRun.run(status, now, now, encodeSummary(summary), target.rid));
    if (changed.changes === 0) throw removedError(target.id, this.path);
  }

  /** Whether the store has a run with this exact id (a writer checks that its run was not removed). */
  hasRun(id: string): boolean {
    this.checkOpen();
    return this.stmt.runById.get(id) !== undefined;
  }

  /**
   * Marks a run as running again in this process (`train --resume`). With `fromStep`, drops what was logged after
   * that step (the checkpoint's step), so the resumed run's curves join the old ones without a duplicate stretch.
   * @returns the run's full id
   */
  resumeRun(idOrPrefix: string, options: { fromStep?: number | undefined } = {}): string {
    this.checkWritable();
    const row = this.resolve(idOrPrefix);
    if (row.status === 'running' && row.pid !== process.pid && this.isAlive(row)) {
      throw new TrackError(
        'RUN_ACTIVE',
        `run ${row.id} is still running (pid ${row.pid} on ${row.host}); it cannot be resumed twice`,
      );
    }
    const from = options.fromStep;
    checkFromStep(from);
    const tx = this.db.transaction(() => {
      if (from !== undefined) {
        for (const s of this.stmt.truncate) s.run(row.rid, from);
        truncateHistograms(this.db, row.rid, from);
        truncateTimeFlow(this.db, row.rid, from);
      }
      this.stmt.resumeRun.run({
        now: Date.now(),
        pid: process.pid,
        host: this.host,
        proc_start: this.ownStart,
        rid: row.rid,
      });
    });
    this.guard(() => tx.immediate());
    const last = this.stmt.maxStep.pluck().get(row.rid) as number | null;
    this.targets.set(row.id, { id: row.id, rid: row.rid, lastStep: last ?? -1 });
    return row.id;
  }

  /** Runs, newest first. Runs whose process died are reported (and marked) `interrupted`. */
  listRuns(filter: ListFilter = {}): RunInfo[] {
    this.checkOpen();
    const rows = this.stmt.allRuns.all() as RunRow[];
    return filterRuns(
      (function* (self) {
        for (const row of rows) yield self.toInfo(row);
      })(this),
      filter,
    );
  }

  /**
   * One run, by its id, a unique prefix of its id, or its name when no id starts with the text and one run has it.
   * @throws TrackError `UNKNOWN_RUN`, `AMBIGUOUS_RUN` (naming the candidates)
   */
  getRun(idOrPrefix: string): RunInfo {
    return this.toInfo(this.resolve(idOrPrefix));
  }

  /** A run's metrics by column; see {@link MetricSeries}. */
  getMetrics(idOrPrefix: string, options: ReadOptions = {}): MetricSeries {
    const rid = this.resolve(idOrPrefix).rid;
    // One read transaction: both queries see the same snapshot while a writer goes on.
    return this.db.transaction(() => this.readMetrics(rid, options.fromStep ?? 0))();
  }

  private readMetrics(rid: number, from: number): MetricSeries {
    const stepRows = this.stmt.steps.raw().all(rid, from) as [number, number][];
    const metricRows = this.stmt.metrics.raw().all(rid, from) as [number, number, number | null][];
    return metricColumns(stepRows, metricRows, (kid) => this.metricKey(kid));
  }

  /**
   * A run's layer statistics, one row per (logged step, layer), by step then forward order. A `deadFrac` or
   * `satFrac` that was NaN reads back as absent.
   */
  getLayerStats(idOrPrefix: string, options: LayerReadOptions = {}): LayerStatRow[] {
    const rid = this.resolve(idOrPrefix).rid;
    const stmt = options.last ? this.stmt.lastLayerStats : this.stmt.layerStats;
    const rows = stmt.raw().iterate(rid, options.fromStep ?? 0) as Iterable<[number, number, Buffer]>;
    return decodeLayerRows(rows, (lsid, data) => this.layerSet(lsid, data));
  }

  /**
   * One layer statistic of a run as a layers × steps matrix (for heatmaps), over the steps that have layer
   * statistics; layers in the order they first appear.
   */
  getLayerMatrix(idOrPrefix: string, field: LayerField, options: ReadOptions = {}): LayerMatrix {
    layerFieldColumn(field);
    const rid = this.resolve(idOrPrefix).rid;
    const raw = this.stmt.layerStats.raw().all(rid, options.fromStep ?? 0) as [number, number, Buffer][];
    return layerMatrix(field, raw, (lsid, data) => this.layerSet(lsid, data));
  }

  /** A run's findings, by step. */
  getFindings(idOrPrefix: string): FindingRow[] {
    const rid = this.resolve(idOrPrefix).rid;
    return (this.stmt.findings.all(rid) as FindingDbRow[]).map((r) => ({
      step: r.step,
      kind: r.kind,
      layers: JSON.parse(r.layers) as string[],
      evidence: r.evidence === null ? null : JSON.parse(r.evidence),
      suggestion: r.suggestion,
      severity: r.severity,
      time: r.time,
    }));
  }

  /**
   * Deletes a run and everything logged for it.
   * @param options.force also delete a run whose process is still running
   * @returns the deleted run's full id
   * @throws TrackError `RUN_ACTIVE` for a live run without `force`
   */
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
    const tx = this.db.transaction(() => {
      for (const s of this.stmt.truncate) s.run(row.rid, -1);
      truncateHistograms(this.db, row.rid, -1);
      truncateTimeFlow(this.db, row.rid, -1);
      this.stmt.deleteRun.run(row.rid);
    });
    this.guard(() => tx.immediate());
    this.targets.delete(row.id);
    return row.id;
  }

  /** SQLite's `PRAGMA integrity_check`: `'ok'` or the problems found. */
  integrityCheck(): string {
    this.checkOpen();
    return (this.db.pragma('integrity_check') as { integrity_check: string }[])
      .map((r) => r.integrity_check)
      .join('\n');
  }

  /** Nothing to wait for: every SQLite write is committed when its call returns. */
  flush(): void {
    this.checkOpen();
  }

  /** Closes the database. Further calls throw `CLOSED`. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
    if (this.snapshot !== null) rmSync(this.snapshot, { recursive: true, force: true });
  }

  // ---------------------------------------------------------------------------------------------------------------

  private writeStepTx(t: WriteTarget, step: number, metrics: Record<string, number>, layers?: LayerStat[]): void {
    this.checkExists(t);
    const now = Date.now();
    const s = this.stmt;
    s.insertStep.run(t.rid, step, now);
    for (const key in metrics) s.upsertMetric.run(t.rid, step, this.metricKeyId(key), metrics[key]);
    if (layers !== undefined) s.upsertLayers.run(t.rid, step, this.layerSetId(layers), encodeLayers(layers));
  }

  private metricKeyId(key: string): number {
    let id = this.metricKeyIds.get(key);
    if (id === undefined) {
      this.stmt.insertKey.run(key);
      id = this.stmt.keyId.pluck().get(key) as number;
      this.metricKeyIds.set(key, id);
    }
    return id;
  }

  /** The name of a metric key id (cached). */
  private metricKey(kid: number): string {
    let key = this.metricKeyNames.get(kid);
    if (key === undefined) {
      key = (this.stmt.metricKeyName.pluck().get(kid) as string | undefined) ?? `#${kid}`;
      this.metricKeyNames.set(kid, key);
    }
    return key;
  }

  /** The id of the layer set that `layers` name, added when new. */
  private layerSetId(layers: readonly LayerStat[]): number {
    const key = layerSetKey(layers);
    let id = this.layerSetIds.get(key);
    if (id === undefined) {
      const json = JSON.stringify(layers.map((l) => l.name));
      this.stmt.insertLayerSet.run(json);
      id = this.stmt.layerSetId.pluck().get(json) as number;
      this.layerSetIds.set(key, id);
    }
    return id;
  }

  /** The layer names of a layer set (cached), checked against the size of a step's data. */
  private layerSet(lsid: number, data: Uint8Array): string[] {
    let names = this.layerSetNames.get(lsid);
    if (names === undefined) {
      const json = this.stmt.layerSetNames.pluck().get(lsid) as string | undefined;
      names = json === undefined ? [] : (JSON.parse(json) as string[]);
      this.layerSetNames.set(lsid, names);
    }
    checkLayerBlob(names, data, lsid, this.path);
    return names;
  }

  /** The write target of a full run id (writers get the id from createRun; no prefixes here). */
  private target(id: string): WriteTarget {
    this.checkWritable();
    let t = this.targets.get(id);
    if (t === undefined) {
      const row = this.stmt.runById.get(id) as RunRow | undefined;
      if (row === undefined) {
        throw new TrackError('UNKNOWN_RUN', `no run '${id}' in ${this.path}`);
      }
      t = { id, rid: row.rid, lastStep: row.max_step ?? -1 };
      this.targets.set(id, t);
    }
    return t;
  }

  private resolve(idOrPrefix: string): RunRow {
    this.checkOpen();
    const text = runIdText(idOrPrefix);
    const exact = this.stmt.runById.get(text) as RunRow | undefined;
    if (exact) return this.checkRow(exact);
    let matches = this.stmt.runsByPrefix.all(text.length, text) as RunRow[];
    if (matches.length === 0) matches = this.stmt.runsByName.all(text) as RunRow[];
    if (matches.length === 1) return this.checkRow(matches[0]!);
    throw matchError(text, matches, this.path);
  }

  /** A row whose id is a well-formed run id (ids become file names: checkpoints, exports, reports). */
  private checkRow(row: RunRow): RunRow {
    checkRunId(row.id, `the run store ${this.path}`);
    return row;
  }

  /** Throws `RUN_REMOVED` when the run a writer holds is no longer in the store (inside the write transaction). */
  private checkExists(t: WriteTarget): void {
    if (this.stmt.runExists.get(t.rid, t.id) === undefined) throw removedError(t.id, this.path);
  }

  /** Runs a write, turning a full disk or a read-only store into a one-line TrackError. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw storeWriteError(err, this.dir);
    }
  }

  private toInfo(row: RunRow): RunInfo {
    let status = row.status as RunStatus;
    if (status === 'running' && !this.isAlive(row)) {
      status = 'interrupted';
      if (!this.readonly) {
        try {
          this.stmt.markInterrupted.run(row.rid);
        } catch {
          // Busy or read-only file system: report it interrupted now; a later reader will record it.
        }
      }
    }
    return rowToInfo(row, status);
  }

  /** Whether a run's writer may still be alive; only a writer on this host can be shown dead. */
  private isAlive(row: RunRow): boolean {
    if (row.pid === null || row.host !== this.host) return true;
    if (row.pid === process.pid) return row.proc_start === null || row.proc_start === this.ownStart;
    return processAlive(row.pid, row.proc_start);
  }

  private checkOpen(): void {
    if (this.closed) throw new TrackError('CLOSED', `the run store ${this.path} is closed`);
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.readonly) throw new TrackError('BAD_ARGUMENT', `the run store ${this.path} was opened read-only`);
  }
}

interface FindingDbRow {
  step: number;
  kind: string;
  layers: string;
  evidence: string | null;
  suggestion: string | null;
  severity: string | null;
  time: number;
}

/**
 * A run's row with its last logged step and that step's time, looked up in `steps` (one index probe each) rather
 * than kept in `runs`, so that logging a step does not rewrite the run's row and page.
 */
const RUN_COLUMNS = `SELECT r.*,
  (SELECT s.step FROM steps s WHERE s.rid = r.rid ORDER BY s.step DESC LIMIT 1) AS max_step,
  (SELECT s.time FROM steps s WHERE s.rid = r.rid ORDER BY s.step DESC LIMIT 1) AS last_time
  FROM runs r`;

function prepareStatements(db: Database.Database) {
  const p = (sql: string) => db.prepare(sql);
  return {
    insertRun: p(`INSERT INTO runs (id, name, status, created_at, updated_at, config, backend, pid, host, proc_start)
                  VALUES (@id, @name, @status, @now, @now, @config, @backend, @pid, @host, @proc_start)`),
    runById: p(`${RUN_COLUMNS} WHERE r.id = ?`),
    runExists: p('SELECT 1 FROM runs WHERE rid = ? AND id = ?'),
    runsByPrefix: p(`${RUN_COLUMNS} WHERE substr(r.id, 1, ?) = ? ORDER BY r.id`),
    runsByName: p(`${RUN_COLUMNS} WHERE r.name = ? ORDER BY r.id`),
    allRuns: p(`${RUN_COLUMNS} ORDER BY r.created_at DESC, r.id DESC`),
    insertStep: p('INSERT OR IGNORE INTO steps (rid, step, time) VALUES (?, ?, ?)'),
    upsertMetric: p('INSERT OR REPLACE INTO metrics (rid, step, kid, value) VALUES (?, ?, ?, ?)'),
    upsertLayers: p('INSERT OR REPLACE INTO layer_stats (rid, step, lsid, data) VALUES (?, ?, ?, ?)'),
    touchRun: p('UPDATE runs SET updated_at = ? WHERE rid = ?'),
    insertKey: p('INSERT OR IGNORE INTO metric_keys (key) VALUES (?)'),
    keyId: p('SELECT kid FROM metric_keys WHERE key = ?'),
    insertLayerSet: p('INSERT OR IGNORE INTO layer_sets (names) VALUES (?)'),
    layerSetId: p('SELECT lsid FROM layer_sets WHERE names = ?'),
    layerSetNames: p('SELECT names FROM layer_sets WHERE lsid = ?'),
    insertFinding: p(`INSERT INTO findings (rid, step, kind, layers, evidence, suggestion, severity, time)
                      VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
    finishRun: p('UPDATE runs SET status = ?, updated_at = ?, finished_at = ?, summary = ? WHERE rid = ?'),
    setSummary: p('UPDATE runs SET summary = ?, updated_at = ? WHERE rid = ?'),
    resumeRun: p(`UPDATE runs SET status = 'running', updated_at = @now, finished_at = NULL, pid = @pid, host = @host,
                  proc_start = @proc_start WHERE rid = @rid`),
    markInterrupted: p(`UPDATE runs SET status = 'interrupted' WHERE rid = ? AND status = 'running'`),
    maxStep: p('SELECT max(step) FROM steps WHERE rid = ?'),
    truncate: [
      p('DELETE FROM steps WHERE rid = ? AND step > ?'),
      p('DELETE FROM metrics WHERE rid = ? AND step > ?'),
      p('DELETE FROM layer_stats WHERE rid = ? AND step > ?'),
      p('DELETE FROM findings WHERE rid = ? AND step > ?'),
    ],
    deleteRun: p('DELETE FROM runs WHERE rid = ?'),
    steps: p('SELECT step, time FROM steps WHERE rid = ? AND step >= ? ORDER BY step'),
    metrics: p('SELECT step, kid, value FROM metrics WHERE rid = ? AND step >= ? ORDER BY step, kid'),
    metricKeyName: p('SELECT key FROM metric_keys WHERE kid = ?'),
    layerStats: p('SELECT step, lsid, data FROM layer_stats WHERE rid = ? AND step >= ? ORDER BY step'),
    lastLayerStats: p(
      'SELECT step, lsid, data FROM layer_stats WHERE rid = ? AND step >= ? ORDER BY step DESC LIMIT 1',
    ),
    findings: p(`SELECT step, kind, layers, evidence, suggestion, severity, time FROM findings
                 WHERE rid = ? ORDER BY step, fid`),
  };
}
