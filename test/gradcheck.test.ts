/**
 * Every op's gradient against central finite differences, on every backend that loads here. Inputs keep a few ε away
 * from kinks (0 for relu and abs, ties for max and pooling), where a finite difference is not a derivative.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { availableBackends, useBackend } from '../src/backend/index.js';
import * as F from '../src/nn/functional.js';
import { type GradcheckOptions, gradcheck } from '../src/tensor/gradcheck.js';
import * as T from '../src/tensor/index.js';
import { addRelu } from '../src/tensor/ops/elementwise.js';
import { batchNormRelu } from '../src/tensor/ops/norm.js';
import { fromOp, type Tensor, tensor } from '../src/tensor/tensor.js';
import { awayFromZero, constant, distinct, normal, uniform } from './helpers.js';

interface Case {
  name: string;
  /** Makes the inputs (on the backend in use) and the function under test. */
  make: () => { fn: (...xs: Tensor[]) => Tensor; inputs: Tensor[]; opts?: GradcheckOptions };
}

const c = (name: string, make: Case['make']): Case => ({ name, make });

const elementwise: Case[] = [
  c('add same shape', () => ({ fn: T.add, inputs: [normal([3, 4], 1), normal([3, 4], 2)] })),
  c('add broadcast [3,1]+[1,4]', () => ({ fn: T.add, inputs: [normal([3, 1], 1), normal([1, 4], 2)] })),
  c('add broadcast [2,3,4]+[4]', () => ({ fn: T.add, inputs: [normal([2, 3, 4], 1), normal([4], 2)] })),
  c('add scalar', () => ({ fn: (a) => T.add(a, 1.5), inputs: [normal([3, 4], 1)] })),
  c('sub same shape', () => ({ fn: T.sub, inputs: [normal([3, 4], 3), normal([3, 4], 4)] })),
  c('sub broadcast [2,3,4]-[3,1]', () => ({ fn: T.sub, inputs: [normal([2, 3, 4], 3), normal([3, 1], 4)] })),
  c('sub broadcast [4]-[2,3,4]', () => ({ fn: T.sub, inputs: [normal([4], 3), normal([2, 3, 4], 4)] })),
  c('sub scalar', () => ({ fn: (a) => T.sub(a, -0.5), inputs: [normal([5], 3)] })),
  c('mul same shape', () => ({ fn: T.mul, inputs: [normal([3, 4], 5), normal([3, 4], 6)] })),
  c('mul broadcast [2,1,4]*[3,1]', () => ({ fn: T.mul, inputs: [normal([2, 1, 4], 5), normal([3, 1], 6)] })),
  c('mul broadcast with a 0-d tensor', () => ({ fn: T.mul, inputs: [normal([3, 4], 5), normal([], 6)] })),
  c('mul scalar', () => ({ fn: (a) => T.mul(a, -2.5), inputs: [normal([3, 4], 5)] })),
  c('div same shape', () => ({ fn: T.div, inputs: [normal([3, 4], 7), uniform([3, 4], 8, 0.5, 2)] })),
  c('div broadcast [3,4]/[4]', () => ({ fn: T.div, inputs: [normal([3, 4], 7), uniform([4], 8, -2, -0.5)] })),
  c('div broadcast [4]/[3,4]', () => ({ fn: T.div, inputs: [normal([4], 7), uniform([3, 4], 8, 0.5, 2)] })),
  c('div scalar', () => ({ fn: (a) => T.div(a, 4), inputs: [normal([3, 4], 7)] })),
  c('pow tensor exponent', () => ({ fn: T.pow, inputs: [uniform([3, 4], 9, 0.5, 2), uniform([3, 4], 10, -1.5, 2)] })),
  c('pow tensor exponent, broadcast', () => ({
    fn: T.pow,
    inputs: [uniform([2, 3, 4], 9, 0.5, 2), uniform([4], 10, -1.5, 2)],
  })),
  c('pow scalar 2.5', () => ({ fn: (a) => T.pow(a, 2.5), inputs: [uniform([3, 4], 11, 0.3, 2)] })),
  c('pow scalar -1.5', () => ({ fn: (a) => T.pow(a, -1.5), inputs: [uniform([3, 4], 11, 0.5, 2)] })),
  c('pow scalar 3 (negative base)', () => ({ fn: (a) => T.pow(a, 3), inputs: [normal([3, 4], 11)] })),
  c('neg', () => ({ fn: T.neg, inputs: [normal([3, 4], 12)] })),
  c('affine', () => ({ fn: (a) => T.affine(a, -1.5, 0.25), inputs: [normal([3, 4], 12)] })),
  c('exp', () => ({ fn: T.exp, inputs: [normal([3, 4], 13)] })),
  c('log', () => ({ fn: T.log, inputs: [uniform([3, 4], 14, 0.2, 5)] })),
  c('sqrt', () => ({ fn: T.sqrt, inputs: [uniform([3, 4], 15, 0.2, 5)] })),
  c('abs', () => ({ fn: T.abs, inputs: [awayFromZero([3, 4], 16)] })),
  c('square', () => ({ fn: T.square, inputs: [normal([3, 4], 17)] })),
  c('reciprocal', () => ({ fn: T.reciprocal, inputs: [awayFromZero([3, 4], 18, 0.4)] })),
  c('sign', () => ({ fn: (a) => T.sign(a).mul(a), inputs: [awayFromZero([3, 4], 19)] })),
  // clamp bounds at -0.55 and 0.75 fall between the 0.1-spaced values
  c('clamp min and max', () => ({ fn: (a) => T.clamp(a, -0.55, 0.75), inputs: [distinct([4, 5], 20)] })),
  c('clamp min only', () => ({ fn: (a) => T.clamp(a, -0.55), inputs: [distinct([4, 5], 21)] })),
  c('clamp max only', () => ({ fn: (a) => T.clamp(a, undefined, 0.75), inputs: [distinct([4, 5], 22)] })),
  c('maximum same shape', () => ({ fn: T.maximum, inputs: [distinct([3, 4], 23), distinct([3, 4], 24, 0.1, 0.05)] })),
  c('maximum broadcast [3,4],[4]', () => ({
    fn: T.maximum,
    inputs: [distinct([3, 4], 23), distinct([4], 24, 0.3, 0.05)],
  })),
  c('minimum same shape', () => ({ fn: T.minimum, inputs: [distinct([3, 4], 25), distinct([3, 4], 26, 0.1, 0.05)] })),
  c('minimum broadcast [3,1],[2,1,4]', () => ({
    fn: T.minimum,
    inputs: [distinct([3, 1], 25, 0.4), distinct([2, 1, 4], 26, 0.1, 0.05)],
  })),
];

