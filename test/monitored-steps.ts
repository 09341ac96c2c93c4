/**
 * A few monitored training steps (Adam between them), for the tests that check that a fused op leaves the gradient
 * monitor's records as they were: the monitor's history and, per step, how many of the model's ops were `op`.
 */
import { Monitor } from '../src/monitor/monitor.js';
import { crossEntropy } from '../src/nn/functional.js';
import type { AnyModule } from '../src/nn/module.js';
import * as optim from '../src/optim/index.js';
import { rand, randint } from '../src/tensor/random.js';
import { type Tensor, tidy } from '../src/tensor/tensor.js';

/** The ops along the first input, from the output back. */
export function opChain(out: Tensor): string[] {
  const ops: string[] = [];
  for (let t = out; t.node; t = t.node.inputs[0]!) ops.push(t.node.op);
  return ops;
}

/**
 * Trains `model` for `steps` monitored steps on seeded batches of `inShape` with `classes` labels.
 * @returns the monitor's history as JSON and, per step, how many ops along the output's chain were `op`
 */
export function monitoredSteps(
  model: AnyModule,
  inShape: readonly number[],
  classes: number,
  op: string,
  steps = 3,
): { history: string; fusedOps: number[] } {
  const params = Object.fromEntries(model.namedParameters());
  const tx = optim.adam({ lr: 1e-2 });
  let state = tx.init(params);
  const mon = new Monitor(model, { every: 1 }).attach();
  const fusedOps: number[] = [];
  for (let step = 0; step < steps; step++) {
    mon.beginStep(step);
    const loss = tidy(() => {
      const out = model.call(rand([...inShape], { seed: 10 + step, low: -1, high: 1 }));
      fusedOps.push(opChain(out).filter((o) => o === op).length);
      const l = crossEntropy(out, randint(0, classes, [inShape[0]!], { seed: 20 + step }));
      l.backward();
      return l.item();
    });
    mon.afterBackward(params);
    const grads = Object.fromEntries(Object.entries(params).map(([k, p]) => [k, p.grad!]));
    const r = tx.update(grads, state, params);
    state = r.state;
    mon.afterUpdate(r.updates, params, r.state);
    optim.applyUpdates(params, r.updates);
    for (const p of Object.values(params)) p.grad = null;
    mon.endStep(loss);
  }
  mon.detach();
  return { history: JSON.stringify(mon.history), fusedOps };
}
