/**
 * The `model` section of the config. One schema holds every model key with its default, and `MODEL_KEYS` says which
 * keys apply to each `model.type`: a key given for a model it does not apply to (`model.hidden` with `cnn`,
 * `model.residual` with `resnet`, `model.activation` with `lstm`) is a config error naming the keys that do apply,
 * never a setting that silently changes nothing.
 */
import { z } from 'zod';
import { CONFIG_ACTIVATIONS } from '../nn/activation-names.js';

const posInt = z.number().int().positive();
const upTo = (max: number) => posInt.max(max);

export const MODEL_TYPES = ['mlp', 'cnn', 'resnet', 'rnn', 'lstm', 'gru'] as const;
export type ModelType = (typeof MODEL_TYPES)[number];

export const ModelConfig = z
  .object({
    type: z.enum(MODEL_TYPES).default('mlp'),
    hidden: z.array(posInt).max(10_000).optional(),
    depth: posInt.optional(),
    width: posInt.optional(),
    /** cnn: output channels of each stage (each stage ends with a 2×2 max pool); default [32, 64]. */
    channels: z.array(upTo(100_000)).min(1).max(64).optional(),
    activation: z.enum(CONFIG_ACTIVATIONS).default('relu'),
    residual: z.boolean().default(false),
    norm: z.enum(['none', 'batch', 'layer']).default('none'),
    rezero: z.boolean().default(false),
    zeroInitResidual: z.boolean().default(false),
    dropout: z.number().min(0).max(1).default(0),
    hiddenSize: posInt.optional(),
    layers: upTo(1000).optional(),
    resnetDepth: upTo(1000).optional(),
    /**
     * lstm: the forget-gate bias b_ih + b_hh of gate f after init (b_ih's slice set to it, b_hh's to 0); unset keeps
     * what `init.bias` gives (0 with the default zeros, PyTorch's default too). 1 keeps the cell remembering at the
     * start of training (Gers et al. 2000; Jozefowicz et al. 2015).
     */
    forgetBias: z
      .number()
      .min(-10, { message: 'model.forgetBias must be between -10 and 10 (sigmoid(±10) is already 0 or 1)' })
      .max(10, { message: 'model.forgetBias must be between -10 and 10 (sigmoid(±10) is already 0 or 1)' })
      .optional(),
  })
  .strict();

export type ModelConfig = z.infer<typeof ModelConfig>;
type ModelKey = keyof ModelConfig;

const RECURRENT = ['hiddenSize', 'width', 'layers'] as const;

/** The keys that apply to each model type (besides `type`). */
export const MODEL_KEYS: Readonly<Record<ModelType, readonly ModelKey[]>> = {
  mlp: ['hidden', 'depth', 'width', 'activation', 'residual', 'norm', 'rezero', 'zeroInitResidual', 'dropout'],
  cnn: ['depth', 'channels', 'width', 'activation', 'residual', 'norm', 'rezero', 'zeroInitResidual', 'dropout'],
  resnet: ['resnetDepth', 'width', 'zeroInitResidual', 'rezero'],
  rnn: [...RECURRENT, 'activation'],
  lstm: [...RECURRENT, 'forgetBias'],
  gru: [...RECURRENT],
};

/** Values a key takes for some model types only: a cnn normalises by batch or not at all, an RNN is relu or tanh. */
const ALLOWED_VALUES: Partial<Record<ModelType, Partial<Record<ModelKey, readonly unknown[]>>>> = {
  cnn: { norm: ['none', 'batch'] },
  rnn: { activation: ['relu', 'tanh'] },
};

export interface ModelKeyProblem {
  key: string;
  message: string;
}

/**
 * The model keys of a raw (not yet validated) model section that do not apply to its type, or take a value that
 * type cannot use; `[]` when all apply. A type that is not a model type is left to the schema to report.
 */
