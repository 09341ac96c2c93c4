/**
 * The sgemm on the training rows' own product shapes, through the native addon: `npx tsx bench/gemm-shapes.ts`
 * [--threads=1,2] [--rounds=5] [--shapes=mlp,lstm,gru,merged,small,conv,big] [--blas] [--cpu] [--old=path/to/other/gradguard.node]
 * [--new=path/to/gradguard.node].
 *
 * Each shape is timed as its row computes it (ours; with op(A) packed once where the recurrent layers do that, with
 * the bias and ReLU epilogue where nn.Linear does), inside the addon (gemmTime: no JS between products), and
 * printed as ms, GFLOP/s and % of the FMA peak measured in the same run (gemmPeak: a loop of independent vector FMAs,
 * per thread, times the threads). --blas adds OpenBLAS on the same shape (the per-shape policy's other choice).
 * --old=PATH loads a second build of the addon (e.g. one built from main, copied aside) and times it against this
 * worktree's build/Release/gradguard.node in alternating rounds, so that the machine's drift falls on both alike:
 * build the old one, copy build/Release/gradguard.node aside, change the C, rebuild, run with --old. --new=PATH times
 * another build than build/Release's (e.g. the AVX2 one the tests compile into node_modules/.cache/gradguard-native/).
 *
 * Every figure is the best of `rounds` rounds of enough products to last ~20 ms, by the wall clock (run it on a
 * quiet machine, or compare only within one run) or, with --cpu, by the process's CPU time (one thread on a busy
 * machine). Not a test, and nothing is written.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { machine } from './machine.js';

interface GemmAddon {
  setThreads(n: number): void;
  openblasCore(): string;
  gemmTime(
    impl: number,
    transA: number,
    transB: number,
    m: number,
    n: number,
    k: number,
    reps: number,
    rounds: number,
    cpu: number,
  ): number;
  gemmPeak(iters: number): number;
}

/** gemmTime's implementations. */
const OPENBLAS = 0;
const OWN = 1;
const OWN_PACKED_A = 2;
const OWN_BIAS_RELU = 3;

interface Shape {
  group: string;
  /** What computes it, in the row. */
  what: string;
  transA: boolean;
  transB: boolean;
  m: number;
  n: number;
  k: number;
  impl: number;
}
const shape = (group: string, what: string, t: string, m: number, n: number, k: number, impl = OWN): Shape => ({
  group,
  what,
  transA: t[0] === 'T',
  transB: t[1] === 'T',
  m,
  n,
  k,
  impl,
});

/** The products of the MLP, LSTM and GRU rows (bench/rows.ts), one thread's profile's names; m×n×k of C = op(A)·op(B). */
const SHAPES: Shape[] = [
  shape('mlp', 'linear 1 forward (+bias, ReLU)', 'NT', 128, 256, 784, OWN_BIAS_RELU),
  shape('mlp', 'linear 1 dW', 'TN', 256, 784, 128),
  shape('mlp', 'x·W (no epilogue)', 'NN', 128, 256, 784),
  shape('lstm', 'per step, gates (A packed)', 'NN', 512, 64, 161, OWN_PACKED_A),
  shape('lstm', 'per step, dh (A packed)', 'TN', 128, 64, 512, OWN_PACKED_A),
  shape('lstm', 'sequence dW_hh', 'NT', 512, 128, 6400),
  shape('lstm', 'sequence dW_ih', 'NT', 512, 32, 6400),
  shape('gru', 'per step, gates (A packed)', 'NN', 256, 64, 161, OWN_PACKED_A),
  shape('gru', 'per step, dh (A packed)', 'TN', 128, 64, 256, OWN_PACKED_A),
  shape('gru', 'per step, candidate (A packed)', 'NN', 128, 64, 129, OWN_PACKED_A),
  shape('gru', 'per step, input part (A packed)', 'NN', 128, 64, 33, OWN_PACKED_A),
  shape('gru', 'sequence dW_hh (r,z)', 'NT', 256, 128, 6400),
  shape('gru', 'sequence dW_hh (n)', 'NT', 128, 128, 6400),
  shape('gru', 'sequence dW_ih', 'NT', 384, 32, 6400),
  shape('merged', 'LSTM dW in one product', 'NT', 512, 161, 6400),
  shape('merged', 'GRU dW in one product', 'NT', 384, 161, 6400),
  shape('merged', 'LSTM dW as the op multiplies it', 'NT', 512, 160, 6400),
  shape('small', 'GRU per step, candidate (unpacked)', 'NN', 128, 64, 129),
  shape('small', 'GRU per step, input part (unpacked)', 'NN', 128, 64, 33),
  shape('small', 'MLP linear 2 forward', 'NT', 128, 10, 256),
  shape('small', 'MLP linear 2 dW', 'TN', 10, 256, 128),
  shape('small', 'MLP linear 2 dX', 'NN', 128, 256, 10),
  shape('conv', 'ResNet-20 conv, 16 ch 32x32', 'NN', 16, 1024, 144),
  shape('conv', 'ResNet-20 conv, 64 ch 8x8', 'NN', 64, 64, 576),
  shape('conv', 'ResNet-20 conv dW, 16 ch', 'NT', 16, 144, 1024),
  shape('conv', 'ResNet-20 conv dX, 64 ch', 'TN', 576, 64, 64),
  shape('big', 'square', 'NN', 1024, 1024, 1024),
  shape('big', 'rows 4 KiB apart', 'NT', 256, 64, 4096),
];

