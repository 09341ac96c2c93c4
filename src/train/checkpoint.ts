/**
 * Checkpoints: everything a run needs to continue bit for bit, written so that a kill at any moment leaves the
 * previous checkpoint intact, and verified before anything is loaded.
 *
 * ## One checkpoint (a directory, DESIGN.md's contract)
 * - `model.safetensors`: the model's state dict under PyTorch's names (`layers.0.weight`, `running_mean`, ...), F32,
 *   `__metadata__ = { format: 'pt' }`, so `model.load_state_dict(safetensors.torch.load_file(path))` works.
 * - `optimizer.safetensors`: the tensors of the optimizer's transform state, by their path in the state
 *   (`inner.1.mu.layers.0.weight`; see `optim.flattenState`).
 * - `state.json`, written last: format and version, step and epoch, the trainer's counters (skipped steps, consecutive
 *   non-finite steps, last loss), the optimizer's other values (step counts that drive the schedule, the clip
 *   transforms' histories) and counters, the data loader's cursor, the state of every RNG the model holds (Dropout
 *   layers and recurrent layers, by module path) and of the default generator, the config, the run id, and the size
 *   and sha256 of both safetensors files. Its last field, `checksum`, is the sha256 of the file's own text without
 *   that field; the file must be byte for byte the text gradguard writes, so any change to it is noticed.
 *
 * ## A run's checkpoint directory (the root passed to `saveCheckpoint`)
 * ```
 * <root>/ckpt-00000120/      a complete checkpoint (never modified once it has its name)
 * <root>/ckpt-00000150/
 * <root>/latest              the name of the newest one, e.g. "ckpt-00000150\n"
 * <root>/.tmp-ckpt-00000180-<pid>/    being written (ignored by readers, removed when its process is gone)
 * <root>/.trash-ckpt-00000120-<pid>/  being deleted (likewise)
 * ```
 * Saving: the three files are written into `.tmp-<name>-<pid>` (each fsynced; state.json last, with the sizes and
 * hashes of the other two), the temporary directory is fsynced and renamed to `<name>`, the root is fsynced, then
 * `latest` is replaced atomically (temporary file, fsync, rename, fsync of the root). Only then are older checkpoints
 * removed: each is first renamed to `.trash-...` (atomic) and then deleted, so no directory named `ckpt-*` is ever
 * partial. The checkpoint `latest` named before is kept as well as the new one.
 *
 * A kill before `latest` is replaced leaves it naming the previous, intact checkpoint; after, the new one, complete.
 * If `latest` is missing (a kill between the very first rename and the first pointer write) the newest `ckpt-*`
 * directory is used. A name already taken (a run resumed from an older checkpoint reaching the same step again) gets
 * a suffix, `ckpt-00000150-1`; `latest` always names the one to use.
 *
 * `loadCheckpoint(dir)` takes a checkpoint directory or a root, checks state.json's checksum and every file's size
 * and sha256 before parsing any tensor, and throws a `CheckpointError` naming the file and what is wrong. Nothing is
 * applied to a model until `applyCheckpoint`, which first checks that the checkpoint fits the experiment (tensor
 * names and shapes, optimizer state, RNGs, data batching, config) and only then writes.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { GradguardError } from '../base/errors.js';
import type { LoaderCursor } from '../data/loader.js';
import { defaultRng } from '../init/random.js';
import { parseSafetensors, SafetensorsError, serializeSafetensors } from '../io/safetensorsFormat.js';
import type { AnyModule } from '../nn/module.js';
import { type FlatState, flattenState, restoreState } from '../optim/optimizer.js';
import { Rng, type RngState } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import { Config, formatPath, withApplicableModelKeys } from './config.js';
import type { Experiment } from './trainer.js';

/** The checkpoint format this code writes; `loadCheckpoint` refuses a newer one. */
export const CHECKPOINT_VERSION = 1;
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'state.json';
export const LATEST_FILE = 'latest';
const DATA_FILES = [MODEL_FILE, OPTIMIZER_FILE] as const;
const CKPT_NAME = /^ckpt-(\d+)(?:-(\d+))?$/;

