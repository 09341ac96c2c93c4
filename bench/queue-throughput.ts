/**
 * Distributed sweep throughput: trials per minute with 1 and with 2 `gradguard worker` processes on this machine,
 * the queue and the run store on one PostgreSQL (a team's setup, on one machine). Each round queues the same sweep
 * into a fresh database, starts the workers (one matrix-product thread per trial, the worker's default: see the NOTE
 * in src/cli/worker.ts) and times from queueing to the last trial recorded, worker start-up included. The local
 * `sweep --parallel N` of the same trials, also on one thread per trial, is timed beside it, for the cost of the queue.
 * Two workers on this machine share its cores (and its load) as two machines would not: their speed-up is a floor.
 *
 * PostgreSQL: a throwaway cluster (test/services/postgres.ts, shipped durability settings), or the server in
 * GRADGUARD_BENCH_PG_URL.
 *
 * Usage: node --import tsx bench/queue-throughput.ts [--trials=8] [--epochs=1] [--json]   (npm run bench:queue)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { SweepQueue } from '../src/cli/queue.js';
import { expandGrid } from '../src/cli/sweep.js';
import { followSweep } from '../src/cli/sweep-queue.js';
import { loadConfig } from '../src/train/config.js';
import { type PgCluster, startCluster } from '../test/services/postgres.js';

const args = new Map(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k!, v ?? 'true'] as const;
  }),
);
const TRIALS = Number(args.get('trials') ?? 8);
const EPOCHS = Number(args.get('epochs') ?? 1);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORKER = fileURLToPath(new URL('../src/cli/worker.ts', import.meta.url));
const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

/** The headline MNIST MLP, `EPOCHS` epochs, the learning rate varied over `TRIALS` values. */
const SETS = [`train.epochs=${EPOCHS}`];
const LRS = Array.from({ length: TRIALS }, (_, i) => (0.0005 * (i + 1)).toPrecision(2));
const GRID = [`optim.lr=${LRS.join(',')}`];

function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...argv], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...env },
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.on('close', (code) => resolve({ code, stderr: err }));
  });
}

/** A fresh database on the server, its URL. */
async function freshDb(adminUrl: string, name: string): Promise<string> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Seconds from queueing the sweep to its last trial recorded, with `workers` worker processes. */
async function queued(adminUrl: string, workers: number, dir: string): Promise<number> {
  const url = await freshDb(adminUrl, `gg_bench_queue_${workers}`);
  const trials = expandGrid(GRID);
  const configs = trials.map((t) => loadConfig(undefined, [...SETS, ...t.sets]).config);
  const t0 = performance.now();
  const queue = await SweepQueue.open(url, { supervise: false });
  const id = await queue.enqueue('sweep', { bench: true }, (sid) =>
    trials.map((t, i) => ({
      index: t.index,
      params: t.assignments,
      sets: t.sets,
      config: configs[i],
      name: `bench ${t.sets.join(' ')} (${sid} #${t.index})`,
    })),
  );
  await queue.close();
  const store = `${url}?checkpoints=${encodeURIComponent(join(dir, `ckpt-${workers}`))}`;
  const procs = Array.from({ length: workers }, () =>
    run(
      [
        '--input-type=module',
        '-e',
        `const { workerCommand } = await import(${JSON.stringify(WORKER)}); process.exitCode = await workerCommand({ queue: ${JSON.stringify(url)}, store: ${JSON.stringify(store)}, untilIdle: true });`,
      ],
      {},
    ),
  );
  const followed = await followSweep(url, id, { log: () => {}, progressBar: false });
  const seconds = (performance.now() - t0) / 1000;
  for (const p of await Promise.all(procs)) if (p.code !== 0) throw new Error(`a worker failed: ${p.stderr}`);
  const failed = followed.trials.filter((t) => t.state !== 'done');
  if (failed.length) throw new Error(`${failed.length} trials did not finish: ${failed[0]!.error}`);
  return seconds;
}

/** Seconds of the same sweep run locally with `sweep --parallel N` (store: SQLite in a temp dir). */
async function local(parallel: number, dir: string): Promise<number> {
  const t0 = performance.now();
  const r = await run(
    [
      '--input-type=module',
      '-e',
      `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(${JSON.stringify([
        'sweep',
        '--json',
        '--parallel',
        String(parallel),
        '--store',
        join(dir, `local-${parallel}`),
        ...SETS.flatMap((s) => ['--set', s]),
        ...GRID.flatMap((g) => ['--grid', g]),
      ])});`,
    ],
    { GRADGUARD_THREADS: '1' },
  );
  if (r.code !== 0) throw new Error(`the local sweep failed: ${r.stderr}`);
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  let cluster: PgCluster | null = null;
  let adminUrl = process.env.GRADGUARD_BENCH_PG_URL;
  if (!adminUrl) {
    cluster = await startCluster({ fast: false });
    adminUrl = cluster.url;
  }
  const dir = mkdtempSync(join(tmpdir(), 'gg-bench-queue-'));
  const load = loadavg()[0]!;
  try {
    const rows: { mode: string; workers: number; seconds: number; trialsPerMinute: number }[] = [];
    for (const workers of [1, 2]) {
      const q = await queued(adminUrl, workers, dir);
      rows.push({ mode: 'queue', workers, seconds: q, trialsPerMinute: (TRIALS * 60) / q });
      const l = await local(workers, dir);
      rows.push({ mode: 'local', workers, seconds: l, trialsPerMinute: (TRIALS * 60) / l });
    }
    const machine = {
      cpu: cpus()[0]?.model ?? '?',
      cores: availableParallelism(),
      loadBefore: load,
      loadAfter: loadavg()[0]!,
    };
    if (args.has('json')) {
      process.stdout.write(`${JSON.stringify({ trials: TRIALS, epochs: EPOCHS, machine, rows })}\n`);
      return;
    }
    process.stdout.write(
      `${TRIALS} trials of the headline MNIST MLP, ${EPOCHS} epoch${EPOCHS === 1 ? '' : 's'} each; ${machine.cores} cores (${machine.cpu}), load average ${load.toFixed(1)} before, ${machine.loadAfter.toFixed(1)} after\n`,
    );
    process.stdout.write('| how | workers | seconds | trials per minute |\n|---|---|---|---|\n');
    for (const r of rows)
      process.stdout.write(
        `| ${r.mode === 'queue' ? 'gradguard worker processes' : 'local sweep --parallel'} | ${r.workers} | ${r.seconds.toFixed(1)} | ${r.trialsPerMinute.toFixed(1)} |\n`,
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
    cluster?.stop();
  }
}

await main();
