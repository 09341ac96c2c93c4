/**
 * A linear layer written by hand, `x.matmul(w.transpose(0, 1))` (issue 16: the transpose was materialised twice, in
 * the forward and back through its permute in the backward): matmul hands the gradient to w itself, in w's layout,
 * with the sums of `linear`'s weight gradient; likewise a batched transpose (attention's `k.transpose(-2, -1)`) and a
 * transposed left operand.
 */
import { describe, expect, it } from 'vitest';
import { kernelCalls } from '../../../test/monitored-steps.js';
import { availableBackends, useBackend } from '../../backend/index.js';
import { randn } from '../random.js';
import { type Tensor, tidy } from '../tensor.js';
import { linear, matmul } from './matmul.js';
import { permute, transpose } from './shape.js';
import '../methods.js';

/** A leaf with its own copy of t's values that requires grad. */
const leaf = (t: Tensor): Tensor => {
  const c = t.detach().mul(1);
  c.requiresGrad = true;
  return c;
};

/** Σ y·c for fixed weights c, so every output gets its own gradient. */
const loss = (y: Tensor, c: Tensor) => y.mul(c).sum();

const maxRel = (a: Tensor, b: Tensor) => {
  let m = 0;
  const x = a.data;
  const y = b.data;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - y[i]!) / Math.max(1e-6, Math.abs(y[i]!)));
  return m;
};

for (const name of availableBackends()) {
  describe(`matmul by a transposed matrix (${name})`, () => {
    for (const xShape of [
      [5, 12],
      [2, 5, 12],
    ]) {
      it(`x [${xShape}] · w.transpose(0, 1): w's gradient is linear's, bit for bit, with no permute in the backward`, () => {
        useBackend(name);
        const x0 = randn(xShape, { seed: 1 });
        const w0 = randn([7, 12], { seed: 2 });
        const c = randn([...xShape.slice(0, -1), 7], { seed: 3 });
        const [x, w, xr, wr] = [leaf(x0), leaf(w0), leaf(x0), leaf(w0)];
        const calls = kernelCalls(['permute'], () =>
          tidy(() => {
            const y = matmul(x, transpose(w, 0, 1));
            const back = kernelCalls(['permute'], () => loss(y, c).backward());
            expect(back.permute).toBe(0);
          }),
        );
        expect(calls.permute).toBe(1);
        tidy(() => loss(linear(xr, wr), c).backward());
        expect(w.grad!.shape).toEqual([7, 12]);
        expect(w.grad!.toArray()).toEqual(wr.grad!.toArray());
        expect(maxRel(x.grad!, xr.grad!)).toBeLessThan(1e-6);
      });
    }

    it('the transposed copy used elsewhere too: both gradients reach w', () => {
      useBackend(name);
      const x = randn([4, 6], { seed: 4 });
      const w = leaf(randn([3, 6], { seed: 5 }));
      tidy(() => {
        const wt = transpose(w, 0, 1);
        matmul(x, wt).sum().add(wt.mul(wt).sum()).backward();
      });
      // d/dw of Σ x·wᵀ is every row x's column sums; of Σ (wᵀ)², 2w
      const xs = x.toArray();
      const ws = w.toArray();
      const g = w.grad!.toArray();
      for (let j = 0; j < 3; j++)
        for (let k = 0; k < 6; k++) {
          let col = 0;
          for (let i = 0; i < 4; i++) col += xs[i * 6 + k]!;
          expect(g[j * 6 + k]).toBeCloseTo(col + 2 * ws[j * 6 + k]!, 5);
        }
    });

    for (const kShape of [
      [2, 5, 4],
      [1, 5, 4],
    ]) {
      it(`attention's q · k.transpose(-2, -1) with k [${kShape}]: k's gradient in its own layout, no permute`, () => {
        useBackend(name);
        const q = randn([2, 3, 4], { seed: 9 });
        const k = leaf(randn(kShape, { seed: 10 }));
        const c = randn([2, 3, 5], { seed: 11 });
        tidy(() => {
          const s = matmul(q, transpose(k, -2, -1));
          expect(kernelCalls(['permute'], () => loss(s, c).backward()).permute).toBe(0);
        });
        // dK[b][j][p] = Σ_i c[b][i][j]·q[b][i][p], summed over the batch where k is broadcast
        const [qs, cs, g] = [q.toArray(), c.toArray(), k.grad!.toArray()];
        expect(k.grad!.shape).toEqual(kShape);
        for (let b = 0; b < 2; b++)
          for (let j = 0; j < 5; j++)
            for (let p = 0; p < 4; p++) {
              let sum = 0;
              for (let bb = 0; bb < 2; bb++) {
                if (kShape[0] === 2 && bb !== b) continue;
                for (let i = 0; i < 3; i++) sum += cs[(bb * 3 + i) * 5 + j]! * qs[(bb * 3 + i) * 4 + p]!;
              }
              const kb = kShape[0] === 2 ? b : 0;
              expect(g[(kb * 5 + j) * 4 + p]).toBeCloseTo(sum, 5);
            }
      });
    }

    it("a transposed left operand, x.transpose(0, 1) · B: x's gradient B·dCᵀ in x's layout, no permute", () => {
      useBackend(name);
      const x = leaf(randn([6, 4], { seed: 12 }));
      const bm = randn([6, 3], { seed: 13 });
      const c = randn([4, 3], { seed: 14 });
      tidy(() => {
        const y = matmul(transpose(x, 0, 1), bm);
        expect(kernelCalls(['permute'], () => loss(y, c).backward()).permute).toBe(0);
      });
      const [bs, cs, g] = [bm.toArray(), c.toArray(), x.grad!.toArray()];
      expect(x.grad!.shape).toEqual([6, 4]);
      for (let p = 0; p < 6; p++)
        for (let i = 0; i < 4; i++) {
          let sum = 0;
          for (let j = 0; j < 3; j++) sum += bs[p * 3 + j]! * cs[i * 3 + j]!;
          expect(g[p * 4 + i]).toBeCloseTo(sum, 5);
        }
    });

    it('an identity permute of a square matrix is not taken for a transpose', () => {
      useBackend(name);
      const x = randn([4, 5], { seed: 6 });
      const w0 = randn([5, 5], { seed: 7 });
      const [w, wr] = [leaf(w0), leaf(w0)];
      tidy(() =>
        matmul(x, permute(w, [0, 1]))
          .mul(randn([4, 5], { seed: 8 }))
          .sum()
          .backward(),
      );
      tidy(() =>
        matmul(x, wr)
          .mul(randn([4, 5], { seed: 8 }))
          .sum()
          .backward(),
      );
      expect(w.grad!.toArray()).toEqual(wr.grad!.toArray());
    });
  });
}
