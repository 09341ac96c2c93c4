/** The machine's memory, in Node; a browser build gets memory.browser.ts instead (package.json `browser`). */
import { totalmem } from 'node:os';

/** This machine's RAM in bytes. */
export function totalMemoryBytes(): number {
  return totalmem();
}
