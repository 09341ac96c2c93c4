/**
 * The data sets that need no file system, by config name: the generated ones (spirals, circles, xor, gaussians, the
 * adding and copy problems). `loadDataset` (Node) and the browser build both load them through here, so a config
 * gives the same numbers in either.
 */
import { type NormalizeMode, standardize } from './split.js';
import { adding, copyTask, spirals } from './synthetic.js';
import { circles, gaussians, xor } from './toy.js';
import type { Dataset } from './types.js';

/** Names of the generated data sets. */
export const GENERATED_NAMES = ['spirals', 'circles', 'xor', 'gaussians', 'adding', 'copy'] as const;
export type GeneratedName = (typeof GENERATED_NAMES)[number];

/** A generated data set's config: its name, `normalize` (default none) and the generator's own options. */
export interface GeneratedConfig {
  name: GeneratedName;
  normalize?: NormalizeMode;
  seed?: number;
  [option: string]: unknown;
}

/** Standardizes `ds` in place by its training split's statistics (`mode`), recording them on the data set. */
export function withNormalization(ds: Dataset, mode: NormalizeMode): Dataset {
  const normalization = standardize(ds.train, ds.test, ds.inputSize, mode);
  return normalization ? { ...ds, normalization } : ds;
}

/** Whether `name` is a generated data set. */
export function isGenerated(name: unknown): name is GeneratedName {
  return (GENERATED_NAMES as readonly unknown[]).includes(name);
}

/** Generates the data set `c` names (options the generator does not know, such as `source`, are ignored). */
export function loadGenerated(c: GeneratedConfig): Dataset {
  const { name, normalize = 'none', ...rest } = c;
  const o = rest as Record<string, number | undefined>;
  const make = { spirals, circles, xor, gaussians, adding, copy: copyTask }[name];
  return withNormalization(make(o), normalize);
}