/** x [4, 2, 2] for batchNormRelu: per channel, values whose normalised forms stay away from 0 and from the bias. */
function bnReluInput(): Tensor {
  const ch = [
    [-3, -1, 1, 3, -2.5, -0.5, 0.5, 2.5],
    [2, 0, 5, 1, 3.5, -1, 0.7, 4],
  ];
  const v = new Array<number>(16);
  for (let n = 0; n < 4; n++)
    for (let c = 0; c < 2; c++) for (let l = 0; l < 2; l++) v[(n * 2 + c) * 2 + l] = ch[c]![n * 2 + l]!;
  return tensor(v, [4, 2, 2], { requiresGrad: true });
}

const act = (shape: number[], seed: number) => awayFromZero(shape, seed, 0.1, 2);
const activations: Case[] = [
  c('relu', () => ({ fn: T.relu, inputs: [act([4, 5], 30)] })),
  c('leakyRelu', () => ({ fn: (x) => T.leakyRelu(x), inputs: [act([4, 5], 31)] })),
  c('leakyRelu slope 0.2', () => ({ fn: (x) => T.leakyRelu(x, 0.2), inputs: [act([4, 5], 32)] })),
  c('elu', () => ({ fn: (x) => T.elu(x), inputs: [act([4, 5], 33)] })),
  c('elu alpha 0.5', () => ({ fn: (x) => T.elu(x, 0.5), inputs: [act([4, 5], 34)] })),
  c('selu', () => ({ fn: T.selu, inputs: [act([4, 5], 35)] })),
  c('gelu', () => ({ fn: T.gelu, inputs: [act([4, 5], 36)] })),
  c('sigmoid', () => ({ fn: T.sigmoid, inputs: [act([4, 5], 37)] })),
  c('tanh', () => ({ fn: T.tanh, inputs: [act([4, 5], 38)] })),
  c('softplus', () => ({ fn: (x) => T.softplus(x), inputs: [act([4, 5], 39)] })),
  // beta 2, threshold 5: the linear branch starts at x = 2.5; values stay clear of it on both sides
  c('softplus beta 2 threshold 5', () => ({
    fn: (x) => T.softplus(x, 2, 5),
    inputs: [tensor([-3, -1.2, -0.3, 0.1, 0.8, 1.9, 2.3, 2.7, 3.5, 6], [2, 5], { requiresGrad: true })],
  })),
];

