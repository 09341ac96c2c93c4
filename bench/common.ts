/**
 * What bench/monitor-overhead.ts and bench/wasm-vs-native.ts share: the MLP and a small valid-padding CNN, and a
 * plain training step on a fixed batch.
 */
import * as clip from '../src/clip/index.js';
import { ReLU } from '../src/nn/activation.js';
import { Flatten, Sequential } from '../src/nn/container.js';
import { Conv2d, MaxPool2d } from '../src/nn/conv.js';
import { crossEntropy } from '../src/nn/functional.js';
import { Linear } from '../src/nn/linear.js';
import { mlp } from '../src/nn/models.js';
import type { AnyModule } from '../src/nn/module.js';
import * as optim from '../src/optim/index.js';
import { rand, randint } from '../src/tensor/random.js';
import { keep, type Tensor, tidy } from '../src/tensor/tensor.js';
import '../src/tensor/methods.js';

/** The MLP 784-256-10 (ReLU). */
export function mlpModel(seed = 0): AnyModule {
  return mlp({ inputSize: 784, hidden: [256], outputSize: 10, seed });
}

/** The small CNN: conv 1→32 3×3, ReLU, pool 2, conv 32→64 3×3, ReLU, pool 2, linear 1600→10. */
export function cnnModel(seed = 0): AnyModule {
  return new Sequential(
    new Conv2d(1, 32, 3, { seed }),
    new ReLU(),
    new MaxPool2d(2),
    new Conv2d(32, 64, 3, { seed: seed + 1 }),
    new ReLU(),
    new MaxPool2d(2),
    new Flatten(),
    new Linear(1600, 10, { seed: seed + 2 }),
  );
}

/** A fixed random batch for a classifier on 28×28 inputs: [batch, 784] for the MLP, [batch, 1, 28, 28] for the CNN. */
export function batch(shape: number[]): { x: Tensor; y: Tensor } {
  return { x: keep(rand(shape, { seed: 1 })), y: keep(randint(0, 10, [shape[0]!], { seed: 2 })) };
}

/**
 * One training step of a classifier on a fixed batch: forward, cross-entropy, backward, (with `readNorms`) every
 * parameter's gradient norm read back as a monitoring user would, global-norm clip 1.0 + Adam 1e-3, apply, zero the
 * gradients. Returns the loss.
 */
export function classifierStep(model: AnyModule, x: Tensor, y: Tensor, readNorms = false): () => number {
  const params = Object.fromEntries(model.namedParameters());
  const tx = optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 }));
  let state = tx.init(params);
  const grads: Record<string, Tensor> = {};
  return () => {
    const loss = tidy(() => {
      const l = crossEntropy(model.call(x), y);
      l.backward();
      return l.item();
    });
    if (readNorms) {
      for (const p of Object.values(params)) Math.sqrt(p.grad!.storage.backend.sumSquares(p.grad!.buf, p.grad!.size));
    }
    for (const [k, p] of Object.entries(params)) grads[k] = p.grad!;
    const r = tx.update(grads, state, params);
    state = r.state;
    optim.applyUpdates(params, r.updates);
    for (const p of Object.values(params)) p.grad!.storage.backend.fill(p.grad!.buf, 0, p.grad!.size);
    return loss;
  };
}

export function median(v: readonly number[]): number {
  return [...v].sort((a, b) => a - b)[v.length >> 1]!;
}
