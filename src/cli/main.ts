/**
 * The `gradguard` command line. Every command that produces a result takes `--json` and then prints exactly one JSON
 * object on stdout (progress goes to stderr), an error too. Every error ends in one reporter (errors.ts): a user's
 * mistake prints one clear line and exits with status 2, never a stack trace; a bug prints its stack and exits with 1;
 * a diverged run exits with 3, an interrupted one with 130.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { storeSpecFromEnv } from '../track/pg/url.js';
import { exportWeightsCommand, wantsWeights } from './checkpoint-commands.js';
import { dashboardCommand, reportCommand } from './dashboard.js';
import { doctorCommand } from './doctor.js';
import { reportError, UsageError } from './errors.js';
import { experimentCommand } from './experiment.js';
import { processIO } from './io.js';
import { playgroundCommand } from './playground.js';
import { exportCommand, runsCommand } from './runs.js';
import { sweepCommand } from './sweep.js';
import { trainCommand } from './train.js';
import { workerCommand } from './worker.js';

/** `--store`: a directory (SQLite) or a PostgreSQL URL; the default comes from GRADGUARD_STORE. */
const STORE_HELP =
  'run store: a directory (SQLite) or postgres://user:password@host:port/db (default: $GRADGUARD_STORE, else ./gradguard-runs)';

const collect = (v: string, prev: string[]) => [...prev, v];

/** The most any count option takes (steps, batches, trials, threads): far above use, far below a hang. */
const MAX_COUNT = 1_000_000;

/** A commander parser for a whole-number option in [min, MAX_COUNT]; anything else is refused, never defaulted. */
export function intOption(min: number): (v: string) => number {
  return (v) => {
    const t = v.trim();
    const n = Number(t);
    if (!/^\d+$/.test(t) || !Number.isSafeInteger(n) || n < min || n > MAX_COUNT)
      throw new InvalidArgumentError(`Give a whole number from ${min} to ${MAX_COUNT.toLocaleString('en-US')}.`);
    return n;
  };
}

