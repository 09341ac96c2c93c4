/**
 * `gradguard sweep --grid key=v1,v2 [--grid ...] [--parallel N]`: runs every combination of the grid as its own run
 * (on worker threads, one per core by default), stores each in the run store, and prints a comparison table of final
 * metrics and verdicts (`--json`, or `--out table.md|table.csv`).
 */
import { accessSync, constants, existsSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { storeLabel } from '../track/store.js';
import { type Config, loadConfig } from '../train/config.js';
import { runTrial, type TrialOutcome } from '../train/sweep-trial.js';
import { EXIT, UsageError } from './errors.js';
import { checkQueueUrl } from './queue.js';
import { formatTable as alignedTable } from './runs.js';
import { enqueueSweep, followSweep, formatStatus, queuedRow, sweepStatus } from './sweep-queue.js';

export interface SweepOptions {
  config?: string;
  set: string[];
  grid: string[];
  parallel?: number;
  json: boolean;
  out?: string;
  store: string | null;
  /** A PostgreSQL URL: queue the trials for `gradguard worker`s instead of running them here. */
  queue?: string;
  /** With `queue`: print the sweep id and return at once. */
  detach?: boolean;
  /** Show where the queued sweep with this id is (needs `queue`). */
  status?: string;
}

export interface Trial {
  index: number;
  assignments: Record<string, unknown>;
  sets: string[];
}

/** The most trials one sweep runs (a grid is a cartesian product: a few long lists multiply fast). */
const MAX_TRIALS = 10_000;

/** Expands `key=v1,v2` grids into their cartesian product (values parsed as YAML scalars). */
export function expandGrid(grid: readonly string[]): Trial[] {
  if (!grid.length)
    throw new UsageError(
      'sweep: give at least one --grid key=v1,v2 (e.g. --grid init.weight=xavier-normal,kaiming-normal)',
    );
  const axes = grid.map((g) => {
    const eq = g.indexOf('=');
    if (eq <= 0 || eq === g.length - 1)
      throw new UsageError(`sweep: --grid ${g}: expected key=v1,v2,... (e.g. --grid optim.lr=0.001,0.0003)`);
    const key = g.slice(0, eq);
    const raw = g.slice(eq + 1).split(',');
    return { key, values: raw.map((v) => ({ raw: v, value: safeYaml(v) })) };
  });
  const count = axes.reduce((n, ax) => n * ax.values.length, 1);
  if (count > MAX_TRIALS)
    throw new UsageError(`sweep: the grid has ${count} trials, more than ${MAX_TRIALS}; split it into several sweeps`);
  let trials: { assignments: Record<string, unknown>; sets: string[] }[] = [{ assignments: {}, sets: [] }];
  for (const ax of axes) {
    trials = trials.flatMap((t) =>
      ax.values.map((v) => ({
        assignments: { ...t.assignments, [ax.key]: v.value },
        sets: [...t.sets, `${ax.key}=${v.raw}`],
      })),
    );
  }
  return trials.map((t, index) => ({ index, ...t }));
}

function safeYaml(v: string): unknown {
  try {
    return parseYaml(v, { maxAliasCount: 0, logLevel: 'error' });
  } catch {
    return v;
  }
}

export interface TrialRow {
  trial: number;
  params: Record<string, unknown>;
  status: string;
  testAccuracy: number | null;
  testLoss: number | null;
  finalLoss: number | null;
  verdict: string;
  seconds: number | null;
  run: string | null;
  error?: string;
}

/** A trial's row of the table: its result, or its error. */
export function trialRow(t: Pick<Trial, 'index' | 'assignments'>, r: TrialOutcome): TrialRow {
  return r.ok
    ? {
        trial: t.index,
        params: t.assignments,
        status: r.result.status,
        testAccuracy: r.result.test.accuracy ?? null,
        testLoss: r.result.test.loss,
        finalLoss: r.result.finalLoss,
        verdict: r.result.diagnosis.verdict,
        seconds: r.result.trainSeconds,
        run: r.result.run,
      }
    : {
        trial: t.index,
        params: t.assignments,
        status: 'failed',
        testAccuracy: null,
        testLoss: null,
        finalLoss: null,
        verdict: '-',
        seconds: null,
        run: null,
        error: r.error,
      };
}

const num = (x: number | null, d = 4) => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(d));

