/**
 * `gradguard doctor [--config F] [--set k=v]... [--json] [--fix]`: builds the experiment a config describes, runs a
 * short probe (a few batches from initialisation, then a few training steps) with the gradient monitor on, and prints
 * the per-layer table, the findings and the fixes. With `--fix`, each suggested fix runs as a trial beside the
 * original (same seed, same data, same number of steps) and the report says which ones restore healthy gradient flow
 * and lower the loss. With `--json`, exactly one JSON object goes to stdout, and the exit status is 0 whatever the
 * verdict: a bad verdict is a result, not an error.
 */
import { loadDataset } from '../data/index.js';
import type { Dataset } from '../data/types.js';
import {
  type BaselineComparison,
  type Diagnosis,
  diagnose,
  type Finding,
  type FindingKind,
  type Fix,
  type TimeSummary,
} from '../monitor/diagnose.js';
import { formatMetric } from '../monitor/format.js';
import { type LayerStats, Monitor, type StepObserver, type StepRecord, summarizeLayers } from '../monitor/monitor.js';
import { renderReport, type TrialResult } from '../monitor/report.js';
import { judgeTrial } from '../monitor/trial.js';
import { tensor, tidy } from '../tensor/tensor.js';
import { type Config, ConfigError, describeModel, loadConfig } from '../train/config.js';
import { lossFor, runTraining, setupExperiment } from '../train/trainer.js';
import { isUserError, UsageError } from './errors.js';
import { checkQueueUrl } from './queue.js';
import { enqueueSweep, followSweep } from './sweep-queue.js';

export interface DoctorCommandOptions {
  config?: string;
  set: string[];
  json: boolean;
  fix: boolean;
  /** Training steps of the probe and of each trial (default 30). */
  steps?: number;
  /** Batches from initialisation before training (default 3). */
  batches?: number;
  /** At most this many fixes are tried (default 4). */
  maxTrials?: number;
  /** With `fix`: run the trials on `gradguard worker`s through the queue on this PostgreSQL. */
  queue?: string;
}

export interface DoctorOptions {
  /** Training steps of the probe and of each trial (default 30). */
  steps?: number;
  /** Batches run from initialisation, without updates, before training (default 3). */
  batches?: number;
  /** Run each suggested fix as a trial (default false). */
  fix?: boolean;
  /** At most this many fixes are tried, most severe finding first (default 4). */
  maxTrials?: number;
  /** Progress lines (the CLI sends them to stderr). */
  onProgress?: (line: string) => void;
  /** The dataset, if already loaded (it must be the config's). */
  dataset?: Dataset;
  /** Run the fix trials on `gradguard worker`s through the queue on this PostgreSQL (`doctor --fix --queue`). */
  queue?: string;
}

/** What `doctor` found: the `--json` object. */
export interface DoctorResult {
  verdict: FindingKind;
  /** Per layer, the median over the probe's steps, in forward order. */
  layers: LayerStats[];
  findings: Finding[];
  /** Mean training loss over the probe's last steps. */
  loss: number;
  /** The probe: batches from initialisation and training steps. */
  probe: { batches: number; steps: number };
  /** With `fix`: the original first, then one trial per fix. */
  trials?: TrialResult[];
  /** The probe's loss beside the dataset's trivial baseline. */
  baseline?: BaselineComparison;
  /** Recurrent layers: the gradient horizon through time. */
  time?: TimeSummary[];
}

export interface ProbeOutcome {
  diagnosis: Diagnosis;
  layers: LayerStats[];
  loss: number;
  records: StepRecord[];
}

function positiveInt(v: number | undefined, dflt: number, name: string, min: number): number {
  const x = v ?? dflt;
  if (!Number.isInteger(x) || x < min)
    throw new ConfigError(`doctor: --${name} must be an integer >= ${min}, got ${String(v)}`);
  return x;
}

/**
 * Offsets the step numbers the trainer reports, so probe batches and training steps share one numbering; every other
 * call and its options pass through unchanged (afterBackward's `gradNormsFollow`: the monitor then takes the gradients'
 * norms from the step's one measurement instead of reading them again).
 */
export function offset(o: StepObserver, by: number): StepObserver {
  const wrapped: StepObserver = {
    beginStep: (s) => o.beginStep(s + by),
    afterBackward: (p, opts) => o.afterBackward(p, opts),
    afterUpdate: (u, p, st, opts) => o.afterUpdate(u, p, st, opts),
    endStep: (l) => o.endStep(l),
  };
  // only where `o` takes them: the trainer leaves the update norms to afterApply when an observer has one
  if (o.afterApply) wrapped.afterApply = (w, u) => o.afterApply?.(w, u);
  return wrapped;
}

/**
 * Probes one config: `batches` forward/backward passes from initialisation (no update), then `steps` steps of the
 * real training loop (`runTraining`, so clipping, schedules and non-finite handling are those of `gradguard train`).
 */
