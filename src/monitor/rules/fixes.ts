/**
 * The fixes the rules suggest, each built against the model facts (and null where it does not apply, or the config
 * already does it). A rule's `fixes` lists the ones for its finding; `dedupe` drops the nulls and repeats.
 */
import type { ModelFacts } from './facts.js';
import { ACTIVATION_MODELS, NORM_MODELS, RELU_LIKE } from './facts.js';
import type { Fix } from './types.js';

/** The fixes without nulls and without a second fix of the same `--set`s, in order. */
export function dedupe(fixes: readonly (Fix | null)[]): Fix[] {
  const seen = new Set<string>();
  return fixes.filter((x): x is Fix => {
    if (!x) return false;
    const k = x.set.join(' ');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Global-norm clipping at 1, unless the config clips the global norm already. */
export function clipFix(f: ModelFacts): Fix | null {
  if (f.hasGlobalClip) return null;
  const set =
    f.clipCount === 0 ? ['clip[0].type=global-norm', 'clip[0].max=1'] : ['clip=[{type: global-norm, max: 1}]'];
  return {
    label: 'clip the global gradient norm at 1',
    set,
    why: 'rescales the whole gradient when its norm exceeds 1, so one bad batch cannot throw the weights away (Pascanu, Mikolov & Bengio 2013)',
  };
}

/** The learning rate times `factor` (lower below 1, higher above). */
export function lrFix(f: ModelFacts, factor: number): Fix {
  const lr = f.lr ?? 1e-3;
  const next = Number((lr * factor).toPrecision(3));
  return {
    label: `${factor < 1 ? 'lower' : 'raise'} the learning rate to ${next}`,
    set: [`optim.lr=${next}`],
    why:
      factor < 1
        ? 'smaller steps keep the update-to-weight ratio near 1e-3 (Karpathy, "A Recipe for Training Neural Networks", 2019)'
        : 'larger steps bring the update-to-weight ratio up towards 1e-3',
  };
}

/** The initialisation that suits the activation: Kaiming for ReLU-like, Xavier for the others (unless in use). */
export function initFix(f: ModelFacts): Fix | null {
  if (RELU_LIKE.has(f.activation)) {
    if (f.init === 'kaiming-normal' || f.init === 'kaiming-uniform') return null;
    return {
      label: 'Kaiming (He) initialisation',
      set: ['init.weight=kaiming-normal'],
      why: 'draws weights with variance 2/fan_in, which keeps the variance of activations and gradients constant through ReLU layers (He et al. 2015)',
    };
  }
  if (f.init === 'xavier-normal' || f.init === 'xavier-uniform') return null;
  return {
    label: 'Xavier (Glorot) initialisation',
    set: ['init.weight=xavier-normal'],
    why: 'draws weights with variance 2/(fan_in + fan_out), which keeps activations and gradients at the same scale through tanh layers (Glorot & Bengio 2010)',
  };
}

/** ReLU with Kaiming init, for an MLP or CNN with a saturating activation (`model.activation` sets theirs). */
export function reluFix(f: ModelFacts): Fix | null {
  if (RELU_LIKE.has(f.activation) || !ACTIVATION_MODELS.has(f.type)) return null;
  return {
    label: 'ReLU with Kaiming initialisation',
    set: ['model.activation=relu', 'init.weight=kaiming-normal'],
    why: `${f.activation}'s derivative is at most ${f.activation === 'sigmoid' ? '0.25' : '1'} and near 0 when saturated, so gradients shrink at every layer; ReLU passes them unchanged where active, and Kaiming init keeps their scale (Glorot & Bengio 2010; He et al. 2015)`,
  };
}

/** Residual connections, for a deep MLP of equal widths without them. */
export function residualFix(f: ModelFacts): Fix | null {
  if (!f.canResidual) return null;
  // NOTE: with ReLU-like branches each block adds the branch's variance to the signal, which doubles it per block
  // under Kaiming init, so those branches start at zero; a sigmoid/tanh branch with small weights adds little
  if (RELU_LIKE.has(f.activation)) {
    return {
      label: 'residual connections (branches start at zero)',
      set: ['model.residual=true', 'model.zeroInitResidual=true'],
      why: 'h + F(h) gives the gradient an identity path around every block, and zero-initialised branches start each block as the identity (He et al. 2016; SkipInit, De & Smith 2020)',
    };
  }
  return {
    label: 'residual connections',
    set: ['model.residual=true'],
    why: 'h + F(h) gives the gradient an identity path around every block, so it reaches the first layers undiminished (He et al. 2016)',
  };
}

/** Zero-initialised residual branches, for a residual model whose branches do not start at zero. */
export function zeroInitFix(f: ModelFacts): Fix | null {
  if (!f.residual || f.zeroInit) return null;
  return {
    label: 'zero-initialise each residual branch',
    set: ['model.zeroInitResidual=true'],
    why: 'each residual block adds its branch’s variance to the signal, so without it activations grow with depth; starting branches at zero keeps every block the identity at first (Hanin & Rolnick 2018; Fixup, Zhang et al. 2019; SkipInit, De & Smith 2020)',
  };
}

/** Learning-rate warm-up, unless the schedule has one. */
export function warmupFix(f: ModelFacts): Fix | null {
  if (f.warmup > 0) return null;
  return {
    label: 'learning-rate warm-up',
    set: ['schedule.warmupSteps=100'],
    why: 'small steps while Adam’s second-moment estimates settle (Goyal et al. 2017; Liu et al. 2020)',
  };
}

/** Skipping steps whose gradients are not finite, unless the chain does. */
export function skipNonFiniteFix(f: ModelFacts): Fix | null {
  if (f.hasSkipNonFinite) return null;
  return {
    label: 'skip steps with NaN/Inf gradients',
    set: [f.clipCount === 0 ? 'clip[0].type=skip-non-finite' : `clip[${f.clipCount}].type=skip-non-finite`],
    why: 'leaves the weights and optimizer state unchanged on a step whose gradients are not finite (optax apply_if_finite)',
  };
}

/** Zero biases, when the config sets negative ones (they push ReLU pre-activations below 0). */
export function zeroBiasFix(f: ModelFacts): Fix | null {
  if (!(typeof f.bias === 'number' && f.bias < 0)) return null;
  return {
    label: 'zero biases',
    set: ['init.bias=zeros'],
    why: 'negative biases push pre-activations below 0, where ReLU outputs 0 and passes no gradient',
  };
}

/** Leaky ReLU, for an MLP or CNN (the models whose activation `model.activation` sets). */
export function leakyReluFix(f: ModelFacts): Fix | null {
  if (!ACTIVATION_MODELS.has(f.type) || f.activation === 'leaky-relu') return null;
  return {
    label: 'Leaky ReLU',
    set: ['model.activation=leaky-relu'],
    why: 'a small slope below 0 keeps a gradient flowing through inactive units (Maas, Hannun & Ng 2013)',
  };
}

/** Batch normalisation, for an MLP or CNN without normalisation. */
export function batchNormFix(f: ModelFacts): Fix | null {
  if (!NORM_MODELS.has(f.type) || f.norm !== 'none') return null;
  return {
    label: 'batch normalisation',
    set: ['model.norm=batch'],
    why: 'keeps pre-activations near zero mean and unit variance, away from the flat ends of sigmoid/tanh (Ioffe & Szegedy 2015)',
  };
}

/** An LSTM in place of a vanilla RNN (only for `model.type=rnn`). */
export function lstmFix(f: ModelFacts, label: string, why: string): Fix | null {
  if (f.type !== 'rnn') return null;
  return { label, set: ['model.type=lstm'], why };
}

/**
 * A forget-gate bias of 1, for an LSTM whose forget-gate bias is below it (0 by default): the forget gate starts
 * near 0.73 instead of 0.5, so the cell state, and the gradient along it, survives many more steps.
 */
export function forgetBiasFix(f: ModelFacts): Fix | null {
  if (f.type !== 'lstm' || (f.forgetBias !== undefined && f.forgetBias >= 1)) return null;
  return {
    label: 'forget-gate bias 1',
    set: ['model.forgetBias=1'],
    why: 'the forget gate starts mostly open, so the cell state carries gradients across many time steps from the first step on (Gers et al. 2000; Jozefowicz, Zaremba & Sutskever 2015)',
  };
}

/** Orthogonal initialisation, for recurrent weights (unless in use). */
export function orthogonalFix(f: ModelFacts): Fix | null {
  if (!f.recurrent || f.init === 'orthogonal') return null;
  return {
    label: 'orthogonal initialisation',
    set: ['init.weight=orthogonal'],
    why: 'orthogonal recurrent weights have all singular values 1, so gradients neither shrink nor grow through time at initialisation (Saxe et al. 2014)',
  };
}

/** Recurrent weights with gain 1, when the config scales them above 1. */
export function recurrentGainFix(f: ModelFacts): Fix | null {
  if (!f.recurrent || !(f.recurrentGain !== undefined && f.recurrentGain > 1)) return null;
  return {
    label: 'recurrent weights with gain 1',
    set: ['init.recurrentGain=1'],
    why: 'a recurrent matrix with spectral radius above 1 multiplies gradients by it at every time step (Pascanu, Mikolov & Bengio 2013)',
  };
}

/** Half the sequence length, for recurrent nets on `adding` or `copy` data (`data.length`). */
export function shorterSequenceFix(f: ModelFacts): Fix | null {
  if (!f.recurrent || (f.data !== 'adding' && f.data !== 'copy')) return null;
  const now = f.seqLength ?? (f.data === 'adding' ? 100 : 50);
  const next = Math.max(2, Math.floor(now / 2));
  if (next >= now) return null;
  return {
    label: `shorter sequences (length ${next})`,
    set: [`data.length=${next}`],
    why: 'the gradient must cross fewer time steps to link an output to the input that caused it; learn the short task first, then lengthen it (curriculum learning, Bengio et al. 2009; Zaremba & Sutskever 2014)',
  };
}
