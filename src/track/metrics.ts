/**
 * The metric names of a run, in one place: what `gradguard train` logs, and every key a reader (the dashboard's
 * pages, `gradguard report`, the runs list) accepts for the same quantity, so that a run logging `val/loss` is drawn
 * everywhere or nowhere. Plain data and two small functions, no imports: the dashboard's browser code uses it too.
 *
 * `gradguard train` logs per step `loss`, `lr`, `skipped`, and on monitored steps `grad_norm`, `grad_norm_clipped`
 * and `clipped` (a recurrent net also `time_horizon` and `time_first_last`, its gradient flow through time); per epoch `test_loss` and `test_accuracy`; and records its final metrics in the run's summary as
 * `test/loss`, `test/accuracy` and `train/loss`. Other writers (a script logging to the store) may use the other keys.
 */

/** One quantity, with every key it may be stored under: the name gradguard train logs per step comes first. */
export interface MetricSpec {
  /** Keys in order of preference (the first present is read). */
  readonly keys: readonly string[];
  /** The key of the final value in a run's summary (`summary.metrics`), when gradguard train records one. */
  readonly final?: string;
  /** How people read it: a share shown as a percentage. */
  readonly percent?: boolean;
}

/** The quantities every reader knows, by a stable name (final metrics are listed in this order). */
export const METRICS = {
  accuracy: {
    keys: ['test_accuracy', 'test/accuracy', 'val_accuracy', 'val/accuracy', 'accuracy'],
    final: 'test/accuracy',
    percent: true,
  },
  testLoss: { keys: ['test_loss', 'test/loss', 'val_loss', 'val/loss'], final: 'test/loss' },
  loss: { keys: ['loss', 'train/loss', 'train_loss'], final: 'train/loss' },
  lr: { keys: ['lr', 'learning_rate', 'train/lr'] },
  gradNorm: { keys: ['grad_norm', 'grad/global_norm', 'grad_norm_before'] },
  gradNormClipped: { keys: ['grad_norm_clipped', 'grad_norm_after'] },
  clipped: { keys: ['clipped'] },
  skipped: { keys: ['skipped'] },
} as const satisfies Record<string, MetricSpec>;

export type MetricName = keyof typeof METRICS;

/** The first of `name`'s keys that `has` accepts (a series present in the store), or undefined. */
export function metricKey(name: MetricName, has: (key: string) => boolean): string | undefined {
  return METRICS[name].keys.find(has);
}

/**
 * A run's final metrics under one name per quantity (the first key of its {@link METRICS} entry: `test_accuracy`,
 * `test_loss`, `loss`), whichever alias a writer used; for each quantity the first alias present wins. Keys of no
 * known quantity are kept as they are.
 * @example canonicalFinal({ 'test/accuracy': 0.96, 'train/loss': 0.1, f1: 0.9 })
 *   // { test_accuracy: 0.96, loss: 0.1, f1: 0.9 }
 */
export function canonicalFinal(values: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  const taken = new Set<string>();
  for (const spec of Object.values(METRICS) as MetricSpec[]) {
    for (const k of spec.keys) taken.add(k);
    const k = spec.keys.find((key) => typeof values[key] === 'number');
    if (k !== undefined) out[spec.keys[0]!] = values[k]!;
  }
  for (const [k, v] of Object.entries(values)) if (!taken.has(k) && typeof v === 'number') out[k] = v;
  return out;
}

/** Whether a metric key is read as a share (shown as a percentage): a known percent quantity, or a name with `acc`. */
export function isPercentMetric(key: string): boolean {
  for (const spec of Object.values(METRICS) as MetricSpec[]) if (spec.keys.includes(key)) return spec.percent === true;
  return /acc/i.test(key);
}
