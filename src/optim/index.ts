/**
 * `optim`: optimizers as composable gradient transformations in optax's shape (`init`, `update`, `chain`) with
 * torch.optim's numbers, learning-rate schedules, and a PyTorch-style `Optimizer` wrapper.
 */
export { type AdamAliasOptions, adam, adamw, type RmspropOptions, rmsprop, type SgdOptions, sgd } from './alias.js';
export {
  type FlatState,
  flattenState,
  NonFiniteUpdateError,
  Optimizer,
  type OptimizerObserver,
  type OptimizerOptions,
  type ParameterSource,
  restoreState,
  type StepResult,
} from './optimizer.js';
export type { Schedule } from './schedules.js';
export * as schedules from './schedules.js';
export {
  type ApplyPlan,
  type ApplyResult,
  applyUpdates,
  type ChainState,
  chain,
  describeNonFiniteUpdate,
  findNonFiniteUpdate,
  type GradientStats,
  type GradientTransformation,
  gradientStats,
  identity,
  type NonFiniteUpdate,
  type Params,
  type StateRecord,
  stateRecords,
  type UpdateResult,
  updateAndApply,
} from './transform.js';
export {
  type AdamOptions,
  type AdamState,
  addDecayedWeights,
  type DecayState,
  type LearningRateState,
  type RmsState,
  scale,
  scaleByAdam,
  scaleByLearningRate,
  scaleByRms,
  type TraceState,
  trace,
} from './transforms.js';
