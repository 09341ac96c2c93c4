/**
 * One training session as the CLI and sweeps run it: the experiment from a validated config, the gradient monitor
 * on every logged step with live findings, the run store, progress, and the result object `--json` prints.
 */
import cliProgress from 'cli-progress';
import { getBackend } from '../backend/index.js';
import { loadDataset } from '../data/index.js';
import type { Dataset } from '../data/types.js';
import { type Diagnosis, diagnose, type Finding, LiveDiagnosis } from '../monitor/diagnose.js';
import { formatMetric } from '../monitor/format.js';
import { type HistogramRecord, HistogramRecorder } from '../monitor/histogram.js';
import { type LayerStats, Monitor, type StepRecord, summarizeLayers } from '../monitor/monitor.js';
import { summarizeTimeFlow } from '../monitor/through-time.js';
import { WarningLog } from '../monitor/warnings.js';
import type { AnyModule } from '../nn/module.js';
import { RunStore, storeLabel } from '../track/store.js';
import type { RunSummary } from '../track/types.js';
import { type ResumePlan, runCheckpointDir } from './checkpoint.js';
import { type Config, describeModel } from './config.js';
import { SessionGuard, sessionCheckpoints } from './session-guard.js';
import {
  type EvalResult,
  evalBatchSize,
  evaluate,
  runTrainingAsync,
  type StepInfo,
  setupExperiment,
  type TrainSummary,
} from './trainer.js';

export interface SessionOptions {
  /** Run store directory, or null for none. */
  store: string | null;
  /** Where the config came from (for the log line). */
  source: string;
  /** Progress lines and warnings go here (stderr for the CLI); nothing when absent. */
  log?: (line: string) => void;
  /** Draw a progress bar on stderr (a terminal only). */
  progressBar?: boolean;
  /** A name for the run in the store. */
  name?: string;
  /** Tags and notes (`train --tag/--notes`), stored with the run's config under `meta`. */
  meta?: { tags: string[]; notes?: string };
  /** Continue from a checkpoint (`train --resume`; see cli/checkpoint-commands.ts). */
  resume?: ResumePlan;
  /** Called with the run's id once it is created (or resumed) in the store, before the first step. */
  onRun?: (runId: string) => void;
  /** Called after each step's metrics are written to the store (step counted from 0). */
  onStep?: (step: number, totalSteps: number) => void;
  /** Also evaluate the trained model on the whole training split at the end (`SessionResult.train`; experiments). */
  evaluateTrain?: boolean;
}

