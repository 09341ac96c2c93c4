/**
 * The recurrent cells alone (lstmCell, lstmCellGrad, gruCell, gruCellGrad: native/kernels/recurrent.c), at the bench
 * rows' size (hidden 128, batch 64), in microseconds per call, two ways:
 *   hot    the same buffers every call: the kernels' arithmetic and the transposes, data in cache;
 *   train  as in a training step: 100 steps forward, each into its own saved buffers (act, c, tanh(c)) and its
 *          column block of h [H, 101·B] and of the output [100, B, H], then 100 steps backward in reverse order,
 *          reading those saved buffers back (by then out of the caches, as in training) and writing the gate
 *          gradients into dG [4H, 100·B]. Between calls a 384 KB buffer is read, as the step's products would.
 * Each figure is the best and the median over rounds, by CPU time (process.cpuUsage, ~1 µs a call on top): a busy
 * machine disturbs it less than the wall clock, but not its caches and memory bandwidth, so compare trees in
 * alternating runs.
 *
 *   node --import tsx bench/recurrent-cells.ts [rounds=9]     (GRADGUARD_BACKEND picks the backend; native default)
 */
import { getBackend } from '../src/backend/index.js';
import type { Backend, Buf } from '../src/backend/types.js';

const H = 128;
const B = 64;
const T = 100;
const n = H * B;
const rounds = Number(process.argv[2] ?? 9);

let seed = 12345;
function filled(be: Backend, size: number, scale = 1): Buf {
  const b = be.alloc(size);
  const d = b.data;
  for (let i = 0; i < size; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    d[i] = (seed / 4294967296 - 0.5) * 2 * scale;
  }
  return b;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Median and best of `xs`. */
function summary(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `best ${s[0]!.toFixed(1).padStart(6)}  median ${s[s.length >> 1]!.toFixed(1).padStart(6)} µs`;
}

const be = getBackend();
const W = (T + 1) * B;
const TB = T * B;
// the step's pre-activations (the product's output, in cache), one per cell
const P = filled(be, 4 * n, 3);
const HT = filled(be, H * W);
const Y = filled(be, T * n + n);
const saved = Array.from({ length: T }, () => ({
  act: filled(be, 4 * n),
  c: filled(be, n),
  tc: filled(be, n),
  gact: filled(be, 3 * n),
  hn: filled(be, n),
}));
const c0 = filled(be, n);
const gOut = filled(be, T * n, 0.1);
const dG = filled(be, 4 * H * TB);
let [dh, dhNext, dc, dcNext] = [filled(be, n, 0.1), filled(be, n, 0.1), filled(be, n, 0.1), filled(be, n, 0.1)];
const junk = filled(be, 96 * 1024);
let sink = 0;
/** Reads 384 KB, as a step's product reads its weights between two cells. */
function pollute(): void {
  const d = junk.data;
  let s = 0;
  for (let i = 0; i < d.length; i += 16) s += d[i]!;
  sink += s;
}

type Times = Record<'lstmCell' | 'lstmCellGrad' | 'gruCell' | 'gruCellGrad', number>;

/** One pass of the four cells: µs per call of each. `hot`: step 0's buffers and blocks every time. */
function pass(hot: boolean): Times {
  const t: Times = { lstmCell: 0, lstmCellGrad: 0, gruCell: 0, gruCellGrad: 0 };
  const time = (k: keyof Times, f: () => void) => {
    pollute();
    const t0 = cpuMs();
    f();
    t[k] += cpuMs() - t0;
  };
  for (let s = 0; s < T; s++) {
    const u = hot ? 0 : s;
    const cp = u === 0 ? c0 : saved[u - 1]!.c;
    time('lstmCell', () =>
      be.lstmCell(P, 0, B, cp, saved[u]!.act, saved[u]!.c, saved[u]!.tc, HT, (u + 1) * B, W, Y, u * n, H, H, B),
    );
  }
  for (let s = T - 1; s >= 0; s--) {
    const u = hot ? 0 : s;
    const cp = u === 0 ? c0 : saved[u - 1]!.c;
    time('lstmCellGrad', () =>
      be.lstmCellGrad(saved[u]!.act, cp, saved[u]!.tc, dh, gOut, u * n, H, dc, dG, u * B, TB, dcNext, H, B),
    );
    [dc, dcNext] = [dcNext, dc];
  }
  for (let s = 0; s < T; s++) {
    const u = hot ? 0 : s;
    time('gruCell', () =>
      be.gruCell(P, 0, B, saved[u]!.hn, HT, u * B, HT, (u + 1) * B, W, Y, u * n, H, saved[u]!.gact, H, B),
    );
  }
  for (let s = T - 1; s >= 0; s--) {
    const u = hot ? 0 : s;
    time('gruCellGrad', () =>
      be.gruCellGrad(saved[u]!.gact, saved[u]!.hn, HT, u * B, W, dh, gOut, u * n, H, dG, u * B, TB, dhNext, H, B),
    );
    [dh, dhNext] = [dhNext, dh];
  }
  for (const k of Object.keys(t) as (keyof Times)[]) t[k] = (t[k] * 1000) / T;
  return t;
}

console.log(`recurrent cells, hidden ${H}, batch ${B}, ${be.name} backend, ${rounds} rounds (CPU time per call)`);
for (const hot of [true, false]) {
  pass(hot); // warm-up
  const all: Times[] = [];
  for (let r = 0; r < rounds; r++) all.push(pass(hot));
  for (const k of Object.keys(all[0]!) as (keyof Times)[]) {
    console.log(`  ${hot ? 'hot  ' : 'train'} ${k.padEnd(13)} ${summary(all.map((x) => x[k]))}`);
  }
}
if (Number.isNaN(sink)) console.log('(NaN in the junk buffer)');
