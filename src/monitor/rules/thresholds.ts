/**
 * The thresholds of the diagnosis rules, in one place. docs/diagnosis.md says why each has its value and what was
 * measured on healthy and failing networks; a test checks that every one of them is described there.
 */
export const THRESHOLDS = {
  /**
   * A layer's gradient norm below this fraction of the largest layer's that is not exploding is vanishing (Glorot &
   * Bengio 2010).
   */
  vanishRatio: 1e-3,
  /** Every layer's gradient norm below this (with a loss that is not ~0): nothing reaches any layer. */
  vanishAbsolute: 1e-7,
  /**
   * Through time: ‖∂L/∂h_0‖ below this fraction of ‖∂L/∂h_{T−1}‖ (median over the later records) vanishes through
   * time (Bengio, Simard & Frasconi 1994) ...
   */
  timeVanishRatio: 1e-6,
  /**
   * ... unless it has risen by this factor since the start of the run: gated nets (LSTM, GRU) start vanishing and
   * learn to carry the gradient (judge the trend, not the state at init).
   */
  timeRecovery: 10,
  /**
   * Gated layers (LSTM, GRU) are judged through time only from this step on: one that learns first falls further (an
   * LSTM on adding T = 50 at lr 0.01: 8.7e-11 at init, 1e-15 at steps 50-100) and recovers as it learns (2.7e-6 at
   * step 150, 0.14 at step 200).
   */
  timeGatedMinSteps: 300,
  /** ‖∂L/∂h_0‖ above this multiple of ‖∂L/∂h_{T−1}‖ explodes through time (Pascanu, Mikolov & Bengio 2013). */
  timeExplodeRatio: 10,
  /** Sequences shorter than this many steps are not judged through time. */
  timeMinLength: 10,
  /** The first layer's gradient norm above this multiple of the last layer's grows backwards through depth. */
  explodeRatio: 1e3,
  /** A global gradient norm above this is exploding (100x a usual clipping threshold of 1, Pascanu et al. 2013). */
  explodeNorm: 100,
  /** ... or above it on at least this many steps of the records judged. */
  explodeMinSteps: 3,
  /** The global norm growing by this factor from the first to the last training record is exploding. */
  explodeGrowth: 100,
  /** A loss this many times its first value (or non-finite) has diverged. */
  divergeFactor: 10,
  /** A layer with at least this fraction of dead ReLU units. */
  deadFrac: 0.5,
  /** A layer with at least this fraction of sigmoid/tanh outputs within 1% of their bounds. */
  satFrac: 0.5,
  /** Update-to-weight ratio ‖Δw‖/‖w‖ above this is too high (Karpathy's ~1e-3, two orders of magnitude up). */
  updateRatioHigh: 1e-1,
  /** ... below this is too low (two orders of magnitude down). */
  updateRatioLow: 1e-5,
  /** Training records needed before update ratios are judged (one step says little; Adam's first are the largest). */
  updateRatioMinSteps: 5,
  /** Layers with fewer parameter elements than this are left out of the update-ratio rule (ReZero gates start at 0). */
  updateRatioMinSize: 100,
  /** A loss above this multiple of the median of the previous steps is a spike ... */
  spikeFactor: 3,
  /** ... if it also exceeds that median by this many median absolute deviations of those steps (batch noise) ... */
  spikeNoise: 5,
  /** ... if it also exceeds that median by this fraction of the first loss (so noise at tiny losses is not one). */
  spikeMinRise: 0.1,
  /** Steps of loss history a spike is measured against. */
  spikeWindow: 10,
  /** Previous steps needed before a spike can be called. */
  spikeMinHistory: 5,
  /**
   * A run whose recent loss is above `(1 - notLearningTolerance)` x the dataset's trivial baseline (the loss of
   * predicting the prior or the mean) has learned nothing a constant could not ...
   */
  notLearningTolerance: 0.1,
  /**
   * ... once it has made at least this many training steps (recurrent nets that learn sit near the baseline for a
   * while: on adding T = 50 an LSTM at lr 0.01 leaves it for good at step 181, a tanh RNN at 211; MLPs within 60).
   */
  notLearningMinSteps: 300,
  /** The recent loss is the median of this many last steps' losses (one batch is noisy). */
  notLearningWindow: 20,
} as const;

/** The name of a threshold. */
export type ThresholdName = keyof typeof THRESHOLDS;
