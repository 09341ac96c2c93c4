/**
 * gradguard: train deep networks that stay trainable. The public surface, named one by one.
 *
 * @example
 * import { tensor, nn, init, optim, clip } from 'gradguard';
 * const model = nn.mlp({ inputSize: 784, hidden: [256], outputSize: 10, seed: 0 });
 * init.xavierNormal(model.get('0.weight'), { seed: 0 });
 * const tx = optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 }));
 */

export * as init from './api/init.js';
export * from './api/tensor.js';
export { availableBackends, getBackend, useBackend } from './backend/index.js';
export type { Backend, BackendName } from './backend/types.js';
export * as clip from './clip/index.js';
export * as data from './data/index.js';
export { manualSeed } from './init/random.js';
export {
  loadSafetensors,
  loadSafetensorsMetadata,
  parseSafetensors,
  SafetensorsError,
  saveSafetensors,
  serializeSafetensors,
} from './io/safetensors.js';
export * as monitor from './monitor/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export { RunStore } from './track/store.js';
export { type Checkpoint, CheckpointError, loadCheckpoint, saveCheckpoint } from './train/checkpoint.js';
export type { Config } from './train/config.js';
export { loadConfig } from './train/config.js';
export { type SessionResult, trainSession } from './train/session.js';
export { evaluate, runTraining, type StepObserver, setupExperiment, type TrainSummary } from './train/trainer.js';
