/**
 * `gradguard experiment NAME [--quick] [--json] [--out DIR] [--store DIR]` and `gradguard experiment list`: runs one
 * of the classic experiments (experiments/NAME.yaml, src/experiment/) into the run store and writes its page with
 * figures. Progress goes to stderr; `--json` prints the one result object on stdout.
 */
import { runExperiment } from '../experiment/run.js';
import { ExperimentError, experimentFiles, loadExperiment, type SizeName } from '../experiment/spec.js';
import { stringifyJson } from '../track/export.js';
import { EXIT, UsageError } from './errors.js';
import type { CliIO } from './io.js';

export interface ExperimentCommandOptions {
  quick: boolean;
  /** Hidden: the tests' size, smaller than quick. */
  tiny: boolean;
  json: boolean;
  out: string;
  store: string;
}

/** `experiment list`: every experiment with its title and the runs of each size. */
function listCommand(json: boolean, io: CliIO): number {
  const items = experimentFiles().map((name) => {
    const spec = loadExperiment(name);
    const runs = (s: SizeName) => spec.armList.length * spec.sizes[s].seeds.length;
    return { name, title: spec.title, arms: spec.armList.length, runs: { quick: runs('quick'), full: runs('full') } };
  });
  if (json) io.stdout(`${stringifyJson({ experiments: items })}\n`);
  else {
    const w = Math.max(...items.map((i) => i.name.length), 4);
    io.stdout(
      `${items.map((i) => `${i.name.padEnd(w)}  ${i.title} (${i.arms} arms; ${i.runs.quick} runs --quick, ${i.runs.full} full)`).join('\n')}\n`,
    );
  }
  return EXIT.ok;
}

/** Runs the command; returns the exit status (errors are thrown for main's reporter). */
export async function experimentCommand(
  name: string | undefined,
  opts: ExperimentCommandOptions,
  io: CliIO,
): Promise<number> {
  const names = experimentFiles();
  if (name === undefined) throw new UsageError(`experiment: give an experiment name (${names.join(', ')}) or 'list'`);
  if (name === 'list') return listCommand(opts.json, io);
  if (!names.includes(name))
    throw new ExperimentError(`unknown experiment '${name}'`, {
      code: 'experiment.unknown',
      detail: `choose one of ${names.join(', ')} (gradguard experiment list)`,
    });
  if (opts.quick && opts.tiny) throw new UsageError('experiment: give --quick or --tiny, not both');
  const result = await runExperiment(name, {
    size: opts.tiny ? 'tiny' : opts.quick ? 'quick' : 'full',
    store: opts.store,
    out: opts.out,
    log: (s) => io.stderr(`${s}\n`),
  });
  if (opts.json) io.stdout(`${stringifyJson(result)}\n`);
  else {
    const d = result.disagreements.length;
    io.stdout(
      `${result.page}: ${result.arms.length} arms, ${result.arms.reduce((n, a) => n + a.runs.length, 0)} runs, ${result.figures.length} figures; ${d === 0 ? "gradguard's verdicts agree with every outcome" : `${d} run${d === 1 ? '' : 's'} where gradguard's verdict disagrees with the outcome (see the page)`}\n`,
    );
  }
  return EXIT.ok;
}