export function probe(config: Config, dataset: Dataset, batches: number, steps: number): ProbeOutcome {
  const exp = setupExperiment(config, dataset);
  const monitor = new Monitor(exp.model, { every: 1 }).attach();
  const tSize = dataset.targetShape.reduce((p, d) => p * d, 1);
  try {
    exp.model.train();
    for (let i = 0; i < batches; i++) {
      const b = exp.loader.next();
      monitor.beginStep(i);
      const loss = tidy(() => {
        const x = tensor(b.x.subarray(0, b.size * dataset.inputSize), [b.size, dataset.inputSize]);
        const y = tensor(b.y.subarray(0, b.size * tSize), [b.size * tSize]);
        const l = lossFor(dataset, exp.model.call(x), y);
        l.backward();
        return l.item();
      });
      monitor.afterBackward(exp.params);
      monitor.endStep(loss);
      exp.model.zeroGrad();
    }
    if (steps > 0) {
      // NOTE: the optimizer was built for the config's whole run (its schedule included); only the loop is cut short
      runTraining(
        { ...exp, config: { ...config, train: { ...config.train, maxSteps: steps } } },
        { observers: [offset(monitor, batches)] },
      );
    }
  } finally {
    monitor.detach();
  }
  const tail = monitor.losses.slice(batches).slice(-5);
  const loss = tail.length ? tail.reduce((s, v) => s + v, 0) / tail.length : Number.NaN;
  return {
    diagnosis: diagnose(monitor.history, {
      config,
      layers: monitor.layerInfo(),
      losses: monitor.losses,
      ...(dataset.baseline ? { baseline: dataset.baseline } : {}),
    }),
    layers: summarizeLayers(monitor.history),
    loss: Number.isFinite(loss) ? loss : Number.NaN,
    records: monitor.history,
  };
}

/**
 * The fixes to try, each once: every fix of the verdict's finding (the root cause, most often) first, then the others'
 * in turn, the first fix of each finding before the second of any.
 */
export function fixesToTry(findings: readonly Finding[], max: number): Fix[] {
  const out: Fix[] = [];
  const seen = new Set<string>();
  const take = (f: Fix | undefined) => {
    if (!f || out.length >= max) return;
    const key = f.set.join(' ');
    if (seen.has(key)) return;
    seen.add(key);
    out.push(f);
  };
  const [head, ...rest] = findings;
  for (const f of head?.fixes ?? []) take(f);
  const lists = rest.map((f) => f.fixes);
  for (let i = 0; out.length < max && lists.some((l) => i < l.length); i++) for (const l of lists) take(l[i]);
  return out;
}

function trialOf(label: string, set: string[], p: ProbeOutcome, original: ProbeOutcome | null): TrialResult {
  return judgeTrial(label, set, p, original);
}

/**
 * `doctor --fix --queue`: queues the fix trials (those whose config loads) as a sweep of kind `doctor` for
 * `gradguard worker`s, follows them, and judges each against the original as a local trial is judged. A fix whose
 * config is refused, or which the builder refuses on the worker, is that trial's result; a bug on a worker surfaces.
 */
async function queuedTrials(
  url: string,
  o: {
    file: string | undefined;
    sets: readonly string[];
    batches: number;
    steps: number;
    fixes: Fix[];
    original: ProbeOutcome;
    say: (line: string) => void;
    refusedTrial: (fix: Fix, message: string) => TrialResult;
  },
): Promise<TrialResult[]> {
  const out: (TrialResult | null)[] = o.fixes.map(() => null);
  const specs: { index: number; fix: Fix; config: Config }[] = [];
  for (const [i, fix] of o.fixes.entries()) {
    try {
      specs.push({
        index: i,
        fix,
        config: loadConfig(o.file, [...o.sets, ...fix.set], { dropInapplicable: true }).config,
      });
    } catch (e) {
      out[i] = o.refusedTrial(fix, (e as Error).message);
    }
  }
  if (specs.length) {
    const id = await enqueueSweep(
      url,
      'doctor',
      { batches: o.batches, steps: o.steps, config: o.file ?? null, set: o.sets },
      (sid) =>
        specs.map((s) => ({
          index: s.index,
          params: { fix: s.fix.label },
          sets: [...o.sets, ...s.fix.set],
          config: s.config,
          name: `doctor ${s.fix.label} (${sid} #${s.index})`,
        })),
    );
    o.say(`gradguard doctor: ${specs.length} trials queued as ${id}; waiting for workers`);
    const followed = await followSweep(url, id, { log: (l) => o.say(l.trimEnd()), progressBar: false });
    if (followed.interrupted)
      throw new UsageError(
        `doctor: stopped following ${id}; its trials go on (gradguard sweep --status ${id} --queue ...)`,
      );
    for (const t of followed.trials) {
      const fix = o.fixes[t.index]!;
      if (t.bug) throw new Error(`doctor: trial ${fix.label} hit a bug on a worker: ${t.error}`);
      out[t.index] = t.result
        ? trialOf(fix.label, fix.set, t.result as ProbeOutcome, o.original)
        : o.refusedTrial(fix, t.error ?? 'failed');
    }
  }
  return out.map((t, i) => t ?? o.refusedTrial(o.fixes[i]!, 'not run'));
}