export function formatTable(rows: readonly TrialRow[], format: 'md' | 'csv' | 'text'): string {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.params)))];
  const header = ['trial', ...keys, 'status', 'test acc', 'test loss', 'final loss', 'verdict', 'seconds', 'run'];
  const body = rows.map((r) => [
    String(r.trial),
    ...keys.map((k) => String(r.params[k])),
    r.status,
    r.testAccuracy === null ? '-' : `${(r.testAccuracy * 100).toFixed(2)}%`,
    num(r.testLoss),
    num(r.finalLoss),
    r.error ? `error: ${r.error}` : r.verdict,
    num(r.seconds, 1),
    r.run ?? '-',
  ]);
  if (format === 'csv') {
    const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    return [header, ...body].map((row) => row.map(q).join(',')).join('\n');
  }
  if (format === 'md') {
    return [
      `| ${header.join(' | ')} |`,
      `|${header.map(() => '---').join('|')}|`,
      ...body.map((row) => `| ${row.join(' | ')} |`),
    ].join('\n');
  }
  return alignedTable(header, body).trimEnd();
}

/**
 * Checks `--out` before any trial runs (the table would be lost after every trial ran): a .md or .csv name in an
 * existing, writable directory, and not a directory itself.
 */
function checkOut(out: string): void {
  if (!/\.(md|csv)$/.test(out)) throw new UsageError(`sweep: --out ${out}: use a .md or .csv file name`);
  const dir = dirname(resolve(out));
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new UsageError(`sweep: --out ${out}: the directory ${dir} does not exist; create it first`);
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new UsageError(`sweep: --out ${out}: the directory ${dir} is not writable`);
  }
  if (existsSync(out) && statSync(out).isDirectory())
    throw new UsageError(`sweep: --out ${out} is a directory; give a .md or .csv file name`);
}

/** Checks the options that go together: `--detach` and `--status` need `--queue`, `--status` takes no grid. */
function checkModes(opts: SweepOptions): void {
  if ((opts.detach || opts.status !== undefined) && !opts.queue)
    throw new UsageError(
      `sweep: ${opts.detach ? '--detach' : '--status'} needs --queue postgres://... (the queue the sweep is in)`,
    );
  if (opts.status !== undefined && opts.grid.length)
    throw new UsageError('sweep: --status ID shows a queued sweep; drop the --grid options (or --status)');
  if (opts.queue && opts.parallel !== undefined)
    throw new UsageError('sweep: --parallel is for a local sweep; with --queue, start workers with --concurrency');
  if (opts.queue) checkQueueUrl(opts.queue);
}

export async function sweepCommand(opts: SweepOptions): Promise<number> {
  if (opts.parallel !== undefined && (!Number.isInteger(opts.parallel) || opts.parallel < 1))
    throw new UsageError(`sweep: --parallel must be a whole number >= 1, got ${String(opts.parallel)}`);
  checkModes(opts);
  if (opts.status !== undefined) {
    const s = await sweepStatus(opts.queue!, opts.status);
    process.stdout.write(opts.json ? `${JSON.stringify(s)}\n` : `${formatStatus(s)}\n`);
    return EXIT.ok;
  }
  if (opts.out) checkOut(opts.out);
  const trials = expandGrid(opts.grid);
  // validate every trial's config before any work starts
  const configs = trials.map((t) => loadConfig(opts.config, [...opts.set, ...t.sets]).config);
  if (opts.queue) return queuedSweep(opts, trials, configs);
  const parallel = Math.max(1, Math.min(opts.parallel ?? availableParallelism(), trials.length));
  process.stderr.write(`gradguard sweep: ${trials.length} trials, ${parallel} at a time\n`);
  // The cores shared between the trials running at once: each trial's wasm backend starts that many threads (unless
  // GRADGUARD_THREADS says otherwise), rather than every trial one per core.
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (!env.GRADGUARD_THREADS)
    env.GRADGUARD_THREADS = String(Math.max(1, Math.floor(availableParallelism() / parallel)));
  const rows: TrialRow[] = new Array(trials.length);
  let bug = false;
  let next = 0;
  const workerLoop = async () => {
    while (next < trials.length) {
      const t = trials[next++]!;
      const name = `sweep ${t.sets.join(' ')}`;
      const r = await runTrial(
        {
          index: t.index,
          ...(opts.config ? { file: opts.config } : {}),
          sets: [...opts.set, ...t.sets],
          store: opts.store,
          name,
        },
        env,
      );
      const row = trialRow(t, r);
      rows[t.index] = row;
      if (!r.ok && !r.user) {
        bug = true;
        if (r.stack) process.stderr.write(`gradguard sweep: trial ${t.index} hit a bug in gradguard:\n${r.stack}\n`);
      }
      process.stderr.write(
        `  trial ${t.index} (${t.sets.join(' ')}): ${row.status}${row.testAccuracy !== null ? `, test accuracy ${(row.testAccuracy * 100).toFixed(2)}%` : ''}${row.error ? ` — ${row.error}` : ''}\n`,
      );
    }
  };
  await Promise.all(Array.from({ length: parallel }, workerLoop));
  return finishSweep(opts, rows, bug);
}

