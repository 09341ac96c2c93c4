/**
 * How the wasm backend reads its module's bytes from disk, in Node. A browser build gets wasm-bytes.browser.ts
 * instead (package.json's `browser` field), where there is no disk: modules are fetched, asynchronously.
 */
import * as nodeFs from 'node:fs';

/** Whether module files can be read synchronously here (true in Node). */
export const canReadModuleFiles = true;

/** The bytes of a `file:` URL, read synchronously. Throws if it cannot be read. */
export function readModuleFile(url: URL): Uint8Array {
  return nodeFs.readFileSync(url);
}

/** The bytes of a `file:` URL, or null for any other URL (the caller fetches those). */
export async function readModuleFileAsync(url: URL): Promise<Uint8Array | null> {
  return url.protocol === 'file:' ? nodeFs.promises.readFile(url) : null;
}
