/**
 * The non-finite JSON codec, the one place it is defined. JSON has no NaN or ±Infinity (`JSON.stringify` writes
 * them as null), so everything gradguard writes as JSON (the run store's summaries, checkpoints' state.json,
 * optimizer states, exports, the dashboard's API, `--json` output) writes them as the strings 'NaN', 'Infinity'
 * and '-Infinity' (which Python's float() reads), and reads them back with `decodeNumber`.
 */

/** A number as gradguard's JSON writes it: finite, or the string of NaN or ±Infinity. */
export type JsonNumber = number | 'NaN' | 'Infinity' | '-Infinity';

/** The strings that stand for the non-finite numbers, in the order NaN, +Infinity, -Infinity. */
export const NON_FINITE_STRINGS = ['NaN', 'Infinity', '-Infinity'] as const;

/** A number for JSON: finite numbers as they are, NaN and ±Infinity as their strings. */
export function encodeNumber(x: number): JsonNumber {
  if (Number.isFinite(x)) return x;
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
}

/** Whether a JSON value is one of the strings of a non-finite number. */
export function isNonFiniteString(v: unknown): v is 'NaN' | 'Infinity' | '-Infinity' {
  return v === 'NaN' || v === 'Infinity' || v === '-Infinity';
}

/** The number a JSON value stands for: a number as it is, a non-finite string decoded, anything else NaN. */
export function decodeNumber(x: unknown): number {
  if (typeof x === 'number') return x;
  return x === 'Infinity' ? Number.POSITIVE_INFINITY : x === '-Infinity' ? Number.NEGATIVE_INFINITY : Number.NaN;
}

/** A value with its non-finite numbers (in arrays, recursively) encoded; anything else unchanged. */
export function encodeDeep(v: unknown): unknown {
  return typeof v === 'number' ? encodeNumber(v) : Array.isArray(v) ? v.map(encodeDeep) : v;
}

/** The inverse of `encodeDeep`: the non-finite strings (in arrays, recursively) decoded; anything else unchanged. */
export function decodeDeep(v: unknown): unknown {
  return isNonFiniteString(v) ? decodeNumber(v) : Array.isArray(v) ? v.map(decodeDeep) : v;
}

/** JSON.stringify that writes NaN and ±Infinity as the strings 'NaN', 'Infinity', '-Infinity' instead of null. */
export function stringifyJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' ? encodeNumber(v) : v), indent);
}
