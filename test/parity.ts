/**
 * The PyTorch fixtures (test/fixtures/ops.json, from scripts/fixtures/make_fixtures.py) and how to run and check one:
 * shared by the parity suite and the memory-growth suite.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import type { BackendName } from '../src/backend/index.js';
import * as F from '../src/nn/functional.js';
import * as T from '../src/tensor/index.js';
import { type Tensor, tensor } from '../src/tensor/tensor.js';

export interface Packed {
  shape: number[];
  data: number[];
}

type Pair = number | [number, number];

/** The options a fixture passes through, in the generator's (mostly PyTorch's) names. */
interface Args {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  kernel?: Pair;
  count_include_pad?: boolean;
  training?: boolean;
  momentum?: number;
  eps?: number;
  normalizedShape?: number[];
  reduction?: F.Reduction;
  label_smoothing?: number;
  ignore_index?: number;
  axis?: number | null;
  axes?: number[] | null;
  keepDims?: boolean;
  correction?: number;
  negativeSlope?: number;
  alpha?: number;
  beta?: number;
  threshold?: number;
  outputSize?: F.AdaptiveSize;
}

export interface Fixture {
  name: string;
  op: string;
  args: Args;
  inputs: Record<string, Packed>;
  consts: Record<string, Packed>;
  R: Packed;
  out: Packed;
  grads: Record<string, Packed>;
  extra?: Record<string, Packed>;
}

export const fixtures: Fixture[] = JSON.parse(
  readFileSync(new URL('./fixtures/ops.json', import.meta.url), 'utf8'),
).cases;

type Inputs = Record<string, Tensor>;
const opt = <K extends string, V>(key: K, v: V | undefined | null) => (v == null ? {} : { [key]: v });

/** Our call for each fixture op, given its differentiable inputs, its constants and its options. */
export const OPS: Record<string, (x: Inputs, k: Inputs, a: Args) => Tensor> = {
  matmul: (x) => T.matmul(x.a!, x.b!),
  linear: (x) => T.linear(x.input!, x.weight!, x.bias),
  conv2d: (x, _k, a) => F.conv2d(x.input!, x.weight!, x.bias, a),
  maxPool2d: (x, _k, a) => F.maxPool2d(x.input!, a.kernel!, a),
  avgPool2d: (x, _k, a) => F.avgPool2d(x.input!, a.kernel!, { ...a, ...opt('countIncludePad', a.count_include_pad) }),
  adaptiveAvgPool2d: (x, _k, a) => F.adaptiveAvgPool2d(x.input!, a.outputSize!),
  batchNorm: (x, k, a) => F.batchNorm(x.input!, k.running_mean!, k.running_var!, x.weight ?? null, x.bias ?? null, a),
  layerNorm: (x, _k, a) => F.layerNorm(x.input!, a.normalizedShape!, x.weight, x.bias, a.eps),
  crossEntropy: (x, k, a) =>
    F.crossEntropy(x.input!, k.target!, {
      ...opt('reduction', a.reduction),
      ...opt('labelSmoothing', a.label_smoothing),
      ...opt('ignoreIndex', a.ignore_index),
    }),
  nllLoss: (x, k, a) =>
    F.nllLoss(x.input!, k.target!, { ...opt('reduction', a.reduction), ...opt('ignoreIndex', a.ignore_index) }),
  mseLoss: (x, _k, a) => F.mseLoss(x.input!, x.target!, a),
  bceWithLogits: (x, k, a) =>
    F.binaryCrossEntropyWithLogits(x.input!, x.target!, { ...a, ...opt('posWeight', k.pos_weight) }),
  softmax: (x, _k, a) => T.softmax(x.input!, a.axis!),
  logSoftmax: (x, _k, a) => T.logSoftmax(x.input!, a.axis!),
  relu: (x) => T.relu(x.input!),
  leakyRelu: (x, _k, a) => T.leakyRelu(x.input!, a.negativeSlope),
  elu: (x, _k, a) => T.elu(x.input!, a.alpha),
  selu: (x) => T.selu(x.input!),
  gelu: (x) => T.gelu(x.input!),
  sigmoid: (x) => T.sigmoid(x.input!),
  tanh: (x) => T.tanh(x.input!),
  softplus: (x, _k, a) => T.softplus(x.input!, a.beta, a.threshold),
  sum: (x, _k, a) => T.sum(x.input!, a.axes ?? undefined, a.keepDims),
  mean: (x, _k, a) => T.mean(x.input!, a.axes ?? undefined, a.keepDims),
  max: (x, _k, a) => T.max(x.input!, a.axis ?? undefined, a.keepDims),
  min: (x, _k, a) => T.min(x.input!, a.axis ?? undefined, a.keepDims),
  var: (x, _k, a) => T.variance(x.input!, a.axes ?? undefined, a.keepDims, a.correction),
};

