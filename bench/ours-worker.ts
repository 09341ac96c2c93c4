/**
 * Our side of `npm run bench` (bench/bench.ts): a long-lived worker that times training steps in blocks on command,
 * the same protocol as bench/torch_worker.py (one JSON object a line each way):
 *   {"op": "info"}                                  -> backend, threads, sgemm in use, OpenBLAS's kernel set
 *   {"op": "sgemm", "m", "k", "n", "ms"}            -> GFLOP/s of the backend's sgemm, x [m,k] by wᵀ (w [n,k])
 *   {"op": "setup", "row", "spec", "warm", "max_ms"} -> builds the row twice, plain and with the gradient monitor,
 *                                                     and runs `warm` steps of each (fewer once max_ms have passed)
 *   {"op": "run", "row", "steps", "monitored", "max_ms"} -> {"times": [ms of each step]} (fewer once max_ms passed)
 *   {"op": "pair", "row", "steps", "max_ms"}         -> {"plain", "monitored", "cpu"}: ms of `steps` pairs of one plain
 *                                                     and one monitored step, which goes first alternating, so that
 *                                                     the monitor's cost is a paired difference; `cpu`: the plain
 *                                                     steps' CPU time (process.cpuUsage(), all threads)
 *
 * A step is what the trainer (src/train/trainer.ts) does, inside `tidy()`: forward, loss, backward, the transform
 * chain (global-norm clip 1.0, Adam 1e-3) on the gradients, the updates applied, the gradients zeroed. The monitored
 * copy also runs the monitor's hooks, recording every step (`every: 1`) as `gradguard train` does by default.
 */
import { createInterface } from 'node:readline';
import { getBackend } from '../src/backend/index.js';
import * as clip from '../src/clip/index.js';
import { Monitor } from '../src/monitor/monitor.js';
import { crossEntropy, mseLoss } from '../src/nn/functional.js';
import { Linear } from '../src/nn/linear.js';
import { cnn, mlp, resnet } from '../src/nn/models.js';
import type { AnyModule } from '../src/nn/module.js';
import { GRU, LSTM } from '../src/nn/rnn.js';
import * as optim from '../src/optim/index.js';
import { rand, randint } from '../src/tensor/random.js';
import { keep, type Tensor, tidy } from '../src/tensor/tensor.js';
import { SequenceModel } from '../src/train/build.js';
import type { RowSpec } from './rows.js';
import '../src/tensor/methods.js';

/** The row's model (PyTorch's twin is in bench/torch_worker.py), its fixed batch and its loss. */
function build(spec: RowSpec): { model: AnyModule; x: Tensor; y: Tensor; loss: (out: Tensor, y: Tensor) => Tensor } {
  const b = spec.batch;
  const seed = 0;
  const labels = () => keep(randint(0, 10, [b], { seed: 2 }));
  switch (spec.id) {
    case 'mlp':
      return {
        model: mlp({ inputSize: 784, hidden: [256], outputSize: 10, seed }),
        x: keep(rand([b, 784], { seed: 1 })),
        y: labels(),
        loss: crossEntropy,
      };
    case 'cnn':
      // what `gradguard train --set model.type=cnn` builds for 28×28 digits (src/train/build.ts): nn.cnn()'s defaults
      return {
        model: cnn({ inChannels: 1, imageSize: [28, 28], numClasses: 10, seed }),
        x: keep(rand([b, 1, 28, 28], { seed: 1 })),
        y: labels(),
        loss: crossEntropy,
      };
    case 'resnet20':
      return {
        model: resnet({ depth: 20, inChannels: spec.channels!, numClasses: 10, seed }),
        x: keep(rand([b, spec.channels!, spec.size!, spec.size!], { seed: 1 })),
        y: labels(),
        loss: crossEntropy,
      };
    case 'lstm':
    case 'gru': {
      const Cell = spec.id === 'lstm' ? LSTM : GRU;
      const rnn = new Cell(spec.features!, spec.hidden!, { batchFirst: true, seed });
      return {
        // the CLI's sequence model (src/train/build.ts): the recurrent layer and a linear head on the last step
        model: new SequenceModel(rnn, new Linear(spec.hidden!, 1, { seed: seed + 1 }), false),
        x: keep(rand([b, spec.seq!, spec.features!], { seed: 1 })),
        y: keep(rand([b, 1], { seed: 2 })),
        loss: mseLoss,
      };
    }
  }
}

