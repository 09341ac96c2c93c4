/**
 * Kernel timings of each backend, without the tensor layer: `npx tsx bench/kernels.ts [--quick] [--cpu-time]`.
 *
 * Prints sgemm GFLOP/s for the MLP's first layer (128×784 by 784×256) and for 1024³, then the milliseconds of every
 * kernel an MLP 784-256-10 training step (batch 128, ReLU, softmax cross-entropy, Adam, a global-norm clip) calls,
 * and their sum: the floor for a step on that backend. Each figure is the best of several rounds after a warm-up
 * (wasm code is first compiled by V8's baseline tier and replaced by the optimizing one once hot).
 *
 * Leaves OPENBLAS_CORETYPE as the machine sets it; run bench/bench.ts for comparisons with PyTorch.
 *
 * Every timed op leaves its inputs as they were: data that drifts over thousands of repetitions ends up with
 * subnormal floats, which cost x86 a microcode assist per operation (~100x slower). V8 keeps wasm IEEE-exact (no
 * flush-to-zero), so the wasm and js backends are exposed to that in real training too, e.g. when a confident
 * classifier's probabilities underflow; OpenBLAS's FMA kernels much less so.
 */
import { JsBackend } from '../src/backend/js.js';
import { createNativeBackend } from '../src/backend/native.js';
import { type Backend, Binary, type Buf, Unary } from '../src/backend/types.js';
import { createWasmBackend } from '../src/backend/wasm.js';

const quick = process.argv.includes('--quick');
/**
 * --cpu-time: time with process.cpuUsage() instead of the wall clock. On a machine shared with other work this
 * measures what a kernel costs rather than how long it waited for a core; it adds up all threads, so use it with
 * OPENBLAS_NUM_THREADS=1 for the native backend.
 */
const cpuTime = process.argv.includes('--cpu-time');
function now(): number {
  if (!cpuTime) return performance.now();
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Best time per call in ms: `rounds` rounds of enough calls to last ~`minMs`, after a warm-up. */
function time(fn: () => void, minMs = quick ? 20 : 100, rounds = quick ? 3 : 7): number {
  let reps = 1;
  for (;;) {
    const t0 = now();
    for (let i = 0; i < reps; i++) fn();
    const dt = now() - t0;
    if (dt >= minMs / 4 || reps > 1e6) break;
    reps *= 2;
  }
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const t0 = now();
    for (let i = 0; i < reps; i++) fn();
    best = Math.min(best, (now() - t0) / reps);
  }
  return best;
}

let seed = 12345;
function fillRandom(b: Buf, scale = 1): Buf {
  const d = b.data;
  for (let i = 0; i < d.length; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    d[i] = (seed / 4294967296 - 0.5) * 2 * scale;
  }
  return b;
}

function sgemmGflops(be: Backend, m: number, n: number, k: number, transB: boolean): number {
  const a = fillRandom(be.alloc(m * k));
  const b = fillRandom(be.alloc(k * n));
  const c = be.alloc(m * n);
  const ms = time(() => be.sgemm(false, transB, m, n, k, 1, a, 0, k, b, 0, transB ? k : n, 0, c, 0, n));
  be.free(a);
  be.free(b);
  be.free(c);
  return (2 * m * n * k) / ms / 1e6;
}

