/**
 * Weight initializers in place on a Tensor (PyTorch's `torch.nn.init` with camelCase names) and the gain table.
 * LSUV and the LSTM forget-gate bias run layers, so they live in nn/lsuv.ts; the public `init` namespace
 * (api/init.ts) has them all.
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
  standardUniform,
  type TruncatedNormalOptions,
  truncatedNormal,
  type UniformOptions,
  uniform,
  xavierNormal,
  xavierUniform,
  zeros,
} from './initializers.js';
export { defaultRng, manualSeed, type RandomInit } from './random.js';
