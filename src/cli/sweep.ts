/**
 * `gradguard sweep --grid key=v1,v2 [--grid ...] [--parallel N]`: runs every combination of the grid as its own run
 * (on worker threads, one per core by default), stores each in the run store, and prints a comparison table of final
 * metrics and verdicts (`--json`, or `--out table.md|table.csv`).
 */
import { accessSync, constants, existsSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../train/config.js';
import type { SessionResult } from '../train/session.js';
import type { TrialRequest } from '../train/sweep-worker.js';
import { EXIT, UsageError } from './errors.js';
import { formatTable as alignedTable } from './runs.js';

export interface SweepOptions {
  config?: string;
  set: string[];
  grid: string[];
  parallel?: number;
  json: boolean;
  out?: string;
  store: string | null;
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

function runTrial(
  req: TrialRequest,
  env: NodeJS.ProcessEnv,
): Promise<{ ok: true; result: SessionResult } | { ok: false; error: string; user: boolean; stack?: string }> {
  const here = new URL(import.meta.url);
  const isTs = here.pathname.endsWith('.ts');
  const url = new URL(`../train/sweep-worker.${isTs ? 'ts' : 'js'}`, here);
  return new Promise((resolve) => {
    // NOTE: running from TypeScript sources (tests, tsx), the worker registers tsx's loader itself before importing
    const w = isTs
      ? new Worker(
          `(async () => { const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}); register(); await import(${JSON.stringify(url.href)}); })();`,
          { eval: true, workerData: req, stdout: true, env },
        )
      : new Worker(url, { workerData: req, stdout: true, env });
    let settled = false;
    w.once('message', (m: { ok: boolean; result?: SessionResult; error?: string; user?: boolean; stack?: string }) => {
      settled = true;
      resolve(
        m.ok
          ? { ok: true, result: m.result! }
          : {
              ok: false,
              error: m.error ?? 'unknown error',
              user: m.user === true,
              ...(m.stack ? { stack: m.stack } : {}),
            },
      );
    });
    w.once('error', (e) => {
      if (!settled) resolve({ ok: false, error: e.message, user: false, ...(e.stack ? { stack: e.stack } : {}) });
      settled = true;
    });
    w.once('exit', (code) => {
      if (!settled) resolve({ ok: false, error: `worker exited with code ${code}`, user: false });
    });
  });
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

export async function sweepCommand(opts: SweepOptions): Promise<number> {
  if (opts.parallel !== undefined && (!Number.isInteger(opts.parallel) || opts.parallel < 1))
    throw new UsageError(`sweep: --parallel must be a whole number >= 1, got ${String(opts.parallel)}`);
  if (opts.out) checkOut(opts.out);
  const trials = expandGrid(opts.grid);
  // validate every trial's config before any work starts
  for (const t of trials) loadConfig(opts.config, [...opts.set, ...t.sets]);
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
      const row: TrialRow = r.ok
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
  if (opts.out) writeFileSync(opts.out, `${formatTable(rows, opts.out.endsWith('.csv') ? 'csv' : 'md')}\n`);
  if (opts.json) process.stdout.write(`${JSON.stringify({ trials: rows })}\n`);
  else process.stdout.write(`${formatTable(rows, 'text')}\n`);
  // every trial ran (diverged ones are results): 0; a trial refused as the user's mistake: 2; a trial that hit a bug: 1
  return bug ? EXIT.bug : rows.some((r) => r.error) ? EXIT.user : EXIT.ok;
}
