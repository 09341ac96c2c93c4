/** Which errors are the user's to fix (printed as one line, exit 2) rather than bugs (stack trace, exit 1). */
import { DataError } from '../data/types.js';
import { StateDictError } from '../nn/module.js';
import { TrackError } from '../track/types.js';
import { BuildError } from '../train/build.js';
import { ConfigError } from '../train/config.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function isUserError(e: unknown): e is Error {
  return (
    e instanceof UsageError ||
    e instanceof ConfigError ||
    e instanceof DataError ||
    e instanceof BuildError ||
    e instanceof StateDictError ||
    e instanceof TrackError ||
    (e instanceof Error && (e as { userError?: boolean }).userError === true)
  );
}

export function userMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
