/**
 * Tensor methods with PyTorch's names in camelCase. Each forwards to the op function of the same name, so
 * `x.matmul(w).relu().sum()` and `sum(relu(matmul(x, w)))` are the same graph.
 */
import * as E from './ops/elementwise.js';
import { matmul } from './ops/matmul.js';
import { type Axes, max, mean, min, sum, variance } from './ops/reduce.js';
import { flatten, gather, indexSelect, permute, reshape, slice, transpose } from './ops/shape.js';
import { logSoftmax, softmax } from './ops/softmax.js';
import { Tensor } from './tensor.js';

type Operand = Tensor | number;

declare module './tensor.js' {
  interface Tensor {
    add(b: Operand): Tensor;
    sub(b: Operand): Tensor;
    mul(b: Operand): Tensor;
    div(b: Operand): Tensor;
    pow(b: Operand): Tensor;
    neg(): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    abs(): Tensor;
    square(): Tensor;
    reciprocal(): Tensor;
    sign(): Tensor;
    clamp(min?: number, max?: number): Tensor;
    maximum(b: Tensor): Tensor;
    minimum(b: Tensor): Tensor;
    relu(): Tensor;
    leakyRelu(negativeSlope?: number): Tensor;
    elu(alpha?: number): Tensor;
    selu(): Tensor;
    gelu(): Tensor;
    sigmoid(): Tensor;
    tanh(): Tensor;
    softplus(beta?: number, threshold?: number): Tensor;
    matmul(b: Tensor): Tensor;
    sum(axes?: Axes, keepDims?: boolean): Tensor;
    mean(axes?: Axes, keepDims?: boolean): Tensor;
    max(axis?: number, keepDims?: boolean): Tensor;
    min(axis?: number, keepDims?: boolean): Tensor;
    var(axes?: Axes, keepDims?: boolean, correction?: number): Tensor;
    reshape(shape: readonly number[]): Tensor;
    view(shape: readonly number[]): Tensor;
    flatten(start?: number, end?: number): Tensor;
    transpose(dim0?: number, dim1?: number): Tensor;
    permute(perm: readonly number[]): Tensor;
    slice(axis: number, start: number, end?: number): Tensor;
    indexSelect(axis: number, indices: Tensor | readonly number[]): Tensor;
    gather(axis: number, index: Tensor): Tensor;
    softmax(axis?: number): Tensor;
    logSoftmax(axis?: number): Tensor;
  }
}

const P = Tensor.prototype;
P.add = function (b) {
  return E.add(this, b);
};
P.sub = function (b) {
  return E.sub(this, b);
};
P.mul = function (b) {
  return E.mul(this, b);
};
P.div = function (b) {
  return E.div(this, b);
};
P.pow = function (b) {
  return E.pow(this, b);
};
P.neg = function () {
  return E.neg(this);
};
P.exp = function () {
  return E.exp(this);
};
P.log = function () {
  return E.log(this);
};
P.sqrt = function () {
  return E.sqrt(this);
};
P.abs = function () {
  return E.abs(this);
};
P.square = function () {
  return E.square(this);
};
P.reciprocal = function () {
  return E.reciprocal(this);
};
P.sign = function () {
  return E.sign(this);
};
P.clamp = function (lo, hi) {
  return E.clamp(this, lo, hi);
};
P.maximum = function (b) {
  return E.maximum(this, b);
};
P.minimum = function (b) {
  return E.minimum(this, b);
};
P.relu = function () {
  return E.relu(this);
};
P.leakyRelu = function (s) {
  return E.leakyRelu(this, s);
};
P.elu = function (a) {
  return E.elu(this, a);
};
P.selu = function () {
  return E.selu(this);
};
P.gelu = function () {
  return E.gelu(this);
};
P.sigmoid = function () {
  return E.sigmoid(this);
};
P.tanh = function () {
  return E.tanh(this);
};
P.softplus = function (beta, threshold) {
  return E.softplus(this, beta, threshold);
};
P.matmul = function (b) {
  return matmul(this, b);
};
P.sum = function (axes, keepDims) {
  return sum(this, axes, keepDims);
};
P.mean = function (axes, keepDims) {
  return mean(this, axes, keepDims);
};
P.max = function (axis, keepDims) {
  return max(this, axis, keepDims);
};
P.min = function (axis, keepDims) {
  return min(this, axis, keepDims);
};
P.var = function (axes, keepDims, correction) {
  return variance(this, axes, keepDims, correction);
};
P.reshape = function (shape) {
  return reshape(this, shape);
};
P.view = function (shape) {
  return reshape(this, shape);
};
P.flatten = function (start, end) {
  return flatten(this, start, end);
};
P.transpose = function (d0, d1) {
  return transpose(this, d0, d1);
};
P.permute = function (perm) {
  return permute(this, perm);
};
P.slice = function (axis, start, end) {
  return slice(this, axis, start, end);
};
P.indexSelect = function (axis, indices) {
  return indexSelect(this, axis, indices);
};
P.gather = function (axis, index) {
  return gather(this, axis, index);
};
P.softmax = function (axis) {
  return softmax(this, axis);
};
P.logSoftmax = function (axis) {
  return logSoftmax(this, axis);
};
