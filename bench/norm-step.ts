/**
 * Training steps of two normalised networks, to show where BatchNorm and LayerNorm run:
 *   cnn-bn  conv 1→32 3×3, BatchNorm2d, ReLU, pool 2, conv 32→64 3×3, BatchNorm2d, ReLU, pool 2, linear 1600→10
 *           (batch 64, 28×28);
 *   mlp-ln  784-256-256-10 with LayerNorm after each hidden linear layer, ReLU (batch 128).
 * A step is forward, cross-entropy, backward, global-norm clip 1.0 + Adam 1e-3 (bench/common.ts's classifierStep).
 *
 * On a backend with the normalisation kernels (src/backend/spec.ts: batchNorm, batchNormGrad, layerNorm,
 * layerNormGrad) each round times the step twice, alternating: with the backend's own kernels (C on native and wasm),
 * and with the same four kernels taken from the JavaScript reference (what running them in JS costs), so that both
 * see the same machine load. It also reports the milliseconds per step spent inside those four kernels. On an older
 * tree without them (normalisation as JavaScript loops in nn/functional.ts) it times the step as it is.
 *
 *   node --import tsx bench/norm-step.ts [rounds=5] [steps=20]     (GRADGUARD_BACKEND picks the backend; native default)
 * Prints one JSON object.
 */
import { getBackend, useBackend } from '../src/backend/index.js';
import { JsBackend } from '../src/backend/js.js';
import type { Backend, BackendName } from '../src/backend/types.js';
import { ReLU } from '../src/nn/activation.js';
import { Flatten, Sequential } from '../src/nn/container.js';
import { Conv2d, MaxPool2d } from '../src/nn/conv.js';
import { Linear } from '../src/nn/linear.js';
import type { AnyModule } from '../src/nn/module.js';
import { BatchNorm2d, LayerNorm } from '../src/nn/norm.js';
import { batch, classifierStep, median } from './common.js';

const NORM_KERNELS = ['batchNorm', 'batchNormGrad', 'layerNorm', 'layerNormGrad'] as const;

function cnnBn(seed = 0): AnyModule {
  return new Sequential(
    new Conv2d(1, 32, 3, { seed }),
    new BatchNorm2d(32),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(32, 64, 3, { seed: seed + 1 }),
    new BatchNorm2d(64),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
    new Linear(1600, 10, { seed: seed + 2 }),
  );
}

function mlpLn(seed = 0): AnyModule {
  return new Sequential(
    new Linear(784, 256, { seed }),
    new LayerNorm([256]),
    new ReLU(),
    new Linear(256, 256, { seed: seed + 1 }),
    new LayerNorm([256]),
    new ReLU(),
    new Linear(256, 10, { seed: seed + 2 }),
  );
}

type Mode = 'kernels' | 'js-norms' | 'as-is';

/**
 * Puts the four normalisation kernels of `be` in `mode` ('js-norms': the reference's, on this backend's buffers),
 * each wrapped to add its time to `spent`.
 */
function setNorms(be: Backend, own: Record<string, unknown>, mode: Mode, spent: { ms: number }): void {
  const ref = JsBackend.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const k of NORM_KERNELS) {
    const fn = (mode === 'js-norms' ? ref[k] : own[k]) as (...a: unknown[]) => unknown;
    (be as unknown as Record<string, unknown>)[k] = (...args: unknown[]) => {
      const t0 = performance.now();
      const r = fn.apply(be, args);
      spent.ms += performance.now() - t0;
      return r;
    };
  }
}

function timeSteps(step: () => number, steps: number, spent: { ms: number }): { step: number; norms: number } {
  for (let i = 0; i < 3; i++) step();
  const times: number[] = [];
  const norms: number[] = [];
  for (let i = 0; i < steps; i++) {
    spent.ms = 0;
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
    norms.push(spent.ms);
  }
  return { step: median(times), norms: median(norms) };
}

function main(): void {
  const rounds = Number(process.argv[2] ?? 5);
  const steps = Number(process.argv[3] ?? 20);
  const be = process.env.GRADGUARD_BACKEND ? getBackend() : useBackend('native' as BackendName);
  const hasKernels = typeof (be as unknown as Record<string, unknown>).batchNorm === 'function';
  const own: Record<string, unknown> = {};
  if (hasKernels) for (const k of NORM_KERNELS) own[k] = (be as unknown as Record<string, unknown>)[k];
  const modes: Mode[] = hasKernels ? ['kernels', 'js-norms'] : ['as-is'];
  const nets = {
    'cnn-bn': { model: cnnBn(), data: batch([64, 1, 28, 28]) },
    'mlp-ln': { model: mlpLn(), data: batch([128, 784]) },
  };
  const spent = { ms: 0 };
  const results: Record<string, Record<string, { step: number[]; norms: number[] }>> = {};
  for (const [name, { model, data }] of Object.entries(nets)) {
    const step = classifierStep(model, data.x, data.y);
    results[name] = {};
    for (let r = 0; r < rounds; r++) {
      for (const mode of r % 2 ? [...modes].reverse() : modes) {
        if (hasKernels) setNorms(be, own, mode, spent);
        const t = timeSteps(step, steps, spent);
        const slot = (results[name]![mode] ??= { step: [], norms: [] });
        slot.step.push(+t.step.toFixed(2));
        slot.norms.push(+t.norms.toFixed(2));
      }
    }
  }
  console.log(JSON.stringify({ backend: be.name, threads: be.threads, rounds, steps, results }));
}

main();
