/**
 * What monitoring every step costs: ms per training step with and without the gradient monitor, on the MLP
 * 784-256-10 (ReLU, batch 128, global-norm clip 1.0 + Adam 1e-3) and the small CNN of bench/common.ts (batch 64,
 * Adam), on each backend that loads here, and an LSTM step (sequence 100, batch 64, input 32, hidden 128, a linear
 * head on the last step, Adam), where the monitor also records ‖∂L/∂h_t‖ through time (64 sampled steps). Target: at
 * most 10% (issue 4; the LSTM is measured, issue 17).
 *
 * The two variants are built identically and run in alternating steps (plain, monitored, monitored, plain, ...), so
 * drift in the machine's speed hits both; the step times are medians, and the overhead is the median of the paired
 * differences relative to the plain median, in wall time and in the process's CPU time (user + system over all its
 * threads, OpenBLAS's included), which the load of other processes disturbs less.
 *
 * Usage: node --import tsx bench/monitor-overhead.ts [--backends=native,wasm,js] [--json]
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { availableBackends, getBackend } from '../src/backend/index.js';
import * as clip from '../src/clip/index.js';
import { Monitor } from '../src/monitor/monitor.js';
import { crossEntropy } from '../src/nn/functional.js';
import { Linear } from '../src/nn/linear.js';
import type { AnyModule } from '../src/nn/module.js';
import { LSTM } from '../src/nn/rnn.js';
import * as optim from '../src/optim/index.js';
import { rand, randint } from '../src/tensor/random.js';
import { dispose, keep, type Tensor, tidy } from '../src/tensor/tensor.js';
import { SequenceModel } from '../src/train/build.js';
import { cnnModel, mlpModel } from './common.js';

interface Result {
  backend: string;
  model: string;
  plainMs: number;
  monitoredMs: number;
  /** Median of the paired differences (monitored − plain), in ms. */
  addedMs: number;
  overheadPct: number;
  /** The same from the process's CPU time (user + system, all threads), which other processes' load disturbs less. */
  cpuPlainMs: number;
  cpuAddedMs: number;
  cpuOverheadPct: number;
  steps: number;
}

/** One training step of `model` on a fixed batch: forward, backward, monitor hooks, transform chain, apply. */
function stepper(model: AnyModule, x: Tensor, y: Tensor, tx: optim.GradientTransformation, monitor: Monitor | null) {
  const params = Object.fromEntries(model.namedParameters());
  let state = tx.init(params);
  const grads: Record<string, Tensor> = {};
  const applied: Record<string, number> = {};
  const appliedUpdates: Record<string, number> = {};
  let step = 0;
  return () => {
    monitor?.beginStep(step);
    const loss = tidy(() => {
      const l = crossEntropy(model.call(x), y);
      l.backward();
      return l.item();
    });
    monitor?.afterBackward(params);
    for (const [k, p] of Object.entries(params)) grads[k] = p.grad!;
    const r = tx.update(grads, state, params);
    state = r.state;
    // as the trainer does: with a monitor, the pass that applies the update also measures it and the weights it leaves
    monitor?.afterUpdate(r.updates, params, r.state, { updateNormsFollow: true });
    if (monitor) {
      optim.applyUpdates(params, r.updates, applied, appliedUpdates);
      monitor.afterApply(applied, appliedUpdates);
    } else optim.applyUpdates(params, r.updates);
    // cleared as the trainer's Optimizer.zeroGrad does (PyTorch's set_to_none): the next backward's become the .grad
    for (const p of Object.values(params)) {
      if (p.grad) dispose(p.grad);
      p.grad = null;
    }
    monitor?.endStep(loss);
    step++;
  };
}

