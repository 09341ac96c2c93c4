/** What the clip transforms of an optimizer chain did on one step, read from the chain's state. */
import { type ClipRecord, clipRecordOf } from '../clip/record.js';
import { Tensor } from '../tensor/tensor.js';

/** What the clip transforms of a chain did on one step, read from the chain's state. */
export interface ClipSummary {
  /** Norm before clipping, as a clip transform recorded it (undefined if none did). */
  normBefore: number | undefined;
  /** Norm after clipping (undefined if no transform recorded or implied it). */
  normAfter: number | undefined;
  clipped: boolean;
  skipped: boolean;
}

/**
 * Reads what clip transforms recorded in a (possibly nested) transform-chain state: the typed `ClipRecord` of each
 * of gradguard's clip transforms' states (`clip/record.ts`), and for a state of any other transform with a boolean
 * `clipped` or `skipped`, the norms it kept (see `untypedClipRecord`). The first norm before clipping wins, the last
 * norm after clipping; clipped and skipped are true when any transform says so. Tensors are not entered.
 *
 * NOTE: optax keeps such facts in the state of the transform itself (`snapshot`, `apply_if_finite`); reading the
 * state, rather than asking each transform, keeps monitors independent of which clip transforms exist.
 */
export function readClipState(state: unknown): ClipSummary {
  const out: ClipSummary = { normBefore: undefined, normAfter: undefined, clipped: false, skipped: false };
  visit(state, 0, out, new Set<object>());
  return out;
}

/**
 * Reads the records of `v` and of what it holds into `out` (see `readClipState`).
 * NOTE: a plain function over the values in place, where it was a closure over `Object.values()` copies: the walk
 * runs on every monitored step, and a chain's state holds a few dozen values (~3 µs a step before).
 */
function visit(v: unknown, depth: number, out: ClipSummary, seen: Set<object>): void {
  if (depth > 8 || v === null || typeof v !== 'object' || v instanceof Tensor || ArrayBuffer.isView(v) || seen.has(v)) {
    return;
  }
  seen.add(v);
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === 'object' && x !== null) visit(x, depth + 1, out, seen);
    }
    return;
  }
  if (v instanceof Map) {
    for (const x of v.values()) visit(x, depth + 1, out, seen);
    return;
  }
  const o = v as Record<string, unknown>;
  const rec = clipRecordOf(o) ?? untypedClipRecord(o);
  if (rec !== undefined) {
    if (rec.skipped) out.skipped = true;
    if (rec.normBefore !== undefined && out.normBefore === undefined) out.normBefore = rec.normBefore;
    if (rec.clipped === true) out.clipped = true;
    if (rec.normAfter !== undefined) out.normAfter = rec.normAfter;
  }
  for (const k in o) {
    if (!Object.hasOwn(o, k)) continue;
    const x = o[k];
    if (typeof x === 'object' && x !== null) visit(x, depth + 1, out, seen);
  }
}

/**
 * The clip record of a state that is not one of gradguard's clip transforms (a user's own): any object with a boolean
 * `clipped` or `skipped`, with `normBefore` (or `norm`, `globalNorm`), and `normAfter`, or a `scale` the gradients
 * were multiplied by, or a `max`/`maxNorm`/`threshold` bound that is the norm after clipping when `clipped`.
 * gradguard's own transforms are read through their typed readers (`clipRecordOf`), never through these guesses.
 */
function untypedClipRecord(o: Record<string, unknown>): ClipRecord | undefined {
  const hasClip = typeof o.clipped === 'boolean';
  if (!hasClip && typeof o.skipped !== 'boolean') return undefined;
  const before = num(o.normBefore) ?? num(o.norm) ?? num(o.globalNorm);
  const rec: ClipRecord = { normBefore: before, normAfter: undefined, clipped: undefined, skipped: o.skipped === true };
  if (hasClip) {
    const clipped = o.clipped === true;
    rec.clipped = clipped;
    const bound = num(o.max) ?? num(o.maxNorm) ?? num(o.threshold);
    const scale = num(o.scale);
    rec.normAfter =
      num(o.normAfter) ?? (before !== undefined && scale !== undefined ? before * scale : clipped ? bound : before);
  }
  return rec;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}
