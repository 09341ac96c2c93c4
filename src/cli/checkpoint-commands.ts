/**
 * The checkpoint side of the CLI: `gradguard train --resume RUN|DIR` (resolved here into a `ResumePlan` that the
 * training session follows) and `gradguard export ID --out model.safetensors` (the run's latest weights, under
 * PyTorch's names, for `model.load_state_dict(safetensors.torch.load_file(...))`).
 *
 * Checkpoints of a stored run live in `<store>/checkpoints/<runId>/` (see train/checkpoint.ts for the layout). A
 * damaged checkpoint, an unknown run or a bad option is a user error: one line on stderr (or `{"error": ...}` on
 * stdout with `--json`) and exit status 2.
 */

import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { DEFAULT_STORE_DIR, isPostgresUrl, RunStore, storeLabel } from '../track/store.js';
import { TrackError } from '../track/types.js';
import {
  type Checkpoint,
  CheckpointError,
  checkpointRootOf,
  configConflict,
  listCheckpoints,
  loadCheckpoint,
  type ResumePlan,
  resolveCheckpointDir,
  runCheckpointDir,
} from '../train/checkpoint.js';
import { applySet, Config, ConfigError, formatPath, withApplicableModelKeys } from '../train/config.js';
import { reportError, UsageError } from './errors.js';
import { type CliIO, processIO } from './io.js';

/**
 * The config of a resumed run: the checkpoint's, with `--set` overrides applied and validated. Only keys that do not
 * change what was already trained may change (`train.epochs`, `train.maxSteps`, `train.onNonFinite`, logging,
 * checkpointing, monitoring, data paths); anything else is a `ConfigError` naming the key.
 */
export function resumeConfig(ckpt: Checkpoint, sets: readonly string[]): Config {
  const raw = withApplicableModelKeys(structuredClone(ckpt.config)) as Record<string, unknown>;
  const setPaths = new Map<string, string>();
  for (const s of sets) setPaths.set(formatPath(applySet(raw, s)), s);
  const res = Config.safeParse(raw);
  if (!res.success) {
    const issue = res.error.issues[0]!;
    const key = formatPath(issue.path);
    const set = [...setPaths].find(([p]) => key.startsWith(p))?.[1];
    throw new ConfigError(`${set ? `--set ${set}` : '(checkpoint config)'}: ${key}: ${issue.message}`);
  }
  const conflict = configConflict(ckpt.config, res.data);
  if (conflict !== null) {
    const set = [...setPaths].find(([p]) => conflict.startsWith(p) || p.startsWith(conflict))?.[1] ?? conflict;
    throw new ConfigError(
      `--set ${set}: ${conflict} cannot change when resuming (the checkpoint was trained with it); only train.epochs, train.maxSteps, train.onNonFinite, train.maxConsecutiveNonFinite, train.logEvery, train.checkpointEvery, monitor.* and data paths may`,
    );
  }
  return res.data;
}

export interface ResumeOptions {
  /** The run store directory, or null for none. */
  store: string | null;
  /** `--set` overrides. */
  set?: readonly string[];
  /** `--config`: not allowed with --resume (the config comes from the checkpoint). */
  config?: string | undefined;
}

/**
 * Resolves `--resume RUN|DIR`: a directory (a checkpoint, or a run's checkpoint root whose `latest` is used) or a
 * run id (or unique prefix) in the store. The checkpoint is loaded and verified; its run is continued when the store
 * has it.
 * @throws CheckpointError, ConfigError or UsageError with a one-line message
 */
export function planResume(target: string, opts: ResumeOptions): { plan: ResumePlan; config: Config } {
  if (opts.config) {
    throw new UsageError(
      `--resume takes the config from the checkpoint; drop --config ${opts.config} (use --set for train.epochs and the other keys that may change)`,
    );
  }
  const store =
    opts.store && (isPostgresUrl(opts.store) || existsSync(join(opts.store, 'runs.db'))) ? openStore(opts.store) : null;
  try {
    let checkpoint: Checkpoint;
    let root: string | null;
    if (existsSync(target) || /[\\/]/.test(target) || target.startsWith('.')) {
      checkpoint = loadCheckpoint(target);
      root = checkpointRootOf(checkpoint.dir);
    } else if (store) {
      const run = store.getRun(target);
      root = runCheckpointDir(store.dir, run.id);
      if (!listCheckpoints(root).length) {
        throw new CheckpointError(
          `run ${run.id} has no checkpoint (none in ${root}); set train.checkpointEvery to write checkpoints while training`,
        );
      }
      checkpoint = loadCheckpoint(root);
    } else {
      throw new UsageError(
        `--resume ${target}: no such checkpoint directory${opts.store ? `, and no run store at ${storeLabel(opts.store)} to look a run up in` : ' (and --no-store: a run id cannot be looked up)'}`,
      );
    }
    const config = resumeConfig(checkpoint, opts.set ?? []);
    let runId: string | null = null;
    if (store && checkpoint.runId) {
      try {
        runId = store.getRun(checkpoint.runId).id;
      } catch (e) {
        if (!(e instanceof TrackError)) throw e;
      }
    }
    const isLatest = root !== null && resolve(resolveCheckpointDir(root)) === resolve(checkpoint.dir);
    const changed = JSON.stringify(config) !== JSON.stringify(checkpoint.config);
    // without a store, further checkpoints go to the checkpoint's own root, unless that belongs to a stored run
    const ownRoot = checkpoint.runId === null ? root : null;
    return { plan: { checkpoint, runId, truncate: !isLatest || changed, root: ownRoot }, config };
  } finally {
    store?.close();
  }
}

