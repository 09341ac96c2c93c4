/**
 * Checkpoints: everything a run needs to continue bit for bit, written so that a kill at any moment leaves the
 * previous checkpoint intact, and verified before anything is loaded.
 *
 * ## One checkpoint (a directory, the contract in docs/design.md)
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
 * partial. The newest `keep` checkpoints are kept (3 by default, `train.keepCheckpoints`), and always the one
 * `latest` named before.
 *
 * A kill before `latest` is replaced leaves it naming the previous, intact checkpoint; after, the new one, complete.
 * A write that fails (a full disk: ENOSPC) removes what it wrote and throws a one-line `CheckpointError` naming the
 * path and the error; the previous checkpoint is untouched.
 * If `latest` is missing (a kill between the very first rename and the first pointer write) the newest `ckpt-*`
 * directory is used. A name already taken (a run resumed from an older checkpoint reaching the same step again) gets
 * a suffix, `ckpt-00000150-1`; `latest` always names the one to use.
 *
 * `loadCheckpoint(dir)` takes a checkpoint directory or a root, checks state.json's checksum and every file's size
 * and sha256 before parsing any tensor, and throws a `CheckpointError` naming the file and what is wrong. Nothing is
 * applied to a model until `applyCheckpoint`, which first checks that the checkpoint fits the experiment (tensor
 * names and shapes, optimizer state, RNGs, data batching, config) and only then writes.
 *
 * The code is split by seam: checkpoint-format.ts (what state.json holds, its text and its zod schema),
 * checkpoint-layout.ts (directories on disk: writing, keeping, resolving), and this file (building a checkpoint from
 * an experiment, reading and verifying one, applying it).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRng } from '../init/random.js';
import { describeFsError } from '../io/atomic.js';
import { parseSafetensors, SafetensorsError, serializeSafetensors } from '../io/safetensorsFormat.js';
import type { AnyModule } from '../nn/module.js';
import { flattenState, restoreState } from '../optim/optimizer.js';
import { Rng } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  CHECKPOINT_VERSION,
  type Checkpoint,
  CheckpointError,
  type CheckpointState,
  DATA_FILES,
  decodeNumber,
  encodeNumber,
  MODEL_FILE,
  OPTIMIZER_FILE,
  parseState,
  type RngSnapshot,
  STATE_FILE,
  sha256,
  stateText,
  type TrainProgress,
} from './checkpoint-format.js';
import { resolveCheckpointDir, type WriteOptions, writeCheckpoint } from './checkpoint-layout.js';
import { Config, formatPath, withApplicableModelKeys } from './config.js';
import type { Experiment } from './trainer.js';

export {
  CHECKPOINT_VERSION,
  type Checkpoint,
  CheckpointError,
  type CheckpointState,
  CheckpointStateSchema,
  LATEST_FILE,
  MODEL_FILE,
  OPTIMIZER_FILE,
  STATE_FILE,
  type TrainProgress,
} from './checkpoint-format.js';
export {
  checkpointRootOf,
  DEFAULT_KEEP_CHECKPOINTS,
  listCheckpoints,
  resolveCheckpointDir,
  runCheckpointDir,
  type SavePhase,
  type WriteOptions,
} from './checkpoint-layout.js';

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

/**
 * Writes a checkpoint of `exp` at `progress` into the root directory `root` (created if missing) and makes it the
 * latest; see the file comment for the protocol that keeps the previous one intact whatever moment the process dies.
 * @returns the new checkpoint's directory
 */
export function saveCheckpoint(
  root: string,
  exp: Experiment,
  progress: TrainProgress,
  opts: WriteOptions = {},
): string {
  const modelBytes = serializeSafetensors(exp.model.stateDict(), { format: 'pt' });
  const flat = flattenState(exp.optimizer.state);
  const optBytes = serializeSafetensors(flat.tensors, { format: 'gradguard-optimizer' });
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
  const files = { [MODEL_FILE]: modelBytes, [OPTIMIZER_FILE]: optBytes, [STATE_FILE]: stateText(state) };
  return writeCheckpoint(root, progress.step, files, opts);
}

// ---------------------------------------------------------------------------------------------------------------
// Reading

function fail(dir: string, what: string): never {
  throw new CheckpointError(`checkpoint ${dir}: ${what}`);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/**
 * Reads and checks state.json: readable, valid JSON, the exact text gradguard writes, its checksum, then every field
 * against the schema (`CheckpointStateSchema`), so an edited file with its checksum recomputed is still refused.
 */
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
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    return fail(dir, `cannot read ${STATE_FILE}: ${describeFsError(e)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    fail(dir, `${STATE_FILE} is not valid JSON (${(e as Error).message.split('\n')[0]}): truncated or damaged`);
  }
  if (!isObj(parsed) || typeof parsed.checksum !== 'string') fail(dir, `${STATE_FILE} has no checksum: damaged`);
  const { checksum, ...rest } = parsed;
  const raw = rest as unknown as CheckpointState;
  if (raw.format !== 'gradguard-checkpoint') fail(dir, `${STATE_FILE} is not a gradguard checkpoint state`);
  if (typeof raw.version !== 'number' || raw.version > CHECKPOINT_VERSION) {
    fail(
      dir,
      `${STATE_FILE} has format version ${String(raw.version)}; this gradguard reads version ${CHECKPOINT_VERSION} (upgrade gradguard)`,
    );
  }
  if (sha256(JSON.stringify(raw, null, 2)) !== checksum) {
    fail(dir, `${STATE_FILE} does not match its checksum: damaged or edited`);
  }
  if (stateText(raw) !== text) fail(dir, `${STATE_FILE} is not byte for byte what gradguard wrote: damaged or edited`);
  const res = parseState(raw);
  if ('problem' in res) fail(dir, `${STATE_FILE}: ${res.problem}`);
  return res.state;
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
  'train.checkpointMinutes',
  'train.keepCheckpoints',
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

/** The kind of a flattened optimizer value: a number (NaN and ±Infinity as their strings), array, string, flag, null. */
function valueKind(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || v === 'NaN' || v === 'Infinity' || v === '-Infinity') return 'number';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'boolean' ? 'flag' : typeof v;
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
  // optimizer values: the same transforms (kind), each value of the kind this optimizer holds
  const saved = ckpt.optimizer.values;
  for (const [k, now] of Object.entries(flatNow.values)) {
    if (!(k in saved)) fail(where, `${STATE_FILE}: optimizer.values has no '${k}': saved from another optimizer`);
    const was = saved[k];
    if (k === 'kind' || k.endsWith('.kind')) {
      if (was !== now)
        fail(
          where,
          `${STATE_FILE}: optimizer.values.${k} is ${JSON.stringify(was)}, this optimizer has ${JSON.stringify(now)}`,
        );
    } else if (valueKind(was) !== valueKind(now) && !(valueKind(was) === 'null' || valueKind(now) === 'null')) {
      fail(
        where,
        `${STATE_FILE}: optimizer.values.${k} is a ${valueKind(was)}, this optimizer holds a ${valueKind(now)}`,
      );
    }
  }
  const extraValue = Object.keys(saved).find((k) => !(k in flatNow.values));
  if (extraValue !== undefined)
    fail(where, `${STATE_FILE}: optimizer.values has '${extraValue}', which this optimizer does not`);
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