/**
 * A checkpoint that cannot be written, read or used: a missing, partial or corrupt file, or one that does not fit the
 * experiment. A user error: the CLI prints its one-line message and exits with status 2.
 */
export class CheckpointError extends GradguardError {
  static override readonly code = 'checkpoint.invalid';
  override readonly name = 'CheckpointError';
}

/** Where a run stands, as the trainer saves it; `step` steps are done and `step` is the next one's index. */
export interface TrainProgress {
  step: number;
  /** Epochs whose evaluation has run. */
  epoch: number;
  skippedSteps: number;
  /** Non-finite steps in a row just before `step` (the run is diverged at `train.maxConsecutiveNonFinite`). */
  consecutiveNonFinite: number;
  /** The loss of the last step that updated the weights (NaN before the first). */
  lastLoss: number;
  /** The run in the store this checkpoint belongs to. */
  runId?: string | undefined;
}

type RngSnapshot = { s: RngState; spare: number | null };

/** What `state.json` holds (the checksum aside). */
export interface CheckpointState {
  format: 'gradguard-checkpoint';
  version: number;
  step: number;
  epoch: number;
  runId: string | null;
  /** ISO time of writing; informational. */
  savedAt: string;
  progress: { skippedSteps: number; consecutiveNonFinite: number; lastLoss: number | string };
  optimizer: { stepCount: number; clippedSteps: number; values: Record<string, unknown> };
  loader: LoaderCursor;
  rng: { modules: Record<string, RngSnapshot>; default: RngSnapshot };
  config: unknown;
  files: Record<string, { size: number; sha256: string }>;
}

/** A verified checkpoint in memory (see `loadCheckpoint`); apply it with `applyCheckpoint` or `runTraining`. */
export interface Checkpoint {
  /** The checkpoint directory it was read from. */
  dir: string;
  step: number;
  epoch: number;
  runId: string | null;
  /** The config it was trained with (validated). */
  config: Config;
  /** The model's state dict (PyTorch names). */
  model: Record<string, Tensor>;
  /** The optimizer state: tensors from optimizer.safetensors, values from state.json. */
  optimizer: FlatState;
  state: CheckpointState;
  /** The verified bytes of model.safetensors (for `gradguard export`). */
  modelBytes: Uint8Array;
}

// ---------------------------------------------------------------------------------------------------------------
// RNGs

/**
 * Every generator the model holds, by `<module path>#<property>` (`layers.2#rng`, `net.rnn#rng`; `#rng` for the
 * root). Dropout layers and recurrent layers keep their own; layers built together may share one object, which then
 * appears under each path with the same state.
 */
