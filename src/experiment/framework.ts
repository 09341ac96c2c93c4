/**
 * Experiments: a paper's result reproduced in one command, `gradguard experiment NAME [--quick] [--json] [--out DIR]
 * [--store DIR]`. Each arm of an experiment is trained by the real trainer (train/session.ts, as `gradguard train`
 * does: monitor, live diagnosis, checkpoints) and stored as a run in the run store, named `NAME/ARM/sSEED` and tagged
 * `NAME` (so `gradguard dashboard`, `runs list --name NAME` and `runs compare` show them). Then the experiment's
 * analysis reads the runs back and the framework writes `docs/experiments/NAME.md` (or `DIR/NAME.md`) with its PNG
 * figures beside it (`NAME-KEY.png`, vega-lite -> dashboard/report.ts `specToSvg` -> resvg), every run's outcome
 * beside gradguard's own verdict (where they disagree, the page says so), and the reading against the paper.
 *
 * ## Declaring an experiment (three pieces)
 *
 * 1. `experiments/NAME.yaml` (spec.ts validates it; every arm's config at every size is checked before any training):
 *
 * ```yaml
 * title: "He et al. 2015: a 30-layer ReLU net trains with He init and stalls with Xavier"
 * paper: K. He, X. Zhang, S. Ren, J. Sun. Delving Deep into Rectifiers. ICCV 2015, section 2.2 and figure 3.
 * claim: A 30-layer ReLU net with Xavier init does not learn at all; with He init it converges.
 * base:                       # a gradguard config (as `train -c`; every key optional): what all arms share
 *   model: { type: mlp, depth: 30, width: 256, activation: relu }
 *   optim: { name: sgd, lr: 0.01, momentum: 0.9 }
 *   clip: []
 * arms:                       # each arm: a name (a-z 0-9 . _ -), an optional label, overrides as key paths
 *   - { name: xavier, label: Xavier (Glorot) normal, set: { init.weight: xavier-normal } }
 *   - { name: he, set: { init.weight: kaiming-normal } }
 * grid:                       # optional: every arm x every combination (arm `xavier` -> `xavier-relu`, ...);
 *   model.activation: [relu, tanh]   # without `arms`, the combinations alone are the arms (`relu`, `tanh`)
 * sizes:                      # all three required; seeds: one run per arm and seed (config `seed`)
 *   tiny:  { seeds: [0], set: { train.maxSteps: 3, data.trainSize: 256 } }        # tests only (--tiny, hidden)
 *   quick: { seeds: [0], set: { train.epochs: 2 }, note: 2 epochs on the bundled digits }   # --quick
 *   full:  { seeds: [0, 1, 2], set: { train.epochs: 20 }, arms: { he: { optim.lr: 0.005 } } } # the default
 * ```
 *
 * A run's config is the base, then the arm's `set`, then the size's `set`, then the size's `arms[ARM]`, then the
 * module's `prepare().set`, then `seed`; each as `--set key=value` would apply it.
 *
 * 2. `src/experiment/experiments/NAME.ts` exports an {@link ExperimentModule}: `analyze(ctx)` returns the figures
 * (vega-lite specs; figures.ts has line / heatmap / bar helpers), markdown sections and the reading against the
 * paper; it may read each run's per-layer statistics, metrics and histograms from `ctx.store` by `run.run`.
 * Optional: `prepare(size)` (overrides decided at run time, e.g. full MNIST when it is on disk, and notes for the
 * page), and `outcome(run)` (what happened to a run in the paper's terms; default: {@link defaultOutcome}, learned
 * or stalled against the dataset's trivial baseline, or diverged). A run agrees with gradguard when its outcome's `ok`
 * equals "the verdict is healthy"; the page lists every disagreement.
 *
 * 3. One line in registry.ts (`EXPERIMENTS`). test/experiments.int.test.ts then runs every registered experiment at
 * its tiny size in a fresh process and checks the JSON, the stored runs, the page and the PNGs; it also fails when an
 * `experiments/*.yaml` has no module or a module no file. Commit the page `--quick` writes, with a row in
 * docs/experiments/README.md.
 *
 * `--json` prints one object, {@link ExperimentResult}: for each arm its runs (config, final train/test metrics,
 * verdict, outcome, run id), the figures and the page's path. Sizes: `--quick` for the documented quick set (all seven
 * experiments together in under 20 minutes on 2 cores), the full, paper-like size without it, `--tiny` (hidden) for
 * tests.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { Diagnosis } from '../monitor/diagnose.js';
import type { RunStore } from '../track/store.js';
import type { Config } from '../train/config.js';
import type { EvalResult } from '../train/trainer.js';
import type { Arm, ExperimentSpec, SizeName } from './spec.js';

/** What happened to one run, in the paper's terms: `learns`, `stalls`, `diverges`, ... and whether that is good. */
export interface RunOutcome {
  /** One or two words for the table: `learns`, `stalls`, `diverged`, `saturated`. */
  label: string;
  /** Whether the network trained as a healthy one should (then gradguard's verdict should be `healthy`). */
  ok: boolean;
  /** The numbers behind the label, for the page (`train loss 0.08 against the baseline 2.30`). */
  detail: string;
}

