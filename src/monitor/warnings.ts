/**
 * The live warnings `gradguard train` prints: one line per finding, without the evidence's closing period before
 * "; try", and a finding that spreads to another layer says only which layer joined instead of repeating itself.
 */
import { type Finding, suggestionText } from './diagnose.js';

/**
 * The one line a finding prints: `warning: step N: kind in layers: evidence; try fixes`, or, when `earlier` lists
 * layers it was already reported for, `warning: step N: kind now also in L (reported before for ...)`.
 */
export function warningLine(step: number, f: Finding, earlier: readonly string[] = []): string {
  if (earlier.length) {
    const added = f.layers.filter((l) => !earlier.includes(l));
    return `warning: step ${step}: ${f.kind} now also in ${added.join(', ')} (reported before for ${earlier.join(', ')})`;
  }
  const evidence = f.evidence.trim().replace(/[.;]+$/, '');
  const fixes = f.fixes?.length ? `; try ${suggestionText(f.fixes)}` : '';
  return `warning: step ${step}: ${f.kind}${f.layers.length ? ` in ${f.layers.join(', ')}` : ''}: ${evidence}${fixes}`;
}

/** Remembers the layers each kind of finding was printed for, so a repeat prints only what is new. */
export class WarningLog {
  readonly #printed = new Map<string, Set<string>>();

  /** The line for a fresh finding (from `LiveDiagnosis.push`) at `step`, and records its layers as printed. */
  line(step: number, f: Finding): string {
    const seen = this.#printed.get(f.kind) ?? new Set<string>();
    const earlier = f.layers.filter((l) => seen.has(l));
    // a whole-model finding (no layers) seen before counts as earlier too
    const text = warningLine(step, f, earlier.length || (!f.layers.length && this.#printed.has(f.kind)) ? earlier : []);
    for (const l of f.layers) seen.add(l);
    this.#printed.set(f.kind, seen);
    return text;
  }
}
