/**
 * The data package of the browser build: everything of data/ that needs no file system (generated sets, the MNIST
 * subset, batching, splits), and `loadWebDataset(config.data)`, the browser's `loadDataset`. For the generated sets
 * it is the same code as in Node, so a config gives the same numbers in a page as in `gradguard train`.
 */
import { withBaseline } from './baseline.js';
import { isGenerated, loadGenerated } from './builtin.js';
import { mnistSubset } from './mnist-subset.js';
import type { NormalizeMode } from './split.js';
import { DataError, type Dataset } from './types.js';

export { type Baseline, trivialBaseline, withBaseline } from './baseline.js';
export { GENERATED_NAMES, type GeneratedName, isGenerated, loadGenerated } from './builtin.js';
export { DataLoader, type LoaderCursor } from './loader.js';
export { type MnistSubsetOptions, mnistSubset } from './mnist-subset.js';
export { applyNormalization, gatherSplit, type NormalizeMode, standardize, stratifiedSplit } from './split.js';
export { type AddingOptions, adding, type CopyOptions, copyTask, type SpiralsOptions, spirals } from './synthetic.js';
export { circles, gaussians, type ToyOptions, xor } from './toy.js';
export { DataError, type Dataset, type Split, shapeSize, type Task } from './types.js';

/** Names `loadWebDataset` knows: the generated sets and `mnist` (the 500-digit subset). */
export const WEB_DATASET_NAMES = ['spirals', 'circles', 'xor', 'gaussians', 'adding', 'copy', 'mnist'] as const;

/**
 * The data set of a config's `data` section, in a browser: a generated set exactly as `loadDataset` makes it, or
 * for `mnist` the bundled subset (split sizes `trainSize`/`testSize`, defaults 400/100). Anything that needs files
 * (idx, csv, fashion-mnist, mnist from idx or download) is a `DataError` saying so. Like `loadDataset`, it declares
 * the data set's trivial baseline (`baseline`).
 */
export function loadWebDataset(c: { name?: string; normalize?: NormalizeMode; [key: string]: unknown }): Dataset {
  const ds = load(c);
  return ds.baseline ? ds : withBaseline(ds);
}

function load(c: { name?: string; normalize?: NormalizeMode; [key: string]: unknown }): Dataset {
  const normalize = c.normalize ?? 'none';
  if (isGenerated(c.name)) return loadGenerated({ ...c, name: c.name, normalize });
  if (c.name === 'mnist' && (c.source === undefined || c.source === 'embedded')) {
    const o = c as { trainSize?: number; testSize?: number; seed?: number };
    return mnistSubset({
      normalize,
      ...(o.trainSize !== undefined ? { trainSize: o.trainSize } : {}),
      ...(o.testSize !== undefined ? { testSize: o.testSize } : {}),
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
    });
  }
  throw new DataError(
    'config',
    `data.name ${JSON.stringify(c.name)}${c.source ? ` (source ${String(c.source)})` : ''} needs files, which a browser does not have; use one of ${WEB_DATASET_NAMES.join(', ')}`,
  );
}