const matmuls: Case[] = (
  [
    ['2d', [3, 4], [4, 5]],
    ['batched', [2, 3, 4], [2, 4, 5]],
    ['broadcast batch', [2, 1, 3, 4], [3, 4, 5]],
    ['batched @ 2d', [2, 3, 4], [4, 5]],
    ['2d @ batched', [3, 4], [2, 4, 5]],
    ['vector @ matrix', [4], [4, 5]],
    ['matrix @ vector', [3, 4], [4]],
    ['vector @ vector', [4], [4]],
    ['vector @ batched', [4], [2, 4, 5]],
    ['batched @ vector', [2, 3, 4], [4]],
  ] as const
).map(([name, sa, sb], i) =>
  c(`matmul ${name}`, () => ({ fn: T.matmul, inputs: [normal(sa, 40 + i), normal(sb, 50 + i)] })),
);
// a transposed operand's gradient goes to its source in the source's layout (matmul's fold): each way checked
matmuls.push(
  c('matmul x · wᵀ (a linear layer by hand)', () => ({
    fn: (x, w) => T.matmul(x, T.transpose(w, 0, 1)),
    inputs: [normal([3, 4], 63), normal([5, 4], 64)],
  })),
  c('matmul batched x · wᵀ', () => ({
    fn: (x, w) => T.matmul(x, T.transpose(w, 0, 1)),
    inputs: [normal([2, 3, 4], 65), normal([5, 4], 66)],
  })),
  c('matmul q · kᵀ, k broadcast (attention)', () => ({
    fn: (q, k) => T.matmul(q, T.transpose(k, -2, -1)),
    inputs: [normal([2, 3, 4], 67), normal([1, 5, 4], 68)],
  })),
  c('matmul xᵀ · vector', () => ({
    fn: (x, v) => T.matmul(T.transpose(x, 0, 1), v),
    inputs: [normal([4, 3], 71), normal([4], 72)],
  })),
  c('matmul xᵀ · wᵀ', () => ({
    fn: (x, w) => T.matmul(T.transpose(x, 0, 1), T.transpose(w, 0, 1)),
    inputs: [normal([4, 3], 69), normal([5, 4], 70)],
  })),
);

const linears: Case[] = [
  c('linear with bias', () => ({ fn: T.linear, inputs: [normal([3, 4], 60), normal([5, 4], 61), normal([5], 62)] })),
  c('linear 3-d input', () => ({ fn: T.linear, inputs: [normal([2, 3, 4], 60), normal([5, 4], 61), normal([5], 62)] })),
  c('linear 1-d input', () => ({ fn: T.linear, inputs: [normal([4], 60), normal([5, 4], 61), normal([5], 62)] })),
  c('linear without bias', () => ({ fn: (x, w) => T.linear(x, w), inputs: [normal([3, 4], 63), normal([5, 4], 64)] })),
  // nn.Linear + nn.ReLU as one op (what nn.Sequential runs); the seeds keep every pre-activation clear of the kink
  c('linearRelu with bias', () => ({
    fn: T.linearRelu,
    inputs: [normal([3, 4], 60), normal([5, 4], 61), normal([5], 62)],
  })),
  c('linearRelu 3-d input', () => ({
    fn: T.linearRelu,
    inputs: [normal([2, 3, 4], 60), normal([5, 4], 61), normal([5], 62)],
  })),
  c('linearRelu without bias', () => ({
    fn: (x, w) => T.linearRelu(x, w),
    inputs: [normal([3, 4], 63), normal([5, 4], 64)],
  })),
  c('linear, input without grad', () => ({
    fn: T.linear,
    inputs: [normal([3, 4], 63).detach(), normal([5, 4], 64), normal([5], 65)],
  })),
];

