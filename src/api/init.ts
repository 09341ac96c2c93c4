/**
 * The public `init` namespace: the initializers of `init/` (in place on a Tensor, PyTorch's `torch.nn.init` with
 * camelCase names) and the two that run a model, LSUV and the LSTM forget-gate bias, which live in `nn/` because they
 * need layers (init/ sits below nn/: layers take their default initialisation from it).
 */
export * from '../init/index.js';
export { type LsuvLayerReport, type LsuvOptions, lstmForgetGateBias, lsuv } from '../nn/lsuv.js';
