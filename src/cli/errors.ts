/**
 * The CLI's one error reporter and its exit statuses. Every command ends a thrown error here:
 *
 * - a user's mistake (a `GradguardError` with `user` set: bad option, config, data, store, checkpoint) prints one line
 *   `gradguard: <message>` on stderr and exits with status 2;
 * - anything else is a bug: `gradguard: internal error: <message>` and the stack trace on stderr, exit status 1;
 * - with `--json`, either also prints exactly one JSON object `{"error": {"code", "message"}}` on stdout.
 */
import { GradguardError, isUserError } from '../base/errors.js';
import type { CliIO } from './io.js';

export { isUserError } from '../base/errors.js';

/** The exit statuses of every command (README, Commands: "Exit statuses"). */
export const EXIT = {
  ok: 0,
  /** A bug in gradguard (a stack trace is printed). */
  bug: 1,
  /** The user's mistake: a bad option, config, data file, store or checkpoint. */
  user: 2,
  /** Training diverged: stopped on non-finite loss or gradients (`train.onNonFinite` stop or raise, or too many in a row). */
  diverged: 3,
  /** Training was interrupted (Ctrl+C, SIGTERM) and stopped early; 130 as shells report SIGINT. */
  interrupted: 130,
} as const;

/** A mistake in how a command was called (an option, an argument). */
export class UsageError extends GradguardError {
  static override readonly code = 'usage';
  override readonly name = 'UsageError';
}

/** The message of any thrown value, on one line (a config with several problems lists them separated by `; `). */
export function userMessage(e: unknown): string {
  const text =
    e instanceof GradguardError && e.detail ? `${e.message}: ${e.detail}` : e instanceof Error ? e.message : String(e);
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join('; ');
}

/** The JSON error object a failing command prints with `--json`. */
export function errorJson(e: unknown): { error: { code: string; message: string } } {
  return { error: { code: e instanceof GradguardError ? e.code : 'internal', message: userMessage(e) } };
}

/**
 * Reports an error as the CLI does and returns the exit status: 2 for a user's mistake (one line), 1 for a bug
 * (message and stack trace); with `json`, also the one JSON error object on stdout. A non-finite value met with
 * `train.onNonFinite: raise` (code 'train.non-finite') is the user's stop request: one line, status 3 (diverged).
 */
export function reportError(e: unknown, io: CliIO, json: boolean | undefined): number {
  const user = isUserError(e);
  const status = !user ? EXIT.bug : (e as GradguardError).code === 'train.non-finite' ? EXIT.diverged : EXIT.user;
  if (user) io.stderr(`gradguard: ${userMessage(e)}\n`);
  else {
    io.stderr(`gradguard: internal error (a bug in gradguard, please report it): ${userMessage(e)}\n`);
    if (e instanceof Error && e.stack) io.stderr(`${e.stack}\n`);
  }
  if (json) io.stdout(`${JSON.stringify(errorJson(e))}\n`);
  return status;
}
