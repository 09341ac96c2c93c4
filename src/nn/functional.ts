/**
 * `nn.functional`: losses, convolution, pooling, normalisation and dropout as differentiable functions, PyTorch's
 * semantics and defaults unless a doc says otherwise. Each is an op of `tensor/ops/` (forward and backward on the
 * backend's kernels); this module only gathers them under PyTorch's names.
 */
import '../tensor/methods.js';

export { sumToShape } from '../tensor/ops/broadcast.js';
export {
  type AdaptiveSize,
  adaptiveAvgPool2d,
  avgPool2d,
  type Conv2dOptions,
  conv2d,
  maxPool2d,
  type Pool2dOptions,
} from '../tensor/ops/conv.js';
export { dropout } from '../tensor/ops/dropout.js';
export { elu, gelu, leakyRelu, relu, selu, sigmoid, softplus, tanh } from '../tensor/ops/elementwise.js';
export {
  binaryCrossEntropyWithLogits,
  type CrossEntropyOptions,
  crossEntropy,
  mseLoss,
  nllLoss,
  type Reduction,
} from '../tensor/ops/loss.js';
export { linear } from '../tensor/ops/matmul.js';
export { type BatchNormOptions, batchNorm, layerNorm } from '../tensor/ops/norm.js';
export { logSoftmax, softmax } from '../tensor/ops/softmax.js';