function arg(name: string): string | undefined {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a?.slice(name.length + 3);
}
const threads = (arg('threads') ?? '1,2').split(',').map(Number);
const rounds = Number(arg('rounds') ?? 5);
const groups = (arg('shapes') ?? 'mlp,lstm,gru,merged,small,conv').split(',');
const withBlas = process.argv.includes('--blas');
/** --cpu: the process's CPU time instead of the wall clock (for one thread on a shared machine; with two it adds up both). */
const cpu = process.argv.includes('--cpu');
const oldPath = arg('old');

const require = createRequire(import.meta.url);
const builds: { name: string; addon: GemmAddon }[] = [
  { name: 'new', addon: require(resolve(arg('new') ?? 'build/Release/gradguard.node')) as GemmAddon },
];
if (oldPath) builds.push({ name: 'old', addon: require(resolve(oldPath)) as GemmAddon });
const ours = builds[0]!.addon;

/** Best seconds per product of each (build, impl), alternating between them round by round. */
function timeShape(s: Shape, nt: number): { label: string; sec: number }[] {
  const flops = 2 * s.m * s.n * s.k;
  const reps = Math.max(1, Math.round(0.02 / (flops / (nt * 80e9))));
  const runs: { label: string; addon: GemmAddon; impl: number }[] = builds.map((b) => ({
    label: builds.length > 1 ? b.name : 'ours',
    addon: b.addon,
    impl: s.impl,
  }));
  if (withBlas) runs.push({ label: 'openblas', addon: ours, impl: OPENBLAS });
  const best = runs.map(() => Number.POSITIVE_INFINITY);
  for (let r = 0; r < rounds; r++) {
    runs.forEach((run, i) => {
      const t = run.addon.gemmTime(run.impl, s.transA ? 1 : 0, s.transB ? 1 : 0, s.m, s.n, s.k, reps, 1, cpu ? 1 : 0);
      best[i] = t < 0 ? t : Math.min(best[i]!, t);
    });
  }
  return runs.map((run, i) => ({ label: run.label, sec: best[i]! }));
}

console.log(
  `gemm shapes: ${machine.cpu}, OpenBLAS ${ours.openblasCore()}, load ${machine.load}, ${machine.date}, ` +
    `best of ${rounds} rounds${cpu ? ', CPU time' : ''}${oldPath ? `, new (${arg('new') ?? 'build/Release'}) against old (${oldPath}) alternating` : ''}`,
);
for (const nt of threads) {
  for (const b of builds) b.addon.setThreads(nt);
  // The peak of a shared machine drifts too: measured before every shape with every build's vectors (an AVX2
  // build's loop falls short of the core's peak), the best kept (one thread's, times nt).
  let peak1 = 0;
  const rows: { s: Shape; label: string; sec: number }[] = [];
  for (const s of SHAPES) {
    if (!groups.includes(s.group)) continue;
    for (const b of builds) peak1 = Math.max(peak1, b.addon.gemmPeak(1e6));
    for (const r of timeShape(s, nt)) rows.push({ s, ...r });
  }
  const peak = peak1 * nt;
  console.log(
    `\n${nt} thread${nt > 1 ? 's' : ''}: FMA peak ${peak1.toFixed(1)} GFLOP/s per thread (${peak.toFixed(0)} in all)`,
  );
  console.log(`${'shape'.padEnd(22)} ${'what'.padEnd(34)} ${'impl'.padEnd(9)} ${'ms'.padStart(8)} GFLOP/s  % peak`);
  for (const { s, label, sec } of rows) {
    const name = `${s.transA ? 'T' : 'N'}${s.transB ? 'T' : 'N'} ${s.m}x${s.n}x${s.k}`;
    const gf = (2 * s.m * s.n * s.k) / sec / 1e9;
    const cells =
      sec < 0
        ? (sec === -1 ? 'declined' : 'out of memory').padStart(8)
        : `${(sec * 1e3).toFixed(4).padStart(8)} ${gf.toFixed(1).padStart(7)} ${((100 * gf) / peak).toFixed(0).padStart(6)}%`;
    console.log(`${`${s.group} ${name}`.padEnd(22)} ${s.what.padEnd(34)} ${label.padEnd(9)} ${cells}`);
  }
}