/** The package's version (package.json, two folders up from src/cli and from dist/cli). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = new Command();
  let code = 0;
  let commanderMessage = '';
  const json = argv.includes('--json');
  program
    .name('gradguard')
    .description('Train deep networks that stay trainable: watch every layer’s gradients, diagnose, fix.')
    .version(version(), '-V, --version', 'print the version of gradguard')
    .exitOverride()
    // commander's own usage errors go through the one reporter below (one line, exit 2, JSON with --json)
    .configureOutput({
      // what commander writes to stderr is its help after a usage error: the one line below says where help is
      writeErr: () => {},
      outputError: (s) => {
        commanderMessage = s.trim().replace(/^error: /, '');
      },
    });

  addTrainingCommands(program, (c) => {
    code = c;
  });
  addExperimentCommand(program, (c) => {
    code = c;
  });
  addStoreCommands(program, (c) => {
    code = c;
  });

  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.exitCode === 0) return 0; // --help, --version
      const message =
        e.code === 'commander.help'
          ? 'give a command: train, doctor, sweep, worker, experiment, runs, export, dashboard or report'
          : commanderMessage || e.message.replace(/^error: /, '');
      return reportError(new UsageError(`${message} (run gradguard --help for usage)`), processIO, json);
    }
    return reportError(e, processIO, json);
  }
  return code;
}

/** `train`, `doctor`, `sweep` and `worker`; `done` receives the exit status. */
function addTrainingCommands(program: Command, done: (code: number) => void): void {
  program
    .command('train')
    .description('train a model from a config (default: the headline MNIST MLP) and print its gradient report')
    .option('-c, --config <file>', 'YAML or JSON config (every key optional; defaults are the headline example)')
    .option('-s, --set <key=value>', 'override one config key, e.g. --set model.depth=30 (repeatable)', collect, [])
    .option('--json', 'print one JSON object with the summary and diagnosis on stdout')
    .option('--store <dir|url>', STORE_HELP, storeSpecFromEnv())
    .option('--no-store', 'do not record the run in the run store')
    .option('--quiet', 'no progress output')
    .option('--resume <run|dir>', 'continue a run from its latest checkpoint (a run id, or a checkpoint directory)')
    .option('--name <name>', 'a name for the run in the store (runs list --name finds it)')
    .option('--tag <tag>', 'a tag for the run in the store (repeatable)', collect, [])
    .option('--notes <text>', 'free-text notes stored with the run')
    .action(async (opts) => {
      done(
        await trainCommand({
          config: opts.config,
          set: opts.set,
          json: Boolean(opts.json),
          store: opts.store === false ? null : opts.store,
          quiet: Boolean(opts.quiet),
          resume: opts.resume,
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          tags: opts.tag,
          ...(opts.notes !== undefined ? { notes: opts.notes } : {}),
        }),
      );
    });

  program
    .command('doctor')
    .description('probe a config from initialisation and a few steps: per-layer gradient flow, findings and fixes')
    .option('-c, --config <file>', 'YAML or JSON config')
    .option('-s, --set <key=value>', 'override one config key (repeatable)', collect, [])
    .option('--fix', 'run each suggested fix as a short trial beside the original and compare')
    .option('--steps <n>', 'training steps of the probe and of each trial (default 30)', intOption(1))
    .option('--batches <n>', 'batches run from initialisation before training (default 3)', intOption(0))
    .option('--max-trials <n>', 'at most this many fixes tried with --fix (default 4)', intOption(1))
    .option('--json', 'print one JSON object { verdict, layers, findings, trials? }')
    .option('--queue <url>', 'with --fix: run the trials on `gradguard worker`s through this PostgreSQL')
    .action(async (opts) => {
      done(
        await doctorCommand({
          ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
          ...(opts.config ? { config: opts.config } : {}),
          set: opts.set,
          json: Boolean(opts.json),
          fix: Boolean(opts.fix),
          ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
          ...(opts.batches !== undefined ? { batches: opts.batches } : {}),
          ...(opts.maxTrials !== undefined ? { maxTrials: opts.maxTrials } : {}),
        }),
      );
    });

  program
    .command('sweep')
    .description('train every combination of a grid (worker threads) and compare the runs')
    .option('-c, --config <file>', 'YAML or JSON config')
    .option('-s, --set <key=value>', 'override one config key for every trial (repeatable)', collect, [])
    .option(
      '-g, --grid <key=v1,v2>',
      'a config key and its values (repeatable; trials are the cartesian product)',
      collect,
      [],
    )
    .option('-p, --parallel <n>', 'trials at a time (default: one per core)', intOption(1))
    .option('--out <file>', 'also write the table to a .md or .csv file')
    .option('--json', 'print one JSON object { trials }')
    .option('--store <dir|url>', STORE_HELP, storeSpecFromEnv())
    .option('--no-store', 'do not record the trials in the run store')
    .option('--queue <url>', 'queue the trials on this PostgreSQL for `gradguard worker`s, and follow them')
    .option('--detach', 'with --queue: print the sweep id and return at once')
    .option('--status <id>', 'with --queue: where a queued sweep is (per trial: state, run, result)')
    .action(async (opts) => {
      done(
        await sweepCommand({
          ...(opts.config ? { config: opts.config } : {}),
          set: opts.set,
          grid: opts.grid,
          ...(opts.parallel !== undefined ? { parallel: opts.parallel } : {}),
          json: Boolean(opts.json),
          ...(opts.out ? { out: opts.out } : {}),
          store: opts.store === false ? null : opts.store,
          ...(opts.queue !== undefined ? { queue: opts.queue } : {}),
          ...(opts.detach ? { detach: true } : {}),
          ...(opts.status !== undefined ? { status: opts.status } : {}),
        }),
      );
    });

  program
    .command('worker')
    .description('run the trials of queued sweeps (sweep --queue, doctor --fix --queue) on this machine')
    .requiredOption('--queue <url>', 'the PostgreSQL the sweeps are queued on (postgres://user@host:5432/db)')
    .option('--store <dir|url>', STORE_HELP, storeSpecFromEnv())
    .option('--concurrency <n>', 'trials at a time (default 1)', intOption(1))
    .option('--json', 'when it stops, print one JSON object { worker, recorded, handedBack }')
    .action(async (opts) => {
      done(
        await workerCommand({
          json: Boolean(opts.json),
          queue: opts.queue,
          store: opts.store,
          ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
          log: (l) => process.stderr.write(l),
        }),
      );
    });
}

