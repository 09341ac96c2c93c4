/**
 * Checkpoints on disk: a run's checkpoint root, how a checkpoint directory is written so that a kill or a full disk
 * at any moment leaves the previous one intact, which ones are kept, and how a directory given by the user is
 * resolved to one checkpoint. The bytes written come from checkpoint.ts; see it for the whole layout.
 */
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { describeFsError, fsyncDir, makeDirs, writeFileDurable } from '../io/atomic.js';
import { runPath } from '../track/ids.js';
import { processAlive } from '../track/process.js';
import { CheckpointError, LATEST_FILE, MODEL_FILE, OPTIMIZER_FILE, STATE_FILE } from './checkpoint-format.js';

export const CKPT_NAME = /^ckpt-(\d+)(?:-(\d+))?$/;
/** How many checkpoints a root keeps by default (`train.keepCheckpoints`). */
export const DEFAULT_KEEP_CHECKPOINTS = 3;

/** Where a checkpoint write is; `saveCheckpoint`'s `onPhase` is called at each (a test seam for kills and faults). */
export type SavePhase = 'files' | 'state' | 'renamed' | 'latest' | 'pruned';

export interface WriteOptions {
  /** Checkpoints to keep, the new one included (default 3; the one `latest` named before is always kept too). */
  keep?: number | undefined;
  /** Called as the write passes each phase (tests kill the process or inject faults there). */
  onPhase?: ((phase: SavePhase, dir: string) => void) | undefined;
}

/** The files of one checkpoint, state.json last. */
export interface CheckpointFiles {
  [MODEL_FILE]: Uint8Array;
  [OPTIMIZER_FILE]: Uint8Array;
  [STATE_FILE]: string;
}

/** Removes `.tmp-*` and `.trash-*` directories left by processes that are gone (or by this one). */
function removeStale(root: string): void {
  for (const name of readdirSync(root)) {
    const m = /^\.(tmp|trash)-.*-(\d+)$/.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid !== process.pid && processAlive(pid)) continue;
    rmSync(join(root, name), { recursive: true, force: true });
  }
}

/** The complete checkpoints in a root, oldest step first (name order within a step). */
export function listCheckpoints(root: string): string[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return [];
  }
  const found: { name: string; step: number; n: number }[] = [];
  for (const name of names) {
    const m = CKPT_NAME.exec(name);
    if (!m) continue;
    try {
      if (!statSync(join(root, name)).isDirectory()) continue;
    } catch {
      continue;
    }
    found.push({ name, step: Number(m[1]), n: m[2] === undefined ? 0 : Number(m[2]) });
  }
  found.sort((a, b) => a.step - b.step || a.n - b.n);
  return found.map((f) => f.name);
}

export function readLatest(root: string): string | null {
  let text: string;
  try {
    text = readFileSync(join(root, LATEST_FILE), 'utf8');
  } catch {
    return null;
  }
  return text.trim();
}

/**
 * Writes one checkpoint at `step` into `root` (created if missing) and makes it the latest, then prunes to the newest
 * `keep`. A failure before `latest` is replaced (a full disk, a read-only directory) removes what was half-written
 * and throws a one-line `CheckpointError` naming the path and the error code; the previous checkpoint stays intact
 * and `latest` still names it.
 * @returns the new checkpoint's directory
 */
