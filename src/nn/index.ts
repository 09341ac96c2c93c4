/**
 * `nn`: layers, containers, residual blocks and models, PyTorch-shaped (`nn.Linear`, `nn.Sequential`,
 * `nn.functional`), plus the `Module` base class they share.
 */

export {
  Activation,
  type ActivationName,
  activation,
  ELU,
  GELU,
  Identity,
  LeakyReLU,
  ReLU,
  SELU,
  Sigmoid,
  Softplus,
  Tanh,
} from './activation.js';
export { Flatten, Sequential } from './container.js';
export { AdaptiveAvgPool2d, AvgPool2d, Conv2d, type Conv2dOptions, GlobalAvgPool2d, MaxPool2d } from './conv.js';
export { Dropout } from './dropout.js';
export { Embedding, type EmbeddingOptions } from './embedding.js';
export * as functional from './functional.js';
export { Linear, type LinearOptions } from './linear.js';
export { type CnnOptions, cnn, type MlpOptions, mlp, ResNet, type ResNetOptions, resnet } from './models.js';
export {
  type AnyModule,
  type ForwardHook,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  Module,
  StateDictError,
} from './module.js';
export { BatchNorm1d, BatchNorm2d, type BatchNormOptions, LayerNorm, type LayerNormOptions } from './norm.js';
export {
  BasicBlock,
  type BlockOptions,
  type NormKind,
  PreActBlock,
  Residual,
  ResidualMLPBlock,
  type ResidualMLPBlockOptions,
  type ShortcutKind,
  ZeroPadShortcut,
} from './residual.js';
export {
  GRU,
  LSTM,
  type LSTMOutput,
  type RecurrentOptions,
  type RecurrentOutput,
  type RecurrentState,
  RNN,
} from './rnn.js';