export function modelKeyProblems(raw: unknown): ModelKeyProblem[] {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return [];
  const m = raw as Record<string, unknown>;
  const type = (m.type ?? 'mlp') as ModelType;
  const applies = MODEL_KEYS[type];
  if (!applies) return [];
  const known = new Set(Object.keys(ModelConfig.shape));
  const out: ModelKeyProblem[] = [];
  for (const [key, value] of Object.entries(m)) {
    if (key === 'type' || !known.has(key)) continue; // an unknown key is the schema's to report
    if (!(applies as readonly string[]).includes(key)) {
      out.push({
        key,
        message: `'${key}' does not apply to model.type=${type} (keys that apply to ${type}: type, ${applies.join(', ')})`,
      });
      continue;
    }
    const allowed = ALLOWED_VALUES[type]?.[key as ModelKey];
    if (allowed && !allowed.includes(value))
      out.push({
        key,
        message: `model.type=${type} takes ${key} ${allowed.join(' or ')}, got ${JSON.stringify(value)}`,
      });
  }
  return out;
}

/** The model section with the checks of `modelKeyProblems`, reported at each offending key. */
export const CheckedModelConfig = z.preprocess((raw, ctx) => {
  for (const p of modelKeyProblems(raw)) ctx.addIssue({ code: 'custom', message: p.message, path: [p.key] });
  return raw;
}, ModelConfig);

/**
 * A copy of a stored model section without the keys that do not apply to its type. Configs stored before the keys
 * were checked carry every default (`activation: relu` for an LSTM), which never changed what was built.
 */
export function dropInapplicableModelKeys(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const m = raw as Record<string, unknown>;
  const applies = MODEL_KEYS[(m.type ?? 'mlp') as ModelType] as readonly string[] | undefined;
  if (!applies) return raw;
  const known = new Set(Object.keys(ModelConfig.shape));
  // unknown keys stay, for the schema to report
  return Object.fromEntries(Object.entries(m).filter(([k]) => k === 'type' || !known.has(k) || applies.includes(k)));
}

/** A stored config (any JSON) whose model section keeps only the keys that apply to its type. */
export function withApplicableModelKeys(config: unknown): unknown {
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return config;
  const c = config as Record<string, unknown>;
  return c.model === undefined ? c : { ...c, model: dropInapplicableModelKeys(c.model) };
}

/**
 * The architecture a model section builds, in words, with only what applies to its type: `mlp [256] relu`,
 * `cnn 20 conv [32, 64] residual relu batch-norm`, `resnet-8 width 16`, `rnn 1x128 tanh`, `lstm 2x64`,
 * `lstm 1x128 forget-bias 1`.
 */
export function describeModel(m: ModelConfig): string {
  const extras = (norm: boolean) => [
    m.activation,
    ...(m.residual ? ['residual'] : []),
    ...(norm && m.norm !== 'none' ? [`${m.norm}-norm`] : []),
    ...(m.rezero && m.residual ? ['rezero'] : []),
    ...(m.dropout > 0 ? [`dropout ${m.dropout}`] : []),
  ];
  switch (m.type) {
    case 'mlp': {
      const sizes = m.hidden
        ? `[${m.hidden.join(', ')}]`
        : m.depth || m.width
          ? `${m.depth ?? 2}x${m.width ?? 256}`
          : '[256]';
      return ['mlp', sizes, ...extras(true), ...(m.zeroInitResidual && m.residual ? ['zero-init'] : [])].join(' ');
    }
    case 'cnn': {
      const channels = m.channels ?? (m.width !== undefined ? [m.width, 2 * m.width] : [32, 64]);
      const depth = m.depth ?? channels.length;
      return [
        'cnn',
        `${depth} conv`,
        `[${channels.join(', ')}]`,
        ...(m.residual ? [] : ['plain']),
        ...extras(true),
      ].join(' ');
    }
    case 'resnet':
      return [
        `resnet-${m.resnetDepth ?? 8} width ${m.width ?? 16}`,
        ...(m.zeroInitResidual ? ['zero-init'] : []),
        ...(m.rezero ? ['rezero'] : []),
      ].join(' ');
    default: {
      const size = `${m.layers ?? 1}x${m.hiddenSize ?? m.width ?? 128}`;
      if (m.type === 'rnn') return `rnn ${size} ${m.activation === 'relu' ? 'relu' : 'tanh'}`;
      return m.forgetBias === undefined ? `${m.type} ${size}` : `${m.type} ${size} forget-bias ${m.forgetBias}`;
    }
  }
}
