/**
 * wasm-bytes.ts in a browser build: there are no files to read, so the synchronous path is off (createWasmBackend
 * returns null without bytes) and every URL is fetched (createWasmBackendAsync).
 */

/** False: a page reads modules with fetch, asynchronously. */
export const canReadModuleFiles = false;

/** Never called in a browser (canReadModuleFiles is false); throws if it is. */
export function readModuleFile(url: URL): Uint8Array {
  throw new Error(`wasm backend: cannot read ${url.href} synchronously in a browser; use createWasmBackendAsync`);
}

/** Always null: the caller fetches the URL. */
export async function readModuleFileAsync(_url: URL): Promise<Uint8Array | null> {
  return null;
}
