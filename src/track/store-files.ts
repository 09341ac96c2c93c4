/**
 * The run store's files as the user meets them: one-line errors for a removed run, a read-only store, a full disk,
 * and the private copy a reader opens when the store's directory cannot be written.
 */
import { accessSync, copyFileSync, existsSync, constants as fsConstants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeFsError } from '../io/atomic.js';
import { DB_FILE } from './schema.js';
import { TrackError } from './types.js';

/** The error of a write into a run that `runs rm` removed. */
export function removedError(id: string, path: string): TrackError {
  return new TrackError(
    'RUN_REMOVED',
    `run ${id} was removed from the run store ${path} (gradguard runs rm) while this process was writing it; nothing more is written for it`,
  );
}

export function readOnlyError(dir: string, why = 'read-only'): TrackError {
  return new TrackError(
    'READ_ONLY_STORE',
    `the run store ${dir} is ${why}: reading commands (runs list/show/compare, report, export, dashboard) work, but to train or remove runs make it writable (chmod -R u+w ${dir}) or pass --store another directory`,
  );
}

/**
 * Refuses to open a store for writing when its directory or database cannot be written (a read-only mount, another
 * user's files), before SQLite opens it read-only without a word and fails at the first write.
 */
export function checkWritableFiles(dir: string, absDir: string, path: string): void {
  for (const p of [absDir, path, `${path}-wal`, `${path}-shm`]) {
    try {
      accessSync(p, fsConstants.W_OK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue;
      throw readOnlyError(dir, `read-only (${code ?? 'not writable'} on ${p})`);
    }
  }
}

/**
 * Copies a store's database (and its WAL, when there is one) into a private temporary directory, for a reader that
 * cannot open it in place (a read-only directory). @returns the directory
 */
export function snapshotStore(dir: string, path: string): string {
  const tmp = mkdtempSync(join(tmpdir(), 'gradguard-store-'));
  try {
    copyFileSync(path, join(tmp, DB_FILE));
    if (existsSync(`${path}-wal`)) copyFileSync(`${path}-wal`, join(tmp, `${DB_FILE}-wal`));
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw new TrackError('BAD_STORE', `cannot read the run store ${dir}: ${describeFsError(err)} on ${path}`);
  }
  return tmp;
}

/** A failed write as a one-line TrackError when the disk is full or the store is read-only; else `err` itself. */
export function storeWriteError(err: unknown, dir: string): unknown {
  if (err instanceof TrackError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return err;
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'SQLITE_IOERR_WRITE') {
    return new TrackError(
      'DISK_FULL',
      `cannot write the run store ${join(dir, DB_FILE)}: ENOSPC (no space left on device); free some space or pass --store a directory on another disk`,
    );
  }
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS') return readOnlyError(dir);
  return err;
}
