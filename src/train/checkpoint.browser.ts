/**
 * Checkpoints in a browser build (package.json's `browser` field puts this file in place of checkpoint.ts): they are
 * directories on disk, which a page does not have, so the trainer's hooks for them refuse loudly. Everything else
 * of the training loop runs unchanged.
 */

/** The error checkpoint.ts throws; here for the few callers that test for it. */
export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
}

function unavailable(what: string): never {
  throw new CheckpointError(`${what}: checkpoints are directories on disk, not available in the browser build`);
}

/** Throws: a page cannot write checkpoint directories. */
export function saveCheckpoint(_root: string, _exp: unknown, _progress: unknown): string {
  return unavailable('saveCheckpoint');
}

/** Throws: a page cannot read checkpoint directories. */
export function applyCheckpoint(_exp: unknown, _ckpt: unknown): never {
  return unavailable('applyCheckpoint');
}
