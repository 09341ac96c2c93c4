/** Writing files all or nothing, so a kill at any moment leaves either the old file or the new one. */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * Writes `data` to `path` all or nothing: a temporary file in the same directory, fsynced, then renamed over `path`.
 * @returns `path`
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): string {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  try {
    writeFileDurable(tmp, bytes, 'wx');
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone (or never created)
    }
    throw err;
  }
  fsyncDir(dirname(path));
  return path;
}

/**
 * Writes `data` to `path` and fsyncs it before returning (not atomic by itself: the building block of
 * `writeFileAtomic` and of the checkpoint writer, which renames a whole directory of such files into place).
 * @param flag 'w' (create or truncate) or 'wx' (fail if `path` exists)
 */
export function writeFileDurable(path: string, data: string | Uint8Array, flag: 'w' | 'wx' = 'w'): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const fd = openSync(path, flag, 0o644);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Fsyncs a directory, so that the renames and creations in it are durable; a no-op where that is impossible. */
export function fsyncDir(dir: string): void {
  let fd = -1;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // not every platform or file system can fsync a directory (Windows); the renames are still atomic there
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/**
 * `mkdir -p` that fails fast: creates the missing directories of `path` one by one from the nearest existing
 * ancestor, so a parent where nothing can be created (`/proc/x`, a read-only mount) throws at once. Node's own
 * `mkdirSync(path, { recursive: true })` loops forever on `/proc` (it retries a mkdir that keeps failing with ENOENT).
 * @throws the failing mkdir's error (`ENOENT`, `EACCES`, `EROFS`, `ENOTDIR`, `EEXIST` for a file in the way)
 */
export function makeDirs(path: string): void {
  const missing: string[] = [];
  let cur = resolve(path);
  for (;;) {
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(cur);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (st !== undefined) {
      if (!st.isDirectory()) {
        throw Object.assign(new Error(`EEXIST: not a directory, mkdir '${cur}'`), {
          code: cur === resolve(path) ? 'EEXIST' : 'ENOTDIR',
          path: cur,
        });
      }
      break;
    }
    missing.push(cur);
    const parent = dirname(cur);
    if (parent === cur) break;
    cur = parent;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      mkdirSync(missing[i]!);
    } catch (err) {
      // another process made it meanwhile
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(missing[i]!).isDirectory()) throw err;
    }
  }
}

/** A file system error code and what it means, for one-line messages: `ENOSPC (no space left on device)`. */
export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const meaning: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EFBIG: 'file too large',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOENT: 'no such file or directory',
    ENOTDIR: 'a parent is not a directory',
    EEXIST: 'a file is in the way',
    EISDIR: 'is a directory',
    EIO: 'input/output error',
  };
  if (typeof code !== 'string') return err instanceof Error ? err.message.split('\n')[0]! : String(err);
  return meaning[code] ? `${code} (${meaning[code]})` : code;
}
