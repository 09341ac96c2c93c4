/**
 * `Optimizer.zeroGrad()` zeroes in place lazily: the `.grad` tensors stay (a reference you hold reads zeros), the
 * zeros are written when something first reads them, and the next backward writes its gradient in their place
 * instead of adding it to zeros (no fill, no add). Everything must read as if they had been filled.
 */
import { describe, expect, it } from 'vitest';
import { kernelCalls } from '../../test/monitored-steps.js';
import { availableBackends, getBackend, useBackend } from '../backend/index.js';
import * as clip from '../clip/index.js';
import { crossEntropy } from '../nn/functional.js';
import { mlp } from '../nn/models.js';
import { rand, randint } from '../tensor/random.js';
import { tidy } from '../tensor/tensor.js';
import { adam, chain, Optimizer } from './index.js';
import '../tensor/methods.js';

type Model = ReturnType<typeof mlp>;
const net = (): Model => mlp({ inputSize: 12, hidden: [8], outputSize: 3, seed: 0 });
const values = (m: Model) => m.namedParameters().map(([, p]) => p.toArray());
const gradsOf = (m: Model) => m.namedParameters().map(([, p]) => p.grad!.toArray());
const backward = (m: Model, s: number) =>
  tidy(() => crossEntropy(m.call(rand([5, 12], { seed: 10 + s })), randint(0, 3, [5], { seed: 20 + s })).backward());
const optimizer = (m: Model) => new Optimizer(m, chain(clip.byGlobalNorm(0.5), adam({ lr: 1e-2 })));

for (const name of availableBackends()) {
  describe(`Optimizer.zeroGrad() (${name})`, () => {
    it('the README loop: the same weights as with setToNone, no fill and no add into .grad a step', () => {
      useBackend(name);
      const [a, b] = [net(), net()];
      const [oa, ob] = [optimizer(a), optimizer(b)];
      for (let s = 0; s < 5; s++) {
        // the first step has no .grad yet; later ones write into the zeroed tensors: no fill or add more than a
        // backward into no .grad at all does (the seed's fill)
        // (a backend whose registry holds its buffers, wasm's, copies each gradient in instead of taking its buffer)
        const calls = kernelCalls(['fill', 'axpy', 'copy'], () => backward(a, s));
        const none = kernelCalls(['fill', 'axpy', 'copy'], () => backward(b, s));
        const copies = s > 0 && !getBackend().collectorFrees ? 4 : 0;
        expect(calls).toEqual({ ...none, copy: none.copy + copies });
        expect(calls.axpy).toBe(0);
        expect(gradsOf(a)).toEqual(gradsOf(b));
        oa.step();
        ob.step();
        oa.zeroGrad();
        ob.zeroGrad({ setToNone: true });
      }
      expect(values(a)).toEqual(values(b));
    });

    it('a .grad you hold reads zeros after zeroGrad() and the new gradient after backward', () => {
      useBackend(name);
      const m = net();
      const opt = optimizer(m);
      backward(m, 0);
      const held = m.namedParameters().map(([, p]) => p.grad!);
      opt.zeroGrad();
      expect(m.namedParameters().map(([, p]) => p.grad)).toEqual(held);
      // read one of them: its zeros are written then
      expect(held[0]!.toArray().every((v) => v === 0)).toBe(true);
      backward(m, 1);
      const fresh = net();
      backward(fresh, 1);
      expect(m.namedParameters().every(([, p], i) => p.grad === held[i])).toBe(true);
      expect(held.map((g) => g.toArray())).toEqual(gradsOf(fresh));
    });

    it('a value written into a zeroed .grad is added to, and two backward passes add up', () => {
      useBackend(name);
      const m = net();
      const opt = optimizer(m);
      backward(m, 0);
      opt.zeroGrad();
      const w = m.namedParameters()[0]![1];
      w.grad!.data[3] = 5;
      backward(m, 1);
      backward(m, 2);
      const [r1, r2, r12] = [net(), net(), net()];
      backward(r1, 1);
      backward(r2, 2);
      backward(r12, 1);
      backward(r12, 2);
      const g1 = r1.namedParameters()[0]![1].grad!.toArray();
      const g2 = r2.namedParameters()[0]![1].grad!.toArray();
      const got = w.grad!.toArray();
      // the zeros were written when .data was read, so the first backward added into them, not over them
      expect(got[3]).toBe(Math.fround(Math.fround(5 + g1[3]!) + g2[3]!));
      const sum = r12.namedParameters()[0]![1].grad!.toArray();
      expect(got.filter((_, i) => i !== 3)).toEqual(sum.filter((_, i) => i !== 3));
      // the other parameters took the first gradient in place and added the second
      expect(gradsOf(m).slice(1)).toEqual(gradsOf(r12).slice(1));
    });

    it('a parameter that gets no gradient reads zeros, and the step takes them as zeros', () => {
      useBackend(name);
      const [m, twin] = [net(), net()];
      const [om, ot] = [optimizer(m), optimizer(twin)];
      for (const [mm, o] of [
        [m, om],
        [twin, ot],
      ] as const) {
        backward(mm, 0);
        o.step();
        o.zeroGrad();
      }
      // no backward: m's .grad are zeroed ones nothing wrote; the twin's written out by hand first
      for (const [, p] of twin.namedParameters()) p.grad!.data.fill(0);
      const before = values(m);
      om.step();
      ot.step();
      expect(gradsOf(m).every((g) => g.every((v) => v === 0))).toBe(true);
      // Adam's momentum still moves the weights, as the twin's with its zeros filled
      expect(values(m)).not.toEqual(before);
      expect(values(m)).toEqual(values(twin));
    });

    it('the buffers a zeroed .grad gives up go back to the pool once', () => {
      useBackend(name);
      const m = net();
      const opt = optimizer(m);
      for (let s = 0; s < 3; s++) {
        backward(m, s);
        opt.step();
        opt.zeroGrad();
      }
      const be = getBackend();
      const live = be.stats().liveBytes;
      for (let s = 3; s < 6; s++) {
        backward(m, s);
        opt.step();
        opt.zeroGrad();
      }
      expect(be.stats().liveBytes).toBe(live);
      const [p, q] = [be.alloc(8 * 12), be.alloc(8 * 12)];
      expect(p).not.toBe(q);
      be.free(p);
      be.free(q);
    });
  });
}
