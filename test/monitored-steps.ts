/**
 * A few monitored training steps (Adam between them), for the tests that check that a fused op leaves the gradient
 * monitor's records as they were: the monitor's history and, per step, how many of the model's ops were `op`. And for
 * the tests of the monitor's statistics taken in other ops' passes (src/monitor/*-outputs.test.ts): counts of a
 * backend's kernel calls, a monitored forward step, the non-finite count check.
 */
import { expect } from 'vitest';
import { getBackend } from '../src/backend/index.js';
import { type LayerStats, Monitor } from '../src/monitor/monitor.js';
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

/** How many times each of the default backend's kernels `names` runs inside f (wrapped for the call, then restored). */
export function kernelCalls<K extends string>(names: readonly K[], f: () => void): Record<K, number> {
  const be = getBackend() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const counts = Object.fromEntries(names.map((n) => [n, 0])) as Record<K, number>;
  const own = new Map<K, PropertyDescriptor | undefined>();
  for (const name of names) {
    own.set(name, Object.getOwnPropertyDescriptor(be, name));
    const orig = be[name]!;
    be[name] = (...a: unknown[]) => {
      counts[name]++;
      return orig.apply(be, a);
    };
  }
  try {
    f();
  } finally {
    for (const [name, d] of own) {
      if (d) Object.defineProperty(be, name, d);
      else delete be[name];
    }
  }
  return counts;
}

/** One monitored forward of `net` on x inside tidy() as step s (no backward): the record's first layer. */
export function forwardStep(mon: Monitor, net: AnyModule, x: Tensor): (s: number) => LayerStats {
  return (s) => {
    mon.beginStep(s);
    tidy(() => {
      net.call(x);
    });
    mon.endStep(0);
    return mon.latest()!.layers[0]!;
  };
}

/**
 * NaN put at x[at]: monitored step s (a `forwardStep`) must count as many non-finite values in its first layer's
 * output as `output()` (that output recomputed) holds, more than 8 of them, and give a NaN mean.
 */
export function expectNaNCounted(
  step: (s: number) => LayerStats,
  s: number,
  x: Tensor,
  at: number,
  output: () => Tensor,
) {
  x.data[at] = Number.NaN;
  const nan = tidy(
    () =>
      output()
        .toArray()
        .filter((v) => Number.isNaN(v)).length,
  );
  expect(nan).toBeGreaterThan(8);
  const l = step(s);
  expect(l.actMean).toBeNaN();
  expect(l.nonFinite).toBe(nan);
}
