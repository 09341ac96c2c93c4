/** What the fixes need to know about the model: its type, activation, init, clipping, learning rate, schedule. */
import { ACTIVATIONS } from '../../nn/activation-names.js';
import { type Context, RECURRENT_LAYERS } from './context.js';

/** Activations that pass gradients unchanged where active (Kaiming init is theirs). */
export const RELU_LIKE: ReadonlySet<string> = new Set(
  Object.values(ACTIVATIONS).flatMap((a) => (a.reluLike && a.config !== null ? [a.config] : [])),
);

/** The model types whose `model.activation` is the activation between their layers. */
export const ACTIVATION_MODELS: ReadonlySet<string> = new Set(['mlp', 'cnn']);

/** The model types whose `model.norm` adds normalisation layers. */
export const NORM_MODELS: ReadonlySet<string> = new Set(['mlp', 'cnn']);

export interface ModelFacts {
  /** `mlp`, `cnn`, `resnet`, `rnn`, `lstm`, `gru` (the config's, else guessed from the layers). */
  type: string;
  /** Whether the model is a recurrent one (rnn, lstm, gru). */
  recurrent: boolean;
  /**
   * The activation of its hidden layers: the config's for an MLP or CNN; a vanilla RNN's nonlinearity (relu or tanh,
   * as the model builder reads `model.activation`); tanh for an LSTM or GRU (their gates are fixed).
   */
  activation: string;
  init: string;
  residual: boolean;
  zeroInit: boolean;
  norm: string;
  depth: number;
  canResidual: boolean;
  hasGlobalClip: boolean;
  clipCount: number;
  hasSkipNonFinite: boolean;
  lr: number | undefined;
  bias: string | number;
  recurrentGain: number | undefined;
  /** An LSTM's forget-gate bias b_ih + b_hh after init: `model.forgetBias`, else twice a constant `init.bias`. */
  forgetBias: number | undefined;
  warmup: number;
  /** The sequence length of `adding` / `copy` data, when the config says it (`data.length`). */
  seqLength: number | undefined;
  /** The data's name, when the config says it. */
  data: string | undefined;
}

/** The model facts of a diagnosis: from the config when there is one, else guessed from the layer facts. */
export function modelFacts(ctx: Context): ModelFacts {
  const c = ctx.config;
  const acts = [...ctx.info.values()].map((i) => i.activation).filter((a) => a !== 'none' && a !== 'other');
  const guessed = acts.includes('sigmoid') ? 'sigmoid' : acts.includes('tanh') ? 'tanh' : 'relu';
  if (!c) {
    // without a config, what the layers are tells the kind of model
    const types = [...ctx.info.values()].map((i) => i.type.toLowerCase());
    const rec = types.find((t) => RECURRENT_LAYERS.has(t));
    const type = rec ?? (types.includes('conv2d') ? 'cnn' : 'mlp');
    return {
      type,
      recurrent: rec !== undefined,
      activation: rec && !acts.length ? 'tanh' : guessed,
      init: 'unknown',
      residual: false,
      zeroInit: false,
      norm: 'none',
      depth: ctx.names.length,
      canResidual: ctx.names.length >= 8 && type === 'mlp',
      hasGlobalClip: ctx.history.some((r) => r.clipped),
      clipCount: 0,
      hasSkipNonFinite: false,
      lr: undefined,
      bias: 'zeros',
      recurrentGain: undefined,
      forgetBias: undefined,
      warmup: 0,
      seqLength: undefined,
      data: undefined,
    };
  }
  const m = c.model;
  const hidden = m.hidden ?? (m.depth !== undefined ? new Array<number>(m.depth).fill(m.width ?? 0) : []);
  const stages = m.channels?.length ?? 2;
  const depth = m.type === 'cnn' ? (m.depth ?? stages) : (m.depth ?? hidden.length);
  // a plain CNN becomes residual with blocks of two convolutions after each stage's first
  const cnnCanResidual = m.type === 'cnn' && !m.residual && depth >= 8 && (depth - stages) % 2 === 0;
  const equal = hidden.length > 0 && hidden.every((h) => h === hidden[0]);
  const recurrent = RECURRENT_LAYERS.has(m.type);
  return {
    type: m.type,
    recurrent,
    activation: !recurrent ? m.activation : m.type === 'rnn' && m.activation === 'relu' ? 'relu' : 'tanh',
    init: c.init.weight,
    residual: m.residual,
    zeroInit: m.zeroInitResidual || m.rezero,
    norm: m.norm,
    depth,
    canResidual:
      cnnCanResidual ||
      (m.type === 'mlp' && !m.residual && depth >= 8 && depth % 2 === 0 && equal && m.hidden === undefined),
    hasGlobalClip: c.clip.some((k) => k.type === 'global-norm'),
    clipCount: c.clip.length,
    hasSkipNonFinite: c.clip.some((k) => k.type === 'skip-non-finite'),
    lr: c.optim.lr,
    bias: c.init.bias,
    recurrentGain: c.init.recurrentGain,
    forgetBias:
      m.type !== 'lstm'
        ? undefined
        : (m.forgetBias ??
          (c.init.bias === 'zeros' ? 0 : typeof c.init.bias === 'number' ? 2 * c.init.bias : undefined)),
    warmup: c.schedule.warmupSteps,
    seqLength: c.data?.length,
    data: c.data?.name,
  };
}
