/**
 * `clip`: gradient clipping and non-finite handling as gradient transformations that go in `optim.chain`, each
 * recording in its state what it did (norm before, clipped, skipped), so monitors can read it.
 */
export { type AdaptiveState, adaptive } from './adaptive.js';
export { type AutoClipState, autoClip } from './autoClip.js';
export { type ByGlobalNormState, type ByNormState, type ByValueState, byGlobalNorm, byNorm, byValue } from './clip.js';
export {
  NonFiniteGradientsError,
  type SkipNonFiniteOptions,
  type SkipNonFiniteState,
  skipNonFinite,
  type ZeroNansState,
  zeroNans,
} from './nonFinite.js';
export { globalNorm, type NormType, tensorNorm } from './norms.js';
export { type ClipRecord, type ClipState, clipRecordOf } from './record.js';