/** Opens a store that must exist (read-only for reading); its errors (no store, unknown or ambiguous run) are TrackErrors, user errors. */
function openStore(dir: string, readonly = false): RunStore {
  return RunStore.open(dir, readonly ? { readonly: true } : { create: false });
}

export interface ExportWeightsOptions {
  /** The file to write (`model.safetensors`), or a directory to write `model.safetensors` into. */
  out?: string | undefined;
  /** The store directory (default ./gradguard-runs). */
  store?: string | undefined;
  json?: boolean | undefined;
}

/** What `exportWeights` wrote. */
export interface ExportWeightsResult {
  run: string | null;
  step: number;
  checkpoint: string;
  out: string;
  tensors: number;
  bytes: number;
  sha256: string;
}

/**
 * Writes the latest weights of a run (or of a checkpoint directory) to a safetensors file, atomically. The bytes are
 * those of the checkpoint's verified `model.safetensors`: the model's state dict under PyTorch's names.
 */
export function exportWeights(id: string, opts: ExportWeightsOptions): ExportWeightsResult {
  if (!opts.out) throw new UsageError('--out FILE is required, e.g. --out model.safetensors');
  let checkpoint: Checkpoint;
  let run: string | null = null;
  if (existsSync(id) && statSync(id).isDirectory()) {
    checkpoint = loadCheckpoint(id);
    run = checkpoint.runId;
  } else {
    const store = openStore(opts.store ?? DEFAULT_STORE_DIR, true);
    try {
      run = store.getRun(id).id;
      const root = runCheckpointDir(store.dir, run);
      if (!listCheckpoints(root).length) {
        throw new CheckpointError(
          `run ${run} has no checkpoint (none in ${root}), so it has no weights to export; runs recorded by gradguard train keep one at the end`,
        );
      }
      checkpoint = loadCheckpoint(root);
    } finally {
      store.close();
    }
  }
  let out = opts.out;
  if (out.endsWith('/') || (existsSync(out) && statSync(out).isDirectory())) out = join(out, 'model.safetensors');
  if (!existsSync(dirname(out)))
    throw new UsageError(`--out ${opts.out}: the directory ${dirname(out)} does not exist`);
  writeAtomic(out, checkpoint.modelBytes);
  return {
    run,
    step: checkpoint.step,
    checkpoint: checkpoint.dir,
    out,
    tensors: Object.keys(checkpoint.model).length,
    bytes: checkpoint.modelBytes.length,
    sha256: createHash('sha256').update(checkpoint.modelBytes).digest('hex'),
  };
}

function writeAtomic(path: string, bytes: Uint8Array): void {
  try {
    writeFileAtomic(path, bytes);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code) throw new UsageError(`cannot write ${path}: ${code}`);
    throw e;
  }
}

/** `gradguard export ID --out model.safetensors`: prints what it wrote; returns the exit status. */
export async function exportWeightsCommand(
  id: string,
  opts: ExportWeightsOptions,
  io: CliIO = processIO,
): Promise<number> {
  try {
    const r = exportWeights(id, opts);
    if (opts.json) io.stdout(`${JSON.stringify(r)}\n`);
    else
      io.stdout(
        `wrote ${r.out}: ${r.tensors} tensors, ${r.bytes} bytes, step ${r.step}${r.run ? ` of run ${r.run}` : ''} (sha256 ${r.sha256})\n`,
      );
    return 0;
  } catch (e) {
    return reportError(e, io, opts.json);
  }
}

/** Whether `gradguard export` was asked for weights (`--format safetensors`, or `--out *.safetensors` without a format). */
export function wantsWeights(opts: { format?: string | undefined; out?: string | undefined }): boolean {
  return opts.format === 'safetensors' || (opts.format === undefined && Boolean(opts.out?.endsWith('.safetensors')));
}
