/**
 * The experiments gradguard knows: one module per `experiments/NAME.yaml` (see framework.ts). A new experiment adds
 * its line here; test/experiments.int.test.ts checks that every file has a module and every module a file.
 */
import { clipping } from './experiments/clipping.js';
import { glorot2010 } from './experiments/glorot2010.js';
import { he2015 } from './experiments/he2015.js';
import { headline } from './experiments/headline.js';
import { initZoo } from './experiments/init-zoo.js';
import { pascanu2013 } from './experiments/pascanu2013.js';
import { residual } from './experiments/residual.js';
import type { ExperimentModule } from './framework.js';

/** In the order: the tutorial's headline, then the papers. */
export const EXPERIMENTS: readonly ExperimentModule[] = [
  headline,
  glorot2010,
  he2015,
  residual,
  pascanu2013,
  clipping,
  initZoo,
];

/** The module of experiment `name` (its YAML was found, so a missing module is a bug in gradguard). */
export function findModule(name: string): ExperimentModule {
  const m = EXPERIMENTS.find((e) => e.name === name);
  if (!m) throw new Error(`experiments/${name}.yaml has no module in src/experiment/registry.ts`);
  return m;
}
