/**
 * The experiments gradguard knows: one module per `experiments/NAME.yaml` (see framework.ts). A new experiment adds
 * its line here; test/experiments.int.test.ts checks that every file has a module and every module a file.
 */
import { clipping } from './experiments/clipping.js';
import { headline } from './experiments/headline.js';
import { pascanu2013 } from './experiments/pascanu2013.js';
import { residual } from './experiments/residual.js';
import type { ExperimentModule } from './framework.js';

export const EXPERIMENTS: readonly ExperimentModule[] = [headline, residual, pascanu2013, clipping];

/** The module of experiment `name` (its YAML was found, so a missing module is a bug in gradguard). */
export function findModule(name: string): ExperimentModule {
  const m = EXPERIMENTS.find((e) => e.name === name);
  if (!m) throw new Error(`experiments/${name}.yaml has no module in src/experiment/registry.ts`);
  return m;
}