/** The kernels of one MLP 784-256-10 training step, batch 128, each timed on its own. */
function mlpStep(be: Backend): [string, number][] {
  const B = 128;
  const I = 784;
  const H = 256;
  const O = 10;
  const x = fillRandom(be.alloc(B * I));
  const w1 = fillRandom(be.alloc(H * I), 0.05);
  const b1 = fillRandom(be.alloc(H), 0.05);
  const w2 = fillRandom(be.alloc(O * H), 0.05);
  const b2 = fillRandom(be.alloc(O), 0.05);
  const h = be.alloc(B * H);
  const hb = be.alloc(B * H);
  const a = be.alloc(B * H);
  const logits = be.alloc(B * O);
  const z = be.alloc(B * O);
  const targets = be.alloc(B);
  for (let i = 0; i < B; i++) targets.data[i] = i % O;
  const probs = be.alloc(B * O);
  const loss = be.alloc(B);
  const scale = be.alloc(B);
  be.fill(scale, 1 / B, B);
  const dz = be.alloc(B * O);
  const dw2 = be.alloc(O * H);
  const db2 = be.alloc(O);
  const da = be.alloc(B * H);
  const dh = be.alloc(B * H);
  const dw1 = be.alloc(H * I);
  const db1 = be.alloc(H);
  const params = H * I + H + O * H + O;
  const g = fillRandom(be.alloc(params), 1e-3);
  const m = be.alloc(params);
  const v = be.alloc(params);
  be.fill(m, 0, params);
  be.fill(v, 0, params);
  const rowShape = [B, H];
  const rowA = [H, 1];
  const rowB = [0, 1];
  const ops: [string, () => void][] = [
    ['fwd sgemm x·W1ᵀ 128×784·784×256', () => be.sgemm(false, true, B, H, I, 1, x, 0, I, w1, 0, I, 0, h, 0, H)],
    // Out of place: an op repeated in place would drift the data (and into subnormals, which are slow; see below).
    ['fwd bias add (broadcast) 128×256', () => be.binary(Binary.Add, h, b1, hb, rowShape, rowA, rowB)],
    ['fwd relu 128×256', () => be.unary(Unary.Relu, hb, a, B * H, 0, 0)],
    ['fwd sgemm a·W2ᵀ 128×256·256×10', () => be.sgemm(false, true, B, O, H, 1, a, 0, H, w2, 0, H, 0, logits, 0, O)],
    ['fwd bias add 128×10', () => be.binary(Binary.Add, logits, b2, z, [B, O], [O, 1], [0, 1])],
    ['fwd crossEntropy 128×10', () => be.crossEntropy(z, targets, probs, loss, B, O, 0, -100)],
    ['bwd crossEntropyGrad', () => be.crossEntropyGrad(probs, targets, scale, dz, B, O, 0, -100)],
    ['bwd sgemm dW2 = dzᵀ·a 10×128·128×256', () => be.sgemm(true, false, O, H, B, 1, dz, 0, O, a, 0, H, 0, dw2, 0, H)],
    ['bwd sumAxis db2', () => be.sumAxis(dz, db2, 1, B, O)],
    ['bwd sgemm da = dz·W2 128×10·10×256', () => be.sgemm(false, false, B, H, O, 1, dz, 0, O, w2, 0, H, 0, da, 0, H)],
    ['bwd reluGrad 128×256', () => be.unaryGrad(Unary.Relu, hb, a, da, dh, B * H, 0, 0)],
    ['bwd sgemm dW1 = dhᵀ·x 256×128·128×784', () => be.sgemm(true, false, H, I, B, 1, dh, 0, H, x, 0, I, 0, dw1, 0, I)],
    ['bwd sumAxis db1', () => be.sumAxis(dh, db1, 1, B, H)],
    ['clip sumSquares (203,530 params)', () => be.sumSquares(g, params)],
    ['clip scale (axpy-sized pass)', () => be.unary(Unary.Affine, g, g, params, 1, 0)],
    ['adamUpdate (203,530 params)', () => be.adamUpdate(g, m, v, params, 0.9, 0.999, 1e-8, 0.1, 0.001, 1, 1)],
  ];
  return ops.map(([label, fn]) => [label, time(fn)]);
}

const backends: Backend[] = [];
const native = createNativeBackend();
if (native) backends.push(native);
else console.log('native: not built (npm run build:native)');
const wasm = createWasmBackend();
if (wasm) backends.push(wasm);
else console.log('wasm: wasm/gradguard.wasm did not load');
backends.push(new JsBackend());

console.log(
  `node ${process.version}; OPENBLAS_CORETYPE=${process.env.OPENBLAS_CORETYPE ?? '(unset)'}${native ? `; OpenBLAS kernels: ${native.blasCore}` : ''}; ${cpuTime ? 'CPU time' : 'wall time'}`,
);
console.log('\nsgemm GFLOP/s');
for (const be of backends) {
  const small = sgemmGflops(be, 128, 256, 784, true);
  const large = be.name === 'js' ? Number.NaN : sgemmGflops(be, 1024, 1024, 1024, false);
  console.log(
    `  ${`${be.name} (${be.threads} thread${be.threads > 1 ? 's' : ''})`.padEnd(20)} 128×784×256: ${small.toFixed(1).padStart(6)}   1024³: ${Number.isNaN(large) ? '     -' : large.toFixed(1).padStart(6)}`,
  );
}

console.log('\nMLP 784-256-10 step kernels, batch 128 (ms)');
const results = backends.map((be) => mlpStep(be));
const labels = results[0]!.map(([l]) => l);
console.log(`  ${'kernel'.padEnd(42)}${backends.map((b) => b.name.padStart(10)).join('')}`);
labels.forEach((l, i) => {
  console.log(`  ${l.padEnd(42)}${results.map((r) => r[i]![1].toFixed(3).padStart(10)).join('')}`);
});
console.log(
  `  ${'sum'.padEnd(42)}${results
    .map((r) =>
      r
        .reduce((s, [, t]) => s + t, 0)
        .toFixed(3)
        .padStart(10),
    )
    .join('')}`,
);
