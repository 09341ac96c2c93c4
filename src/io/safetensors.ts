/**
 * Saving and loading safetensors files, the format PyTorch, JAX and Hugging Face share, so a model trained here loads
 * in PyTorch (`model.load_state_dict(safetensors.torch.load_file(path))`) and the other way round. The byte-level
 * functions live in `safetensorsFormat.ts` (no file access; usable in a browser) and are re-exported here.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Tensor } from '../tensor/tensor.js';
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

let counter = 0;

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
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}-${counter++}`;
  let fd = -1;
  try {
    fd = openSync(tmp, 'w', 0o644);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    renameSync(tmp, path);
  } catch (e) {
    if (fd >= 0) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // the temporary file may not exist
    }
    throw e;
  }
  // make the rename itself durable; not every platform can fsync a directory
  try {
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // best effort
  }
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