function measure(
  name: string,
  make: () => { model: AnyModule; x: Tensor; y: Tensor; tx: optim.GradientTransformation },
  steps: number,
): Result {
  const a = make();
  const b = make();
  const mon = new Monitor(b.model, { every: 1, maxHistory: 100 }).attach();
  const plain = stepper(a.model, a.x, a.y, a.tx, null);
  const monitored = stepper(b.model, b.x, b.y, b.tx, mon);
  for (let i = 0; i < 3; i++) {
    plain();
    monitored();
  }
  // NOTE: the two run in alternating single steps (which one goes first alternates too), so load from other
  // processes hits both alike; the overhead is the median of the paired differences over the plain median
  const tp: number[] = [];
  const tm: number[] = [];
  const diff: number[] = [];
  const cp: number[] = [];
  const cdiff: number[] = [];
  const time = (fn: () => void): [number, number] => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    return [wall, (c.user + c.system) / 1000];
  };
  for (let i = 0; i < steps; i++) {
    let p: [number, number];
    let m: [number, number];
    if (i % 2 === 0) {
      p = time(plain);
      m = time(monitored);
    } else {
      m = time(monitored);
      p = time(plain);
    }
    tp.push(p[0]);
    tm.push(m[0]);
    diff.push(m[0] - p[0]);
    cp.push(p[1]);
    cdiff.push(m[1] - p[1]);
  }
  const med = (v: number[]) => [...v].sort((x, y) => x - y)[v.length >> 1]!;
  const p = med(tp);
  return {
    backend: getBackend().name,
    model: name,
    plainMs: p,
    monitoredMs: med(tm),
    addedMs: med(diff),
    overheadPct: (med(diff) / p) * 100,
    cpuPlainMs: med(cp),
    cpuAddedMs: med(cdiff),
    cpuOverheadPct: (med(cdiff) / med(cp)) * 100,
    steps,
  };
}

function child(): void {
  const slow = getBackend().name === 'js';
  const results: Result[] = [];
  results.push(
    measure(
      'MLP 784-256-10, batch 128',
      () => ({
        model: mlpModel(),
        x: keep(rand([128, 784], { seed: 1 })),
        y: keep(randint(0, 10, [128], { seed: 2 })),
        tx: optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 })),
      }),
      slow ? 30 : 400,
    ),
  );
  results.push(
    measure(
      'small CNN, batch 64',
      () => ({
        model: cnnModel(0),
        x: keep(rand([64, 1, 28, 28], { seed: 1 })),
        y: keep(randint(0, 10, [64], { seed: 2 })),
        tx: optim.adam({ lr: 1e-3 }),
      }),
      slow ? 4 : 40,
    ),
  );
  results.push(
    measure(
      'LSTM seq 100, batch 64, hidden 128',
      () => ({
        model: new SequenceModel(
          new LSTM(32, 128, { batchFirst: true, seed: 0 }),
          new Linear(128, 10, { seed: 1 }),
          false,
        ),
        x: keep(rand([64, 100, 32], { seed: 1 })),
        y: keep(randint(0, 10, [64], { seed: 2 })),
        tx: optim.adam({ lr: 1e-3 }),
      }),
      slow ? 2 : 30,
    ),
  );
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

function main(): void {
  const args = process.argv.slice(2);
  const want =
    args
      .find((a) => a.startsWith('--backends='))
      ?.split('=')[1]
      ?.split(',') ?? availableBackends();
  const all: Result[] = [];
  for (const b of want) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child'], {
      env: { ...process.env, GRADGUARD_BACKEND: b },
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    try {
      all.push(...(JSON.parse(line) as Result[]));
    } catch {
      process.stderr.write(`backend ${b}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ')}\n`);
    }
  }
  if (args.includes('--json')) {
    process.stdout.write(`${JSON.stringify(all)}\n`);
    return;
  }
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}%`;
  const rows = all.map(
    (r) =>
      `| ${r.backend} | ${r.model} | ${r.plainMs.toFixed(2)} | ${r.monitoredMs.toFixed(2)} | ${r.addedMs.toFixed(3)} | ${pct(r.overheadPct)} | ${r.cpuPlainMs.toFixed(2)} | ${r.cpuAddedMs.toFixed(3)} | ${pct(r.cpuOverheadPct)} | ${r.steps} |`,
  );
  process.stdout.write(
    `| backend | model | wall ms/step, plain | wall ms/step, monitored | wall ms added | wall overhead | CPU ms/step, plain | CPU ms added | CPU overhead | step pairs |\n|---|---|---|---|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
  );
}

if (process.argv.includes('--child')) child();
else main();