const reductions: Case[] = [
  c('sum all', () => ({ fn: (x) => T.sum(x), inputs: [normal([3, 4, 5], 70)] })),
  c('sum axis 1', () => ({ fn: (x) => T.sum(x, 1), inputs: [normal([3, 4, 5], 71)] })),
  c('sum axes [0,2] keepDims', () => ({ fn: (x) => T.sum(x, [0, 2], true), inputs: [normal([3, 4, 5], 72)] })),
  c('sum axis -1', () => ({ fn: (x) => T.sum(x, -1), inputs: [normal([3, 4, 5], 73)] })),
  c('mean all', () => ({ fn: (x) => T.mean(x), inputs: [normal([3, 4, 5], 74)] })),
  c('mean axes [1,2]', () => ({ fn: (x) => T.mean(x, [1, 2]), inputs: [normal([3, 4, 5], 75)] })),
  c('mean axis 0 keepDims', () => ({ fn: (x) => T.mean(x, 0, true), inputs: [normal([3, 4, 5], 76)] })),
  c('max all', () => ({ fn: (x) => T.max(x), inputs: [distinct([3, 4, 5], 77)] })),
  c('max axis 1', () => ({ fn: (x) => T.max(x, 1), inputs: [distinct([3, 4, 5], 78)] })),
  c('max axis -1 keepDims', () => ({ fn: (x) => T.max(x, -1, true), inputs: [distinct([3, 4, 5], 79)] })),
  c('min all', () => ({ fn: (x) => T.min(x), inputs: [distinct([3, 4, 5], 80)] })),
  c('min axis 0', () => ({ fn: (x) => T.min(x, 0), inputs: [distinct([3, 4, 5], 81)] })),
  c('min axis 2 keepDims', () => ({ fn: (x) => T.min(x, 2, true), inputs: [distinct([3, 4, 5], 82)] })),
  c('var all', () => ({ fn: (x) => T.variance(x), inputs: [normal([3, 4, 5], 83)] })),
  c('var axis 1', () => ({ fn: (x) => T.variance(x, 1), inputs: [normal([3, 4, 5], 84)] })),
  c('var axes [0,2] keepDims biased', () => ({
    fn: (x) => T.variance(x, [0, 2], true, 0),
    inputs: [normal([3, 4, 5], 85)],
  })),
];

const shapes: Case[] = [
  c('reshape with -1', () => ({
    fn: (x) => x.reshape([4, -1]).mul(x.reshape([4, -1])),
    inputs: [normal([2, 3, 4], 90)],
  })),
  c('view', () => ({ fn: (x) => x.view([6, 4]), inputs: [normal([2, 3, 4], 91)] })),
  c('flatten from 1', () => ({ fn: (x) => T.flatten(x, 1), inputs: [normal([2, 3, 4], 92)] })),
  c('transpose last two', () => ({ fn: (x) => T.transpose(x), inputs: [normal([2, 3, 4], 93)] })),
  c('transpose 0,2', () => ({ fn: (x) => T.transpose(x, 0, 2), inputs: [normal([2, 3, 4], 94)] })),
  c('permute [2,0,1]', () => ({ fn: (x) => T.permute(x, [2, 0, 1]), inputs: [normal([2, 3, 4], 95)] })),
  c('slice axis 1', () => ({ fn: (x) => T.slice(x, 1, 1, 3), inputs: [normal([2, 4, 3], 96)] })),
  c('slice negative bounds', () => ({ fn: (x) => T.slice(x, -1, -3, -1), inputs: [normal([2, 4, 5], 97)] })),
  c('concat axis 0', () => ({
    fn: (a, b, d) => T.concat([a, b, d], 0),
    inputs: [normal([1, 3], 98), normal([2, 3], 99), normal([3, 3], 100)],
  })),
  c('concat axis 1, a tensor twice', () => ({
    fn: (a, b) => T.concat([a, b, a], 1),
    inputs: [normal([2, 2, 3], 101), normal([2, 4, 3], 102)],
  })),
  c('stack axis 0', () => ({ fn: (a, b) => T.stack([a, b], 0), inputs: [normal([2, 3], 103), normal([2, 3], 104)] })),
  c('stack axis -1', () => ({ fn: (a, b) => T.stack([a, b], -1), inputs: [normal([2, 3], 105), normal([2, 3], 106)] })),
  c('gather axis 1 with repeats', () => ({
    fn: (x) => T.gather(x, 1, constant([0, 2, 2, 1, 3, 3, 0, 0], [2, 4])),
    inputs: [normal([2, 4], 107)],
  })),
  c('gather axis 0 of 3-d', () => ({
    fn: (x) => T.gather(x, 0, constant([1, 0, 1, 1, 0, 0], [2, 3, 1])),
    inputs: [normal([2, 3, 2], 108)],
  })),
  c('indexSelect axis 0 with repeats and a negative index', () => ({
    fn: (x) => T.indexSelect(x, 0, [2, 0, 2, -1]),
    inputs: [normal([4, 3], 109)],
  })),
  c('indexSelect axis 1 by tensor', () => ({
    fn: (x) => T.indexSelect(x, 1, constant([1, 1, 0], [3])),
    inputs: [normal([2, 3, 2], 110)],
  })),
];

