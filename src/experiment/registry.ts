/**
 * The experiments gradguard knows: one module per `experiments/NAME.yaml` (see framework.ts). A new experiment adds
 * its line here; test/experiments.int.test.ts checks that every file has a module and every module a file.
 */
import { glorot2010 } from './experiments/glorot2010.js';
import { he2015 } from './experiments/he2015.js';
import { headline } from './experiments/headline.js';
import { initZoo } from './experiments/init-zoo.js';
import type { ExperimentModule } from './framework.js';

export const EXPERIMENTS: readonly ExperimentModule[] = [headline, glorot2010, he2015, initZoo];

/** The module of experiment `name` (its YAML was found, so a missing module is a bug in gradguard). */
export function findModule(name: string): ExperimentModule {
  const m = EXPERIMENTS.find((e) => e.name === name);
  if (!m) throw new Error(`experiments/${name}.yaml has no module in src/experiment/registry.ts`);
  return m;
}
