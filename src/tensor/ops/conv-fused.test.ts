/**
 * The passes folded into the convolution's and pooling's kernels: a conv2d's bias written by its kernel
 * (conv2dBias) instead of a broadcast pass before it, a ReLU's gradient folded into the backward of the max pooling
 * that reads its output (maxPool2dGradRelu), and the bias gradient per image summed by that kernel while its planes
 * are in cache. All give the bits of the separate passes, on every backend.
 */
import { describe, expect, it, vi } from 'vitest';
import { availableBackends, useBackend } from '../../backend/index.js';
import { Binary, type PoolGeom, Unary } from '../../backend/types.js';
import { conv2d, maxPool2d, relu } from '../../nn/functional.js';
import { tensor, tidy } from '../tensor.js';
import '../methods.js';

/** Values in [-1, 1) with exact zeros, -0, NaN and ties sprinkled in. */
function values(n: number, seed: number, nan = true): number[] {
  let s = seed;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out.push((s / 2147483648) * 2 - 1);
  }
  for (let i = 3; i < n; i += 17) out[i] = 0;
  for (let i = 7; i < n; i += 23) out[i] = -0;
  for (let i = 11; i < n; i += 13) out[i] = out[i - 1]!;
  if (nan) for (let i = 5; i < n; i += 29) out[i] = Number.NaN;
  return out;
}

const POOLS: [string, number, { stride?: number; padding?: number }][] = [
  ['2×2 (the fast path), odd sizes', 2, {}],
  ['3×3, stride 2, padding 1 (overlapping windows)', 3, { stride: 2, padding: 1 }],
];