export interface SessionResult {
  run: string | null;
  status: TrainSummary['status'];
  reason?: string;
  backend: string;
  data: { name: string; train: number; test: number };
  model: { type: string; parameters: number };
  steps: number;
  epochs: number;
  test: EvalResult;
  /** The trained model on the whole training split, with `evaluateTrain` only. */
  train?: EvalResult;
  finalLoss: number;
  skippedSteps: number;
  clippedSteps: number;
  trainSeconds: number;
  totalSeconds: number;
  msPerStep: number;
  diagnosis: Diagnosis;
  layers: LayerStats[];
  warnings: { kind: string; layers: string[] }[];
  /** The last checkpoint written (every run in a store gets one at the end), or null. */
  checkpoint: string | null;
  /** The step a resumed run continued from, or null. */
  resumedFrom: number | null;
}

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(2)}%`);

/** What the store records of a new run: its config (with `meta`: tags and notes, when given), backend and name. */
function runRecord(config: Config, backend: string, opts: SessionOptions) {
  return {
    config: opts.meta ? { ...config, meta: opts.meta } : config,
    backend,
    ...(opts.name ? { name: opts.name } : {}),
  };
}

/**
 * The recorder of `monitor.histogramEvery`, attached and writing to the run, or null when off (or monitoring is) or
 * not stored.
 */
function histogramRecorder(
  config: Config,
  model: AnyModule,
  stored: boolean,
  guard: SessionGuard,
): HistogramRecorder | null {
  const every = config.monitor.histogramEvery;
  if (every === 0 || !stored || !config.monitor.enabled) return null;
  const onRecord = (r: HistogramRecord) => guard.write((st, id) => st.logHistograms(id, r.step, r.layers));
  return new HistogramRecorder(model, { every, onRecord }).attach();
}

/**
 * The session's monitoring: the gradient monitor on every `monitor.every`-th step with live findings printed and
 * stored; with `monitor.enabled: false` no monitor at all (no hooks, no layer statistics, no gradient norms), and the
 * diagnosis judges the loss alone.
 */
class SessionMonitor {
  readonly monitor: Monitor | null;
  readonly warnings: Finding[] = [];
  #last: StepRecord | null = null;
  /** Without the monitor: the loss records the loss rules read (the last 50), and every step's loss. */
  readonly #lossOnly: StepRecord[] = [];
  readonly #losses: number[] = [];

  constructor(config: Config, model: AnyModule, err: (s: string) => void, guard: SessionGuard) {
    if (!config.monitor.enabled) {
      this.monitor = null;
      err(
        'gradguard: monitoring off (monitor.enabled: false): no layer statistics, gradient norms, histograms or through-time records; the diagnosis judges the loss only',
      );
      return;
    }
    const live = new LiveDiagnosis({ config });
    const printed = new WarningLog();
    const monitor = new Monitor(model, {
      every: config.monitor.every,
      params: false,
      maxHistory: 2000,
      onRecord: (r) => {
        this.#last = r;
        if (r.step === 0 || this.warnings.length < 50) {
          live.setLayers(monitor.layerInfo());
          for (const f of live.push(r)) {
            this.warnings.push(f);
            err(printed.line(r.step, f));
            guard.write((st, id) => st.logFinding(id, r.step, f));
          }
        }
      },
    });
    this.monitor = monitor.attach();
  }

  /** After a step: the monitor's record of it, or null when the step was not monitored (or monitoring is off). */
  record(step: number, loss: number, skipped: boolean): StepRecord | null {
    if (!this.monitor) {
      this.#losses.push(loss);
      this.#lossOnly.push({
        step,
        loss,
        globalNormBefore: 0,
        globalNormAfter: 0,
        clipped: false,
        skipped,
        updated: !skipped,
        layers: [],
      });
      if (this.#lossOnly.length > 50) this.#lossOnly.shift();
      return null;
    }
    return this.#last?.step === step ? this.#last : null;
  }

  /** The diagnosis at the end of a run: its last 50 logged steps, judged against the dataset's trivial baseline too. */
  diagnosis(config: Config, dataset: Dataset): Diagnosis {
    const baseline = dataset.baseline ? { baseline: dataset.baseline } : {};
    if (!this.monitor) return diagnose(this.#lossOnly, { config, losses: this.#losses, lossOnly: true, ...baseline });
    const m = this.monitor;
    return diagnose(m.history.slice(-50), { config, layers: m.layerInfo(), losses: m.losses, ...baseline });
  }
}

/**
 * The dataset's trivial baseline as the run's summary carries it (`{}` without one), written at once for a new run
 * (`fresh`) so that the dashboard draws it beside the curves while the run trains.
 */
function storeBaseline(guard: SessionGuard, dataset: Dataset, fresh: boolean): RunSummary {
  const baseline = dataset.baseline ? { baseline: { ...dataset.baseline } } : {};
  if (fresh && dataset.baseline) guard.write((st, id) => st.setSummary(id, baseline));
  return baseline;
}

/** Stores a step: its loss, lr and skip flag, and what the monitor recorded of it (when it was monitored). */
function logStep(st: RunStore, id: string, s: StepInfo, rec: StepRecord | null): void {
  const metrics: Record<string, number> = { loss: s.loss, lr: s.lr, skipped: s.skipped ? 1 : 0 };
  if (rec) {
    if (rec.globalNormBefore !== undefined) metrics.grad_norm = rec.globalNormBefore;
    if (rec.globalNormAfter !== undefined) metrics.grad_norm_clipped = rec.globalNormAfter;
    metrics.clipped = rec.clipped ? 1 : 0;
    Object.assign(metrics, timeFlowMetrics(rec));
  }
  st.logStep(id, s.step, metrics, rec ? rec.layers : undefined);
  if (rec?.timeFlow?.length) st.logTimeFlow(id, s.step, rec.timeFlow);
}

/**
 * A recurrent net's gradient flow through time on a monitored step, as metrics: `time_horizon` (the gradient horizon
 * in steps, monitor/through-time.ts) and `time_first_last` (‖∂L/∂h_0‖ / ‖∂L/∂h_{T−1}‖) of the recurrent layer whose
 * horizon is the shortest, so a run's store shows how far back the gradient reaches over training.
 * Nothing for a net without recurrent layers, nor where the measure is undefined (a non-finite last step).
 */
export function timeFlowMetrics(rec: Pick<StepRecord, 'timeFlow'>): Record<string, number> {
  let best: ReturnType<typeof summarizeTimeFlow> | null = null;
  for (const f of rec.timeFlow ?? []) {
    const s = summarizeTimeFlow(f);
    if (Number.isFinite(s.horizon) && (best === null || s.horizon < best.horizon)) best = s;
  }
  if (best === null) return {};
  return Number.isFinite(best.firstLast)
    ? { time_horizon: best.horizon, time_first_last: best.firstLast }
    : { time_horizon: best.horizon };
}

/** Trains `config` and returns the result; user mistakes in the data or model throw their own error classes. */
export async function trainSession(config: Config, opts: SessionOptions): Promise<SessionResult> {
  const err = (s: string) => opts.log?.(s);
  const t0 = performance.now();
  const dataset = await loadDataset(config.data as Parameters<typeof loadDataset>[0]);
  const exp = setupExperiment(config, dataset);
  const backend = getBackend();
  err(
    `gradguard: training ${describeModel(config.model)} on ${dataset.name} (${dataset.train.n} train / ${dataset.test.n} test), ` +
      `${exp.model.numParameters().toLocaleString('en-US')} parameters, backend ${backend.name}${backend.name === 'native' ? ` (sgemm ${(backend as { gemmImpl?: string }).gemmImpl ?? 'openblas'}, ${backend.threads} threads)` : backend.name === 'wasm' ? ` (${backend.threads} thread${backend.threads === 1 ? '' : 's'})` : ''}, config ${opts.source}`,
  );
  const store = opts.store ? RunStore.open(opts.store) : null;
  const resume = opts.resume;
  const runId =
    store && resume?.runId
      ? store.resumeRun(resume.runId, resume.truncate ? { fromStep: resume.checkpoint.step - 1 } : {})
      : store?.createRun(runRecord(config, backend.name, opts));
  if (runId) err(`gradguard: run ${runId} in ${storeLabel(opts.store!)}`);
  if (runId) opts.onRun?.(runId);
  if (resume) err(`gradguard: resuming from step ${resume.checkpoint.step} (${resume.checkpoint.dir})`);
  const checkpointDir = store && runId ? runCheckpointDir(store.dir, runId) : (resume?.root ?? null);
  let lastCheckpoint: string | null = null;
  const guard = new SessionGuard(store, runId, err);
  const baseline = storeBaseline(guard, dataset, !resume);
  const watch = new SessionMonitor(config, exp.model, err, guard);
  const histograms = histogramRecorder(config, exp.model, store !== null && runId !== undefined, guard);
  const tty = Boolean(opts.progressBar && process.stderr.isTTY);
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format: '  {bar} {percentage}% | step {value}/{total} | epoch {epoch} | loss {loss} | {eta_formatted} left',
          hideCursor: true,
          clearOnComplete: true,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  let started = false;
  guard.listen();
  let summary: TrainSummary;
  try {
    summary = await runTrainingAsync(exp, {
      observers: [watch.monitor, histograms].filter((o) => o !== null),
      shouldStop: () => guard.interrupted,
      ...(checkpointDir ? { checkpoint: sessionCheckpoints(config, checkpointDir, runId, guard) } : {}),
      ...(resume ? { resume: resume.checkpoint } : {}),
      onCheckpoint: (dir) => {
        lastCheckpoint = dir;
      },
      onStep: (s) => {
        const rec = watch.record(s.step, s.loss, s.skipped);
        guard.write((st, id) => logStep(st, id, s, rec));
        opts.onStep?.(s.step, s.totalSteps);
        if (bar) {
          if (!started) {
            bar.start(s.totalSteps, 0, { epoch: 1, loss: '-' });
            started = true;
          }
          bar.update(s.step + 1, { epoch: s.epoch + 1, loss: formatMetric(s.loss) });
        } else if (s.step % config.train.logEvery === 0 || s.step + 1 === s.totalSteps) {
          err(
            `  step ${s.step + 1}/${s.totalSteps}  epoch ${s.epoch + 1}  loss ${formatMetric(s.loss)}  lr ${s.lr.toExponential(2)}`,
          );
        }
      },
      onEpoch: (epoch, test) => {
        guard.write((st, id) =>
          st.logStep(id, epoch * exp.loader.batchesPerEpoch - 1, {
            test_loss: test.loss,
            ...(test.accuracy !== undefined ? { test_accuracy: test.accuracy } : {}),
          }),
        );
        if (!bar)
          err(
            `  epoch ${epoch}: test loss ${formatMetric(test.loss)}${test.accuracy !== undefined ? `, accuracy ${pct(test.accuracy)}` : ''}`,
          );
      },
    });
  } catch (e) {
    bar?.stop();
    guard.failed(e);
    store?.close();
    throw e;
  } finally {
    guard.dispose();
    for (const o of [watch.monitor, histograms]) o?.detach();
  }
  bar?.stop();
  const reason = guard.reason(summary.reason);
  if (reason) summary.reason = reason;
  if (guard.removed) lastCheckpoint = guard.dropCheckpoints(checkpointDir);
  const diagnosis = watch.diagnosis(config, dataset);
  const layers = watch.monitor ? summarizeLayers(watch.monitor.history.slice(-50)) : [];
  const seconds = (performance.now() - t0) / 1000;
  const result: SessionResult = {
    run: runId ?? null,
    status: summary.status,
    ...(summary.reason ? { reason: summary.reason } : {}),
    backend: summary.backend,
    data: { name: dataset.name, train: dataset.train.n, test: dataset.test.n },
    model: { type: config.model.type, parameters: summary.parameters },
    steps: summary.steps,
    epochs: summary.epochs,
    test: summary.test,
    ...(opts.evaluateTrain ? { train: evaluate(exp.model, dataset, 'train', evalBatchSize(config, dataset)) } : {}),
    finalLoss: summary.finalLoss,
    skippedSteps: summary.skippedSteps,
    clippedSteps: summary.clippedSteps,
    trainSeconds: summary.seconds,
    totalSeconds: seconds,
    msPerStep: summary.msPerStep,
    diagnosis,
    layers,
    warnings: watch.warnings.map((w) => ({ kind: w.kind, layers: w.layers })),
    checkpoint: lastCheckpoint,
    resumedFrom: resume ? resume.checkpoint.step : null,
  };
  guard.finished(summary, diagnosis.verdict, baseline);
  store?.close();
  return result;
}
