/** `readClipState`: what the clip transforms of a transform chain did on one step, read from the chain's state. */
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
 * Reads what clip transforms recorded in a (possibly nested) transform-chain state: any object with a boolean
 * `clipped` or `skipped`, and the norms it kept: `normBefore` (or `norm`), and `normAfter`, or a `scale` the
 * gradients were multiplied by (`clip.byGlobalNorm`), or a `threshold`/`max` bound that is the norm after clipping
 * when `clipped` (`clip.autoClip`). Tensors are not entered.
 *
 * NOTE: optax keeps such facts in the state of the transform itself (`snapshot`, `apply_if_finite`); reading the
 * state, rather than asking each transform, keeps monitors independent of which clip transforms exist.
 */
export function readClipState(state: unknown): ClipSummary {
  const out: ClipSummary = { normBefore: undefined, normAfter: undefined, clipped: false, skipped: false };
  const seen = new Set<unknown>();
  const visit = (v: unknown, depth: number): void => {
    if (
      depth > 8 ||
      v === null ||
      typeof v !== 'object' ||
      v instanceof Tensor ||
      ArrayBuffer.isView(v) ||
      seen.has(v)
    ) {
      return;
    }
    seen.add(v);
    if (Array.isArray(v)) {
      for (const x of v) visit(x, depth + 1);
      return;
    }
    if (v instanceof Map) {
      for (const x of v.values()) visit(x, depth + 1);
      return;
    }
    const o = v as Record<string, unknown>;
    const hasClip = typeof o.clipped === 'boolean';
    const hasSkip = typeof o.skipped === 'boolean';
    if (hasClip || hasSkip) {
      if (o.skipped === true) out.skipped = true;
      const before = num(o.normBefore) ?? num(o.norm) ?? num(o.globalNorm);
      if (before !== undefined && out.normBefore === undefined) out.normBefore = before;
      if (hasClip) {
        const clipped = o.clipped === true;
        if (clipped) out.clipped = true;
        const bound = num(o.max) ?? num(o.maxNorm) ?? num(o.threshold);
        const scale = num(o.scale);
        const after =
          num(o.normAfter) ?? (before !== undefined && scale !== undefined ? before * scale : clipped ? bound : before);
        if (after !== undefined) out.normAfter = after;
      }
    }
    for (const x of Object.values(o)) visit(x, depth + 1);
  };
  visit(state, 0);
  return out;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}
