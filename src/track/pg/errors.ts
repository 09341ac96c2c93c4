/**
 * The PostgreSQL store's errors as the user meets them: one line naming the store without its password, with a
 * TrackError code (STORE_UNAVAILABLE for a server that is down, refuses the login or drops the connection; DISK_FULL;
 * READ_ONLY_STORE), and every other error's message and stack scrubbed of the credentials.
 */
import { TrackError } from '../types.js';
import type { PgSpec } from './url.js';

/** A failed write: a full disk or a role that may not write as their TrackError, else as {@link pgError}. */
export function pgWriteError(err: unknown, spec: PgSpec): unknown {
  if (err instanceof TrackError) return err;
  const e = err as { code?: string; message: string };
  if (e.code === '53100') {
    return new TrackError('DISK_FULL', `cannot write the run store ${spec.shown}: the server's disk is full`);
  }
  if (e.code === '25006' || e.code === '42501') {
    return new TrackError(
      'READ_ONLY_STORE',
      `the run store ${spec.shown} cannot be written (${spec.scrub(e.message)}); use a role that may write it`,
    );
  }
  return pgError(err, spec);
}

/** Connection failures as STORE_UNAVAILABLE; any other error with its message scrubbed of credentials. */
export function pgError(err: unknown, spec: PgSpec): unknown {
  if (err instanceof TrackError) return err;
  const e = err as Error & { code?: string };
  if (isConnectionError(e)) {
    return new TrackError(
      'STORE_UNAVAILABLE',
      `lost the connection to the run store ${spec.shown}: ${spec.scrub(e.message)}`,
    );
  }
  e.message = spec.scrub(e.message);
  if (e.stack) e.stack = spec.scrub(e.stack);
  return e;
}

/** Whether an error means the server is unreachable or the connection is gone (not a problem of one statement). */
export function isConnectionError(e: { code?: string; message?: string }): boolean {
  const code = e.code ?? '';
  return (
    ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH'].includes(
      code,
    ) ||
    code.startsWith('08') || // connection exceptions
    code === '57P01' || // admin shutdown
    code === '28P01' || // password authentication failed
    code === '28000' || // invalid authorization
    code === '3D000' || // no such database
    /Connection terminated|Client was closed|not queryable/i.test(e.message ?? '')
  );
}

/** An error of `open` as the one line the user gets. */
export function openError(err: Error & { code?: string; track?: string }, spec: PgSpec): TrackError | Error {
  const msg = spec.scrub(err.message);
  switch (err.track) {
    case 'NO_STORE':
      return new TrackError(
        'NO_STORE',
        `no run store at ${spec.shown} (the database ${msg}); train a model first, or point --store at the database that holds the runs`,
      );
    case 'STORE_TOO_NEW':
      return new TrackError('STORE_TOO_NEW', `${spec.shown} ${msg}`);
    case 'BAD_STORE':
      return new TrackError('BAD_STORE', `${spec.shown} ${msg}`);
  }
  if (isConnectionError(err)) {
    return new TrackError(
      'STORE_UNAVAILABLE',
      `cannot connect to the run store ${spec.shown}: ${msg || err.code}; check the URL (or the PG* variables) and that the server is up`,
    );
  }
  err.message = msg;
  if (err.stack) err.stack = spec.scrub(err.stack);
  return err;
}
