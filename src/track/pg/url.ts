/**
 * A PostgreSQL store's spec: `postgres://user:password@host:port/database?checkpoints=/shared/dir`, with what the URL
 * leaves out taken from the standard `PG*` variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE), as psql does.
 *
 * NOTE: the password never leaves this module except into the connection: messages, logs, `runs show` and the
 * dashboard name the store by {@link PgSpec.shown} (the URL without its password and query), and every error text
 * that reaches the user goes through {@link PgSpec.scrub}.
 */
import { DEFAULT_STORE_DIR } from '../store-api.js';
import { TrackError } from '../types.js';

/** Whether a store spec is a PostgreSQL URL. */
export function isPostgresUrl(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** The store when none is given: `GRADGUARD_STORE`, else `./gradguard-runs`. */
export function storeSpecFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.GRADGUARD_STORE?.trim() || DEFAULT_STORE_DIR;
}

/** A store spec as messages may show it: a directory as given, a PostgreSQL URL without its password. */
export function storeLabel(spec: string): string {
  if (!isPostgresUrl(spec)) return spec;
  try {
    return parsePgSpec(spec).shown;
  } catch {
    return 'postgres://(a malformed URL)';
  }
}

export interface PgSpec {
  /** The URL for the `pg` client (with its password, without gradguard's own parameters). */
  connection: string;
  /** The store as messages name it: `postgres://user@host:port/database`. */
  shown: string;
  /** The directory that holds the runs' checkpoints (`?checkpoints=`, `GRADGUARD_CHECKPOINTS`, or ./gradguard-runs). */
  checkpoints: string;
  /** Replaces every secret of the spec in a text (the password, the full URL) by the shown form. */
  scrub(text: string): string;
}

/** Parses a `postgres://` spec; a malformed one is BAD_STORE (with the password left out of the message). */
export function parsePgSpec(spec: string, env: NodeJS.ProcessEnv = process.env): PgSpec {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new TrackError(
      'BAD_STORE',
      `--store: not a valid PostgreSQL URL (expected postgres://user:password@host:port/database)`,
    );
  }
  const checkpoints = url.searchParams.get('checkpoints') ?? env.GRADGUARD_CHECKPOINTS?.trim() ?? '';
  url.searchParams.delete('checkpoints');
  const connection = url.toString();
  const password = url.password ? decodeURIComponent(url.password) : (env.PGPASSWORD ?? '');
  const host = url.host || env.PGHOST || 'localhost';
  const user = decodeURIComponent(url.username) || env.PGUSER || '';
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || env.PGDATABASE || user;
  const shown = `postgres://${user ? `${encodeURIComponent(user)}@` : ''}${host}${url.port || !env.PGPORT || url.host ? '' : `:${env.PGPORT}`}/${database}`;
  const secrets = [spec, connection, url.password, password]
    .filter((s) => s.length >= 3)
    .sort((a, b) => b.length - a.length);
  return {
    connection,
    shown,
    checkpoints: checkpoints || DEFAULT_STORE_DIR,
    scrub: (text) => secrets.reduce((t, s) => t.split(s).join(s === spec || s === connection ? shown : '***'), text),
  };
}
