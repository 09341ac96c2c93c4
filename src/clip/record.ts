/**
 * The clip record: what a clip transform did on the last update, in one typed shape that monitors read. Each clip
 * transform's state has a reader here, typed against that state's interface, so renaming a state's field
 * (`normBefore`, `scale`, `clipped`, ...) is a compile error here rather than a monitor that silently reads nothing.
 * The states themselves stay as they are (they are saved in checkpoints).
 */
import type { AdaptiveState } from './adaptive.js';
import type { AutoClipState } from './autoClip.js';
import type { ByGlobalNormState, ByNormState, ByValueState } from './clip.js';
import type { SkipNonFiniteState } from './nonFinite.js';

/** What one clip transform did on the last update. */
export interface ClipRecord {
  /** The norm before clipping, where the transform measures one norm (undefined otherwise). */
  normBefore: number | undefined;
  /** The norm after clipping, where it is known (undefined otherwise). */
  normAfter: number | undefined;
  /** Whether the gradients were scaled down (undefined for a transform that never clips, only skips). */
  clipped: boolean | undefined;
  /** Whether the update was skipped. */
  skipped: boolean;
}

/** The state of every clip transform that records what it did. */
export type ClipState =
  | ByGlobalNormState
  | AutoClipState
  | ByValueState
  | ByNormState
  | AdaptiveState
  | SkipNonFiniteState;

type Readers = { [K in ClipState['kind']]: (state: Extract<ClipState, { kind: K }>) => ClipRecord };

/** Per-element, per-tensor or per-unit clipping: no single norm, only whether anything was clipped. */
const clippedOnly = (s: { clipped: boolean }): ClipRecord => ({
  normBefore: undefined,
  normAfter: undefined,
  clipped: s.clipped,
  skipped: false,
});

const READERS: Readers = {
  clipByGlobalNorm: (s) => ({
    normBefore: s.normBefore,
    normAfter: s.normBefore * s.scale,
    clipped: s.clipped,
    skipped: false,
  }),
  clipAuto: (s) => ({
    normBefore: s.normBefore,
    normAfter: s.clipped ? s.threshold : s.normBefore,
    clipped: s.clipped,
    skipped: false,
  }),
  clipByValue: clippedOnly,
  clipByNorm: clippedOnly,
  clipAdaptive: clippedOnly,
  skipNonFinite: (s) => ({ normBefore: undefined, normAfter: undefined, clipped: undefined, skipped: s.skipped }),
};

/** The clip record of a transform state, or undefined when `state` is not a clip transform's state. */
export function clipRecordOf(state: { kind?: unknown }): ClipRecord | undefined {
  const kind = state.kind;
  if (typeof kind !== 'string' || !Object.hasOwn(READERS, kind)) return undefined;
  const read = READERS[kind as ClipState['kind']] as (s: ClipState) => ClipRecord;
  return read(state as ClipState);
}