/** One trained run of one arm and seed. */
export interface ArmRun {
  arm: Arm;
  seed: number;
  /** The full config it trained with (defaults filled). */
  config: Config;
  /** Its run id in the store. */
  run: string;
  /** `finished`, `diverged`, `interrupted` or `failed`, as the trainer says. */
  status: string;
  steps: number;
  /** The trained model on the whole training split and on the test split. */
  train: EvalResult;
  test: EvalResult;
  /** The last step's training loss. */
  finalLoss: number;
  skippedSteps: number;
  clippedSteps: number;
  /** Training time in seconds. */
  seconds: number;
  /** The dataset's trivial baseline loss (predicting the class frequencies, or the mean), when it has one. */
  baselineLoss: number | null;
  dataset: { name: string; train: number; test: number };
  /** gradguard's diagnosis of the run's last 50 logged steps, as `gradguard train` prints it. */
  diagnosis: Diagnosis;
  /** The findings printed live while it trained (kind and layers, first time each). */
  warnings: { kind: string; layers: string[] }[];
}

/** A run with its outcome, and whether gradguard's verdict agrees with it. */
export interface JudgedRun extends ArmRun {
  outcome: RunOutcome;
  verdict: string;
  agrees: boolean;
}

/** Overrides an experiment decides when it runs (applied to every arm), and notes for the page. */
export interface Preparation {
  set?: Record<string, unknown>;
  notes?: string[];
}

/** What `analyze` gets: the spec, the size, the judged runs in arm then seed order, and the store to read them from. */
export interface ExperimentContext {
  spec: ExperimentSpec;
  size: SizeName;
  runs: JudgedRun[];
  /** The run store, open (read the runs' layer statistics, metrics and histograms by `run.run`). */
  store: RunStore;
  notes: string[];
}

/** One figure of a page: `KEY` names the file `NAME-KEY.png`. */
export interface PageFigure {
  key: string;
  title: string;
  /** A sentence or two under the figure: what it shows and how to read it. */
  caption: string;
  spec: TopLevelSpec;
}

/** What an experiment's analysis returns. */
export interface Analysis {
  figures: PageFigure[];
  /** Markdown sections between the results table and the reading (tables of statistics, ...). */
  sections?: { heading: string; body: string }[];
  /** The reading against the paper, markdown: what agrees, what differs and why. */
  reading: string;
  /** Numbers the reading rests on, added to `--json` as `analysis`. */
  data?: unknown;
}

/** An experiment's code: registry.ts lists one per `experiments/NAME.yaml`. */
export interface ExperimentModule {
  name: string;
  prepare?(size: SizeName): Preparation | Promise<Preparation>;
  outcome?(run: ArmRun): RunOutcome;
  analyze(ctx: ExperimentContext): Analysis | Promise<Analysis>;
}

/** One run in `--json`. */
export interface RunJson {
  seed: number;
  run: string;
  status: string;
  steps: number;
  config: Config;
  train: EvalResult;
  test: EvalResult;
  finalLoss: number;
  seconds: number;
  verdict: string;
  outcome: RunOutcome;
  agrees: boolean;
}

/** What `gradguard experiment NAME --json` prints. */
export interface ExperimentResult {
  experiment: string;
  title: string;
  size: SizeName;
  page: string;
  figures: string[];
  store: string;
  arms: { name: string; label: string; set: Record<string, unknown>; runs: RunJson[] }[];
  disagreements: { arm: string; seed: number; verdict: string; outcome: string }[];
  analysis?: unknown;
  seconds: number;
}

/**
 * The default outcome: `diverged` when the trainer stopped the run on non-finite values (or its loss is not finite),
 * `learns` when the final training loss is under half the dataset's trivial baseline, else `stalls` (without a
 * baseline: learns when the loss fell to under half its first value).
 */
export function defaultOutcome(run: ArmRun, firstLoss?: number): RunOutcome {
  const loss = run.train.loss;
  if (run.status === 'diverged' || !Number.isFinite(loss))
    return { label: 'diverged', ok: false, detail: `status ${run.status}, train loss ${fmtNum(loss)}` };
  const ref = run.baselineLoss ?? firstLoss;
  if (ref === undefined) return { label: 'trained', ok: true, detail: `train loss ${fmtNum(loss)}` };
  const learns = loss < 0.5 * ref;
  const against = run.baselineLoss !== null ? `the trivial baseline ${fmtNum(ref)}` : `the first loss ${fmtNum(ref)}`;
  return { label: learns ? 'learns' : 'stalls', ok: learns, detail: `train loss ${fmtNum(loss)} against ${against}` };
}

/** A number for pages and tables: 3 significant digits, exponent form for the very small or large. */
export function fmtNum(x: number | null | undefined): string {
  if (x === null || x === undefined) return '-';
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return x.toExponential(2);
  return Number(x.toPrecision(3)).toString();
}

/** A fraction as a percentage with two decimals (`95.80%`), or `-`. */
export function fmtPct(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(2)}%`;
}
