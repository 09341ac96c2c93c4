/**
 * What the run store's writes cost a training: the headline training (MLP 784-256-10 on the bundled digits, Adam,
 * global-norm clip, `monitor.every: 1`) run by the trainer with the gradient monitor, and every step logged as
 * `gradguard train` logs it (5 metrics and both layers' statistics, plus the test metrics per epoch) into no store,
 * the SQLite store or the PostgreSQL store; in rounds that rotate the order (so drift in the machine's load hits all
 * three). The ms/step of each is the trainer's own (wall time over steps, evaluation included); checkpoints are left
 * out, as they cost the same with either store (the same files). The table gives the median over rounds. Target
 * (issue 15): PostgreSQL adds at most 5% to the step time.
 *
 * Beside the wall time, the CPU time per step: this process's (user + system over all its threads: OpenBLAS's, and
 * the store's connection thread) and, for the throwaway cluster, every server process's (the session that writes,
 * the WAL writer, the checkpointer), from /proc; in a team the server runs on another machine. On a loaded machine the wall times drift with other people's work;
 * CPU time is what the writes take from the machine whatever else runs.
 *
 * Also the cost of one `logStep` call on the training thread (5 metrics, 2 layers), and for PostgreSQL how long the
 * background writer then takes to commit what was posted (its throughput, in steps per second).
 *
 * PostgreSQL: a throwaway cluster with the server's shipped durability settings (fsync and synchronous commit on),
 * on loopback, as the tests start one (test/services/postgres.ts); or the server in GRADGUARD_BENCH_PG_URL.
 *
 * Usage: node --import tsx bench/store-write.ts [--epochs=5] [--rounds=3] [--json]
 */

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { getBackend } from '../src/backend/index.js';
import { loadDataset } from '../src/data/index.js';
import { Monitor, type StepRecord } from '../src/monitor/monitor.js';
import { RunStore } from '../src/track/store.js';
import { type Config, loadConfig } from '../src/train/config.js';
import { runTrainingAsync, setupExperiment } from '../src/train/trainer.js';
import { type PgCluster, startCluster } from '../test/services/postgres.js';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k!, v ?? 'true'];
  }),
);
const epochs = Number(args.epochs ?? 5);
const rounds = Number(args.rounds ?? 3);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'gg-bench-store-'));
  let cluster: PgCluster | null = null;
  let adminUrl = process.env.GRADGUARD_BENCH_PG_URL;
  if (!adminUrl) {
    cluster = await startCluster({ fast: false });
    adminUrl = cluster.url;
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const dbName = `gg_bench_${process.pid}`;
  await admin.query(`CREATE DATABASE ${dbName}`);
  const pgUrl = new URL(adminUrl);
  pgUrl.pathname = `/${dbName}`;
  pgUrl.searchParams.set('checkpoints', join(work, 'pg'));
  const server = (await admin.query('SELECT version() AS v')).rows[0].v as string;
  const settings = (
    await admin.query(
      `SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_level', 'shared_buffers')`,
    )
  ).rows.map((r) => `${r.name}=${r.setting}`);
  try {
    const variants: Record<string, string | null> = {
      none: null,
      sqlite: join(work, 'sqlite'),
      postgres: pgUrl.toString(),
    };
    const names = Object.keys(variants);
    const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    const cpuTimes: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    const serverTimes: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    const serverCpu = cluster ? () => clusterCpuMs(cluster!.dir) : () => 0;
    const load: number[] = [loadavg()[0]!];
    const { config } = loadConfig(undefined, [`train.epochs=${epochs}`]);
    for (let r = 0; r < rounds + 1; r++) {
      for (let i = 0; i < names.length; i++) {
        const name = names[(i + r) % names.length]!;
        const result = await train(config, variants[name]!, serverCpu);
        // round 0 warms up (JIT, page cache, the server's buffers)
        if (r > 0) {
          times[name]!.push(result.msPerStep);
          cpuTimes[name]!.push(result.cpuMsPerStep);
          serverTimes[name]!.push(result.serverMsPerStep);
        }
        if (!args.json) {
          process.stderr.write(
            `  round ${r}${r ? '' : ' (warm-up)'} ${name}: ${result.msPerStep.toFixed(3)} ms/step, CPU ${result.cpuMsPerStep.toFixed(3)} ms/step here + ${result.serverMsPerStep.toFixed(3)} in the server\n`,
          );
        }
      }
    }
    load.push(loadavg()[0]!);
    const call = logStepCost({ sqlite: variants.sqlite!, postgres: variants.postgres! });
    const base = median(times.none!);
    const cpuBase = median(cpuTimes.none!);
    const rows = names.map((n) => ({
      store: n,
      msPerStep: median(times[n]!),
      addedPct: ((median(times[n]!) - base) / base) * 100,
      cpuMsPerStep: median(cpuTimes[n]!),
      cpuAddedPct: ((median(cpuTimes[n]!) - cpuBase) / cpuBase) * 100,
      serverMsPerStep: median(serverTimes[n]!),
      runs: times[n]!,
    }));
    const machine = {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      loadavg1: load,
      backend: getBackend().name,
      postgres: server.split(' on ')[0],
      settings,
    };
    if (args.json) {
      process.stdout.write(`${JSON.stringify({ epochs, rounds, machine, rows, logStep: call })}\n`);
      return;
    }
    console.log(`\nheadline training, ${epochs} epochs, monitor.every 1; median of ${rounds} rounds (order rotated)`);
    console.log(
      `machine: ${machine.cpu}, ${machine.cores} cores, backend ${machine.backend}; 1-min load ${load.map((l) => l.toFixed(1)).join(' -> ')}`,
    );
    console.log(`server: ${machine.postgres} (${settings.join(', ')}), loopback\n`);
    const pct = (r: (typeof rows)[number], x: number) =>
      r.store === 'none' ? '-' : `${x >= 0 ? '+' : ''}${x.toFixed(1)}%`;
    console.log(
      `| store | wall ms/step | added | CPU ms/step, this process | added | server CPU ms/step${cluster ? '' : ' (not measured)'} | wall runs |\n|---|---|---|---|---|---|---|`,
    );
    for (const r of rows) {
      console.log(
        `| ${r.store} | ${r.msPerStep.toFixed(3)} | ${pct(r, r.addedPct)} | ${r.cpuMsPerStep.toFixed(3)} | ${pct(r, r.cpuAddedPct)} | ${r.serverMsPerStep.toFixed(3)} | ${r.runs.map((x) => x.toFixed(2)).join(', ')} |`,
      );
    }
    console.log('\n| store | logStep on the training thread (µs/call) | committed (steps/s) |\n|---|---|---|');
    for (const [k, v] of Object.entries(call))
      console.log(`| ${k} | ${v.usPerCall.toFixed(1)} | ${v.stepsPerSecond.toFixed(0)} |`);
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => {});
    await admin.end();
    cluster?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

/** Trains `config`, logging every step into the store `spec` (none for null) as the training session does. */
async function train(
  config: Config,
  spec: string | null,
  serverCpu: () => number,
): Promise<{ msPerStep: number; cpuMsPerStep: number; serverMsPerStep: number }> {
  const dataset = await loadDataset(config.data as Parameters<typeof loadDataset>[0]);
  const exp = setupExperiment(config, dataset);
  const store = spec === null ? null : RunStore.open(spec);
  const id = store?.createRun({ config, backend: getBackend().name }) ?? '';
  let last: StepRecord | null = null;
  const monitor = new Monitor(exp.model, {
    every: config.monitor.every,
    params: false,
    maxHistory: 2000,
    onRecord: (r) => {
      last = r;
    },
  });
  monitor.attach();
  const cpu0 = process.cpuUsage();
  const server0 = serverCpu();
  try {
    const summary = await runTrainingAsync(exp, {
      observers: [monitor],
      onStep: (s) => {
        if (!store) return;
        const metrics: Record<string, number> = { loss: s.loss, lr: s.lr, skipped: s.skipped ? 1 : 0 };
        const rec = last as StepRecord | null;
        if (rec && rec.step === s.step) {
          if (rec.globalNormBefore !== undefined) metrics.grad_norm = rec.globalNormBefore;
          if (rec.globalNormAfter !== undefined) metrics.grad_norm_clipped = rec.globalNormAfter;
          metrics.clipped = rec.clipped ? 1 : 0;
        }
        store.logStep(id, s.step, metrics, rec && rec.step === s.step ? rec.layers : undefined);
      },
      onEpoch: (epoch, test) => {
        store?.logStep(id, epoch * exp.loader.batchesPerEpoch - 1, { test_loss: test.loss });
      },
    });
    // what the trainer's time leaves out: the last steps' commit (PostgreSQL), as finishing the run waits for it
    const t0 = performance.now();
    store?.finishRun(id, 'finished');
    const tail = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const serverMs = serverCpu() - server0;
    return {
      msPerStep: summary.msPerStep + tail / summary.steps,
      cpuMsPerStep: (cpu.user + cpu.system) / 1000 / summary.steps,
      serverMsPerStep: serverMs / summary.steps,
    };
  } finally {
    monitor.detach();
    store?.close();
  }
}

/**
 * One `logStep` (5 metrics, 2 layers, as the headline training logs) on the calling thread, and the rate at which
 * the store has them committed (for SQLite the same: its calls commit; for PostgreSQL until `flush` returns).
 */
function logStepCost(specs: Record<string, string>): Record<string, { usPerCall: number; stepsPerSecond: number }> {
  const out: Record<string, { usPerCall: number; stepsPerSecond: number }> = {};
  const layers = ['0', '2'].map((name) => ({
    name,
    gradNorm: 0.05,
    gradMaxAbs: 0.001,
    weightNorm: 22,
    updateRatio: 1e-4,
    actMean: 1.1,
    actStd: 1.6,
    deadFrac: 0.05,
    nonFinite: 0,
  }));
  const n = 3000;
  for (const [name, spec] of Object.entries(specs)) {
    const store = RunStore.open(spec);
    const id = store.createRun({ config: {}, backend: 'bench' });
    const t0 = performance.now();
    for (let s = 0; s < n; s++) {
      store.logStep(id, s, { loss: 1 / (s + 1), lr: 1e-3, skipped: 0, grad_norm: 0.5, clipped: 0 }, layers);
    }
    const t1 = performance.now();
    store.flush();
    const t2 = performance.now();
    store.finishRun(id, 'finished');
    store.close();
    out[name] = { usPerCall: ((t1 - t0) * 1000) / n, stepsPerSecond: n / ((t2 - t0) / 1000) };
  }
  return out;
}

/** CPU time (user + system, ms) of every process of the cluster in `dir`: the postmaster and its children. */
function clusterCpuMs(dir: string): number {
  const postmaster = Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const tick = 1000 / 100; // USER_HZ is 100 on Linux
  let ms = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      if (pid !== postmaster && Number(f[1]) !== postmaster) continue;
      ms += (Number(f[11]) + Number(f[12])) * tick; // utime, stime
    } catch {}
  }
  return ms;
}

await main();
