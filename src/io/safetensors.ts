/**
 * Saving and loading safetensors files, the format PyTorch, JAX and Hugging Face share, so a model trained here loads
 * in PyTorch (`model.load_state_dict(safetensors.torch.load_file(path))`) and the other way round. The byte-level
 * functions live in `safetensorsFormat.ts` (no file access; usable in a browser) and are re-exported here.
 */
import { readFileSync } from 'node:fs';
import type { Tensor } from '../tensor/tensor.js';
import { writeFileAtomic } from './atomic.js';
import {
  parseSafetensors,
  parseSafetensorsHeader,
  SafetensorsError,
  serializeSafetensors,
} from './safetensorsFormat.js';

export {
  parseSafetensors,
  parseSafetensorsHeader,
  type SafetensorsEntry,
  SafetensorsError,
  serializeSafetensors,
} from './safetensorsFormat.js';

/**
 * Writes tensors to a safetensors file atomically: the bytes go to a temporary file beside `path`, which is flushed
 * to disk (fsync) and then renamed over `path`, so a crash leaves either the old file or the new one, never half of
 * one.
 *
 * @param path the file to write (its directory must exist)
 * @param tensors float32 tensors by name, e.g. `model.stateDict()`
 * @param metadata optional string → string map stored as `__metadata__`
 * @example saveSafetensors('model.safetensors', model.stateDict(), { format: 'pt' });
 */
export function saveSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  if (typeof path !== 'string' || path === '')
    throw new SafetensorsError('saveSafetensors(): path must be a non-empty string');
  const bytes = serializeSafetensors(tensors, metadata);
  writeFileAtomic(path, bytes);
}

/**
 * Reads a safetensors file into float32 tensors (F64, F16, BF16 and integer tensors are converted).
 * @param path the file
 * @returns tensors by name, ready for `model.loadStateDict()`
 * @throws SafetensorsError naming the file when it is malformed
 * @example model.loadStateDict(loadSafetensors('model.safetensors'));
 */
export function loadSafetensors(path: string): Record<string, Tensor> {
  const bytes = readFileSync(path);
  try {
    return parseSafetensors(bytes);
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${path}: ${e.message}`);
    throw e;
  }
}

/** The `__metadata__` map of a safetensors file. */
export function loadSafetensorsMetadata(path: string): Record<string, string> {
  try {
    return parseSafetensorsHeader(readFileSync(path)).metadata;
  } catch (e) {
    if (e instanceof SafetensorsError) throw new SafetensorsError(`${path}: ${e.message}`);
    throw e;
  }
}
