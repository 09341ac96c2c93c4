/**
 * The one error model: every error gradguard throws on purpose is a `GradguardError` with a stable `code` (what a
 * program matches on, e.g. 'config.invalid', 'data.format', 'UNKNOWN_RUN') and `user`: whether it is the user's
 * mistake (a bad config, file, option or environment; the CLI prints its message as one line and exits with status
 * 2) or a bug (the CLI prints a stack trace and exits with status 1). Modules subclass it with their own code; any
 * other thrown value is a bug.
 */
export class GradguardError extends Error {
  /** The code of a subclass's errors (each subclass sets its own: 'config.invalid', 'build.invalid', ...). */
  static readonly code: string = 'gradguard';
  override readonly name: string = 'GradguardError';
  /** A stable, machine-readable code for the kind of problem. */
  readonly code: string;
  /** True when the user can fix it (config, data, options, environment); false for a bug. */
  readonly user: boolean;
  /** More about it (where, what to do), which the CLI prints after the message: `message: detail`. */
  readonly detail: string | undefined;

  /** @param options code (default: the class's `code`), user (default true), detail, cause */
  constructor(message: string, options: { code?: string; user?: boolean; detail?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = options.code ?? (new.target as typeof GradguardError).code;
    this.user = options.user ?? true;
    this.detail = options.detail;
  }

  /** The same as `user` (an older name some callers read). */
  get userError(): boolean {
    return this.user;
  }
}

/** Whether `e` is a user's mistake (one line, exit status 2) rather than a bug. */
export function isUserError(e: unknown): e is GradguardError {
  return e instanceof GradguardError && e.user;
}
