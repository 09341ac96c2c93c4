/** Numbers and fixes in words: what findings, their evidence and the report print. */
import type { Fix } from './types.js';

/** 3 significant digits; exponent form for very small or large numbers. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e4 || a < 1e-3) return x.toExponential(1).replace('e+', 'e');
  return String(Number(x.toPrecision(3)));
}

/** A fraction as a whole percentage: `0.5` -> `50%`. */
export function pct(x: number): string {
  return `${Math.round(x * 100)}%`;
}

/** Layer names for a sentence, the middle elided past `max`. */
export function listLayers(names: readonly string[], max = 6): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max - 1).join(', ')}, ... (${names.length} layers)`;
}

/** `--set a=b --set c=d` for the first fix, then ` (or ...)` for the others. */
export function suggestionText(fixes: readonly Fix[]): string {
  if (!fixes.length) return '';
  const one = (f: Fix) => `${f.label}: ${f.set.map((s) => `--set ${shellQuote(s)}`).join(' ')}`;
  return fixes.map(one).join('; or ');
}

/** Quotes a `--set` value for a POSIX shell when it holds characters the shell would interpret. */
export function shellQuote(s: string): string {
  return /^[\w.\-=:/,+@%]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Median of a typed array, sorted in place; NaN when empty. */
export function medianOf(v: Float64Array): number {
  if (v.length === 0) return Number.NaN;
  v.sort();
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** Median of numbers (not changed); NaN when empty. */
export function median(v: readonly number[]): number {
  if (v.length === 0) return Number.NaN;
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
