/**
 * Numbers for people, one way everywhere: losses and metrics in terminal reports, the doctor's tables, the
 * dashboard and the reports. Fixed-point for ordinary magnitudes, exponent notation for huge or tiny ones, so a
 * diverged loss prints as `4.15e14`, never as `414769437736960.0000`. Plain functions without imports (the
 * dashboard's browser code uses them too).
 */

/**
 * `x` in exponent notation with `significant` digits, written compactly: no `+`, no trailing zeros in the mantissa.
 * @example formatExp(414769437736960) // '4.15e14'; formatExp(1e-7) // '1e-7'; formatExp(4.1e14, 2) // '4.1e14'
 */
export function formatExp(x: number, significant = 3): string {
  if (!Number.isFinite(x)) return nonFinite(x);
  const [m, e] = x.toExponential(Math.max(0, significant - 1)).split('e') as [string, string];
  const mantissa = m.includes('.') ? m.replace(/\.?0+$/, '') : m;
  return `${mantissa}e${e.replace('+', '')}`;
}

/**
 * A loss or a metric: fixed-point with `decimals` (default 4) when 1e-3 <= |x| < 1e4 (or x is 0), else exponent
 * notation with 3 significant digits; 'NaN', 'Inf', '-Inf'. At most 10 characters with the default decimals.
 * @example formatMetric(2.302585) // '2.3026'; formatMetric(414769437736960) // '4.15e14'; formatMetric(3.2e-7) // '3.2e-7'
 */
export function formatMetric(x: number, decimals = 4): string {
  if (!Number.isFinite(x)) return nonFinite(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return formatExp(x, 3);
  return x.toFixed(decimals);
}

/**
 * A short label (an axis tick, a table cell): up to `significant` digits (default 3) without trailing zeros when
 * 1e-3 <= |x| < 1e4, else compact exponent notation.
 * @example formatCompact(0.25) // '0.25'; formatCompact(1000) // '1000'; formatCompact(1e14) // '1e14'
 */
export function formatCompact(x: number, significant = 3): string {
  if (!Number.isFinite(x)) return nonFinite(x);
  const a = Math.abs(x);
  if (a !== 0 && (a < 1e-3 || a >= 1e4)) return formatExp(x, significant);
  return String(Number(x.toPrecision(significant)));
}

function nonFinite(x: number): string {
  return Number.isNaN(x) ? 'NaN' : x > 0 ? 'Inf' : '-Inf';
}