const softmaxes: Case[] = [-1, 0, 1].flatMap((axis, i) => [
  c(`softmax axis ${axis}`, () => ({ fn: (x) => T.softmax(x, axis), inputs: [normal([2, 3, 4], 120 + i, 2)] })),
  c(`logSoftmax axis ${axis}`, () => ({ fn: (x) => T.logSoftmax(x, axis), inputs: [normal([2, 3, 4], 130 + i, 2)] })),
]);

const targets = [1, 0, 3, 3, 2];
const functional: Case[] = [
  ...(['mean', 'sum', 'none'] as const).map((reduction, i) =>
    c(`crossEntropy ${reduction}`, () => ({
      fn: (x) => F.crossEntropy(x, targets, { reduction }),
      inputs: [normal([5, 4], 140 + i, 2)],
    })),
  ),
  c('crossEntropy label smoothing', () => ({
    fn: (x) => F.crossEntropy(x, targets, { labelSmoothing: 0.2 }),
    inputs: [normal([5, 4], 143, 2)],
  })),
  c('crossEntropy ignoreIndex', () => ({
    fn: (x) => F.crossEntropy(x, [1, -100, 3, -100, 2], { labelSmoothing: 0.1 }),
    inputs: [normal([5, 4], 144, 2)],
  })),
  c('crossEntropy custom ignoreIndex, none', () => ({
    fn: (x) => F.crossEntropy(x, targets, { ignoreIndex: 3, reduction: 'none' }),
    inputs: [normal([5, 4], 145, 2)],
  })),
  ...(['mean', 'sum', 'none'] as const).map((reduction, i) =>
    c(`nllLoss ${reduction}`, () => ({
      fn: (x) => F.nllLoss(x, targets, { reduction }),
      inputs: [normal([5, 4], 150 + i)],
    })),
  ),
  c('nllLoss ignoreIndex', () => ({
    fn: (x) => F.nllLoss(x, targets, { ignoreIndex: 3 }),
    inputs: [normal([5, 4], 153)],
  })),
  ...(['mean', 'sum', 'none'] as const).map((reduction, i) =>
    c(`mseLoss ${reduction}`, () => ({
      fn: (x, y) => F.mseLoss(x, y, { reduction }),
      inputs: [normal([3, 4], 160 + i), normal([3, 4], 165 + i)],
    })),
  ),
  c('mseLoss broadcast target', () => ({
    fn: (x, y) => F.mseLoss(x, y),
    inputs: [normal([3, 4], 168), normal([4], 169)],
  })),
  ...(['mean', 'sum', 'none'] as const).map((reduction, i) =>
    c(`binaryCrossEntropyWithLogits ${reduction}`, () => ({
      fn: (x, y) => F.binaryCrossEntropyWithLogits(x, y, { reduction }),
      inputs: [normal([3, 4], 170 + i, 3), uniform([3, 4], 175 + i, 0, 1)],
    })),
  ),
  c('binaryCrossEntropyWithLogits posWeight', () => ({
    fn: (x, y) => F.binaryCrossEntropyWithLogits(x, y, { posWeight: constant([0.5, 1, 2, 3], [4]), reduction: 'none' }),
    inputs: [normal([3, 4], 178, 3), uniform([3, 4], 179, 0, 1)],
  })),
  c('binaryCrossEntropyWithLogits posWeight [3,1]', () => ({
    fn: (x, y) => F.binaryCrossEntropyWithLogits(x, y, { posWeight: constant([0.5, 2, 3], [3, 1]) }),
    inputs: [normal([3, 4], 180, 3), uniform([3, 4], 181, 0, 1)],
  })),
  c('conv2d with bias', () => ({
    fn: (x, w, b) => F.conv2d(x, w, b),
    inputs: [normal([2, 3, 5, 5], 190), normal([4, 3, 3, 3], 191, 0.5), normal([4], 192)],
  })),
  c('conv2d groups 2, padding 1', () => ({
    fn: (x, w, b) => F.conv2d(x, w, b, { groups: 2, padding: 1 }),
    inputs: [normal([2, 4, 5, 5], 196), normal([6, 2, 3, 3], 197, 0.5), normal([6], 198)],
  })),
  c('conv2d depthwise (groups = channels), stride 2', () => ({
    fn: (x, w) => F.conv2d(x, w, null, { groups: 3, stride: 2 }),
    inputs: [normal([2, 3, 6, 6], 199), normal([3, 1, 3, 3], 200, 0.5)],
  })),
  c('conv2d stride 2 padding 1', () => ({
    fn: (x, w, b) => F.conv2d(x, w, b, { stride: 2, padding: 1 }),
    inputs: [normal([2, 2, 6, 6], 193), normal([3, 2, 3, 3], 194, 0.5), normal([3], 195)],
  })),
  c('conv2d dilation 2, stride [1,2], padding 2, no bias', () => ({
    fn: (x, w) => F.conv2d(x, w, null, { stride: [1, 2], padding: 2, dilation: 2 }),
    inputs: [normal([1, 2, 6, 7], 196), normal([3, 2, 3, 2], 197, 0.5)],
  })),
  c('conv2d 1x1, groups 2 (the input multiplied directly, no im2col)', () => ({
    fn: (x, w, b) => F.conv2d(x, w, b, { groups: 2 }),
    inputs: [normal([2, 4, 3, 3], 201), normal([6, 2, 1, 1], 202, 0.5), normal([6], 203)],
  })),
  c('conv2d, input without grad', () => ({
    fn: (x, w, b) => F.conv2d(x, w, b, { padding: [0, 1] }),
    inputs: [normal([2, 2, 4, 4], 198).detach(), normal([3, 2, 2, 3], 199, 0.5), normal([3], 200)],
  })),
  c('maxPool2d kernel 2', () => ({ fn: (x) => F.maxPool2d(x, 2), inputs: [distinct([2, 2, 4, 6], 210, 0.05)] })),
  c('maxPool2d kernel 3 stride 2 padding 1', () => ({
    fn: (x) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }),
    inputs: [distinct([1, 2, 5, 5], 211, 0.05)],
  })),
  // the ReLU's gradient folded into the pooling's backward (maxPool2dGradRelu); values kept off the kink at 0
  c('maxPool2d kernel 2 after relu', () => ({
    fn: (x) => F.maxPool2d(F.relu(x), 2),
    inputs: [distinct([2, 2, 4, 6], 215, 0.05, 0.025)],
  })),
  c('maxPool2d kernel 3 stride 2 padding 1 after relu (overlapping windows)', () => ({
    fn: (x) => F.maxPool2d(F.relu(x), 3, { stride: 2, padding: 1 }),
    inputs: [distinct([1, 2, 5, 5], 216, 0.05, 0.025)],
  })),
  // ... and the conv's bias gradient per image summed by that kernel (planeSums)
  c('conv2d → relu → maxPool2d kernel 2', () => ({
    fn: (x, w, b) => F.maxPool2d(F.relu(F.conv2d(x, w, b, { padding: 1 })), 2),
    inputs: [normal([2, 2, 4, 4], 217), normal([3, 2, 3, 3], 218, 0.5), normal([3], 219)],
  })),
  c('maxPool2d kernel [3,2] stride [1,2] on [C,H,W]', () => ({
    fn: (x) => F.maxPool2d(x, [3, 2], { stride: [1, 2] }),
    inputs: [distinct([2, 5, 4], 212, 0.05)],
  })),
  ...[true, false].map((countIncludePad, i) =>
    c(`avgPool2d kernel 3 stride 2 padding 1 countIncludePad ${countIncludePad}`, () => ({
      fn: (x) => F.avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad }),
      inputs: [normal([2, 2, 5, 6], 213 + i)],
    })),
  ),
  c('avgPool2d kernel 2', () => ({ fn: (x) => F.avgPool2d(x, 2), inputs: [normal([1, 3, 4, 4], 215)] })),
  c('adaptiveAvgPool2d 7x5 to 3x4 (overlapping windows)', () => ({
    fn: (x) => F.adaptiveAvgPool2d(x, [3, 4]),
    inputs: [normal([2, 2, 7, 5], 216)],
  })),
  c('adaptiveAvgPool2d [C,H,W] keeping the height, upsampling the width', () => ({
    fn: (x) => F.adaptiveAvgPool2d(x, [null, 8]),
    inputs: [normal([2, 3, 5], 217)],
  })),
  c('batchNorm training [N,C]', () => ({
    fn: (x, w, b) => F.batchNorm(x, null, null, w, b),
    inputs: [normal([6, 3], 220, 2, 0.5), uniform([3], 221, 0.5, 1.5), normal([3], 222)],
  })),
  c('batchNorm training [N,C,H,W] with running stats', () => ({
    // fresh running statistics per call: the update must not feed back into the function under test
    fn: (x, w, b) => F.batchNorm(x, T.zeros([3]), T.ones([3]), w, b, { momentum: 0.3, eps: 1e-3 }),
    inputs: [normal([2, 3, 3, 2], 223, 2, 0.5), uniform([3], 224, 0.5, 1.5), normal([3], 225)],
  })),
  c('batchNorm training, no affine', () => ({
    fn: (x) => F.batchNorm(x, null, null, null, null),
    inputs: [normal([4, 3, 5], 226, 1.5)],
  })),
  c('batchNorm training, bias only', () => ({
    fn: (x, b) => F.batchNorm(x, null, null, null, b),
    inputs: [normal([4, 3], 227, 1.5), normal([3], 228)],
  })),
  c('batchNorm evaluation', () => ({
    fn: (x, w, b) =>
      F.batchNorm(x, constant([0.1, -0.2, 0.3], [3]), constant([0.5, 1.5, 2], [3]), w, b, { training: false }),
    inputs: [normal([2, 3, 2, 2], 229), uniform([3], 230, 0.5, 1.5), normal([3], 231)],
  })),
  c('batchNormRelu training [N,C,L] with running stats', () => ({
    // per channel, normalised values at least ~0.05 from 0 and a bias that keeps the outputs off the ReLU's kink
    fn: (x, w, b) => batchNormRelu(x, T.zeros([2]), T.ones([2]), w, b, { momentum: 0.3 }),
    inputs: [bnReluInput(), constant([1.2, 0.8], [2]).requiresGrad_(), constant([0.1, -0.3], [2]).requiresGrad_()],
  })),
  c('batchNormRelu evaluation', () => ({
    fn: (x, w, b) => batchNormRelu(x, T.zeros([2]), T.ones([2]), w, b, { training: false }),
    inputs: [bnReluInput(), constant([1.2, 0.8], [2]).requiresGrad_(), constant([0.1, -0.3], [2]).requiresGrad_()],
  })),
  c('addRelu', () => ({
    // |a| >= 0.1 and |b| <= 0.04: sums at least 0.06 from the kink
    fn: addRelu,
    inputs: [awayFromZero([3, 4], 243, 0.1, 1.5), uniform([3, 4], 244, -0.04, 0.04)],
  })),
  c('layerNorm last axis with affine', () => ({
    fn: (x, w, b) => F.layerNorm(x, [5], w, b),
    inputs: [normal([3, 4, 5], 240, 1.5), uniform([5], 241, 0.5, 1.5), normal([5], 242)],
  })),
  c('layerNorm last two axes with affine', () => ({
    fn: (x, w, b) => F.layerNorm(x, [3, 4], w, b),
    inputs: [normal([2, 3, 4], 243, 1.5), uniform([3, 4], 244, 0.5, 1.5), normal([3, 4], 245)],
  })),
  c('layerNorm without affine', () => ({
    fn: (x) => F.layerNorm(x, [6], null, null, 1e-3),
    inputs: [normal([4, 6], 246)],
  })),
  c('layerNorm weight only', () => ({
    fn: (x, w) => F.layerNorm(x, [6], w),
    inputs: [normal([4, 6], 247), uniform([6], 248, 0.5, 1.5)],
  })),
  c('dropout with a fixed seed', () => ({ fn: (x) => F.dropout(x, 0.4, { rng: 7 }), inputs: [normal([4, 5], 250)] })),
  c('dropout in evaluation', () => ({
    fn: (x) => F.dropout(x, 0.4, { training: false }).mul(2),
    inputs: [normal([4, 5], 251)],
  })),
];

