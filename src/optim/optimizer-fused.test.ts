/**
 * `Optimizer.step()` on the trainer's fused path (issue 16: the fast path is the default path): a chain ending in
 * Adam adds each step to its parameter in Adam's own pass, reading the parameters' `.grad` where they are, with the
 * numbers of the unfused step (a transformation's `update` on copies of the gradients, then `applyUpdates`).
 */
import { describe, expect, it } from 'vitest';
import { kernelCalls } from '../../test/monitored-steps.js';
import { availableBackends, useBackend } from '../backend/index.js';
import * as clip from '../clip/index.js';
import { crossEntropy } from '../nn/functional.js';
import { mlp } from '../nn/models.js';
import { rand, randint } from '../tensor/random.js';
import { type Tensor, tensor, tidy } from '../tensor/tensor.js';
import { adam, applyUpdates, chain, type GradientTransformation, NonFiniteUpdateError, Optimizer } from './index.js';
import '../tensor/methods.js';

type Model = ReturnType<typeof mlp>;
const net = (): Model => mlp({ inputSize: 12, hidden: [8], outputSize: 3, seed: 0 });
const values = (m: Model) => m.namedParameters().map(([, p]) => p.toArray());
const gradsOf = (m: Model) => m.namedParameters().map(([, p]) => p.grad!.toArray());

/** Forward and backward of step s's seeded batch into every parameter's .grad. */
function backward(m: Model, s: number): void {
  tidy(() => {
    crossEntropy(m.call(rand([5, 12], { seed: 10 + s })), randint(0, 3, [5], { seed: 20 + s })).backward();
  });
}

/** The step without the fused path, on a twin model: `tx.update` on copies of .grad, then `applyUpdates`. */
function reference(m: Model, tx: GradientTransformation<unknown>) {
  const params = Object.fromEntries(m.namedParameters());
  let state = tx.init(params);
  return () => {
    const grads: Record<string, Tensor> = {};
    for (const [k, p] of Object.entries(params)) grads[k] = tensor(p.grad!.toArray(), p.shape);
    const r = tx.update(grads, state, params);
    state = r.state;
    applyUpdates(params, r.updates);
    for (const p of Object.values(params)) p.grad = null;
  };
}

const KERNELS = ['adamApply', 'adamUpdate', 'axpy'] as const;

for (const name of availableBackends()) {
  describe(`Optimizer.step() on the fused path (${name})`, () => {
    const cases: [string, () => GradientTransformation<unknown>][] = [
      ['chain(clip.byGlobalNorm(0.5), adam)', () => chain(clip.byGlobalNorm(0.5), adam({ lr: 1e-2 }))],
      ['adam alone (its bound from the gradients measured on entry)', () => adam({ lr: 1e-2 })],
    ];
    for (const [label, tx] of cases) {
      it(`${label}: one Adam pass a parameter and no update buffer; the unfused numbers; .grad kept`, () => {
        useBackend(name);
        const a = net();
        const b = net();
        const opt = new Optimizer(a, tx());
        const ref = reference(b, tx());
        for (let s = 0; s < 4; s++) {
          backward(a, s);
          backward(b, s);
          const raw = gradsOf(a);
          const calls = kernelCalls(KERNELS, () => expect(opt.step()).toEqual({ skipped: false }));
          expect(calls).toEqual({ adamApply: 4, adamUpdate: 0, axpy: 0 });
          expect(gradsOf(a)).toEqual(raw);
          ref();
          expect(values(a)).toEqual(values(b));
          opt.zeroGrad({ setToNone: true });
        }
      });
    }

    it('a step the fused path declines works on copies: .grad kept, the same numbers', () => {
      useBackend(name);
      const a = net();
      const b = net();
      const tx = () => chain(clip.byGlobalNorm(1), adam({ lr: 1e-2 }));
      const opt = new Optimizer(a, tx());
      const ref = reference(b, tx());
      // a weight near float32's limit: w + u cannot be shown finite beforehand
      for (const m of [a, b]) m.namedParameters()[1]![1].data[0] = 1.7e38;
      backward(a, 0);
      backward(b, 0);
      const raw = gradsOf(a);
      const calls = kernelCalls(KERNELS, () => opt.step());
      expect(calls.adamApply).toBe(0);
      expect(calls.adamUpdate).toBeGreaterThan(0);
      expect(gradsOf(a)).toEqual(raw);
      ref();
      expect(values(a)).toEqual(values(b));
    });

    it('holds no copies of the gradients until a step needs them', () => {
      const be = useBackend(name);
      const a = net();
      const bytes = a.namedParameters().reduce((n, [, p]) => n + p.size * 4, 0);
      const before = be.stats().liveBytes;
      const opt = new Optimizer(a, chain(clip.byGlobalNorm(1), adam({ lr: 1e-2 })));
      // Adam's two moments, and nothing else
      expect(be.stats().liveBytes - before).toBe(2 * bytes);
      backward(a, 0);
      const withGrads = be.stats().liveBytes;
      opt.step();
      expect(be.stats().liveBytes).toBe(withGrads);
      // a step the fused path declines makes them, once
      a.namedParameters()[1]![1].data[0] = 1.7e38;
      opt.step();
      expect(be.stats().liveBytes).toBe(withGrads + bytes);
    });

    it('a .grad not shaped like its parameter is refused, naming it, and nothing is written', () => {
      useBackend(name);
      const a = net();
      const opt = new Optimizer(a, chain(clip.byGlobalNorm(1), adam({ lr: 1e-2 })));
      backward(a, 0);
      const [path, w] = a.namedParameters()[0]!;
      const before = values(a);
      for (const shape of [[w.size - 1], [w.shape[1]!, w.shape[0]!]]) {
        w.grad = tensor(new Array(shape.reduce((x, y) => x * y, 1)).fill(1), shape);
        expect(() => opt.step()).toThrow(
          `Optimizer.step(): the gradient of '${path}' has shape [${shape}] but its parameter [${w.shape}]; a .grad must have its parameter's shape`,
        );
        expect(values(a)).toEqual(before);
      }
    });

    it('weights written between steps are read afresh: a NaN put there is refused, nothing written', () => {
      useBackend(name);
      const a = net();
      const opt = new Optimizer(a, chain(clip.byGlobalNorm(1), adam({ lr: 1e-2 })));
      backward(a, 0);
      opt.step();
      opt.zeroGrad();
      backward(a, 1);
      const [path, w] = a.namedParameters()[0]!;
      w.data[3] = Number.NaN;
      const before = values(a);
      let err: unknown;
      try {
        opt.step();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(NonFiniteUpdateError);
      expect((err as NonFiniteUpdateError).detail).toEqual({ path, cause: 'weights' });
      expect(values(a)).toEqual(before);
    });
  });
}
