/**
 * Backend selection: native (C + OpenBLAS through N-API), then wasm (the same C compiled to wasm32 SIMD128), then js.
 * `GRADGUARD_BACKEND=js|wasm|native` forces one (an error if it cannot load, rather than a silent fallback).
 */
import { GradguardError } from '../base/errors.js';
import { JsBackend } from './js.js';
import { createNativeBackend } from './native.js';
import type { Backend, BackendName } from './types.js';
import { createWasmBackend } from './wasm.js';

export type { Backend, BackendName, Buf, ConvGeom, PoolGeom } from './types.js';
export { Binary, Unary } from './types.js';

/** An unknown or unavailable backend (GRADGUARD_BACKEND, useBackend()): the user's to fix. */
export class BackendError extends GradguardError {
  static override readonly code = 'env.backend';
  override readonly name = 'BackendError';
}

let current: Backend | null = null;
const cache = new Map<BackendName, Backend>();

const NAMES: readonly BackendName[] = ['native', 'wasm', 'js'];

function create(name: BackendName): Backend | null {
  const hit = cache.get(name);
  if (hit) return hit;
  const b = name === 'native' ? createNativeBackend() : name === 'wasm' ? createWasmBackend() : new JsBackend();
  if (b) cache.set(name, b);
  return b;
}

/** The backend in use, chosen on first call (see the module note). */
export function getBackend(): Backend {
  if (current) return current;
  const forced = typeof process !== 'undefined' ? process.env?.GRADGUARD_BACKEND : undefined;
  if (forced) {
    current = useBackend(forced as BackendName);
    return current;
  }
  for (const n of NAMES) {
    const b = create(n);
    if (b) {
      current = b;
      return b;
    }
  }
  throw new Error('unreachable: the js backend always loads');
}

/**
 * Switches to a backend by name. Tensors made on another backend must not be mixed with new ones: switch before
 * creating any (tests and benchmarks do this between suites).
 */
export function useBackend(name: BackendName): Backend {
  if (!NAMES.includes(name)) {
    throw new BackendError(
      `unknown backend '${name}': use one of ${NAMES.join(', ')} (GRADGUARD_BACKEND or useBackend())`,
    );
  }
  const b = create(name);
  if (!b) {
    const why =
      name === 'native'
        ? 'the native addon is not built (needs a C toolchain and libopenblas-dev, then `npm run build:native`)'
        : 'wasm/gradguard.wasm could not be loaded (run `npm run build:wasm`)';
    throw new BackendError(`backend '${name}' is not available: ${why}`);
  }
  current = b;
  return b;
}

/**
 * Makes an already created backend the one in use, e.g. the wasm backend a web page loads asynchronously
 * (`loadWebWasmBackend`). The same rule as for useBackend applies: install it before creating any tensor.
 */
export function installBackend(b: Backend): Backend {
  cache.set(b.name, b);
  current = b;
  return b;
}

/** The backends that load on this machine, in order of preference. */
export function availableBackends(): BackendName[] {
  return NAMES.filter((n) => create(n) !== null);
}