export function writeCheckpoint(root: string, step: number, files: CheckpointFiles, opts: WriteOptions = {}): string {
  const absRoot = resolve(root);
  let previous: string | null = null;
  const failed = (what: string, path: string, e: unknown): never => {
    const kept = previous ? `the previous checkpoint ${previous} is intact` : 'no checkpoint was written';
    throw new CheckpointError(`cannot ${what} ${path}: ${describeFsError(e)}; ${kept}`);
  };
  try {
    makeDirs(absRoot);
  } catch (e) {
    failed('create the checkpoint directory', root, e);
  }
  removeStale(absRoot);
  const base = `ckpt-${String(step).padStart(8, '0')}`;
  const taken = new Set(readdirSync(absRoot));
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}-${i}`;
  const tmp = join(absRoot, `.tmp-${name}-${process.pid}`);
  const pointerTmp = join(absRoot, `.tmp-latest-${process.pid}`);
  const phase = (p: SavePhase, dir: string) => opts.onPhase?.(p, dir);
  previous = readLatest(absRoot);
  let current = tmp;
  try {
    rmSync(tmp, { recursive: true, force: true });
    current = tmp;
    makeDirs(tmp);
    current = join(tmp, MODEL_FILE);
    writeFileDurable(current, files[MODEL_FILE]);
    current = join(tmp, OPTIMIZER_FILE);
    writeFileDurable(current, files[OPTIMIZER_FILE]);
    phase('files', tmp);
    current = join(tmp, STATE_FILE);
    writeFileDurable(current, files[STATE_FILE]);
    fsyncDir(tmp);
    phase('state', tmp);
    current = join(absRoot, name);
    renameSync(tmp, current);
    fsyncDir(absRoot);
    phase('renamed', current);
    current = pointerTmp;
    writeFileDurable(pointerTmp, `${name}\n`);
    renameSync(pointerTmp, join(absRoot, LATEST_FILE));
    fsyncDir(absRoot);
  } catch (e) {
    if (e instanceof CheckpointError || !(e as NodeJS.ErrnoException).code) throw e;
    // nothing half-written stays: the temporary directory, the pointer's temporary file, a renamed new checkpoint
    // that `latest` does not name
    rmSync(tmp, { recursive: true, force: true });
    rmSync(pointerTmp, { force: true });
    if (readLatest(absRoot) !== name) rmSync(join(absRoot, name), { recursive: true, force: true });
    failed('write the checkpoint', current, e);
  }
  phase('latest', join(absRoot, name));

  // prune: keep the newest `keep` (the new one among them) and the one `latest` named before
  const keep = new Set([name, ...(previous ? [previous] : [])]);
  const all = listCheckpoints(absRoot);
  const wanted = Math.max(1, opts.keep ?? DEFAULT_KEEP_CHECKPOINTS);
  for (let i = all.length - 1; i >= 0 && keep.size < wanted; i--) keep.add(all[i]!);
  for (const old of all) {
    if (keep.has(old)) continue;
    const trash = join(absRoot, `.trash-${old}-${process.pid}`);
    try {
      renameSync(join(absRoot, old), trash);
      rmSync(trash, { recursive: true, force: true });
    } catch {
      // pruning is best effort: a checkpoint left behind is whole, and removed next time
    }
  }
  phase('pruned', join(absRoot, name));
  return join(absRoot, name);
}

function fail(dir: string, what: string): never {
  throw new CheckpointError(`checkpoint ${dir}: ${what}`);
}

/**
 * The checkpoint directory `dir` stands for: itself when it holds state.json (or safetensors files: a partial
 * checkpoint, refused by `loadCheckpoint`), else the one its `latest` file names, else its newest `ckpt-*` directory.
 * @throws CheckpointError when there is none
 */
export function resolveCheckpointDir(dir: string): string {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch {
    throw new CheckpointError(`checkpoint ${dir}: no such directory`);
  }
  if (!st.isDirectory()) {
    throw new CheckpointError(
      `checkpoint ${dir}: not a directory (a checkpoint is a directory with ${MODEL_FILE}, ${OPTIMIZER_FILE} and ${STATE_FILE})`,
    );
  }
  let own: string[];
  try {
    own = readdirSync(dir);
  } catch (e) {
    return fail(dir, `cannot read the directory: ${describeFsError(e)}`);
  }
  if (own.includes(STATE_FILE) || own.includes(MODEL_FILE) || own.includes(OPTIMIZER_FILE)) return dir;
  if (CKPT_NAME.test(basename(resolve(dir)))) return dir; // an emptied checkpoint: state.json is reported missing
  const all = listCheckpoints(dir);
  const latest = readLatest(dir);
  if (latest !== null) {
    if (!CKPT_NAME.test(latest)) {
      fail(dir, `${LATEST_FILE} holds '${latest.slice(0, 40)}', not a checkpoint name (damaged)`);
    }
    if (!all.includes(latest)) {
      fail(
        dir,
        `${LATEST_FILE} names ${latest}, which does not exist${all.length ? `; available: ${all.join(', ')} (pass one of them)` : ''}`,
      );
    }
    return join(dir, latest);
  }
  if (all.length) return join(dir, all[all.length - 1]!);
  return fail(
    dir,
    `no checkpoint here (expected ${STATE_FILE}, ${MODEL_FILE} and ${OPTIMIZER_FILE}, or a '${LATEST_FILE}' file and ckpt-* directories)`,
  );
}

/**
 * Where a stored run's checkpoints live: `<store>/checkpoints/<runId>/`. The id is checked (a malformed one, or one
 * that leads outside `<store>/checkpoints`, throws TrackError `BAD_RUN_ID`), since it comes from a store or a
 * state.json.
 */
export function runCheckpointDir(storeDir: string, runId: string): string {
  return runPath(join(resolve(storeDir), 'checkpoints'), runId, `the run store ${storeDir}`);
}

/** The root a checkpoint directory belongs to (its parent when that holds `latest`), or null for a lone one. */
export function checkpointRootOf(dir: string): string | null {
  const abs = resolve(dir);
  if (existsSync(join(abs, LATEST_FILE)) || listCheckpoints(abs).length) return abs;
  const parent = dirname(abs);
  if (CKPT_NAME.test(basename(abs)) && existsSync(join(parent, LATEST_FILE))) return parent;
  return null;
}