/**
 * Runs the doctor on a config: a probe, its diagnosis and (with `fix`) a trial per suggested fix.
 *
 * @param file the config file (YAML or JSON), or undefined for the defaults
 * @param sets `key.path=value` overrides, as `--set` takes them
 * @param opts steps (30), batches (3), fix, maxTrials (4), onProgress
 * @returns the `--json` object
 * @throws ConfigError for a bad config or option (nothing runs), DataError when the data cannot be loaded
 */
export async function runDoctor(
  file: string | undefined,
  sets: readonly string[],
  opts: DoctorOptions = {},
): Promise<DoctorResult> {
  const steps = positiveInt(opts.steps, 30, 'steps', 1);
  const batches = positiveInt(opts.batches, 3, 'batches', 0);
  const maxTrials = positiveInt(opts.maxTrials, 4, 'max-trials', 1);
  const say = opts.onProgress ?? (() => {});
  const { config, source } = loadConfig(file, sets);
  const dataset = opts.dataset ?? (await loadDataset(config.data as Parameters<typeof loadDataset>[0]));
  say(
    `gradguard doctor: ${describeModel(config.model)} on ${dataset.name} (${source}): ${batches} batches from initialisation, then ${steps} training steps`,
  );
  const original = probe(config, dataset, batches, steps);
  const result: DoctorResult = {
    verdict: original.diagnosis.verdict,
    layers: original.layers,
    findings: original.diagnosis.findings,
    loss: original.loss,
    probe: { batches, steps },
    ...(original.diagnosis.baseline ? { baseline: original.diagnosis.baseline } : {}),
    ...(original.diagnosis.time ? { time: original.diagnosis.time } : {}),
  };
  if (!opts.fix) return result;
  const trials: TrialResult[] = [trialOf('original', [], original, null)];
  const fixes = fixesToTry(original.diagnosis.findings, maxTrials);
  const refusedTrial = (fix: Fix, message: string): TrialResult => ({
    ...trialOf(fix.label, fix.set, original, original),
    restoresFlow: false,
    lowersLoss: false,
    works: false,
    error: message,
  });
  if (opts.queue) {
    trials.push(
      ...(await queuedTrials(opts.queue, { file, sets, batches, steps, fixes, original, say, refusedTrial })),
    );
    result.trials = trials;
    return result;
  }
  for (const [i, fix] of fixes.entries()) {
    say(
      `gradguard doctor: trial ${i + 1}/${fixes.length}: ${fix.label} (${fix.set.map((s) => `--set ${s}`).join(' ')})`,
    );
    let trialConfig: Config;
    try {
      trialConfig = loadConfig(file, [...sets, ...fix.set], { dropInapplicable: true }).config;
    } catch (e) {
      trials.push(refusedTrial(fix, (e as Error).message));
      continue;
    }
    try {
      // NOTE: a fix may change the data (shorter sequences): the trial then runs on its own
      const same = JSON.stringify(trialConfig.data) === JSON.stringify(config.data);
      const data = same ? dataset : await loadDataset(trialConfig.data as Parameters<typeof loadDataset>[0]);
      trials.push(trialOf(fix.label, fix.set, probe(trialConfig, data, batches, steps), original));
    } catch (e) {
      // a fix the builder refuses is that trial's result; anything else is a bug and surfaces
      if (!isUserError(e)) throw e;
      trials.push(refusedTrial(fix, e.message));
    }
  }
  result.trials = trials;
  return result;
}

/** JSON with NaN and ±Infinity as null (JSON has no such numbers). */
function toJson(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? null : x));
}

/**
 * The `gradguard doctor` command: runs the doctor and prints the report (or one JSON object with `--json`).
 * @returns the exit status: 0 whatever the verdict
 * @throws ConfigError and the data errors, which the CLI prints as one line with exit status 2
 */
export async function doctorCommand(opts: DoctorCommandOptions): Promise<number> {
  if (opts.queue !== undefined) {
    if (!opts.fix) throw new UsageError('doctor: --queue runs the trials of --fix on workers; add --fix');
    checkQueueUrl(opts.queue);
  }
  const res = await runDoctor(opts.config, opts.set, {
    fix: opts.fix,
    ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
    ...(opts.batches !== undefined ? { batches: opts.batches } : {}),
    ...(opts.maxTrials !== undefined ? { maxTrials: opts.maxTrials } : {}),
    ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
    onProgress: (s) => process.stderr.write(`${s}\n`),
  });
  if (opts.json) {
    process.stdout.write(`${toJson(res)}\n`);
    return 0;
  }
  const color = Boolean(process.stdout.isTTY) && !process.env.NO_COLOR;
  const text = renderReport(
    res.layers,
    {
      verdict: res.verdict,
      findings: res.findings,
      ...(res.baseline ? { baseline: res.baseline } : {}),
      ...(res.time ? { time: res.time } : {}),
    },
    {
      color,
      title: `Gradient report: ${res.probe.batches} batches from initialisation, then ${res.probe.steps} training steps (loss ${formatMetric(res.loss)})`,
      ...(res.trials ? { trials: res.trials, trialSteps: res.probe.steps } : {}),
    },
  );
  process.stdout.write(`${text}\n`);
  return 0;
}
