/**
 * Thread counts in a browser build (package.json's `browser` field puts this file in place of threads.ts): there is
 * no environment to read `GRADGUARD_THREADS` from, and the cores are `navigator.hardwareConcurrency`.
 */

/** A thread count that is not one: the user's to fix. */
export class ThreadCountError extends RangeError {
  override readonly name = 'ThreadCountError';
  readonly userError = true;
}

/** Throws unless `n` is a whole number of threads, 1 or more (`what` names where it came from). */
export function checkThreadCount(n: number, what = `setThreads(${n})`): void {
  if (!Number.isInteger(n) || n < 1) throw new ThreadCountError(`${what}: give a whole number of threads, 1 or more`);
}

/** Always undefined: a page has no environment variables. */
export function threadsFromEnv(): number | undefined {
  return undefined;
}

/** The cores the browser reports (1 where it reports none). */
export function wantedThreads(): number {
  const n = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency : undefined;
  return typeof n === 'number' && n >= 1 ? n : 1;
}
