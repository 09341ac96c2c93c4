/**
 * gradguard for browsers: the engine, layers, initializers, optimizers, clipping, the gradient monitor and its
 * diagnosis, the generated data sets and an MNIST subset, and the training loop, with nothing that needs Node
 * (package.json's `browser` field swaps the few Node-only modules for their browser versions: native.browser.ts,
 * threads.browser.ts, wasm-threads.browser.ts, wasm-bytes.browser.ts, io/text.browser.ts, checkpoint.browser.ts).
 * Not here: the run store, checkpoints and safetensors files, file-based data sets, the CLI.
 *
 * Call `loadBackend()` once before making tensors: it loads the wasm backend (threaded when the page is cross-origin
 * isolated). Without it everything runs on the reference JS backend.
 *
 * @example
 * import { loadBackend, nn, optim, clip, data } from 'gradguard/browser';
 * await loadBackend();
 * const ds = data.spirals({ seed: 0 });
 */
import { getBackend, installBackend } from './backend/index.js';
import type { Backend } from './backend/types.js';
import { loadWebWasmBackend, type WebWasmOptions } from './backend/wasm-web.js';

export * as init from './api/init.js';
export * from './api/tensor.js';
export { availableBackends, getBackend, installBackend, useBackend } from './backend/index.js';
export type { Backend, BackendName } from './backend/types.js';
export { loadWebWasmBackend, type WebWasmOptions } from './backend/wasm-web.js';
export * as clip from './clip/index.js';
export * as data from './data/web.js';
export { manualSeed } from './init/random.js';
export { parseSafetensors, SafetensorsError, serializeSafetensors } from './io/safetensorsFormat.js';
export * as monitor from './monitor/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export { applySet, Config, ConfigError, loadConfig, resolveDefaults } from './train/config.js';
export {
  type EvalResult,
  type Experiment,
  evaluate,
  lossFor,
  runTraining,
  type StepInfo,
  type StepObserver,
  setupExperiment,
  type TrainSummary,
  trainingLoop,
} from './train/trainer.js';

/**
 * Loads the wasm backend for this page and makes it the one in use (see `loadWebWasmBackend`); falls back to the
 * JS backend, which always works, if the module cannot be fetched or compiled.
 * @returns the backend in use
 */
export async function loadBackend(opts: WebWasmOptions = {}): Promise<Backend> {
  try {
    return installBackend(await loadWebWasmBackend(opts));
  } catch {
    return getBackend();
  }
}
