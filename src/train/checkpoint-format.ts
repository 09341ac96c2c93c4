/**
 * The checkpoint format: what `state.json` holds, its exact text (a checksum of itself as its last field) and the zod
 * schema that every state.json read is checked against before anything of it is used, so a hand-edited file (its
 * checksum recomputed) with a bogus optimizer value or step count is refused with the field named.
 * See checkpoint.ts for the whole contract.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { GradguardError } from '../base/errors.js';
import { NON_FINITE_STRINGS } from '../base/json.js';
import type { LoaderCursor } from '../data/loader.js';
import type { FlatState } from '../optim/optimizer.js';
import type { RngState } from '../tensor/rng.js';
import type { Tensor } from '../tensor/tensor.js';
import { isValidRunId } from '../track/ids.js';
import type { Config } from './config.js';

/** The checkpoint format this code writes; `loadCheckpoint` refuses a newer one. */
export const CHECKPOINT_VERSION = 1;
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const STATE_FILE = 'state.json';
export const LATEST_FILE = 'latest';
export const DATA_FILES = [MODEL_FILE, OPTIMIZER_FILE] as const;

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

export type RngSnapshot = { s: RngState; spare: number | null };

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

export const sha256 = (bytes: Uint8Array | string): string => createHash('sha256').update(bytes).digest('hex');

export { decodeNumber, encodeNumber } from '../base/json.js';

/** The exact text of state.json: the state, pretty-printed, with the sha256 of that text as the last field. */
export function stateText(state: CheckpointState): string {
  const body = JSON.stringify(state, null, 2);
  return `${JSON.stringify({ ...state, checksum: sha256(body) }, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// The schema

/** A count: an integer from 0 to 2^53 - 1. */
const count = z.int().min(0);
/** A number as state.json writes it: finite, or the strings of NaN and ±Infinity. */
const jsonNumber = z.union([z.number(), z.enum(NON_FINITE_STRINGS)]);
/** A 32-bit word of an RNG's state (written as int32 or uint32). */
const word = z
  .int()
  .min(-(2 ** 31))
  .max(2 ** 32 - 1);
const rngSnapshot = z
  .object({
    s: z.tuple([word, word, word, word]),
    spare: z.number().nullable(),
  })
  .strict();
/** An optimizer value that is not a tensor: a number (a count, a running statistic), a flag, a name, a history. */
const optimizerValue = z.union([
  jsonNumber,
  z.boolean(),
  z.string().max(200),
  z.null(),
  z.array(z.union([jsonNumber, z.null()])).max(1_000_000),
]);
const fileEntry = z
  .object({ size: count, sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 hex digits') })
  .strict();

/** state.json without its checksum, field by field. */
export const CheckpointStateSchema = z
  .object({
    format: z.literal('gradguard-checkpoint'),
    version: z.int().min(1).max(CHECKPOINT_VERSION),
    step: count,
    epoch: count,
    runId: z.string().refine(isValidRunId, 'is not a well-formed run id').nullable(),
    savedAt: z.string(),
    progress: z.object({ skippedSteps: count, consecutiveNonFinite: count, lastLoss: jsonNumber }).strict(),
    optimizer: z
      .object({ stepCount: count, clippedSteps: count, values: z.record(z.string(), optimizerValue) })
      .strict(),
    loader: z
      .object({
        epoch: count,
        batch: count,
        rng: rngSnapshot,
        n: count,
        batchSize: z.int().min(1),
        shuffle: z.boolean(),
        dropLast: z.boolean(),
      })
      .strict(),
    rng: z.object({ modules: z.record(z.string(), rngSnapshot), default: rngSnapshot }).strict(),
    config: z.unknown(),
    files: z.object({ [MODEL_FILE]: fileEntry, [OPTIMIZER_FILE]: fileEntry }).strict(),
  })
  .strict()
  .superRefine((s, ctx) => {
    // the counters of one run agree with each other: none counts more steps than were taken
    const no = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    if (s.optimizer.stepCount > s.step)
      no(['optimizer', 'stepCount'], `is ${s.optimizer.stepCount}, more than the ${s.step} steps taken`);
    if (s.optimizer.clippedSteps > s.step)
      no(['optimizer', 'clippedSteps'], `is ${s.optimizer.clippedSteps}, more than the ${s.step} steps taken`);
    if (s.progress.skippedSteps > s.step)
      no(['progress', 'skippedSteps'], `is ${s.progress.skippedSteps}, more than the ${s.step} steps taken`);
    if (s.progress.consecutiveNonFinite > s.progress.skippedSteps)
      no(
        ['progress', 'consecutiveNonFinite'],
        `is ${s.progress.consecutiveNonFinite}, more than the ${s.progress.skippedSteps} skipped steps`,
      );
    if (s.epoch > s.step) no(['epoch'], `is ${s.epoch}, more than the ${s.step} steps taken`);
    // the transforms' own step counters (`inner.2.inner.0.count`, `inner.0.clippedSteps`)
    for (const [k, v] of Object.entries(s.optimizer.values)) {
      if (!/(^|\.)(count|clippedSteps)$/.test(k)) continue;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > s.step) {
        no(['optimizer', 'values', k], `is ${JSON.stringify(v)}; a step count from 0 to the ${s.step} steps taken`);
      }
    }
    if (s.loader.batch * s.loader.batchSize > s.loader.n + s.loader.batchSize)
      no(['loader', 'batch'], `is ${s.loader.batch}, past an epoch of ${s.loader.n} examples`);
  });

/**
 * Checks a parsed state.json (without its checksum) against {@link CheckpointStateSchema}.
 * @returns the state, or the first problem as `field.path: what is wrong`
 */
export function parseState(value: unknown): { state: CheckpointState } | { problem: string } {
  const res = CheckpointStateSchema.safeParse(value);
  if (res.success) return { state: res.data as CheckpointState };
  const issue = res.error.issues[0]!;
  const path = issue.path
    .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
    .join('.')
    .replace(/\.\[/g, '[');
  return { problem: `${path || '(root)'}: ${issue.message}` };
}