const composite: Case[] = [
  c('a two-layer MLP with every parameter', () => ({
    fn: (x, w1, b1, w2, b2) => F.crossEntropy(T.linear(T.linear(x, w1, b1).tanh(), w2, b2), [0, 2, 1]),
    inputs: [
      normal([3, 4], 260),
      normal([5, 4], 261, 0.5),
      normal([5], 262),
      normal([3, 5], 263, 0.5),
      normal([3], 264),
    ],
  })),
  c('x used twice and a shared subexpression', () => ({
    fn: (x, y) => {
      const h = x.mul(y).sigmoid();
      return h.mul(h).add(x.exp()).sum(0);
    },
    inputs: [normal([3, 4], 265), normal([4], 266)],
  })),
  // z's gradient is a sum (z is used twice) that add hands on to both u and v, each of which then gets more
  c('a summed gradient shared by add with inputs that get more', () => ({
    fn: (x) => {
      const u = x.mul(2);
      const v = x.exp();
      const z = u.add(v);
      return v.mul(3).sum().add(u.mul(4).sum()).add(z.mul(z).sum());
    },
    inputs: [normal([3], 267)],
  })),
];

const groups: [string, Case[]][] = [
  ['elementwise', elementwise],
  ['activations', activations],
  ['matmul', matmuls],
  ['linear', linears],
  ['reductions', reductions],
  ['shape ops', shapes],
  ['softmax', softmaxes],
  ['nn.functional', functional],
  ['composite graphs', composite],
];

