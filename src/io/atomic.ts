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
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o644);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw err;
  }
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some file systems cannot fsync a directory; the rename itself is still atomic.
  }
  return path;
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