export function modelRngs(model: AnyModule): Map<string, Rng> {
  const out = new Map<string, Rng>();
  for (const [path, m] of model.namedModules()) {
    for (const [prop, v] of Object.entries(m)) if (v instanceof Rng) out.set(`${path}#${prop}`, v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

function writeFileDurable(path: string, bytes: Uint8Array | string): void {
  const data = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  const fd = openSync(path, 'w', 0o644);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  let fd = -1;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // not every platform can fsync a directory (Windows); the renames are still atomic there
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

const encodeNumber = (x: number): number | string => (Number.isFinite(x) ? x : String(x));
const decodeNumber = (x: unknown): number =>
  typeof x === 'number'
    ? x
    : x === 'NaN'
      ? Number.NaN
      : x === 'Infinity'
        ? Number.POSITIVE_INFINITY
        : x === '-Infinity'
          ? Number.NEGATIVE_INFINITY
          : Number.NaN;

/** The exact text of state.json: the state, pretty-printed, with the sha256 of that text as the last field. */
function stateText(state: CheckpointState): string {
  const body = JSON.stringify(state, null, 2);
  return `${JSON.stringify({ ...state, checksum: sha256(body) }, null, 2)}\n`;
}

function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes `.tmp-*` and `.trash-*` directories left by processes that are gone (or by this one). */
function removeStale(root: string): void {
  for (const name of readdirSync(root)) {
    const m = /^\.(tmp|trash)-.*-(\d+)$/.exec(name);
    if (!m) continue;
    const pid = Number(m[2]);
    if (pid !== process.pid && isAlive(pid)) continue;
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

function readLatest(root: string): string | null {
  let text: string;
  try {
    text = readFileSync(join(root, LATEST_FILE), 'utf8');
  } catch {
    return null;
  }
  return text.trim();
}

/**
 * Writes a checkpoint of `exp` at `progress` into the root directory `root` (created if missing) and makes it the
 * latest; see the file comment for the protocol that keeps the previous one intact whatever moment the process dies.
 * @returns the new checkpoint's directory
 */
export function saveCheckpoint(root: string, exp: Experiment, progress: TrainProgress): string {
  const absRoot = resolve(root);
  try {
    mkdirSync(absRoot, { recursive: true });
  } catch (e) {
    throw new CheckpointError(
      `cannot create the checkpoint directory ${root}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  removeStale(absRoot);
  const base = `ckpt-${String(progress.step).padStart(8, '0')}`;
  const taken = new Set(readdirSync(absRoot));
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}-${i}`;
  const tmp = join(absRoot, `.tmp-${name}-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);

  const modelBytes = serializeSafetensors(exp.model.stateDict(), { format: 'pt' });
  const flat = flattenState(exp.optimizer.state);
  const optBytes = serializeSafetensors(flat.tensors, { format: 'gradguard-optimizer' });
  writeFileDurable(join(tmp, MODEL_FILE), modelBytes);
  writeFileDurable(join(tmp, OPTIMIZER_FILE), optBytes);
  const rngs: Record<string, RngSnapshot> = {};
  for (const [k, r] of modelRngs(exp.model)) rngs[k] = r.getState();
  const state: CheckpointState = {
    format: 'gradguard-checkpoint',
    version: CHECKPOINT_VERSION,
    step: progress.step,
    epoch: progress.epoch,
    runId: progress.runId ?? null,
    savedAt: new Date().toISOString(),
    progress: {
      skippedSteps: progress.skippedSteps,
      consecutiveNonFinite: progress.consecutiveNonFinite,
      lastLoss: encodeNumber(progress.lastLoss),
    },
    optimizer: {
      stepCount: exp.optimizer.stepCount,
      clippedSteps: exp.optimizer.clippedSteps(),
      values: flat.values,
    },
    loader: exp.loader.cursor(),
    rng: { modules: rngs, default: defaultRng().getState() },
    config: exp.config,
    files: {
      [MODEL_FILE]: { size: modelBytes.length, sha256: sha256(modelBytes) },
      [OPTIMIZER_FILE]: { size: optBytes.length, sha256: sha256(optBytes) },
    },
  };
  writeFileDurable(join(tmp, STATE_FILE), stateText(state));
  fsyncDir(tmp);

  const previous = readLatest(absRoot);
  renameSync(tmp, join(absRoot, name));
  fsyncDir(absRoot);
  const pointerTmp = join(absRoot, `.tmp-latest-${process.pid}`);
  writeFileDurable(pointerTmp, `${name}\n`);
  renameSync(pointerTmp, join(absRoot, LATEST_FILE));
  fsyncDir(absRoot);

  // prune: keep the new checkpoint and the one `latest` named before
  for (const old of listCheckpoints(absRoot)) {
    if (old === name || old === previous) continue;
    const trash = join(absRoot, `.trash-${old}-${process.pid}`);
    renameSync(join(absRoot, old), trash);
    rmSync(trash, { recursive: true, force: true });
  }
  return join(absRoot, name);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

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
  const own = readdirSync(dir);
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

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isRngSnapshot = (v: unknown): v is RngSnapshot =>
  isObj(v) &&
  Array.isArray(v.s) &&
  v.s.length === 4 &&
  v.s.every((x) => Number.isInteger(x)) &&
  (v.spare === null || typeof v.spare === 'number');

/** Reads and checks state.json: valid JSON, the exact text gradguard writes, its checksum, its fields. */
function readState(dir: string): CheckpointState {
  const path = join(dir, STATE_FILE);
  if (!existsSync(path)) {
    const partial = DATA_FILES.some((f) => existsSync(join(dir, f)));
    fail(
      dir,
      partial
        ? `${STATE_FILE} is missing: the checkpoint was never finished (gradguard writes ${STATE_FILE} last)`
        : `${STATE_FILE} is missing`,
    );
  }
  const text = readFileSync(path, 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    fail(dir, `${STATE_FILE} is not valid JSON (${(e as Error).message.split('\n')[0]}): truncated or damaged`);
  }
  if (!isObj(parsed) || typeof parsed.checksum !== 'string') fail(dir, `${STATE_FILE} has no checksum: damaged`);
  const { checksum, ...rest } = parsed;
  const state = rest as unknown as CheckpointState;
  if (state.format !== 'gradguard-checkpoint') fail(dir, `${STATE_FILE} is not a gradguard checkpoint state`);
  if (typeof state.version !== 'number' || state.version > CHECKPOINT_VERSION) {
    fail(
      dir,
      `${STATE_FILE} has format version ${String(state.version)}; this gradguard reads version ${CHECKPOINT_VERSION} (upgrade gradguard)`,
    );
  }
  if (sha256(JSON.stringify(state, null, 2)) !== checksum) {
    fail(dir, `${STATE_FILE} does not match its checksum: damaged or edited`);
  }
  if (stateText(state) !== text)
    fail(dir, `${STATE_FILE} is not byte for byte what gradguard wrote: damaged or edited`);
  const bad = (what: string): never => fail(dir, `${STATE_FILE}: ${what}`);
  if (!isInt(state.step) || !isInt(state.epoch)) bad('step and epoch must be integers >= 0');
  if (!isObj(state.files)) bad('no files');
  for (const f of DATA_FILES) {
    const e = state.files[f];
    if (!isObj(e) || !isInt(e.size) || typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(e.sha256)) {
      bad(`no size and sha256 for ${f}`);
    }
  }
  if (!isObj(state.progress) || !isInt(state.progress.skippedSteps) || !isInt(state.progress.consecutiveNonFinite))
    bad('progress counters missing');
  if (!isObj(state.optimizer) || !isInt(state.optimizer.stepCount) || !isInt(state.optimizer.clippedSteps))
    bad('optimizer counters missing');
  if (!isObj(state.optimizer.values)) bad('optimizer values missing');
  if (
    !isObj(state.loader) ||
    !isInt(state.loader.epoch) ||
    !isInt(state.loader.batch) ||
    !isRngSnapshot(state.loader.rng)
  )
    bad('data loader cursor missing');
  if (!isObj(state.rng) || !isObj(state.rng.modules) || !isRngSnapshot(state.rng.default)) bad('RNG states missing');
  for (const [k, v] of Object.entries(state.rng.modules)) if (!isRngSnapshot(v)) bad(`RNG state of ${k} is malformed`);
  return state;
}

/** Reads a data file and checks its size and sha256 against state.json. */
function readVerified(dir: string, file: string, expect: { size: number; sha256: string }): Uint8Array {
  const path = join(dir, file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return fail(dir, code === 'ENOENT' ? `${file} is missing` : `cannot read ${file} (${code ?? String(e)})`);
  }
  if (bytes.length !== expect.size) {
    fail(
      dir,
      `${file} is ${bytes.length} bytes, ${STATE_FILE} records ${expect.size}: ${bytes.length < expect.size ? 'truncated' : 'damaged'}`,
    );
  }
  const got = sha256(bytes);
  if (got !== expect.sha256) {
    fail(
      dir,
      `${file} does not match its sha256 in ${STATE_FILE} (${got.slice(0, 12)}… vs ${expect.sha256.slice(0, 12)}…): damaged`,
    );
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

/**
 * Reads a checkpoint: `dir` is a checkpoint directory or a run's checkpoint root (its `latest` is used). state.json's
 * checksum and both files' sizes and sha256 are checked before any tensor is parsed; the config is validated.
 * @throws CheckpointError naming the file and what is wrong (missing, truncated, damaged, newer format)
 */
export function loadCheckpoint(dir: string): Checkpoint {
  const cdir = resolveCheckpointDir(dir);
  const state = readState(cdir);
  const bytes: Record<string, Uint8Array> = {};
  for (const f of DATA_FILES) bytes[f] = readVerified(cdir, f, state.files[f]!);
  const parse = (f: string): Record<string, Tensor> => {
    try {
      return parseSafetensors(bytes[f]!);
    } catch (e) {
      if (e instanceof SafetensorsError) fail(cdir, `${f}: ${e.message}`);
      throw e;
    }
  };
  const cfg = Config.safeParse(withApplicableModelKeys(state.config));
  if (!cfg.success) {
    const issue = cfg.error.issues[0]!;
    fail(cdir, `${STATE_FILE}: the saved config is not valid here: ${formatPath(issue.path)}: ${issue.message}`);
  }
  return {
    dir: cdir,
    step: state.step,
    epoch: state.epoch,
    runId: typeof state.runId === 'string' ? state.runId : null,
    config: cfg.data,
    model: parse(MODEL_FILE),
    optimizer: { tensors: parse(OPTIMIZER_FILE), values: state.optimizer.values },
    state,
    modelBytes: bytes[MODEL_FILE]!,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Applying

/** Config keys a resumed run may change (how long to train, logging, checkpointing, non-finite policy, data paths). */
const RESUMABLE_CHANGES = [
  'train.epochs',
  'train.maxSteps',
  'train.logEvery',
  'train.checkpointEvery',
  'train.onNonFinite',
  'train.maxConsecutiveNonFinite',
  'monitor',
  'data.dir',
  'data.file',
  'data.testFile',
  'data.mirrors',
];

/** The first key path where two configs differ and a resume must not (see RESUMABLE_CHANGES), or null. */
export function configConflict(saved: unknown, now: unknown, path: string[] = []): string | null {
  const p = path.join('.');
  if (RESUMABLE_CHANGES.includes(p)) return null;
  if (isObj(saved) && isObj(now)) {
    for (const k of new Set([...Object.keys(saved), ...Object.keys(now)])) {
      const c = configConflict(saved[k], now[k], [...path, k]);
      if (c !== null) return c;
    }
    return null;
  }
  return JSON.stringify(saved) === JSON.stringify(now) ? null : p || '(root)';
}

function getPath(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const k of path.split('.')) cur = isObj(cur) ? cur[k] : undefined;
  return cur;
}

/**
 * Restores a checkpoint into an experiment built from a compatible config: weights and buffers, optimizer state and
 * counters, data loader cursor, every model RNG and the default generator. Everything is checked first; on a mismatch
 * a `CheckpointError` says what differs and nothing has been changed.
 * @returns the trainer's progress to continue from
 */
export function applyCheckpoint(exp: Experiment, ckpt: Checkpoint): TrainProgress {
  const where = ckpt.dir;
  const conflict = configConflict(ckpt.config, exp.config);
  if (conflict !== null) {
    const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
    fail(
      where,
      `the config differs at ${conflict} (checkpoint ${show(getPath(ckpt.config, conflict))}, now ${show(getPath(exp.config, conflict))}); a resumed run must keep it`,
    );
  }
  // model: names and shapes
  const own = exp.model.stateDict();
  const missing = Object.keys(own).filter((k) => !(k in ckpt.model));
  const extra = Object.keys(ckpt.model).filter((k) => !(k in own));
  if (missing.length || extra.length) {
    fail(
      where,
      `${MODEL_FILE} does not fit the model:${missing.length ? ` missing ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}` : ''}${extra.length ? ` unexpected ${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ', ...' : ''}` : ''}`,
    );
  }
  for (const [k, t] of Object.entries(own)) {
    const s = ckpt.model[k]!;
    if (s.shape.length !== t.shape.length || s.shape.some((d, i) => d !== t.shape[i])) {
      fail(where, `${MODEL_FILE}: ${k} has shape [${s.shape}], the model expects [${t.shape}]`);
    }
  }
  // optimizer: same tensors with the same sizes
  const flatNow = flattenState(exp.optimizer.state);
  for (const [k, t] of Object.entries(flatNow.tensors)) {
    const s = ckpt.optimizer.tensors[k];
    if (!s) fail(where, `${OPTIMIZER_FILE} has no '${k}': saved from another optimizer or model`);
    if (s.size !== t.size)
      fail(where, `${OPTIMIZER_FILE}: '${k}' has ${s.size} values, the optimizer expects ${t.size}`);
  }
  const extraOpt = Object.keys(ckpt.optimizer.tensors).filter((k) => !(k in flatNow.tensors));
  if (extraOpt.length) fail(where, `${OPTIMIZER_FILE} has '${extraOpt[0]}', which this optimizer does not`);
  // RNGs: the same set of generators
  const rngs = modelRngs(exp.model);
  const savedRngs = ckpt.state.rng.modules;
  for (const k of rngs.keys()) if (!(k in savedRngs)) fail(where, `${STATE_FILE} has no RNG state for ${k}`);
  for (const k of Object.keys(savedRngs))
    if (!rngs.has(k)) fail(where, `${STATE_FILE} has an RNG for ${k}, which the model lacks`);
  // data: same split size and batching
  const c = ckpt.state.loader;
  const l = exp.loader;
  for (const k of ['n', 'batchSize', 'shuffle', 'dropLast'] as const) {
    if (c[k] !== l[k]) {
      fail(
        where,
        `the data loader differs: ${k} ${String(c[k])} (checkpoint) vs ${String(l[k])} (now); resume with the same data and train.batchSize`,
      );
    }
  }
  if (c.batch > l.batchesPerEpoch)
    fail(where, `the data cursor (batch ${c.batch}) is past an epoch of ${l.batchesPerEpoch} batches`);

  // every check passed: write
  exp.model.loadStateDict(ckpt.model);
  restoreState(exp.optimizer.state, ckpt.optimizer);
  exp.optimizer.restoreCounters(ckpt.state.optimizer.stepCount, ckpt.state.optimizer.clippedSteps);
  exp.loader.restore(c);
  for (const [k, r] of rngs) r.setState(savedRngs[k]!);
  defaultRng().setState(ckpt.state.rng.default);
  return {
    step: ckpt.step,
    epoch: ckpt.epoch,
    skippedSteps: ckpt.state.progress.skippedSteps,
    consecutiveNonFinite: ckpt.state.progress.consecutiveNonFinite,
    lastLoss: decodeNumber(ckpt.state.progress.lastLoss),
    runId: ckpt.runId ?? undefined,
  };
}

/** Where a stored run's checkpoints live: `<store>/checkpoints/<runId>/`. */
export function runCheckpointDir(storeDir: string, runId: string): string {
  return join(resolve(storeDir), 'checkpoints', runId);
}

/** How a session continues from a checkpoint (the CLI's `train --resume` builds it; see cli/checkpoint-commands.ts). */
export interface ResumePlan {
  checkpoint: Checkpoint;
  /** The run to continue in the store (the checkpoint's run, when the store has it); null: record a new run. */
  runId: string | null;
  /**
   * Drop what the run logged after the checkpoint's step: set when the rest of the run may differ from what was
   * logged (an older checkpoint than the run's latest, or a changed config). Otherwise the steps after it are logged
   * again with the same values, so no finished step's metrics ever disappear from the store.
   */
  truncate: boolean;
  /** Where to write further checkpoints when there is no run store (the checkpoint's root, if it has one). */
  root: string | null;
}

/** The root a checkpoint directory belongs to (its parent when that holds `latest`), or null for a lone one. */
export function checkpointRootOf(dir: string): string | null {
  const abs = resolve(dir);
  if (existsSync(join(abs, LATEST_FILE)) || listCheckpoints(abs).length) return abs;
  const parent = dirname(abs);
  if (CKPT_NAME.test(basename(abs)) && existsSync(join(parent, LATEST_FILE))) return parent;
  return null;
}
