/**
 * What checking each update before it is written costs (`optim.findNonFiniteUpdate`, as the trainer calls it: one
 * max-|u| read of each update, the weights bounded by their sums of squares from the last apply): ms per training
 * step of the headline MLP 784-256-10 (ReLU, batch 128, global-norm clip 1.0 + Adam 1e-3) with and without the
 * check, on each backend that loads here, and the check's own time.
 *
 * The two variants run in alternating single steps (which one goes first alternates too), so drift in the machine's
 * speed hits both; the cost is the median of the paired differences over the unchecked median.
 *
 * Usage: node --import tsx bench/nonfinite-check.ts [--steps=400]
 */
import { availableBackends, useBackend } from '../src/backend/index.js';
import * as clip from '../src/clip/index.js';
import { crossEntropy } from '../src/nn/functional.js';
import * as optim from '../src/optim/index.js';
import { rand, randint } from '../src/tensor/random.js';
import { keep, type Tensor, tidy } from '../src/tensor/tensor.js';
import { mlpModel } from './common.js';

function stepper(checked: boolean) {
  const model = mlpModel(0);
  const x = keep(rand([128, 784], { seed: 1 }));
  const y = keep(randint(0, 10, [128], { seed: 2 }));
  const tx = optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 }));
  const params = Object.fromEntries(model.namedParameters());
  let state = tx.init(params);
  const grads: Record<string, Tensor> = {};
  const ss: Record<string, number> = {};
  const uss: Record<string, number> = {};
  let checkMs = 0;
  const run = () => {
    tidy(() => {
      const l = crossEntropy(model.call(x), y);
      l.backward();
      return l.item();
    });
    for (const [k, p] of Object.entries(params)) grads[k] = p.grad!;
    const r = tx.update(grads, state, params);
    state = r.state;
    if (checked) {
      const t0 = performance.now();
      const bad = optim.findNonFiniteUpdate(params, r.updates, ss);
      checkMs += performance.now() - t0;
      if (bad) throw new Error(`unexpected: ${optim.describeNonFiniteUpdate(bad)}`);
    }
    optim.applyUpdates(params, r.updates, ss, uss);
    for (const p of Object.values(params)) p.grad!.storage.backend.fill(p.grad!.buf, 0, p.grad!.size);
  };
  return { run, checkMs: () => checkMs };
}

const steps = Number(process.argv.find((a) => a.startsWith('--steps='))?.slice(8) ?? 400);
const med = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
for (const name of availableBackends()) {
  useBackend(name);
  const plain = stepper(false);
  const checked = stepper(true);
  for (let i = 0; i < 5; i++) {
    plain.run();
    checked.run();
  }
  const c0 = checked.checkMs();
  const tp: number[] = [];
  const diff: number[] = [];
  const time = (fn: () => void) => {
    const t0 = performance.now();
    fn();
    return performance.now() - t0;
  };
  for (let i = 0; i < steps; i++) {
    let p: number;
    let c: number;
    if (i % 2 === 0) {
      p = time(plain.run);
      c = time(checked.run);
    } else {
      c = time(checked.run);
      p = time(plain.run);
    }
    tp.push(p);
    diff.push(c - p);
  }
  const pm = med(tp);
  const d = med(diff);
  const check = (checked.checkMs() - c0) / steps;
  console.log(
    `${name.padEnd(6)} MLP step ${pm.toFixed(3)} ms; checked − plain (median of pairs) ${d >= 0 ? '+' : ''}${d.toFixed(3)} ms (${((100 * d) / pm).toFixed(1)}%); the check alone ${(check * 1000).toFixed(1)} µs/step (${((100 * check) / pm).toFixed(2)}%)`,
  );
}
