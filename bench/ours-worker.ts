/**
 * Our side of `npm run bench` (bench/bench.ts): a long-lived worker that times training steps in blocks on command,
 * the same protocol as bench/torch_worker.py (one JSON object a line each way):
 *   {"op": "info"}                                  -> backend, threads, sgemm in use, OpenBLAS's kernel set
 *   {"op": "sgemm", "m", "k", "n", "ms"}            -> GFLOP/s of the backend's sgemm, x [m,k] by wᵀ (w [n,k])
 *   {"op": "setup", "row", "spec", "warm", "warm_ms", "max_ms"} -> builds the row twice, plain and with the gradient monitor,
 *                                                     and runs `warm` steps of each (fewer once max_ms have passed)
 *   {"op": "run", "row", "steps", "monitored", "max_ms", "lead_ms"} -> {"times", "cpu", "pool", "lead"}: ms of each of `steps`
 *                                                     steps in a row (fewer once max_ms passed), their CPU time and
 *                                                     the pool's jobs, as below: the block our step time comes from,
 *                                                     timed as PyTorch's (consecutive steps of one model); first,
 *                                                     untimed steps for lead_ms (bench/bench.ts, LEAD_MS), `lead` of them
 *   {"op": "pair", "row", "steps", "max_ms", "lead_ms"} -> {"plain", "monitored", "cpu", "pool", "lead"}: after untimed plain
 *                                                     and monitored steps in turn for lead_ms, ms of `steps` pairs of one plain
 *                                                     and one monitored step, which goes first alternating, so that
 *                                                     the monitor's cost is a paired difference; `cpu`: the plain
 *                                                     steps' CPU time (process.cpuUsage(), all threads); `pool`:
 *                                                     the native thread pool's jobs in the block, and those it ran
 *                                                     on the caller alone
 *
 * A step is what the trainer (src/train/trainer.ts) does, inside `tidy()`: forward, loss, backward, the transform
 * chain (global-norm clip 1.0, Adam 1e-3) on the gradients, the updates applied, the gradients zeroed. The monitored
 * copy also runs the monitor's hooks, recording every step (`every: 1`) as `gradguard train` does by default.
 */
import { createInterface } from 'node:readline';
import { getBackend } from '../src/backend/index.js';
import type { PoolJobs } from './machine.js';
import type { RowSpec } from './rows.js';
import { sgemm, stepper } from './steps.js';

const steps = new Map<string, () => number>();

/** The native thread pool's job counts so far (zeros on a backend without a pool). */
function poolJobs(): PoolJobs {
  const be = getBackend() as ReturnType<typeof getBackend> & { poolJobs?: () => PoolJobs };
  return be.poolJobs?.() ?? { all: 0, alone: 0, crowded: 0 };
}

function jobsSince(p0: PoolJobs): PoolJobs {
  const p1 = poolJobs();
  return { all: p1.all - p0.all, alone: p1.alone - p0.alone, crowded: p1.crowded - p0.crowded };
}

/**
 * Untimed steps for the message's `lead_ms` (taking the given steps in turn) before a block is timed; returns how many
 * (at least one where lead_ms > 0).
 */
function lead(msg: Record<string, unknown>, order: (() => number)[]): number {
  const ms = (msg.lead_ms as number | undefined) ?? 0;
  const t0 = performance.now();
  let i = 0;
  for (; performance.now() - t0 < ms; i++) order[i % order.length]!();
  return i;
}

/** Times one step into `into` (ms), and its CPU time (all the process's threads) into `cpu` where given. */
function time(step: () => number, into: number[], cpu: number[] | null): void {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  step();
  into.push(performance.now() - t0);
  const c = process.cpuUsage(c0);
  cpu?.push((c.user + c.system) / 1000);
}

function handle(msg: Record<string, unknown>): unknown {
  switch (msg.op) {
    case 'info': {
      const be = getBackend() as ReturnType<typeof getBackend> & { gemmImpl?: string; blasCore?: string };
      return { backend: be.name, threads: be.threads, gemm: be.gemmImpl ?? null, blasCore: be.blasCore ?? null };
    }
    case 'sgemm':
      return { gflops: sgemm(msg.m as number, msg.k as number, msg.n as number, msg.ms as number) };
    case 'setup': {
      const spec = msg.spec as RowSpec;
      const maxMs = (msg.max_ms as number | undefined) ?? Number.POSITIVE_INFINITY;
      for (const monitored of [false, true]) {
        const step = stepper(spec, monitored);
        // at least `warm` steps and `warm_ms` of them: the JIT compiles the step's JavaScript over its first
        // hundreds of calls, and a short step (the MLP's, ~0.7 ms) would otherwise be timed before it has
        const warmMs = (msg.warm_ms as number | undefined) ?? 0;
        const t0 = performance.now();
        for (let i = 0; i < (msg.warm as number) || performance.now() - t0 < warmMs; i++) {
          step();
          if (performance.now() - t0 >= maxMs) break;
        }
        steps.set(`${spec.id}:${monitored}`, step);
      }
      return { ok: true };
    }
    case 'run': {
      const step = steps.get(`${msg.row}:${msg.monitored === true}`);
      if (!step) throw new Error(`row ${msg.row} was not set up`);
      const maxMs = (msg.max_ms as number | undefined) ?? Number.POSITIVE_INFINITY;
      const led = lead(msg, [step]);
      const out = { times: [] as number[], cpu: [] as number[], pool: { all: 0, alone: 0, crowded: 0 }, lead: led };
      const pool0 = poolJobs();
      const start = performance.now();
      for (let i = 0; i < (msg.steps as number); i++) {
        time(step, out.times, out.cpu);
        if (performance.now() - start >= maxMs) break;
      }
      out.pool = jobsSince(pool0);
      return out;
    }
    case 'pair': {
      const plain = steps.get(`${msg.row}:false`);
      const monitored = steps.get(`${msg.row}:true`);
      if (!plain || !monitored) throw new Error(`row ${msg.row} was not set up`);
      const maxMs = (msg.max_ms as number | undefined) ?? Number.POSITIVE_INFINITY;
      const led = lead(msg, [plain, monitored]);
      const pool0 = poolJobs();
      const out = {
        plain: [] as number[],
        monitored: [] as number[],
        cpu: [] as number[],
        pool: { all: 0, alone: 0, crowded: 0 },
        lead: led,
      };
      const start = performance.now();
      for (let i = 0; i < (msg.steps as number); i++) {
        if (i % 2 === 0) {
          time(plain, out.plain, out.cpu);
          time(monitored, out.monitored, null);
        } else {
          time(monitored, out.monitored, null);
          time(plain, out.plain, out.cpu);
        }
        if (performance.now() - start >= maxMs) break;
      }
      out.pool = jobsSince(pool0);
      return out;
    }
    case 'drop':
      steps.delete(`${msg.row}:false`);
      steps.delete(`${msg.row}:true`);
      return { ok: true };
    default:
      return { error: `unknown op ${String(msg.op)}` };
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let out: unknown;
  try {
    out = handle(JSON.parse(line) as Record<string, unknown>);
  } catch (e) {
    out = { error: e instanceof Error ? e.message : String(e) };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
});
