/**
 * Where a training step's time goes, kernel by kernel: `npm run bench:profile -- --rows=resnet20 [--steps=N]`.
 *
 * Builds each row as `npm run bench` does (bench/steps.ts: the trainer's step, clip and Adam, no monitor), runs a few
 * warm-up steps, then times N steps with every kernel of the backend wrapped in a timer. Prints, per row, the step's
 * wall time and the milliseconds per step inside each kernel (sgemm and linearBias by shape and transposition, the
 * convolution's kernels by their per-image product's shape), largest first; "outside the kernels" is the rest
 * (JavaScript: the tape, shapes, the buffer pool); and the step's CPU time (all threads), which a busy machine
 * disturbs less than the wall clock. Kernel times are wall clock, so run it with GRADGUARD_THREADS=1
 * OPENBLAS_NUM_THREADS=1 on a quiet machine for figures that add up; the wrappers cost ~0.1 µs a call. With --cpu
 * every kernel is timed by the process's CPU time instead (all threads; ~1 µs a call), which other processes on a
 * shared machine disturb far less; the percentages are then of the step's CPU time. With --monitor the step runs
 * with the monitor attached, as the bench's monitored rows do (its hooks' kernels then show among the others).
 */
import { getBackend } from '../src/backend/index.js';
import type { ConvGeom } from '../src/backend/types.js';
import { ROWS } from './rows.js';
import { stepper } from './steps.js';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const rowIds = (arg('rows') ?? 'mlp,cnn,resnet20,lstm,gru').split(',');
const steps = Number(arg('steps') ?? 3);
const cpuClock = process.argv.includes('--cpu');
/** Milliseconds now by the clock the kernels are timed with: wall, or the process's CPU time (--cpu). */
const clock = cpuClock
  ? () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    }
  : () => performance.now();

const be = getBackend() as unknown as Record<string, unknown> & { name: string; threads: number };
const totals = new Map<string, { ms: number; calls: number; flops: number }>();
let active = false;

/** Wraps every kernel method of the backend so that its time (and sgemm's by shape) adds up in `totals`. */
function instrument(): void {
  const names = new Set<string>();
  for (let o: object | null = be; o && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
    for (const n of Object.getOwnPropertyNames(o)) names.add(n);
  }
  for (const name of names) {
    const fn = be[name];
    if (typeof fn !== 'function' || name === 'constructor' || /^(alloc|free|view|buf|sync)/.test(name)) continue;
    be[name] = function (this: unknown, ...args: unknown[]) {
      if (!active) return (fn as (...a: unknown[]) => unknown).apply(this, args);
      active = false; // a kernel calling another counts once
      const t0 = clock();
      try {
        return (fn as (...a: unknown[]) => unknown).apply(this, args);
      } finally {
        const dt = clock() - t0;
        active = true;
        let key = name;
        let flops = 0;
        if (name === 'sgemm') {
          const [ta, tb, m, n, k] = args as [boolean, boolean, number, number, number];
          key = `sgemm ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${m}x${n}x${k}`;
          flops = 2 * m * n * k;
        } else if (name === 'linearBias') {
          // nn.Linear's product x·Wᵀ (NT) with its bias and ReLU in the output pass
          const [, , , , rows, inF, outF, relu] = args as [
            unknown,
            unknown,
            unknown,
            unknown,
            number,
            number,
            number,
            boolean,
          ];
          key = `linearBias${relu ? '+relu' : ''} NT ${rows}x${outF}x${inF}`;
          flops = 2 * rows * outF * inF;
        } else if (name.startsWith('conv2d')) {
          // the whole convolution's products, by their per-image shape: out channels × positions × c·kh·kw
          // (conv2dBias has the bias before the output: its geometry is one argument later)
          const at = name === 'conv2dBias' ? 4 : 3;
          const [g, oc, groups] = args.slice(at) as [ConvGeom, number, number];
          const ckk = g.c * g.kh * g.kw;
          const P = g.oh * g.ow;
          key = `${name} ${oc / groups}x${P}x${ckk}${groups > 1 ? ` (${groups} groups)` : ''}`;
          flops = 2 * g.n * oc * ckk * P;
        }
        const t = totals.get(key) ?? { ms: 0, calls: 0, flops: 0 };
        t.ms += dt;
        t.calls++;
        t.flops += flops;
        totals.set(key, t);
      }
    };
  }
}

instrument();
console.log(`backend ${be.name}, ${be.threads} thread(s)`);
for (const id of rowIds) {
  const spec = ROWS.find((r) => r.id === id);
  if (!spec) throw new Error(`unknown row ${id}; rows: ${ROWS.map((r) => r.id).join(', ')}`);
  const step = stepper(spec, process.argv.includes('--monitor'));
  for (let i = 0; i < spec.warm; i++) step();
  totals.clear();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  active = true;
  for (let i = 0; i < steps; i++) step();
  active = false;
  const wall = (performance.now() - t0) / steps;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1000 / steps;
  const rows = [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const base = cpuClock ? cpu : wall;
  const inside = rows.reduce((s, [, t]) => s + t.ms, 0) / steps;
  const sgemm = rows.filter(([, t]) => t.flops > 0).reduce((s, [, t]) => s + t.ms, 0) / steps;
  console.log(
    `\n${spec.label}: ${wall.toFixed(1)} ms/step over ${steps} steps (CPU time ${cpu.toFixed(1)} ms/step)${cpuClock ? '; kernels by CPU time' : ''}`,
  );
  const flops = rows.reduce((s, [, t]) => s + t.flops, 0) / steps;
  console.log(
    `  all products (sgemm, linearBias, conv2d*) ${sgemm.toFixed(2)} ms (${((100 * sgemm) / base).toFixed(0)}%): ${(flops / 1e6).toFixed(1)} MFLOP a step, ${(flops / sgemm / 1e6).toFixed(0)} GFLOP/s`,
  );
  console.log(
    `  the row's products (bench/rows.ts): ${(spec.flops / 1e6).toFixed(1)} MFLOP a step; at this step's time, ${(spec.flops / wall / 1e6).toFixed(0)} GFLOP/s`,
  );
  for (const [k, t] of rows.slice(0, 30)) {
    const ms = t.ms / steps;
    if (ms < 0.05 * (base / 100)) break;
    console.log(
      `  ${k.padEnd(34)} ${ms.toFixed(2).padStart(9)} ms ${((100 * ms) / base).toFixed(1).padStart(5)}%  ${(t.calls / steps).toFixed(0)} calls`,
    );
  }
  const outside = base - inside;
  console.log(
    `  ${'outside the kernels'.padEnd(34)} ${outside.toFixed(2).padStart(9)} ms ${((100 * outside) / base).toFixed(1).padStart(5)}%`,
  );
}
