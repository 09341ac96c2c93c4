/**
 * The autodiff machinery on every backend: accumulation, grad mode, detach, tidy and released tensors, and the error
 * messages a user sees for bad shapes (pinned).
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { availableBackends, getBackend, useBackend } from '../src/backend/index.js';
import * as F from '../src/nn/functional.js';
import * as T from '../src/tensor/index.js';
import { type Tensor, tensor } from '../src/tensor/tensor.js';

const leaf = (values: number[], shape?: number[]) => tensor(values, shape, { requiresGrad: true });
const grad = (t: Tensor) => {
  expect(t.grad, 'the tensor has no .grad').not.toBeNull();
  return t.grad!.toArray();
};
const close = (actual: number[], expected: number[]) => {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    expect(a).toBeCloseTo(expected[i]!, 5);
  });
};

for (const backend of availableBackends()) {
  describe(`autodiff machinery on the ${backend} backend`, () => {
    beforeAll(() => {
      useBackend(backend);
    });

    describe('accumulation', () => {
      it('x * x gives 2x', () => {
        const x = leaf([1.5, -2, 3]);
        x.mul(x).sum().backward();
        close(grad(x), [3, -4, 6]);
      });

      it('x + x gives 2', () => {
        const x = leaf([1.5, -2, 3]);
        x.add(x).sum().backward();
        close(grad(x), [2, 2, 2]);
      });

      it('x used three times through different ops sums every path', () => {
        const x = leaf([0.5, -1]);
        // d/dx (x² + 3x + eˣ) = 2x + 3 + eˣ
        x.mul(x).add(x.mul(3)).add(x.exp()).sum().backward();
        close(grad(x), [2 * 0.5 + 3 + Math.exp(0.5), -2 + 3 + Math.exp(-1)]);
      });

      it('a gradient shared by add is not updated in place once handed on', () => {
        // z's gradient is a sum (z is used twice); add gives it to u and v, and each then gets another term
        const x = leaf([0.3, -0.5]);
        const u = x.mul(2);
        const v = x.exp();
        const z = u.add(v);
        v.mul(3).sum().add(u.mul(4).sum()).add(z.mul(z).sum()).backward();
        // d/dx = 3eˣ + 8 + 2z·(2 + eˣ) with z = 2x + eˣ
        const want = [0.3, -0.5].map((a) => 3 * Math.exp(a) + 8 + 2 * (2 * a + Math.exp(a)) * (2 + Math.exp(a)));
        close(grad(x), want);
      });

      it('.grad accumulates across two backward() calls', () => {
        const x = leaf([1, 2]);
        x.mul(3).sum().backward();
        x.mul(x).sum().backward();
        close(grad(x), [3 + 2, 3 + 4]);
      });

      it('backward(grad) weights each output element, and leaves the given gradient untouched', () => {
        const x = leaf([1, 2, 3]);
        const g = tensor([1, 10, 100], [3]);
        x.add(x).backward(g);
        close(grad(x), [2, 20, 200]);
        expect(g.toArray()).toEqual([1, 10, 100]);
      });

      it("a leaf's first gradient is the buffer backward wrote, not a copy of it", () => {
        const be = getBackend();
        const w = leaf([1, 2, 3, 4, 5, 6], [2, 3]);
        const x = tensor([1, -1, 2, 0.5, 0, 3], [2, 3]);
        const copy = vi.spyOn(be, 'copy');
        try {
          T.linear(x, w).sum().backward();
          expect(copy).not.toHaveBeenCalled();
        } finally {
          copy.mockRestore();
        }
        close(grad(w), [1.5, -1, 5, 1.5, -1, 5]);
        // and it is the leaf's own: a second backward adds into it
        T.linear(x, w).sum().backward();
        close(grad(w), [3, -2, 10, 3, -2, 10]);
      });

      it('two leaves handed one gradient (add) each get their own .grad', () => {
        const a = leaf([1, 2]);
        const b = leaf([3, 4]);
        a.add(b)
          .mul(tensor([5, 6], [2]))
          .sum()
          .backward();
        close(grad(a), [5, 6]);
        close(grad(b), [5, 6]);
        expect(a.grad!.storage).not.toBe(b.grad!.storage);
        a.grad!.data[0] = 42;
        close(grad(b), [5, 6]);
        a.mul(2).sum().backward();
        close(grad(a), [44, 8]);
        close(grad(b), [5, 6]);
      });

      it('a leaf whose gradient another node also reads keeps it intact', () => {
        // add hands its gradient to the leaf a and to h = b·b, whose backward reads it after a has taken it
        const a = leaf([1, -2]);
        const b = leaf([0.5, 3]);
        const h = b.mul(b);
        a.add(h)
          .mul(tensor([2, 3], [2]))
          .sum()
          .backward();
        close(grad(a), [2, 3]);
        close(grad(b), [2 * 2 * 0.5, 3 * 2 * 3]);
      });

      it('a leaf that does not require grad gets no .grad', () => {
        const x = leaf([1, 2]);
        const c = tensor([3, 4], [2]);
        x.mul(c).sum().backward();
        expect(c.grad).toBeNull();
        close(grad(x), [3, 4]);
      });

      it('only leaves keep .grad, as PyTorch', () => {
        const x = leaf([1, 2]);
        const h = x.mul(2);
        h.sum().backward();
        expect(h.grad).toBeNull();
        expect(h.isLeaf).toBe(false);
      });
    });

    describe('grad mode and detach', () => {
      it('noGrad records nothing', () => {
        const x = leaf([1, 2]);
        const y = T.noGrad(() => x.mul(x).exp());
        expect(y.requiresGrad).toBe(false);
        expect(y.isLeaf).toBe(true);
        expect(() => y.sum().backward()).toThrow('backward(): this tensor does not require grad');
      });

      it('noGrad restores grad mode, even when its function throws', () => {
        expect(() =>
          T.noGrad(() => {
            throw new Error('boom');
          }),
        ).toThrow('boom');
        expect(T.isGradEnabled()).toBe(true);
        expect(leaf([1]).mul(2).requiresGrad).toBe(true);
      });

      it('detach stops the gradient on that path only', () => {
        const x = leaf([2, 3]);
        // d/dx (stop(x) · x) = stop(x)
        x.detach().mul(x).sum().backward();
        close(grad(x), [2, 3]);
      });

      it('a detached tensor shares values but not the graph', () => {
        const x = leaf([2, 3]);
        const d = x.detach();
        expect(d.requiresGrad).toBe(false);
        expect(d.toArray()).toEqual([2, 3]);
        expect(() => d.sum().backward()).toThrow('does not require grad');
      });
    });

    describe('tidy and released tensors', () => {
      it('releases intermediates, keeps the returned tensors and the leaves .grad', () => {
        const be = getBackend();
        const w = leaf([0.5, -1, 2, 0.25], [2, 2]);
        const x = tensor([1, 2, 3, 4, 5, 6], [3, 2]);
        const before = be.stats().liveBytes;
        let inner: Tensor | null = null;
        const loss = T.tidy(() => {
          inner = x.matmul(w).tanh();
          const l = inner.sum();
          l.backward();
          return l;
        });
        expect(Number.isFinite(loss.item())).toBe(true);
        expect(w.grad).not.toBeNull();
        expect(w.grad!.toArray().every(Number.isFinite)).toBe(true);
        // what survives: the 1-element loss and w's 4-element .grad
        expect(be.stats().liveBytes - before).toBe((1 + 4) * 4);
        expect(() => inner!.toArray()).toThrow(
          'this tensor was released at the end of tidy() (or by dispose()); return it from the tidy function or call keep() on it',
        );
      });

      it('keep() lets a tensor outlive its tidy; nested tidy hands results to the outer one', () => {
        const x = tensor([1, 2, 3], [3]);
        let kept: Tensor | null = null;
        let innerResult: Tensor | null = null;
        let dropped: Tensor | null = null;
        T.tidy(() => {
          kept = T.keep(x.mul(2));
          innerResult = T.tidy(() => x.add(1));
          dropped = x.exp();
          expect(innerResult.toArray()).toEqual([2, 3, 4]);
          return null;
        });
        expect(kept!.toArray()).toEqual([2, 4, 6]);
        expect(() => innerResult!.toArray()).toThrow('released at the end of tidy()');
        expect(() => dropped!.toArray()).toThrow('released at the end of tidy()');
      });

      it('tidy releases what it allocated when its function throws', () => {
        const be = getBackend();
        const x = tensor([1, 2, 3], [3]);
        const before = be.stats().liveBytes;
        expect(() =>
          T.tidy(() => {
            x.mul(2).exp();
            throw new Error('boom');
          }),
        ).toThrow('boom');
        expect(be.stats().liveBytes).toBe(before);
      });

      it('a disposed tensor throws a clear error', () => {
        const x = tensor([1, 2], [2]);
        T.dispose(x);
        expect(() => x.add(1)).toThrow('this tensor was released at the end of tidy() (or by dispose())');
      });

      it('backward through a graph whose intermediates were released names the problem', () => {
        const x = leaf([1, 2]);
        // exp's backward reads its released output
        const y = T.tidy(() => x.exp().mul(3).sum());
        expect(() => y.backward()).toThrow('this tensor was released at the end of tidy()');
      });
    });

    describe('error messages (pinned)', () => {
      const cases: [string, () => unknown, string][] = [
        [
          'broadcast',
          () => T.add(tensor([1, 2, 3], [3]), tensor([1, 2], [2])),
          'add(): shapes [3] and [2] cannot be broadcast (dimension 0 is 3 vs 2; sizes must match or one must be 1)',
        ],
        [
          'matmul',
          () => T.matmul(T.zeros([2, 3]), T.zeros([4, 5])),
          'matmul(): shapes [2,3] and [4,5] do not chain (3 columns vs 4 rows)',
        ],
        [
          'matmul batch',
          () => T.matmul(T.zeros([2, 3, 4]), T.zeros([3, 4, 5])),
          'matmul(): shapes [2] and [3] cannot be broadcast (dimension 0 is 2 vs 3; sizes must match or one must be 1)',
        ],
        [
          'reshape',
          () => T.reshape(T.zeros([2, 3]), [4, 2]),
          'reshape(): cannot reshape [2,3] (6 elements) into [4,2]',
        ],
        ['axis', () => T.sum(T.zeros([2, 3]), 2), 'sum(): axis 2 is out of range for a tensor with 2 dimensions'],
        [
          'backward of a non-scalar',
          () => leaf([1, 2]).mul(2).backward(),
          'backward(): the tensor has shape [2]; backward() without a gradient needs a scalar (call .sum() or .mean() first)',
        ],
        [
          'backward with a gradient of the wrong shape',
          () =>
            leaf([1, 2, 3])
              .mul(2)
              .backward(T.ones([2])),
          'backward(): the gradient has shape [2] but the tensor has shape [3]; pass a gradient of the same shape',
        ],
        ['tensor() size', () => tensor([1, 2, 3], [2, 2]), 'tensor(): 3 values do not fill shape [2,2] (4 elements)'],
        [
          'not a tensor',
          () => T.matmul(T.zeros([2, 2]), [1, 2] as unknown as Tensor),
          "argument 'b' passed to 'matmul' must be a Tensor, but got object",
        ],
        [
          'linear features',
          () => T.linear(T.zeros([3, 4]), T.zeros([5, 3])),
          'linear(): input has 4 features but the weight expects 3 (input shape [3,4], weight [5,3])',
        ],
        [
          'crossEntropy target',
          () => F.crossEntropy(T.zeros([2, 3]), [0, 3]),
          'crossEntropy(): target 3 at position 1 is not a class index in [0, 3) (or ignoreIndex -100)',
        ],
        [
          'crossEntropy reduction',
          () => F.crossEntropy(T.zeros([2, 3]), [0, 1], { reduction: 'avg' as F.Reduction }),
          "crossEntropy(): reduction 'avg' is not supported, please use one of mean, sum, none",
        ],
        [
          'conv2d channels',
          () => F.conv2d(T.zeros([1, 3, 5, 5]), T.zeros([2, 4, 3, 3])),
          'conv2d(): input has 3 channels but the weight expects 4',
        ],
        [
          'gather index larger than the input',
          () => T.gather(T.zeros([2, 3]), 1, T.zeros([3, 1])),
          'gather(): index shape [3,1] is larger than the input shape [2,3] in dimension 0',
        ],
        [
          'gather index out of range',
          () => T.gather(T.zeros([2, 3]), 1, tensor([0, 3], [2, 1])),
          'gather(): index 3 is out of range for a dimension of size 3',
        ],
        [
          'concat',
          () => T.concat([T.zeros([2, 3]), T.zeros([2, 4])], 0),
          'concat(): shapes [2,3] and [2,4] differ outside axis 0',
        ],
        [
          'batchNorm weight',
          () => F.batchNorm(T.zeros([4, 3]), null, null, T.ones([2]), null),
          'batchNorm(): weight must have shape [3], got [2]',
        ],
        [
          'layerNorm shape',
          () => F.layerNorm(T.zeros([2, 3]), [2]),
          'layerNorm(): normalizedShape [2] must match the trailing dimensions of the input [2,3]',
        ],
      ];
      for (const [name, fn, message] of cases) {
        it(name, () => {
          expect(fn).toThrow(message);
        });
      }
    });
  });
}