for (const backend of availableBackends()) {
  describe(`gradcheck on the ${backend} backend`, () => {
    beforeAll(() => {
      useBackend(backend);
    });
    for (const [group, cases] of groups) {
      describe(group, () => {
        for (const { name, make } of cases) {
          it(name, () => {
            const { fn, inputs, opts } = make();
            const r = gradcheck(fn, inputs, opts);
            expect(r.ok, `${name}: ${JSON.stringify(r)}`).toBe(true);
          });
        }
      });
    }

    describe('the checker itself', () => {
      /** exp with a backward scaled by `k`: k = 1 is right, anything else is a bug the check must catch. */
      const scaledExp = (k: number) => (x: Tensor) => {
        const y = T.exp(x.detach());
        return fromOp('scaledExp', y.storage, y.shape, [x], (g) => [T.mul(g, y).mul(k)]);
      };

      it('passes a correct gradient', () => {
        expect(gradcheck(scaledExp(1), [normal([3, 4], 270)]).ok).toBe(true);
      });

      it('fails a gradient that is 2% off and points at it', () => {
        const r = gradcheck(scaledExp(1.02), [normal([3, 4], 271)]);
        expect(r.ok).toBe(false);
        expect(r.maxRelError).toBeGreaterThan(0.015);
        expect(r.worst?.input).toBe(0);
      });

      it('fails a gradient missing for one input', () => {
        // b's contribution is dropped: d(a·b)/db = a is never returned
        const bad = (a: Tensor, b: Tensor) => {
          const y = T.mul(a.detach(), b.detach());
          return fromOp('badMul', y.storage, y.shape, [a, b], (g) => [T.mul(g, b), null]);
        };
        const r = gradcheck(bad, [normal([5], 272), normal([5], 273)]);
        expect(r.ok).toBe(false);
        expect(r.worst?.input).toBe(1);
      });

      it('fails a NaN gradient', () => {
        const nan = (x: Tensor) => {
          const y = T.mul(x.detach(), 1);
          return fromOp('nanGrad', y.storage, y.shape, [x], (g) => [T.mul(g, Number.NaN)]);
        };
        const r = gradcheck(nan, [normal([3], 274)]);
        expect(r.ok).toBe(false);
        expect(r.maxRelError).toBe(Number.POSITIVE_INFINITY);
      });

      it('leaves the inputs and their .grad as they were', () => {
        const x = normal([2, 3], 275);
        const before = x.toArray();
        x.grad = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
        gradcheck((a) => a.tanh(), [x]);
        expect(x.toArray()).toEqual(before);
        expect(x.grad?.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
      });

      it('refuses a call with nothing to check', () => {
        expect(() => gradcheck((a) => a.exp(), [normal([2], 276).detach()])).toThrow(
          'gradcheck(): no input has requiresGrad; nothing to check',
        );
      });
    });
  });
}