/** Queues the trials (`--queue`); prints the sweep id with `--detach`, else follows them to the end. */
async function queuedSweep(opts: SweepOptions, trials: readonly Trial[], configs: readonly Config[]): Promise<number> {
  const spec = {
    config: opts.config ?? null,
    set: opts.set,
    grid: opts.grid,
    store: opts.store ? storeLabel(opts.store) : null,
  };
  const id = await enqueueSweep(opts.queue!, 'sweep', spec, (id) =>
    trials.map((t, i) => ({
      index: t.index,
      params: t.assignments,
      sets: [...opts.set, ...t.sets],
      config: configs[i],
      // unique: a retried trial finds a run its killed attempt left before recording it
      name: `sweep ${t.sets.join(' ')} (${id} #${t.index})`,
    })),
  );
  if (opts.detach) {
    process.stderr.write(
      `gradguard sweep: ${trials.length} trials queued as ${id}; see them with gradguard sweep --status ${id} --queue ...\n`,
    );
    process.stdout.write(opts.json ? `${JSON.stringify({ sweep: id, trials: trials.length })}\n` : `${id}\n`);
    return EXIT.ok;
  }
  process.stderr.write(`gradguard sweep: ${trials.length} trials queued as ${id}; waiting for workers\n`);
  const followed = await followSweep(opts.queue!, id, {
    log: (l) => process.stderr.write(l),
    progressBar: true,
  });
  if (followed.interrupted) {
    process.stderr.write(
      `gradguard sweep: stopped following ${id}; its trials go on (gradguard sweep --status ${id} --queue ...)\n`,
    );
    if (opts.json) process.stdout.write(`${JSON.stringify({ sweep: id, interrupted: true })}\n`);
    return EXIT.interrupted;
  }
  return finishSweep(
    opts,
    followed.trials.map(queuedRow),
    followed.trials.some((t) => t.bug),
  );
}

/**
 * Writes the table (`--out`, stdout) and returns the exit status: 0 when every trial ran (diverged ones are results),
 * 2 when a trial was refused as the user's mistake, 1 when one hit a bug. With `--json` and a failed trial, the one
 * object is the error (`{ error: { code, message }, trials }`), as every command prints its errors.
 */
function finishSweep(opts: SweepOptions, rows: TrialRow[], bug: boolean): number {
  if (opts.out) writeFileSync(opts.out, `${formatTable(rows, opts.out.endsWith('.csv') ? 'csv' : 'md')}\n`);
  const failed = rows.filter((r) => r.error);
  const status = bug ? EXIT.bug : failed.length ? EXIT.user : EXIT.ok;
  const message = failed.length
    ? `sweep: ${failed.length} of ${rows.length} trials ${bug ? 'failed' : 'were refused'}; trial ${failed[0]!.trial}: ${failed[0]!.error}`
    : null;
  if (opts.json) {
    const error = message ? { error: { code: bug ? 'internal' : 'sweep.trial-failed', message } } : {};
    process.stdout.write(`${JSON.stringify({ ...error, trials: rows })}\n`);
  } else process.stdout.write(`${formatTable(rows, 'text')}\n`);
  if (message) process.stderr.write(`gradguard: ${message}\n`);
  return status;
}
