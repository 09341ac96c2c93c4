/** text.ts in a browser build: a page has no files, so a config comes from `--set`-style keys only. */

/** Throws an error with code ENOSYS, which loadConfig reports as a file it cannot read. */
export function readTextFile(path: string): string {
  throw Object.assign(new Error(`${path}: no files in a browser`), { code: 'ENOSYS' });
}
