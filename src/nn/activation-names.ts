/**
 * The activations, listed once. Everything else derives from this table: the config's `model.activation` enum
 * (src/train/config.ts), the `activation()` factories (activation.ts; a missing factory is a compile error), the
 * init gains (`gainName` here, the config's Kaiming nonlinearity in src/train/build.ts) and the diagnosis facts
 * (`RELU_LIKE` in src/monitor/rules/facts.ts), and the statistics the monitor takes of an activation module's outputs
 * (`stats`, read through the module's `activation` key). Adding an activation: a row here, its op and module
 * (activation.ts).
 */
import type { Nonlinearity } from '../init/initializers.js';

interface ActivationInfo {
  /** Its name in a config file's `model.activation` (kebab-case), or null when configs do not offer it. */
  readonly config: string | null;
  /** Its `init.calculateGain` name, as PyTorch's table has it ('linear' for those it does not list). */
  readonly gain: Nonlinearity;
  /** The nonlinearity the config's Kaiming init assumes for it (ReLU's for the ReLU-like ones PyTorch lacks). */
  readonly kaiming: Nonlinearity;
  /** Whether it passes gradients unchanged where active (ReLU-like: Kaiming init is theirs). */
  readonly reluLike: boolean;
  /**
   * Which statistics the monitor takes of its outputs: dead units (`relu`), saturation at its bounds (`sigmoid`,
   * `tanh`), mean and std only (`other`), or none (null: the output is its input).
   */
  readonly stats: ActivationStats | null;
}

/** The statistics the monitor takes of an activation's outputs (see `ActivationInfo.stats`). */
export type ActivationStats = 'relu' | 'sigmoid' | 'tanh' | 'other';

/** Every activation by its camelCase name (the order is the order of the config enum and of error messages). */
export const ACTIVATIONS = {
  relu: { config: 'relu', gain: 'relu', kaiming: 'relu', reluLike: true, stats: 'relu' },
  leakyRelu: { config: 'leaky-relu', gain: 'leakyRelu', kaiming: 'leaky_relu', reluLike: true, stats: 'other' },
  elu: { config: 'elu', gain: 'linear', kaiming: 'relu', reluLike: true, stats: 'other' },
  selu: { config: 'selu', gain: 'selu', kaiming: 'selu', reluLike: true, stats: 'other' },
  gelu: { config: 'gelu', gain: 'linear', kaiming: 'relu', reluLike: true, stats: 'other' },
  sigmoid: { config: 'sigmoid', gain: 'sigmoid', kaiming: 'sigmoid', reluLike: false, stats: 'sigmoid' },
  tanh: { config: 'tanh', gain: 'tanh', kaiming: 'tanh', reluLike: false, stats: 'tanh' },
  softplus: { config: null, gain: 'linear', kaiming: 'linear', reluLike: false, stats: 'other' },
  identity: { config: null, gain: 'linear', kaiming: 'linear', reluLike: false, stats: null },
} as const satisfies Record<string, ActivationInfo>;

/** An activation's camelCase name. */
export type ActivationKey = keyof typeof ACTIVATIONS;

/** An activation's name in a config file. */
export type ConfigActivation = NonNullable<(typeof ACTIVATIONS)[ActivationKey]['config']>;

/** Names that stand for another activation (besides kebab- and snake-case spellings). */
const ALIASES: Readonly<Record<string, ActivationKey>> = { linear: 'identity' };

const KEYS = Object.keys(ACTIVATIONS) as ActivationKey[];

/** The activation names a config accepts, in table order. */
export const CONFIG_ACTIVATIONS = KEYS.map((k) => ACTIVATIONS[k].config).filter(
  (c): c is ConfigActivation => c !== null,
) as [ConfigActivation, ...ConfigActivation[]];

/** The camelCase key of an activation name in any spelling ('leaky-relu', 'leaky_relu', 'LeakyReLU', 'linear'). */
export function activationKey(name: string): ActivationKey | undefined {
  const k = name.replace(/[_-]/g, '').toLowerCase();
  return KEYS.find((key) => key.toLowerCase() === k) ?? ALIASES[k];
}

/** The activation names for an error message: 'relu, leakyRelu, elu, ...'. */
export const ACTIVATION_LIST = KEYS.join(', ');
