/**
 * The run store and its exports: every training run in `./gradguard-runs/runs.db`, readable by the CLI, the
 * dashboard and as CSV, JSON or TensorBoard files.
 */
export {
  EXPORT_FORMATS,
  type ExportFormat,
  type ExportOptions,
  type ExportResult,
  exportRun,
  type RunExport,
  type RunJson,
  runDurationMs,
  runToJson,
  stringifyJson,
} from './export.js';
export { decodeHistogram, encodeHistogram, type HistogramRow } from './histograms.js';
export {
  type CreateRunOptions,
  DB_FILE,
  DEFAULT_STORE_DIR,
  type LayerReadOptions,
  type ListFilter,
  type OpenOptions,
  type ReadOptions,
  RunStore,
  SCHEMA_VERSION,
} from './store.js';
export { decodeTimeFlow, encodeTimeFlow, type TimeFlowRow } from './time-flow.js';
export * from './types.js';
