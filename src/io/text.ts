/**
 * Reading a text file of bounded size (config files), in Node; a browser build gets text.browser.ts instead
 * (package.json `browser`), where there are no files.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Why a text file could not be read: the caller turns it into its own message. */
export class TextFileError extends Error {
  override readonly name = 'TextFileError';
  constructor(
    readonly reason: 'unreadable' | 'directory' | 'too-large',
    /** The system's error code (ENOENT, EACCES, ...) when it gave one. */
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The UTF-8 text of `path`, reading at most `maxBytes` (a device or a pipe never ends).
 * @throws TextFileError when it cannot be opened or read, is a directory, or is longer than `maxBytes`
 */
export function readTextFile(path: string, maxBytes: number): string {
  const unreadable = (e: unknown) =>
    new TextFileError('unreadable', (e as NodeJS.ErrnoException).code, `${path}: ${String(e)}`);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw unreadable(e);
  }
  try {
    if (fstatSync(fd).isDirectory()) throw new TextFileError('directory', undefined, `${path} is a directory`);
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      let got: number;
      try {
        got = readSync(fd, buf, n, buf.length - n, null);
      } catch (e) {
        throw unreadable(e);
      }
      if (got === 0) break;
      n += got;
      if (n > maxBytes) throw new TextFileError('too-large', undefined, `${path} is longer than ${maxBytes} bytes`);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
