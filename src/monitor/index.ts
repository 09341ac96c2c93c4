/** The monitor package: per-layer gradient-flow statistics, their diagnosis in plain words, and the terminal report. */
export {
  type BaselineComparison,
  type ConfigFacts,
  type DiagnoseOptions,
  type Diagnosis,
  diagnose,
  type Finding,
  type FindingKind,
  type Fix,
  FLOW_KINDS,
  LiveDiagnosis,
  RULES,
  type Rule,
  SEVERITY,
  suggestionText,
  THRESHOLDS,
} from './diagnose.js';
export { formatCompact, formatExp, formatMetric } from './format.js';
export {
  bucketLimits,
  DEFAULT_BINS,
  HISTOGRAM_KINDS,
  type Histogram,
  HistogramError,
  type HistogramKind,
  type HistogramRecord,
  HistogramRecorder,
  type HistogramRecorderOptions,
  histogram,
  type LayerHistograms,
} from './histogram.js';
export {
  type ActivationKind,
  type ClipSummary,
  type LayerInfo,
  type LayerStats,
  Monitor,
  type MonitorOptions,
  type ParamStats,
  readClipState,
  type StepObserver,
  type StepRecord,
  summarizeLayers,
  type TimeFlow,
} from './monitor.js';
export { defaultLoss, type ProbeOptions, type ProbeResult, type ProbeTarget, runProbe } from './probe.js';
export {
  logBar,
  type ReportOptions,
  renderFindings,
  renderLayerTable,
  renderReport,
  renderTrials,
  type TrialResult,
} from './report.js';
export {
  HORIZON_FRACTION,
  sampledSteps,
  summarizeTimeFlow,
  TIME_SAMPLES,
  type TimeFlowSummary,
} from './through-time.js';