/** One training step as the trainer takes it, with or without the monitor's hooks. */
function stepper(spec: RowSpec, monitored: boolean): () => number {
  const { model, x, y, loss } = build(spec);
  model.train();
  const params = Object.fromEntries(model.namedParameters());
  const tx = optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 }));
  let state = tx.init(params);
  const mon = monitored ? new Monitor(model, { every: 1, maxHistory: 100 }).attach() : null;
  const grads: Record<string, Tensor> = {};
  const weightSS: Record<string, number> = {};
  const updateSS: Record<string, number> = {};
  let step = 0;
  return () => {
    mon?.beginStep(step);
    const l = tidy(() => {
      const out = loss(model.call(x), y);
      out.backward();
      return out.item();
    });
    mon?.afterBackward(params);
    for (const [k, p] of Object.entries(params)) if (p.grad) grads[k] = p.grad;
    const r = tx.update(grads, state, params);
    state = r.state;
    if (mon) {
      // as the trainer does: the pass that applies the updates measures them and the weights they leave
      mon.afterUpdate(r.updates, params, r.state, { updateNormsFollow: true });
      optim.applyUpdates(params, r.updates, weightSS, updateSS);
      mon.afterApply(weightSS, updateSS);
    } else optim.applyUpdates(params, r.updates);
    for (const p of Object.values(params)) if (p.grad) p.grad.storage.backend.fill(p.grad.buf, 0, p.grad.size);
    mon?.endStep(l);
    step++;
    return l;
  };
}

/** GFLOP/s of the backend's sgemm on x [m,k] by wᵀ (w [n,k], as nn.Linear multiplies), best of 5 rounds. */
function sgemm(m: number, k: number, n: number, ms: number): number {
  const be = getBackend();
  const a = be.alloc(m * k);
  const w = be.alloc(n * k);
  const c = be.alloc(m * n);
  for (let i = 0; i < a.data.length; i++) a.data[i] = ((i * 7919) % 1000) / 1000;
  for (let i = 0; i < w.data.length; i++) w.data[i] = ((i * 104729) % 1000) / 1000;
  const once = () => be.sgemm(false, true, m, n, k, 1, a, 0, k, w, 0, k, 0, c, 0, n);
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) once();
    if (performance.now() - t0 >= ms / 4 || reps > 1e6) break;
    reps *= 2;
  }
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) once();
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  be.free(a);
  be.free(w);
  be.free(c);
  return (2 * m * k * n) / best / 1e6;
}

const steps = new Map<string, () => number>();

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
        const t0 = performance.now();
        for (let i = 0; i < (msg.warm as number); i++) {
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
      const times: number[] = [];
      const start = performance.now();
      for (let i = 0; i < (msg.steps as number); i++) {
        const t0 = performance.now();
        step();
        times.push(performance.now() - t0);
        if (performance.now() - start >= maxMs) break;
      }
      return { times };
    }
    case 'pair': {
      const plain = steps.get(`${msg.row}:false`);
      const monitored = steps.get(`${msg.row}:true`);
      if (!plain || !monitored) throw new Error(`row ${msg.row} was not set up`);
      const maxMs = (msg.max_ms as number | undefined) ?? Number.POSITIVE_INFINITY;
      const out = { plain: [] as number[], monitored: [] as number[], cpu: [] as number[] };
      const time = (step: () => number, into: number[], cpu: number[] | null) => {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        step();
        into.push(performance.now() - t0);
        const c = process.cpuUsage(c0);
        cpu?.push((c.user + c.system) / 1000);
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
