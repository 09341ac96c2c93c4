/**
 * Run ids as file names: every id read from a store (or a checkpoint, or a URL) is checked here before a path is built
 * from it, so a tampered `runs.db` (an id of `../../victim`) can never make gradguard remove or write a file outside
 * the directory it means.
 */
import { randomBytes } from 'node:crypto';
import { isAbsolute, relative, resolve } from 'node:path';
import { TrackError } from './types.js';

/** What a run id may look like: letters, digits, dots, dashes and underscores, 1 to 128 of them, no `..`. */
export const RUN_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Whether `id` is a well-formed run id (see {@link RUN_ID_RE}); ids gradguard makes always are. */
export function isValidRunId(id: unknown): id is string {
  return typeof id === 'string' && RUN_ID_RE.test(id) && !id.includes('..');
}

/**
 * Returns `id` when it is a well-formed run id.
 * @param where where the id came from, for the message (`the run store /x/runs.db`)
 * @throws TrackError `BAD_RUN_ID`
 */
export function checkRunId(id: unknown, where: string): string {
  if (isValidRunId(id)) return id;
  const shown = JSON.stringify(String(id)).slice(0, 80);
  throw new TrackError(
    'BAD_RUN_ID',
    `${where} holds a malformed run id ${shown} (ids are letters, digits, '.', '-' and '_', no '..'): the file was edited or damaged; nothing was written or removed`,
  );
}

/**
 * `root/name` for a run id `name`, checked to stay inside `root` (a malformed id, or one that would lead out of
 * `root`, throws `BAD_RUN_ID`).
 * @param where where the id came from, for the message
 */
export function runPath(root: string, id: string, where: string, suffix = ''): string {
  checkRunId(id, where);
  const absRoot = resolve(root);
  const path = resolve(absRoot, `${id}${suffix}`);
  if (!isInside(absRoot, path)) {
    throw new TrackError('BAD_RUN_ID', `${where}: the run id ${JSON.stringify(id)} leads outside ${root}; refused`);
  }
  return path;
}

/** Whether `path` is strictly inside the directory `root` (both resolved). */
export function isInside(root: string, path: string): boolean {
  const rel = relative(resolve(root), resolve(path));
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/** `20261126-114512-a3f9`: the UTC time and 16 random bits (ids sort by creation time). */
export function newRunId(now: number = Date.now()): string {
  const d = new Date(now);
  const p2 = (n: number) => String(n).padStart(2, '0');
  const date = `${d.getUTCFullYear()}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}`;
  const time = `${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}`;
  return `${date}-${time}-${randomBytes(2).toString('hex')}`;
}
