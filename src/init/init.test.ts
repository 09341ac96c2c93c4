/**
 * Initializers against PyTorch: the gain table and the deterministic ones exactly, the random ones by statistics
 * (mean, std, bounds, orthogonality) compared with torch's own draws for the same shapes (test/fixtures/remedies.json).
 */
import { describe, expect, it } from 'vitest';
import { fromPacked, remedies } from '../../test/remedies.js';
import * as init from '../api/init.js';
import { Conv2d } from '../nn/conv.js';
import { Linear } from '../nn/linear.js';
import { mlp } from '../nn/models.js';
import { LSTM } from '../nn/rnn.js';
import { Rng } from '../tensor/rng.js';
import { empty, type Tensor, tensor } from '../tensor/tensor.js';

function stats(t: Tensor) {
  const d = t.data;
  let s = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of d) {
    s += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = s / d.length;
  let v2 = 0;
  for (const v of d) v2 += (v - mean) ** 2;
  return { mean, std: Math.sqrt(v2 / (d.length - 1)), min, max };
}

// biome-ignore lint/suspicious/noExplicitAny: fixture arguments
function apply(name: string, t: Tensor, args: any, seed: number): void {
  const rng = new Rng(seed);
  switch (name) {
    case 'uniform':
      init.uniform(t, { low: args.a, high: args.b, rng });
      return;
    case 'normal':
      init.normal(t, { mean: args.mean, std: args.std, rng });
      return;
    case 'truncatedNormal':
      init.truncatedNormal(t, { ...args, rng });
      return;
    case 'xavierUniform':
      init.xavierUniform(t, { gain: args.gain, rng });
      return;
    case 'xavierNormal':
      init.xavierNormal(t, { gain: args.gain, rng });
      return;
    case 'kaimingUniform':
      init.kaimingUniform(t, { ...args, rng });
      return;
    case 'kaimingNormal':
      init.kaimingNormal(t, { ...args, rng });
      return;
    case 'orthogonal':
      init.orthogonal(t, { gain: args.gain, rng });
      return;
    case 'lecunNormal':
      init.lecunNormal(t, { rng });
      return;
    case 'lecunUniform':
      init.lecunUniform(t, { rng });
      return;
    default:
      throw new Error(name);
  }
}