for (const name of availableBackends()) {
  describe(`folded passes on ${name}`, () => {
    for (const [what, k, opts] of POOLS) {
      it(`maxPool2d after relu, ${what}: the ReLU's gradient in the pooling's pass, the same bits`, () => {
        const be = useBackend(name);
        const shape = [3, 4, 9, 11];
        const n = shape.reduce((a, b) => a * b, 1);
        const x = tensor(values(n, 1), shape, { requiresGrad: true });
        const unaryGrad = vi.spyOn(be, 'unaryGrad');
        const folded = vi.spyOn(be, 'maxPool2dGradRelu');
        let got: Float32Array;
        let want: Float32Array;
        try {
          got = tidy(() => {
            const p = maxPool2d(relu(x), k, opts);
            const gy = tensor(values(p.size, 2, false), p.shape);
            p.mul(gy).sum().backward();
            // the separate passes, on the same backend: the pooling's gradient, then the ReLU's
            const y = relu(x.detach());
            const g = tensor(values(p.size, 2, false), p.shape);
            const geom: PoolGeom = {
              planes: 12,
              h: 9,
              w: 11,
              kh: k,
              kw: k,
              sh: opts.stride ?? k,
              sw: opts.stride ?? k,
              ph: opts.padding ?? 0,
              pw: opts.padding ?? 0,
              oh: p.shape[2]!,
              ow: p.shape[3]!,
            };
            const dy = be.alloc(n);
            const dx = be.alloc(n);
            be.maxPool2dGrad(y.buf, g.buf, dy, geom);
            be.unaryGrad(Unary.Relu, x.buf, y.buf, dy, dx, n, 0, 0);
            want = dx.data.slice();
            be.free(dy);
            be.free(dx);
            return x.grad!.toArray() as unknown as Float32Array;
          });
          // the backward called the folded kernel once and no ReLU pass (the check above called one)
          expect(folded).toHaveBeenCalledTimes(1);
          expect(unaryGrad).toHaveBeenCalledTimes(1);
        } finally {
          unaryGrad.mockRestore();
          folded.mockRestore();
        }
        expect(Array.from(got)).toEqual(Array.from(want!));
        x.grad = null;
      });
    }

    it("a ReLU output used twice: the pooling's folded gradient is summed with the other, then the ReLU's pass", () => {
      const be = useBackend(name);
      const shape = [2, 3, 6, 6];
      const n = shape.reduce((a, b) => a * b, 1);
      const xv = values(n, 3);
      const x = tensor(xv, shape, { requiresGrad: true });
      const unaryGrad = vi.spyOn(be, 'unaryGrad');
      try {
        tidy(() => {
          const y = relu(x);
          const c = tensor(values(n, 4, false), shape);
          maxPool2d(y, 2).sum().add(y.mul(c).sum()).backward();
        });
        expect(unaryGrad).toHaveBeenCalledTimes(1);
      } finally {
        unaryGrad.mockRestore();
      }
      // d/dx: relu'(x)·(the pooling's gradient + c), relu'(x) = 1 where x > 0
      const got = x.grad!.toArray() as number[];
      const c = values(n, 4, false);
      const want = new Float32Array(n);
      for (let p = 0; p < 6; p++)
        for (let oy = 0; oy < 3; oy++)
          for (let ox = 0; ox < 3; ox++) {
            let best = Number.NEGATIVE_INFINITY;
            let bi = -1;
            for (let ki = 0; ki < 2; ki++)
              for (let kj = 0; kj < 2; kj++) {
                const at = p * 36 + (2 * oy + ki) * 6 + 2 * ox + kj;
                const v = Math.fround(xv[at]! <= 0 ? 0 : xv[at]!);
                if (v > best || bi < 0 || v !== v) {
                  best = v;
                  bi = at;
                }
              }
            want[bi] = 1;
          }
      for (let i = 0; i < n; i++) want[i] = xv[i]! > 0 ? Math.fround(want[i]! + Math.fround(c[i]!)) : 0;
      expect(got).toEqual(Array.from(want));
    });

    it("conv2d → relu → maxPool2d: the bias gradient per image from the pooling's kernel, the same bits", () => {
      const be = useBackend(name);
      const x = tensor(values(2 * 3 * 8 * 8, 8, false), [2, 3, 8, 8]);
      const w = tensor(values(5 * 3 * 9, 9, false), [5, 3, 3, 3], { requiresGrad: true });
      const b = tensor(values(5, 10, false), [5], { requiresGrad: true });
      const gyv = values(2 * 5 * 4 * 4, 11, false);
      // the sums taken outside the pooling's kernel (the reference's composition of that kernel takes its own)
      const outside: number[][] = [];
      let inside = false;
      const [pool, sum] = [be.maxPool2dGradRelu.bind(be), be.sumAxis.bind(be)];
      const poolSpy = vi.spyOn(be, 'maxPool2dGradRelu').mockImplementation((...a) => {
        inside = true;
        try {
          pool(...a);
        } finally {
          inside = false;
        }
      });
      const sumSpy = vi.spyOn(be, 'sumAxis').mockImplementation((...a) => {
        if (!inside) outside.push(a.slice(2) as number[]);
        sum(...a);
      });
      try {
        tidy(() => {
          const p = maxPool2d(relu(conv2d(x, w, b, { padding: 1 })), 2);
          p.mul(tensor(gyv, p.shape)).sum().backward();
        });
      } finally {
        poolSpy.mockRestore();
        sumSpy.mockRestore();
      }
      // the conv's backward summed over the images only: each image's sums over its positions came with gy
      // (the loss's sum over its 160 values aside)
      expect(outside.filter((c) => c[1] !== 160)).toEqual([[1, 2, 5]]);
      // the separate passes on the same backend: pooling's gradient, the ReLU's, the sums over positions and images
      const want = tidy(() => {
        const y = relu(conv2d(x, w.detach(), b.detach(), { padding: 1 }));
        const g: PoolGeom = { planes: 10, h: 8, w: 8, kh: 2, kw: 2, sh: 2, sw: 2, ph: 0, pw: 0, oh: 4, ow: 4 };
        const gy = tensor(gyv, [2, 5, 4, 4]);
        const [dy, dz, per, gb] = [640, 640, 10, 5].map((n) => be.alloc(n));
        be.maxPool2dGrad(y.buf, gy.buf, dy!, g);
        be.unaryGrad(Unary.Relu, y.buf, y.buf, dy!, dz!, 640, 0, 0);
        be.sumAxis(dz!, per!, 10, 64, 1);
        be.sumAxis(per!, gb!, 1, 2, 5);
        const r = Array.from(gb!.data);
        for (const t of [dy, dz, per, gb]) be.free(t!);
        return r;
      });
      expect(b.grad!.toArray()).toEqual(want);
      b.grad = null;
      w.grad = null;
    });

    it("conv2d's bias written by the kernel: the bits of the broadcast pass and the accumulating convolution", () => {
      const be = useBackend(name);
      for (const [c, oc, hw, pad] of [
        [1, 8, 12, 1],
        [5, 12, 7, 0],
      ] as const) {
        const x = tensor(values(2 * c * hw * hw, 5, false), [2, c, hw, hw]);
        const w = tensor(values(oc * c * 9, 6, false), [oc, c, 3, 3]);
        const bv = values(oc, 7, false);
        bv[1] = -0;
        const b = tensor(bv, [oc]);
        const binary = vi.spyOn(be, 'binary');
        let got: number[];
        try {
          got = tidy(() => conv2d(x, w, b, { padding: pad }).toArray() as number[]);
          expect(binary).not.toHaveBeenCalled();
        } finally {
          binary.mockRestore();
        }
        const want = tidy(() => {
          const y = conv2d(x, w, null, { padding: pad });
          const out = be.alloc(y.size);
          const P = y.shape[2]! * y.shape[3]!;
          const zero = be.alloc(1);
          be.fill(zero, 0, 1);
          be.binary(Binary.Add, b.buf, zero, out, [2, oc, P], [0, 1, 0], [0, 0, 0]);
          const g = { n: 2, c, h: hw, w: hw, kh: 3, kw: 3, sh: 1, sw: 1, ph: pad, pw: pad, dh: 1, dw: 1 };
          be.conv2d(x.buf, w.buf, out, { ...g, oh: y.shape[2]!, ow: y.shape[3]! }, oc, 1, true);
          const r = Array.from(out.data);
          be.free(out);
          be.free(zero);
          return r;
        });
        expect(got!).toEqual(want);
      }
    });
  });
}