/** `experiment NAME | list`: the classic experiments, each arm a run in the store, and its page with figures. */
function addExperimentCommand(program: Command, done: (code: number) => void): void {
  program
    .command('experiment')
    .description('reproduce a classic experiment (list: the experiments) into the run store and write its page')
    .argument('[name]', 'the experiment (gradguard experiment list), or list')
    .option('--quick', 'the quick sizes (all experiments together in under 20 minutes on 2 cores)')
    .addOption(new Option('--tiny', 'the tests’ sizes (smaller than --quick)').hideHelp())
    .option('--json', 'print one JSON object: each arm’s runs with config, metrics, verdict and run id')
    .option('--out <dir>', 'where the page NAME.md and its figures go', 'docs/experiments')
    .option('--store <dir>', 'run store directory', './gradguard-runs')
    .action(async (name: string | undefined, o) => {
      done(
        await experimentCommand(
          name,
          { quick: Boolean(o.quick), tiny: Boolean(o.tiny), json: Boolean(o.json), out: o.out, store: o.store },
          processIO,
        ),
      );
    });
}

/** The commands that read the run store: `runs`, `export`, `dashboard` and `report`. */
function addStoreCommands(program: Command, done: (code: number) => void): void {
  program
    .command('runs')
    .description('list, show, compare or remove runs in the run store')
    .argument('<action>', 'list | show | compare | rm')
    .argument('[ids...]', 'run ids (unique prefixes work)')
    .option('--store <dir|url>', STORE_HELP, storeSpecFromEnv())
    .option('--status <s>', 'list: only runs with this status (comma-separated)')
    .option('--name <text>', 'list: only runs whose name contains this')
    .option('--limit <n>', 'list: at most this many, newest first')
    .option('--force', 'rm: also remove runs whose process is still running')
    .option('--json', 'print one JSON object')
    .action(async (action: string, ids: string[], opts) => {
      done(await runsCommand(action, ids, opts));
    });

  program
    .command('export')
    .description('export a run: metrics as csv/json, TensorBoard event files, or its weights as safetensors')
    .argument('<id>', 'run id (a unique prefix works), or a checkpoint directory for safetensors')
    .option('--format <f>', 'csv | json | tensorboard | safetensors (the default for --out *.safetensors)')
    .option('--out <path>', 'output directory, or the .safetensors file')
    .option('--store <dir|url>', STORE_HELP, storeSpecFromEnv())
    .option('--json', 'print one JSON object')
    .action(async (id: string, opts) => {
      done(wantsWeights(opts) ? await exportWeightsCommand(id, opts) : await exportCommand(id, opts));
    });

  program
    .command('dashboard')
    .description('serve the local read-only dashboard for the run store (live while runs train)')
    .option('--store <dir|url>', STORE_HELP, storeSpecFromEnv())
    .option('--port <n>', 'TCP port (0 picks a free one)', '6007')
    .option('--host <addr>', 'address to listen on (127.0.0.1: this machine only)', '127.0.0.1')
    .option('--json', 'print one JSON object with the URL once listening')
    .action(async (o) => {
      done(await dashboardCommand({ store: o.store, port: o.port, host: o.host, json: Boolean(o.json) }));
    });

  program
    .command('playground')
    .description(
      'serve the in-browser playground on 127.0.0.1 (gradient flow, live; cross-origin isolated for threads)',
    )
    .option('--port <n>', 'TCP port (0 picks a free one)', '6008')
    .option('--json', 'print one JSON object with the URL once listening')
    .action(async (o) => {
      done(await playgroundCommand({ port: o.port, json: Boolean(o.json) }));
    });

  program
    .command('report')
    .description("write a run's figures into one self-contained HTML, SVG or PNG file")
    .argument('<run>', 'run id, unique prefix or name')
    .option('--out <file>', 'report.html | report.svg | report.png (default <run id>-report.html)')
    .option('--store <dir|url>', STORE_HELP, storeSpecFromEnv())
    .option('--json', 'print one JSON object')
    .action(async (run: string, o) => {
      done(await reportCommand({ run, store: o.store, out: o.out, json: Boolean(o.json) }));
    });
}
