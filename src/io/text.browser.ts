/** text.ts in a browser build: a page has no files, so a config comes from `--set`-style keys only. */

/** Why a text file could not be read (here: always, there are no files). */
export class TextFileError extends Error {
  override readonly name = 'TextFileError';
  constructor(
    readonly reason: 'unreadable' | 'directory' | 'too-large',
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** Throws: there are no files in a browser. */
export function readTextFile(path: string, _maxBytes: number): string {
  throw new TextFileError('unreadable', 'ENOSYS', `${path}: no files in a browser`);
}
