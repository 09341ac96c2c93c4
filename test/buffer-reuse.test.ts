import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { availableBackends, useBackend } from '../src/backend/index.js';
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

/** The collector, for the test of buffers dropped outside tidy() (a new context exposes it once the flag is set). */
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** One full training step as the trainer runs it: forward, loss, backward, clip + Adam, apply, zero. */
function stepper(model: AnyModule, x: Tensor, y: Tensor) {
  const params = Object.fromEntries(model.namedParameters());
  const tx = optim.chain(clip.byGlobalNorm(1), optim.adam({ lr: 1e-3 }));
  let state = tx.init(params);
  return () => {
    tidy(() => {
      const l = crossEntropy(model.call(x), y);
      l.backward();
      return l.item();
    });
    const grads: Record<string, Tensor> = {};
    for (const [k, p] of Object.entries(params)) grads[k] = p.grad!;
    const r = tx.update(grads, state, params);
    state = r.state;
    optim.applyUpdates(params, r.updates);
    for (const p of Object.values(params)) p.grad!.storage.backend.fill(p.grad!.buf, 0, p.grad!.size);
  };
}

for (const name of availableBackends()) {
  describe(`buffer reuse on ${name}`, () => {
    it('a training step allocates no fresh buffers once warm, and releases what it took', () => {
      const be = useBackend(name);
      const model = mlp({ inputSize: 64, hidden: [32], outputSize: 10, seed: 0 });
      const step = stepper(model, keep(rand([16, 64], { seed: 1 })), keep(randint(0, 10, [16], { seed: 2 })));
      step();
      step();
      const fresh = be.stats().freshAllocs;
      const live = be.stats().liveBytes;
      for (let i = 0; i < 10; i++) step();
      expect(be.stats().freshAllocs).toBe(fresh);
      expect(be.stats().liveBytes).toBe(live);
    });

    it('so does a convolutional step', () => {
      const be = useBackend(name);
      const model = new Sequential(
        new Conv2d(1, 4, 3, { seed: 0 }),
        new ReLU(),
        new MaxPool2d(2),
        new Flatten(),
        new Linear(4 * 3 * 3, 10, { seed: 1 }),
      );
      const step = stepper(model, keep(rand([4, 1, 8, 8], { seed: 1 })), keep(randint(0, 10, [4], { seed: 2 })));
      step();
      step();
      const fresh = be.stats().freshAllocs;
      for (let i = 0; i < 5; i++) step();
      expect(be.stats().freshAllocs).toBe(fresh);
    });

    // Without tidy() the forward's tensors that the user may still hold (the output, the loss) wait for the garbage
    // collector, but everything backward() allocates (the intermediate gradients) goes back to the pool when it
    // returns, and so do the activations only the graph held (nn.Sequential's between its own layers: graphOwned).
    it('a loop without tidy() allocates fresh buffers only for what the user may hold: backward returns the rest', () => {
      const be = useBackend(name);
      const model = mlp({ inputSize: 64, hidden: [32], outputSize: 10, seed: 0 });
      const x = keep(rand([16, 64], { seed: 1 }));
      const y = keep(randint(0, 10, [16], { seed: 2 }));
      const opt = new optim.Optimizer(model, optim.chain(clip.byGlobalNorm(1), optim.adam({ lr: 1e-3 })));
      const forward = () => crossEntropy(model.call(x), y);
      const step = () => {
        const l = forward();
        l.backward();
        l.item();
        opt.step();
        opt.zeroGrad();
      };
      const count = (n: number, fn: () => unknown) => {
        const [fresh, live] = [be.stats().freshAllocs, be.stats().liveBytes];
        for (let i = 0; i < n; i++) fn();
        return { fresh: be.stats().freshAllocs - fresh, live: be.stats().liveBytes - live };
      };
      count(3, step);
      count(3, forward); // takes what the pool holds of the forward's sizes
      const forwardOnly = count(3, forward); // now every forward buffer is fresh, and stays live (the user may hold it)
      expect(forwardOnly.fresh).toBeGreaterThan(0);
      count(3, step);
      // a step allocates what its forward keeps live less the hidden activation (16×32 floats, released by backward),
      // and nothing more: backward's buffers came back and are reused
      expect(count(3, step)).toEqual({ fresh: forwardOnly.fresh - 3, live: forwardOnly.live - 3 * 16 * 32 * 4 });
    });

    // The registry's callbacks (which pool a dropped tensor's buffer) run only once JavaScript returns to the event
    // loop, so a synchronous loop without tidy() must not depend on them: where the collector owns a buffer's memory
    // the registry must not hold the buffer, or every step's activations stay alive until the loop ends.
    it('tensors dropped outside tidy() leave their memory to the garbage collector, or come back to the pool', async () => {
      const be = useBackend(name);
      const model = mlp({ inputSize: 64, hidden: [32], outputSize: 10, seed: 0 });
      const x = keep(rand([16, 64], { seed: 1 }));
      const refs: WeakRef<object>[] = [];
      const live0 = be.stats().liveBytes;
      const dropped = (() => {
        let bytes = 0;
        for (let i = 0; i < 3; i++) {
          const out = model.call(x);
          // the memory behind the buffer: the Float32Array where the collector owns it, else the buffer object
          refs.push(new WeakRef(be.collectorFrees ? out.buf.data : out.buf));
          bytes += out.size * 4;
        }
        return bytes;
      })();
      expect(be.stats().liveBytes).toBeGreaterThan(live0);
      await new Promise((r) => setTimeout(r, 0)); // WeakRef targets stay alive until the current job ends
      gc();
      if (be.collectorFrees) {
        // collected by this gc(), before any registry callback could run: nothing else held the arrays
        expect(refs.every((r) => r.deref() === undefined)).toBe(true);
      } else {
        // the registry holds the buffer (a region of the module's memory) until its callback gives it back
        expect(refs.every((r) => r.deref() !== undefined)).toBe(true);
      }
      // then the callbacks run: the pool's statistics count the buffers as gone (collected or pooled)
      for (let i = 0; i < 20 && be.stats().liveBytes > live0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(be.stats().liveBytes).toBeLessThanOrEqual(live0);
      expect(dropped).toBeGreaterThan(0);
    });

    // A leaf's new gradient is watched only once it outlives the job (or at the next backward): a trainer disposes its
    // gradients within the step, and those need no registry at all. Dropped without dispose(), they still go.
    it('gradients dropped without dispose() are collected or come back to the pool', async () => {
      const be = useBackend(name);
      const model = mlp({ inputSize: 64, hidden: [32], outputSize: 10, seed: 0 });
      const x = keep(rand([16, 64], { seed: 1 }));
      const y = keep(randint(0, 10, [16], { seed: 2 }));
      const params = [...model.parameters()];
      const refs: WeakRef<object>[] = [];
      const live0 = be.stats().liveBytes;
      // two backward passes in one synchronous run, each dropping the gradients it made
      for (let i = 0; i < 2; i++) {
        tidy(() => crossEntropy(model.call(x), y).backward());
        for (const p of params) {
          refs.push(new WeakRef(be.collectorFrees ? p.grad!.buf.data : p.grad!.buf));
          p.grad = null;
        }
      }
      expect(be.stats().liveBytes).toBeGreaterThan(live0);
      await new Promise((r) => setTimeout(r, 0));
      gc();
      if (be.collectorFrees) expect(refs.every((r) => r.deref() === undefined)).toBe(true);
      for (let i = 0; i < 20 && be.stats().liveBytes > live0; i++) await new Promise((r) => setTimeout(r, 5));
      expect(be.stats().liveBytes).toBeLessThanOrEqual(live0);
    });
  });
}
