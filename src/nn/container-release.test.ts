/**
 * backward() releases the activations that only the graph holds: an nn.Sequential's outputs passed between the
 * library's own modules without hooks (graphOwned), as PyTorch frees a graph's saved tensors after backward. A loop
 * written without tidy() then reuses them from the pool instead of leaving them to the garbage collector. What must
 * stay: everything your code can hold (the input, the output, the loss, what a hook or a module of yours saw, views
 * of those), and a second backward through a released graph must fail cleanly unless the first had retainGraph.
 */
import { describe, expect, it } from 'vitest';
import { availableBackends, getBackend, useBackend } from '../backend/index.js';
import { rand, randint } from '../tensor/random.js';
import { type Tensor, tidy } from '../tensor/tensor.js';
import { ReLU } from './activation.js';
import { Flatten, Sequential } from './container.js';
import { Conv2d, MaxPool2d } from './conv.js';
import { crossEntropy } from './functional.js';
import { Linear } from './linear.js';
import { cnn, mlp } from './models.js';
import { Module } from './module.js';
import '../tensor/methods.js';

/** The tensors of the graph below `root` (itself included), inputs before the ops that read them. */
function graphOf(root: Tensor): Tensor[] {
  const out: Tensor[] = [];
  const seen = new Set<Tensor>();
  const visit = (t: Tensor) => {
    if (seen.has(t)) return;
    seen.add(t);
    for (const x of t.node?.inputs ?? []) visit(x);
    out.push(t);
  };
  visit(root);
  return out;
}

const released = (t: Tensor) => t.storage.buf === null;
const grads = (m: Module) => m.namedParameters().map(([, p]) => p.grad!.toArray());

/** A user's module: keeps what it is given, as user code may. */
class Keeper extends Module {
  last: Tensor | null = null;
  forward(x: Tensor): Tensor {
    this.last = x;
    return x.mul(2);
  }
}

/** A user's subclass of a library module: its exact class is not the library's, so it counts as user code. */
class MyLinear extends Linear {
  seen: Tensor | null = null;
  override forward(x: Tensor): Tensor {
    this.seen = x;
    return super.forward(x);
  }
}

