/** Reading a text file (config files), in Node; a browser build gets text.browser.ts (package.json `browser`). */
import { readFileSync } from 'node:fs';

/** The UTF-8 text of `path`; throws Node's error (with its `code`) if it cannot be read. */
export function readTextFile(path: string): string {
  return readFileSync(path, 'utf8');
}
