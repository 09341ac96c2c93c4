/**
 * The registry of diagnosis rules: one file per rule, listed here. Everything else is read from this list: the
 * severity order (`SEVERITY`), the gradient-flow kinds (`FLOW_KINDS`), the report's flags (`MARKS`, `SEVERE_KINDS`),
 * the docs anchors, and the order in which `diagnose` runs the rules.
 *
 * A new rule: a file exporting a `Rule` (detect, fixes, severity, flow, docs anchor, thresholds), its kind in
 * `FindingKind` (types.ts), a line below, and its section in docs/diagnosis.md (a test checks that).
 */
import { deadUnits } from './dead-units.js';
import { exploding } from './exploding.js';
import { explodingThroughTime } from './exploding-through-time.js';
import { lossSpike } from './loss-spike.js';
import { nonFinite } from './non-finite.js';
import { notLearning } from './not-learning.js';
import { saturation } from './saturation.js';
import type { FindingKind, Rule } from './types.js';
import { updateRatioTooHigh } from './update-ratio-too-high.js';
import { updateRatioTooLow } from './update-ratio-too-low.js';
import { vanishing } from './vanishing.js';
import { vanishingThroughTime } from './vanishing-through-time.js';

/** Every rule, most severe first (sorted by `severity`). */
export const RULES: readonly Rule[] = [
  exploding,
  explodingThroughTime,
  nonFinite,
  deadUnits,
  saturation,
  vanishingThroughTime,
  vanishing,
  notLearning,
  lossSpike,
  updateRatioTooHigh,
  updateRatioTooLow,
].sort((a, b) => a.severity - b.severity);

/** Most severe first: the verdict is the first kind found in this order. */
export const SEVERITY: readonly FindingKind[] = [...RULES.map((r) => r.kind), 'healthy'];

/** The kinds that mean gradients do not flow well (a fix "restores healthy gradient flow" when none remains). */
export const FLOW_KINDS: ReadonlySet<FindingKind> = new Set(RULES.filter((r) => r.flow).map((r) => r.kind));

/** The letter shown beside the layers a finding names in the report's layer table. */
export const MARKS: Readonly<Partial<Record<FindingKind, string>>> = Object.fromEntries(
  RULES.filter((r) => r.mark).map((r) => [r.kind, r.mark]),
);

/** The kinds shown in red: the run is in trouble now. */
export const SEVERE_KINDS: ReadonlySet<FindingKind> = new Set(RULES.filter((r) => r.severe).map((r) => r.kind));

/** The rule of a kind (undefined for `healthy`). */
export function ruleOf(kind: FindingKind): Rule | undefined {
  return RULES.find((r) => r.kind === kind);
}