for (const name of availableBackends()) {
  describe(`backward() releases a Sequential's activations between its own modules (${name})`, () => {
    it('the hidden activations of nn.mlp are released, the input, output and loss kept; gradients as inside tidy()', () => {
      useBackend(name);
      const x = rand([6, 12], { seed: 1 });
      const y = randint(0, 3, [6], { seed: 2 });
      const a = mlp({ inputSize: 12, hidden: [16, 8], outputSize: 3, seed: 0 });
      const b = mlp({ inputSize: 12, hidden: [16, 8], outputSize: 3, seed: 0 });
      const out = a.call(x);
      const loss = crossEntropy(out, y);
      // Linear+ReLU run fused: the two hidden activations are the only outputs between modules
      const hidden = graphOf(out).filter((t) => t.node && t !== out && t.shape[0] === 6 && t.ndim === 2);
      expect(hidden.map((t) => t.shape[1])).toEqual([16, 8]);
      expect(hidden.every((t) => t.graphOwned)).toBe(true);
      loss.backward();
      expect(hidden.every(released)).toBe(true);
      expect(released(x) || released(out) || released(loss)).toBe(false);
      expect(Number.isFinite(loss.item()) && out.toArray().every(Number.isFinite)).toBe(true);
      tidy(() => crossEntropy(b.call(x), y).backward());
      expect(grads(a)).toEqual(grads(b));
    });

    it("the CLI's CNN in a loop without tidy(): what stays allocated a step is small, not its activations", () => {
      useBackend(name);
      const model = cnn({ inChannels: 1, imageSize: [8, 8], numClasses: 3, channels: [4, 8], hidden: 16, seed: 0 });
      const x = rand([4, 1, 8, 8], { seed: 1 });
      const y = randint(0, 3, [4], { seed: 2 });
      const step = () => {
        const loss = crossEntropy(model.call(x), y);
        loss.backward();
        loss.item();
      };
      for (let s = 0; s < 3; s++) step();
      const be = getBackend();
      const live = be.stats().liveBytes;
      for (let s = 0; s < 5; s++) step();
      // the first convolution's output alone is 4·4·8·8 floats (1 KiB); the logits, the loss and the cross-entropy's
      // own buffers are what the garbage collector still frees (12 + 1 + 12 floats a step)
      const perStep = (be.stats().liveBytes - live) / 5;
      expect(perStep).toBeLessThanOrEqual(4 * (12 + 1 + 12 + 4));
    });

    it('a second backward() through a released graph throws and changes no gradient; retainGraph keeps it', () => {
      useBackend(name);
      const x = rand([5, 12], { seed: 3 });
      const y = randint(0, 3, [5], { seed: 4 });
      const m = mlp({ inputSize: 12, hidden: [8], outputSize: 3, seed: 0 });
      const loss = crossEntropy(m.call(x), y);
      loss.backward();
      const first = grads(m);
      expect(() => loss.backward()).toThrow(/retainGraph: true/);
      expect(grads(m)).toEqual(first);
      for (const [, p] of m.namedParameters()) p.grad = null;
      const again = crossEntropy(m.call(x), y);
      again.backward(undefined, { retainGraph: true });
      expect(grads(m)).toEqual(first);
      again.backward();
      // the same gradient added to itself: exactly twice it
      expect(grads(m)).toEqual(first.map((g) => g.map((v) => 2 * v)));
      expect(() => again.backward()).toThrow(/already run backward/);
      // options that are not { retainGraph: boolean }: refused by name, before anything is computed or released
      const third = crossEntropy(m.call(x), y);
      const before = grads(m);
      for (const bad of [null, 'yes', { retainGraph: 'yes' }]) {
        expect(() => (third.backward as (g?: Tensor, o?: unknown) => void)(undefined, bad)).toThrow(
          /options must be an object such as \{ retainGraph: true \}/,
        );
      }
      expect(grads(m)).toEqual(before);
      third.backward();
    });

    it('what a hook, a module of yours or a subclass saw stays readable; the rest is released', () => {
      useBackend(name);
      const x = rand([4, 6], { seed: 5 });
      const y = randint(0, 2, [4], { seed: 6 });
      const keeper = new Keeper();
      const mine = new MyLinear(8, 8);
      const hooked = new ReLU();
      let fromHook: Tensor | null = null;
      hooked.registerForwardHook((_m, _x, out) => {
        fromHook = out as Tensor;
      });
      // 0 → 1 (own, no hooks): released; 1 → keeper: kept; keeper → 3 → 4: released (own, 2·x by the keeper is its
      // output, fed to own modules); 4 → hooked: kept (the hook's input), hooked's output: kept (the hook saw it);
      // 6 → mine: kept (a subclass is user code)
      const model = new Sequential(
        new Linear(6, 8),
        new ReLU(),
        keeper,
        new Linear(8, 8),
        new Linear(8, 8),
        hooked,
        new Linear(8, 8),
        mine,
        new Linear(8, 2),
      );
      const out = model.call(x);
      const loss = crossEntropy(out, y);
      loss.backward();
      const kept = [keeper.last!, fromHook!, mine.seen!];
      expect(kept.some(released)).toBe(false);
      for (const t of kept) expect(t.toArray().every(Number.isFinite)).toBe(true);
      const owned = graphOf(out).filter((t) => t.graphOwned);
      // Linear(6, 8)'s output (to the ReLU), the ReLU's output? no: fused with it. So: Linear+ReLU's output goes to
      // the keeper (kept); the keeper's output is not the library's; Linear 3's output to Linear 4: released; Linear
      // 6's output to mine: kept
      expect(owned.length).toBe(1);
      expect(owned.every(released)).toBe(true);
    });

    it('a view that leaves (Flatten last, its input a pooling) and the input itself are never released', () => {
      useBackend(name);
      const x = rand([2, 1, 6, 6], { seed: 7 });
      const model = new Sequential(new Conv2d(1, 2, 3, { padding: 1 }), new MaxPool2d(2), new Flatten());
      const out = model.call(x);
      out.sum().backward();
      expect(released(out) || released(x)).toBe(false);
      expect(out.shape).toEqual([2, 18]);
      expect(out.toArray().every(Number.isFinite)).toBe(true);
      // the convolution's output went to the pooling only: released
      expect(graphOf(out).filter((t) => t.graphOwned && released(t)).length).toBe(1);
    });

    it('an activation whose view reached your code is kept (Flatten hands a view of its input on)', () => {
      useBackend(name);
      const x = rand([3, 2, 2, 2], { seed: 10 });
      const keeper = new Keeper();
      // the convolution's output goes to Flatten (the library's), whose output, a view of it, goes to the keeper
      const model = new Sequential(new Conv2d(2, 2, 1), new Flatten(), keeper, new Linear(8, 2));
      model.call(x).sum().backward();
      expect(keeper.last!.storage).toBe(keeper.last!.node!.inputs[0]!.storage);
      expect(released(keeper.last!)).toBe(false);
      expect(keeper.last!.toArray().every(Number.isFinite)).toBe(true);
    });

    it('inside tidy() a released activation goes back to the pool once', () => {
      useBackend(name);
      const m = mlp({ inputSize: 12, hidden: [32], outputSize: 3, seed: 0 });
      const x = rand([7, 12], { seed: 8 });
      const y = randint(0, 3, [7], { seed: 9 });
      for (let s = 0; s < 2; s++) tidy(() => crossEntropy(m.call(x), y).backward());
      const be = getBackend();
      const live = be.stats().liveBytes;
      tidy(() => crossEntropy(m.call(x), y).backward());
      expect(be.stats().liveBytes).toBe(live);
      // given back twice, the pool would hand the same buffer out twice
      const [p, q] = [be.alloc(7 * 32), be.alloc(7 * 32)];
      expect(p).not.toBe(q);
      be.free(p);
      be.free(q);
    });
  });
}
