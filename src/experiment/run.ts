/**
 * Runs an experiment (see framework.ts): every arm and seed through the real trainer into the run store, one after
 * another, then the experiment's analysis, then the page and its figures, written only when everything succeeded.
 */
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { getBackend } from '../backend/index.js';
import { RunStore } from '../track/store.js';
import type { Config } from '../train/config.js';
import { trainSession } from '../train/session.js';
import {
  type ArmRun,
  defaultOutcome,
  type ExperimentContext,
  type ExperimentModule,
  type ExperimentResult,
  fmtNum,
  fmtPct,
  type JudgedRun,
} from './framework.js';
import { renderPage } from './page.js';
import { findModule } from './registry.js';
import { type Arm, armConfig, ExperimentError, loadExperiment, type SizeName } from './spec.js';

export interface RunExperimentOptions {
  size: SizeName;
  /** The run store directory. */
  store: string;
  /** Where the page and its figures go (default docs/experiments). */
  out: string;
  /** Progress lines (stderr in the CLI). */
  log?: (line: string) => void;
  /** The folder of the experiment files (tests); default experiments/ at the package root. */
  dir?: string;
}

/** The machine, in words, for the page: `2 x AMD EPYC 9R14, backend native (openblas, 2 threads)`. */
export function machineLine(): string {
  const cs = cpus();
  const b = getBackend();
  return `${cs.length} x ${cs[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.versions.node}, backend ${b.name} (${b.threads} thread${b.threads === 1 ? '' : 's'})`;
}

/** Refuses an output folder that cannot be written, before any training (so no work is lost at the end). */
function checkOut(out: string): void {
  let dir = resolve(out);
  while (!existsSync(dir)) dir = dirname(dir);
  if (!statSync(dir).isDirectory())
    throw new ExperimentError(`--out ${out}: ${dir} is a file, not a folder; give a folder for the page and figures`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new ExperimentError(`--out ${out}: ${dir} cannot be written; give a folder you can write to`);
  }
}

/** Trains one arm at one seed and returns what the analysis needs. */
async function trainArm(
  name: string,
  arm: Arm,
  seed: number,
  config: Config,
  store: string,
  spec: { file: string },
): Promise<ArmRun> {
  const r = await trainSession(config, {
    store,
    source: `${spec.file} arm ${arm.name || '(base)'} seed ${seed}`,
    name: `${name}/${arm.name}/s${seed}`,
    meta: { tags: [name, `${name}:${arm.name}`], notes: `gradguard experiment ${name}: arm ${arm.label || arm.name}` },
    evaluateTrain: true,
  });
  return {
    arm,
    seed,
    config,
    run: r.run as string,
    status: r.status,
    steps: r.steps,
    train: r.train ?? { loss: Number.NaN },
    test: r.test,
    finalLoss: r.finalLoss,
    skippedSteps: r.skippedSteps,
    clippedSteps: r.clippedSteps,
    seconds: r.trainSeconds,
    baselineLoss: r.diagnosis.baseline?.loss ?? null,
    dataset: r.data,
    diagnosis: r.diagnosis,
    warnings: r.warnings,
  };
}

/** Judges a run: its outcome (the module's, or the default) and whether gradguard's verdict agrees. */
export function judge(mod: ExperimentModule, run: ArmRun): JudgedRun {
  const outcome = mod.outcome ? mod.outcome(run) : defaultOutcome(run);
  const verdict = run.diagnosis.verdict;
  return { ...run, outcome, verdict, agrees: outcome.ok === (verdict === 'healthy') };
}

/** Runs experiment `name` at `opts.size`; returns the `--json` object. Throws ExperimentError for user mistakes. */
export async function runExperiment(name: string, opts: RunExperimentOptions): Promise<ExperimentResult> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const spec = loadExperiment(name, opts.dir);
  const mod = findModule(name);
  checkOut(opts.out);
  const prep = (await mod.prepare?.(opts.size)) ?? {};
  const plan = spec.armList.flatMap((arm) =>
    spec.sizes[opts.size].seeds.map((seed) => ({ arm, seed, config: armConfig(spec, arm, opts.size, seed, prep.set) })),
  );
  log(`gradguard: experiment ${name} (${opts.size}): ${plan.length} runs into ${opts.store}; ${machineLine()}`);
  const runs: JudgedRun[] = [];
  for (const [i, p] of plan.entries()) {
    const run = judge(mod, await trainArm(name, p.arm, p.seed, p.config, opts.store, spec));
    runs.push(run);
    const acc = run.test.accuracy !== undefined ? ` acc ${fmtPct(run.test.accuracy)}` : '';
    log(
      `  [${i + 1}/${plan.length}] ${p.arm.name || '(base)'} seed ${p.seed}: ${run.status}, train loss ${fmtNum(run.train.loss)}, test loss ${fmtNum(run.test.loss)}${acc}; ${run.outcome.label}, verdict ${run.verdict}${run.agrees ? '' : ' (disagrees)'}; ${run.seconds.toFixed(1)} s, run ${run.run}`,
    );
  }
  const store = RunStore.open(opts.store, { readonly: true });
  try {
    const ctx: ExperimentContext = { spec, size: opts.size, runs, store, notes: prep.notes ?? [] };
    const analysis = await mod.analyze(ctx);
    mkdirSync(opts.out, { recursive: true });
    const seconds = (performance.now() - t0) / 1000;
    const written = await renderPage(ctx, analysis, { out: opts.out, machine: machineLine(), seconds });
    log(`gradguard: wrote ${written.page} and ${written.figures.length} figures (${seconds.toFixed(0)} s)`);
    return {
      experiment: name,
      title: spec.title,
      size: opts.size,
      page: written.page,
      figures: written.figures,
      store: opts.store,
      arms: spec.armList.map((arm) => ({
        name: arm.name,
        label: arm.label,
        set: arm.set,
        runs: runs
          .filter((r) => r.arm === arm)
          .map((r) => ({
            seed: r.seed,
            run: r.run,
            status: r.status,
            steps: r.steps,
            config: r.config,
            train: r.train,
            test: r.test,
            finalLoss: r.finalLoss,
            seconds: r.seconds,
            verdict: r.verdict,
            outcome: r.outcome,
            agrees: r.agrees,
          })),
      })),
      disagreements: runs
        .filter((r) => !r.agrees)
        .map((r) => ({ arm: r.arm.name, seed: r.seed, verdict: r.verdict, outcome: r.outcome.label })),
      ...(analysis.data !== undefined ? { analysis: analysis.data } : {}),
      seconds,
    };
  } finally {
    store.close();
  }
}
