/** The tensor package: Tensor, creation functions, ops, autodiff and memory scopes. */
import './methods.js';

export { ArgumentError, ShapeError } from './errors.js';
export { type GradcheckOptions, type GradcheckResult, gradcheck } from './gradcheck.js';
export {
  abs,
  add,
  affine,
  clamp,
  div,
  elu,
  exp,
  gelu,
  leakyRelu,
  log,
  maximum,
  minimum,
  mul,
  neg,
  pow,
  reciprocal,
  relu,
  selu,
  sigmoid,
  sign,
  softplus,
  sqrt,
  square,
  sub,
  tanh,
} from './ops/elementwise.js';
export { linear, linearRelu, matmul } from './ops/matmul.js';
export { type Axes, max, mean, min, sum, sumToShape, variance } from './ops/reduce.js';
export { concat, flatten, gather, indexSelect, permute, reshape, slice, stack, transpose } from './ops/shape.js';
export { logSoftmax, softmax } from './ops/softmax.js';
export { rand, randint, randn } from './random.js';
export { type RandomSource, Rng, type RngState, toRng } from './rng.js';
export {
  arange,
  dispose,
  empty,
  full,
  isGradEnabled,
  keep,
  noGrad,
  ones,
  Tensor,
  type TensorOptions,
  tensor,
  tidy,
  zeros,
  zerosLike,
} from './tensor.js';
