/**
 * The run store's interface, shared by its two implementations: `SqliteStore` (one embedded SQLite file, the
 * default: track/store.ts) and `PgStore` (a PostgreSQL database that a team's machines share: track/pg/store.ts).
 * Both are synchronous, so the trainer, the CLI, the dashboard and the exports use either without knowing which;
 * `RunStore.open(spec)` picks one by its spec (a directory or a `postgres://` URL).
 */
import type { LayerHistograms } from '../monitor/histogram.js';
import type { TimeFlow } from '../monitor/through-time.js';
import type { HistogramRow } from './histograms.js';
import type { TimeFlowRow } from './time-flow.js';
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

/** The default store directory, relative to the working directory. */
export const DEFAULT_STORE_DIR = './gradguard-runs';

export interface OpenOptions {
  /** Create the directory and the database when missing (default true). When false, a missing store is an error. */
  create?: boolean;
  /** Open read-only: no migrations, no status repairs. The store must exist and be at the current schema version. */
  readonly?: boolean;
}

export interface CreateRunOptions {
  name?: string | undefined;
  /** The training config (any JSON value). */
  config: unknown;
  /** The compute backend (`native`, `wasm`, `js`). */
  backend: string;
}

export interface ListFilter {
  /** Only runs with this status (or one of these). */
  status?: RunStatus | readonly RunStatus[] | undefined;
  /** Only runs whose name contains this text. */
  name?: string | undefined;
  /** At most this many runs (the newest). */
  limit?: number | undefined;
}

export interface ReadOptions {
  /** Only steps >= fromStep (the dashboard polls with the last step it has + 1). */
  fromStep?: number | undefined;
}

export interface LayerReadOptions extends ReadOptions {
  /** Only the last step that has layer statistics. */
  last?: boolean | undefined;
}

/** A run store: see track/store.ts for the contract of each method (both implementations keep it). */
export interface Store {
  /** Where checkpoints live: `<dir>/checkpoints/<run id>/` (for PostgreSQL, a directory every worker can reach). */
  readonly dir: string;
  /** The store as messages name it: the SQLite file, or the URL without its password. */
  readonly path: string;
  readonly readonly: boolean;
  createRun(options: CreateRunOptions): string;
  logStep(id: string, step: number, metrics: Record<string, number>, layers?: readonly LayerStat[]): void;
  logHistograms(id: string, step: number, layers: readonly LayerHistograms[]): void;
  logTimeFlow(id: string, step: number, flows: readonly TimeFlow[]): void;
  logFinding(id: string, step: number, finding: Finding): void;
  /** Sets a running run's summary (what is known from the start); `finishRun` replaces it. */
  setSummary(id: string, summary: RunSummary): void;
  finishRun(id: string, status: Exclude<RunStatus, 'running'>, summary?: RunSummary): void;
  hasRun(id: string): boolean;
  resumeRun(idOrPrefix: string, options?: { fromStep?: number | undefined }): string;
  /**
   * Waits until every write made so far is stored (PostgreSQL writes steps in the background; SQLite has nothing
   * pending). Every read, `hasRun`, `finishRun` and `close` flush first.
   */
  flush(): void;
  listRuns(filter?: ListFilter): RunInfo[];
  getRun(idOrPrefix: string): RunInfo;
  getMetrics(idOrPrefix: string, options?: ReadOptions): MetricSeries;
  getLayerStats(idOrPrefix: string, options?: LayerReadOptions): LayerStatRow[];
  getLayerMatrix(idOrPrefix: string, field: LayerField, options?: ReadOptions): LayerMatrix;
  getHistograms(idOrPrefix: string, options?: ReadOptions): HistogramRow[];
  getTimeFlow(idOrPrefix: string, options?: ReadOptions): TimeFlowRow[];
  getFindings(idOrPrefix: string): FindingRow[];
  deleteRun(idOrPrefix: string, options?: { force?: boolean | undefined }): string;
  /** `'ok'`, or the problems found. */
  integrityCheck(): string;
  close(): void;
}
