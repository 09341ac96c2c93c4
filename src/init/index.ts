/**
 * `init`: weight initializers in place on a Tensor (PyTorch's `torch.nn.init` with camelCase names), the gain table,
 * LSUV and the LSTM forget-gate bias.
 */
export {
  calculateGain,
  computeFans,
  constant,
  dirac,
  eye,
  type FanMode,
  type GainOptions,
  type KaimingOptions,
  kaimingNormal,
  kaimingUniform,
  lecunNormal,
  lecunUniform,
  type Nonlinearity,
  type NormalOptions,
  normal,
  ones,
  orthogonal,
  type TruncatedNormalOptions,
  truncatedNormal,
  type UniformOptions,
  uniform,
  xavierNormal,
  xavierUniform,
  zeros,
} from './initializers.js';
export { type LsuvLayerReport, type LsuvOptions, lstmForgetGateBias, lsuv } from './lsuv.js';
export { defaultRng, manualSeed, type RandomInit } from './random.js';