function orthoError(t: Tensor, gain: number): number {
  const rows = t.shape[0]!;
  const cols = t.size / rows;
  const d = t.data;
  const wide = rows <= cols;
  const k = wide ? rows : cols;
  let worst = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      if (wide) for (let c = 0; c < cols; c++) s += d[i * cols + c]! * d[j * cols + c]!;
      else for (let r = 0; r < rows; r++) s += d[r * cols + i]! * d[r * cols + j]!;
      worst = Math.max(worst, Math.abs(s / (gain * gain) - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

describe('calculateGain', () => {
  it("matches PyTorch's table", () => {
    for (const [key, g] of Object.entries(remedies.init.gains as Record<string, number>)) {
      const [name, p] = key.split(':');
      expect(init.calculateGain(name!, p === undefined ? undefined : Number(p)), key).toBeCloseTo(g, 12);
    }
    expect(init.calculateGain('leakyRelu')).toBeCloseTo(init.calculateGain('leaky_relu'), 15);
  });
  it('names the accepted nonlinearities on a typo', () => {
    expect(() => init.calculateGain('relux')).toThrow(
      /unsupported nonlinearity 'relux', please use one of linear,.*selu/,
    );
  });
});

describe('random initializers match the statistics of torch.nn.init', () => {
  for (const [i, c] of (
    remedies.init.cases as {
      name: string;
      args: object;
      shape: number[];
      mean: number;
      std: number;
      min: number | null;
      max: number | null;
      orthoError?: number;
    }[]
  ).entries()) {
    it(`${c.name} ${JSON.stringify(c.args)} [${c.shape}]`, () => {
      const t = empty(c.shape);
      apply(c.name, t, c.args, i);
      const s = stats(t);
      const n = t.size;
      // the std of a sample std is about std/√(2n); of a sample mean, std/√n: allow 6 of them
      expect(Math.abs(s.std - c.std) / c.std).toBeLessThan(6 * Math.sqrt(2 / n) + 1e-6);
      expect(Math.abs(s.mean - c.mean)).toBeLessThan((6 * c.std) / Math.sqrt(n) + 1e-6);
      if (
        c.min !== null &&
        c.max !== null &&
        c.name !== 'normal' &&
        c.name !== 'orthogonal' &&
        !c.name.endsWith('Normal')
      ) {
        // bounded draws: inside torch's observed range widened by a hair, and reaching near both ends
        const span = c.max - c.min;
        expect(s.min).toBeGreaterThanOrEqual(c.min - 0.02 * span);
        expect(s.max).toBeLessThanOrEqual(c.max + 0.02 * span);
      }
      if (c.name === 'truncatedNormal') {
        const a = (c.args as { a: number }).a;
        const b = (c.args as { b: number }).b;
        expect(s.min).toBeGreaterThanOrEqual(a);
        expect(s.max).toBeLessThanOrEqual(b);
      }
      if (c.orthoError !== undefined) {
        expect(orthoError(t, (c.args as { gain: number }).gain)).toBeLessThan(1e-5);
      }
    });
  }

  it('the same seed gives the same values, another seed others', () => {
    const a = init.kaimingNormal(empty([8, 8]), { seed: 3 }).toArray();
    expect(init.kaimingNormal(empty([8, 8]), { seed: 3 }).toArray()).toEqual(a);
    expect(init.kaimingNormal(empty([8, 8]), { seed: 4 }).toArray()).not.toEqual(a);
  });

  it("standardUniform is Glorot & Bengio's U(−1/√fanIn, 1/√fanIn), the bound of PyTorch's Linear default", () => {
    const t = init.standardUniform(empty([200, 300]), { seed: 0 });
    const s = stats(t);
    const bound = 1 / Math.sqrt(300);
    expect(s.min).toBeGreaterThanOrEqual(-bound);
    expect(s.max).toBeLessThanOrEqual(bound);
    expect(s.max).toBeGreaterThan(0.99 * bound);
    expect(Math.abs(s.std - bound / Math.sqrt(3)) / (bound / Math.sqrt(3))).toBeLessThan(0.02);
    expect(() => init.standardUniform(empty([5]))).toThrow(/standardUniform/);
  });

  it('truncatedNormal works with both bounds in a tail', () => {
    const t = init.truncatedNormal(empty([4000]), { a: 2, b: 3, seed: 0 });
    const s = stats(t);
    expect(s.min).toBeGreaterThanOrEqual(2);
    expect(s.max).toBeLessThanOrEqual(3);
    // E[X | 2 < X < 3] for a standard normal = (φ(2) − φ(3)) / (Φ(3) − Φ(2)) = 2.3577
    expect(s.mean).toBeCloseTo(2.3577, 1);
  });
});

describe('default layer initialisation is PyTorch’s', () => {
  const d = remedies.init.defaults;
  it('Linear, Conv2d and LSTM draw U(−1/√fan, 1/√fan)', () => {
    const lin = new Linear(300, 200, { seed: 0 });
    const conv = new Conv2d(16, 32, 3, { seed: 0 });
    const lstm = new LSTM(10, 64, { seed: 0 });
    for (const [key, t] of [
      ['linear.weight', lin.weight],
      ['linear.bias', lin.bias!],
      ['conv.weight', conv.weight],
      ['lstm.weight_hh_l0', lstm.get('weight_hh_l0')],
    ] as const) {
      const ref = d[key];
      const s = stats(t);
      expect(t.shape).toEqual(ref.shape);
      expect(s.min).toBeGreaterThanOrEqual(-ref.bound);
      expect(s.max).toBeLessThanOrEqual(ref.bound);
      expect(Math.abs(s.std - ref.std) / ref.std, key).toBeLessThan(6 * Math.sqrt(2 / t.size) + 0.01);
    }
  });
});

describe('deterministic initializers', () => {
  it('eye and dirac equal PyTorch', () => {
    const ex = remedies.init.exact;
    expect(init.eye(empty([3, 5])).toArray()).toEqual(ex.eye.data);
    expect(init.dirac(empty([4, 2, 3, 3])).toArray()).toEqual(ex.dirac.data);
    expect(init.dirac(empty([6, 3, 3, 1]), { groups: 2 }).toArray()).toEqual(ex.diracGroups2.data);
  });
  it('zeros, ones, constant', () => {
    const t = empty([2, 3]);
    expect(init.zeros(t).toArray()).toEqual([0, 0, 0, 0, 0, 0]);
    expect(init.ones(t).toArray()).toEqual([1, 1, 1, 1, 1, 1]);
    expect(init.constant(t, 0.5).toArray()).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0.5]);
  });
});

describe('errors name the argument and the fix', () => {
  it('fans need 2 dimensions', () => {
    expect(() => init.kaimingNormal(empty([5]))).toThrow(
      /kaimingNormal\(\): fanIn and fanOut cannot be computed .* \[5\]/,
    );
  });
  it('bad mode', () => {
    // @ts-expect-error a wrong mode on purpose
    expect(() => init.kaimingUniform(empty([2, 2]), { mode: 'fan_avg' })).toThrow(
      "mode 'fan_avg' is not supported, please use one of fanIn, fanOut",
    );
  });
  it('orthogonal needs 2 dimensions', () => {
    expect(() => init.orthogonal(empty([3]))).toThrow(/orthogonal\(\): only tensors with 2 or more dimensions/);
  });
  it('truncatedNormal bounds', () => {
    expect(() => init.truncatedNormal(empty([3]), { a: 1, b: 0 })).toThrow(/lower bound a \(1\) must be below/);
  });
});

describe('manualSeed', () => {
  it('makes unseeded layers reproducible', () => {
    init.manualSeed(42);
    const a = new Linear(4, 3).weight.toArray();
    init.manualSeed(42);
    expect(new Linear(4, 3).weight.toArray()).toEqual(a);
  });
});

describe('LSUV', () => {
  it('brings every layer’s output variance to 1 within the tolerance', () => {
    const model = mlp({ inputSize: 20, depth: 6, width: 32, outputSize: 5, activation: 'tanh', seed: 1 });
    const rng = new Rng(5);
    const x = tensor(
      Array.from({ length: 128 * 20 }, () => 3 * rng.normal()),
      [128, 20],
    );
    const reports = init.lsuv(model, x, { seed: 2 });
    expect(reports.map((r) => r.name)).toEqual(['0', '2', '4', '6', '8', '10', '12']);
    for (const r of reports) expect(Math.abs(r.varianceAfter - 1)).toBeLessThan(0.1);
    expect(reports[0]!.varianceBefore).toBeGreaterThan(2); // inputs of std 3 start far from 1
  });
});

describe('lstmForgetGateBias', () => {
  it('sets b_ih’s f slice to the value and b_hh’s to 0, in every layer', () => {
    const lstm = new LSTM(3, 4, { numLayers: 2, bidirectional: true, seed: 0 });
    init.lstmForgetGateBias(lstm, 1);
    for (const [n, t] of lstm.namedParameters()) {
      if (!n.startsWith('bias')) continue;
      expect(Array.from(t.data.subarray(4, 8)), n).toEqual(n.startsWith('bias_ih') ? [1, 1, 1, 1] : [0, 0, 0, 0]);
      expect(t.data[0]).not.toBe(1);
    }
  });
  it('on a tensor, and refuses other modules', () => {
    const b = init.lstmForgetGateBias(tensor(new Float32Array(8)), 2);
    expect(b.toArray()).toEqual([0, 0, 2, 2, 0, 0, 0, 0]);
    expect(() => init.lstmForgetGateBias(new Linear(2, 2))).toThrow(/must be an nn.LSTM/);
    void fromPacked;
  });
});