export interface Tol {
  rtol: number;
  atol: number;
}

/**
 * Per-backend tolerances: |ours − torch| <= atol + rtol·|torch|. The references are exact (float64 from float32
 * inputs), so these bound our float32 kernels' error; every backend accumulates in at least float32.
 */
export const TOL: Record<BackendName, { out: Tol; grad: Tol }> = {
  js: { out: { rtol: 1e-5, atol: 1e-6 }, grad: { rtol: 1e-4, atol: 1e-5 } },
  wasm: { out: { rtol: 1e-5, atol: 1e-6 }, grad: { rtol: 1e-4, atol: 1e-5 } },
  native: { out: { rtol: 1e-5, atol: 1e-6 }, grad: { rtol: 1e-4, atol: 1e-5 } },
};

/** Checks shape and values; the message names the first element out of tolerance and the largest errors. */
export function expectClose(actual: Tensor, expected: Packed, tol: Tol, what: string): void {
  expect(actual.shape, `${what}: shape`).toEqual(expected.shape);
  const a = actual.data;
  let first = -1;
  let maxAbs = 0;
  for (let i = 0; i < expected.data.length; i++) {
    const e = expected.data[i]!;
    const err = Math.abs(a[i]! - e);
    if (!(err <= tol.atol + tol.rtol * Math.abs(e)) && first < 0) first = i;
    if (!(err <= maxAbs)) maxAbs = err;
  }
  const detail =
    first < 0 ? '' : `element ${first}: ${a[first]} vs torch ${expected.data[first]}; max abs error ${maxAbs}`;
  expect(first, `${what}: ${detail}`).toBe(-1);
}

export const load = (p: Packed, requiresGrad: boolean) => tensor(p.data, p.shape, { requiresGrad });
export const loadAll = (m: Record<string, Packed>, requiresGrad: boolean): Inputs =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, load(v, requiresGrad)]));

/** Runs one fixture on the backend in use: output, constants updated in place, then every input's gradient. */
export function checkFixture(fx: Fixture, tol: { out: Tol; grad: Tol }): void {
  const x = loadAll(fx.inputs, true);
  const k = loadAll(fx.consts, false);
  const out = OPS[fx.op]!(x, k, fx.args);
  expectClose(out, fx.out, tol.out, `${fx.name} output`);
  for (const [name, ref] of Object.entries(fx.extra ?? {})) {
    expectClose(k[name]!, ref, tol.out, `${fx.name} ${name} after the call`);
  }
  out.backward(load(fx.R, false));
  for (const [name, t] of Object.entries(x)) {
    const ref = fx.grads[name];
    if (!ref) {
      expect(t.grad, `${fx.name}: torch gives no gradient for ${name}`).toBeNull();
      continue;
    }
    expect(t.grad, `${fx.name}: no gradient for ${name}`).not.toBeNull();
    expectClose(t.grad!, ref, tol.grad, `${fx.name} grad of ${name}`);
  }
}
