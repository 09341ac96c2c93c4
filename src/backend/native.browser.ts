/**
 * The native backend in a browser build: there is no N-API there, so it never loads (package.json's `browser` field
 * puts this file in place of native.ts when a bundler targets browsers). The backend list then starts at wasm.
 */
import type { NativeBackend } from './native.js';

/** Always null: browsers cannot load the native addon. */
export function createNativeBackend(_addonPath?: string): NativeBackend | null {
  return null;
}
