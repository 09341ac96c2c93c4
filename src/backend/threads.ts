/**
 * How many threads matrix products use: `GRADGUARD_THREADS` for both the native and the wasm backend, as
 * OMP_NUM_THREADS is for PyTorch. Unset, native keeps OpenBLAS's own choice (OPENBLAS_NUM_THREADS or the cores) and
 * wasm uses every core.
 */
import * as nodeOs from 'node:os';
import { GradguardError } from '../base/errors.js';

/** Most threads `GRADGUARD_THREADS` may ask for (each backend caps what it uses further). */
const MAX_REQUEST = 256;

/** A thread count that is not one: the user's to fix (the CLI prints the message alone). */
export class ThreadCountError extends GradguardError {
  static override readonly code = 'env.threads';
  override readonly name = 'ThreadCountError';
}

/** Throws unless `n` is a whole number of threads, 1 or more (`what` names where it came from). */
export function checkThreadCount(n: number, what = `setThreads(${n})`): void {
  if (!Number.isInteger(n) || n < 1) throw new ThreadCountError(`${what}: give a whole number of threads, 1 or more`);
}

/**
 * `GRADGUARD_THREADS` as a number, or undefined when unset or empty. Anything but an integer from 1 to 256 is an
 * error that names the variable and the fix.
 */
export function threadsFromEnv(): number | undefined {
  const raw = typeof process !== 'undefined' ? process.env?.GRADGUARD_THREADS : undefined;
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_REQUEST) {
    throw new ThreadCountError(
      `GRADGUARD_THREADS='${raw}' is not a thread count: set it to an integer from 1 to ${MAX_REQUEST}, or unset it to use every core`,
    );
  }
  return n;
}

/**
 * Checks `GRADGUARD_POOL_ADAPT` (native/pool_x86.c reads it): unset, empty, `0` (every job of the native thread pool
 * to its threads) or `1` (the default: each kind of job the faster way); anything else is an error that names the fix.
 */
export function checkPoolAdaptEnv(): void {
  const raw = typeof process !== 'undefined' ? process.env?.GRADGUARD_POOL_ADAPT : undefined;
  if (raw === undefined || raw === '' || raw === '0' || raw === '1') return;
  throw new ThreadCountError(
    `GRADGUARD_POOL_ADAPT='${raw}' is not 0 or 1: set it to 0 to send every job of the thread pool to its threads, or unset it`,
  );
}

/** `GRADGUARD_THREADS` when set, else the cores this process may use. */
export function wantedThreads(): number {
  const n = threadsFromEnv();
  if (n !== undefined) return n;
  if (typeof nodeOs.availableParallelism === 'function') return nodeOs.availableParallelism();
  return typeof nodeOs.cpus === 'function' ? Math.max(1, nodeOs.cpus().length) : 1;
}
