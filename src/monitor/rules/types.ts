/**
 * The shapes the diagnosis speaks in: findings with their fixes, the diagnosis of a run, what `diagnose` is given,
 * and the `Rule` every file of this folder exports.
 */
import type { Baseline } from '../../data/baseline.js';
import type { LayerInfo, StepRecord } from '../monitor.js';
import type { Context } from './context.js';
import type { ModelFacts } from './facts.js';
import type { ThresholdName } from './thresholds.js';

/**
 * What a finding is about: one kind per rule of the registry (rules/index.ts), and `healthy` for a run with no
 * problem. NOTE: a new rule adds its kind here; a test checks this list and the registry agree.
 */
export type FindingKind =
  | 'exploding'
  | 'non-finite'
  | 'dead-units'
  | 'saturation'
  | 'vanishing'
  | 'vanishing-through-time'
  | 'exploding-through-time'
  | 'not-learning'
  | 'loss-spike'
  | 'update-ratio-too-high'
  | 'update-ratio-too-low'
  | 'healthy';

/** A change to the config that may fix a finding: each entry of `set` is one `--set key.path=value`. */
export interface Fix {
  /** Short name: "Kaiming (He) initialisation". */
  label: string;
  /** `key.path=value` assignments, as `--set` takes them. */
  set: string[];
  /** Why it helps, with the reference. */
  why: string;
}

export interface Finding {
  kind: FindingKind;
  /** The layers concerned, in forward order (empty for findings about the whole model). */
  layers: string[];
  /** The numbers that show it, in a sentence. */
  evidence: string;
  /** The same numbers, by name (ratios, norms, fractions, steps). */
  metrics: Record<string, number>;
  /** What to do, as a command-line fragment: `--set init.weight=kaiming-normal` (empty when healthy). */
  suggestion: string;
  /** The suggested fixes, most likely first. */
  fixes: Fix[];
  /** Through-time findings: per recurrent layer, the time steps concerned and ‖∂L/∂h_t‖ per recorded step. */
  time?: TimeFinding[];
}

/** One recurrent layer's part of a through-time finding. */
export interface TimeFinding {
  /** The recurrent module and its stacked layer and direction (`l0`, `l1_reverse`). */
  layer: string;
  sub: string;
  /** Sequence length T and the gradient horizon in steps (through-time.ts). */
  length: number;
  horizon: number;
  /** ‖∂L/∂h_0‖ / ‖∂L/∂h_{T−1}‖ (the median over the later records). */
  firstLast: number;
  /** The time steps concerned: where the gradient fell below (vanishing) or rose above (exploding) the bound. */
  steps: number[];
  /** The latest record: the recorded time steps and ‖∂L/∂h_t‖ at each. */
  recorded: { steps: number[]; norms: number[] };
}

/** The run's loss beside its dataset's trivial baseline (see data/baseline.ts), as the diagnosis judged them. */
export interface BaselineComparison extends Baseline {
  /** The run's recent loss: the median of its last steps' losses (NaN when none was finite). */
  runLoss: number;
  /** `runLoss / loss`: 1 is no better than the trivial predictor, 0 is perfect. */
  ratio: number;
}

export interface Diagnosis {
  /** The most severe finding's kind, or `healthy`. */
  verdict: FindingKind;
  /** Most severe first; a single `healthy` finding when nothing is wrong. */
  findings: Finding[];
  /** The run's loss against its dataset's trivial baseline, when `diagnose` was given the baseline. */
  baseline?: BaselineComparison;
  /** Recurrent layers: the gradient horizon through time and ‖∂L/∂h_0‖/‖∂L/∂h_{T−1}‖ (later records' medians). */
  time?: TimeSummary[];
}

/** One recurrent layer's gradient flow through time, as the report's line states it. */
export interface TimeSummary {
  layer: string;
  sub: string;
  length: number;
  horizon: number;
  firstLast: number;
}

/**
 * The parts of an experiment's config (src/train/config.ts) that fixes are written against; a full `Config` fits.
 * NOTE: declared here rather than imported, because monitor/ sits below train/ and must not import from it.
 */
export interface ConfigFacts {
  model: {
    type: string;
    activation: string;
    residual: boolean;
    norm: string;
    zeroInitResidual: boolean;
    rezero: boolean;
    hidden?: readonly number[] | undefined;
    depth?: number | undefined;
    width?: number | undefined;
    /** cnn: the stage channels (their count is the number of stages). */
    channels?: readonly number[] | undefined;
    /** lstm: the forget-gate bias after init, when the config sets it. */
    forgetBias?: number | undefined;
  };
  init: { weight: string; bias: string | number; recurrentGain?: number | undefined };
  optim: { lr: number };
  schedule: { warmupSteps: number };
  clip: readonly { type: string }[];
  /** The data section: `length` is the sequence length of `adding` and `copy` (for "shorter sequences"). */
  data?: { name: string; length?: number | undefined } | undefined;
}

export interface DiagnoseOptions {
  /** The experiment's config: fixes are written against it (and skip what it already does). */
  config?: ConfigFacts;
  /** The monitor's `layerInfo()`: activation kinds and sizes per layer. */
  layers?: readonly LayerInfo[];
  /**
   * The loss the run started from (default: the first finite loss of the records): the scale a spike must rise by
   * (`spikeMinRise`) and a divergence is measured against. `LiveDiagnosis` keeps the run's first.
   */
  initialLoss?: number;
  /**
   * The run's first record, when `history` is a later window of it: which parameters and layers started at exactly
   * zero (zero-initialised branches and gates) is read from it. `LiveDiagnosis` keeps it.
   */
  initial?: StepRecord;
  /** The loss of every step (the monitor's `losses`), for spike detection between logged steps. */
  losses?: readonly number[];
  /** The dataset's trivial baseline (`dataset.baseline`): the run is judged against it (`not-learning`). */
  baseline?: Baseline;
  /**
   * The records carry the loss only (`monitor.enabled: false`: no layer statistics, no gradient norms): only the
   * rules that read the loss alone run (`lossOnly`), and the verdict says what was not judged.
   */
  lossOnly?: boolean;
}

/** What a rule's `detect` found: the layers concerned, the evidence in words and its numbers. */
export interface Detection {
  /** The layers concerned, in forward order (empty for a finding about the whole model). */
  layers: string[];
  evidence: string;
  metrics: Record<string, number>;
  /** Through-time rules: the time steps concerned, per recurrent layer. */
  time?: TimeFinding[];
}

/**
 * One diagnosis rule: what it looks for (`detect`), what to do about it (`fixes`), where it ranks and where
 * docs/diagnosis.md explains it. The registry (rules/index.ts) lists the rules; the severity order, the flow kinds,
 * the report's flags and the docs test are all read from it.
 */
export interface Rule {
  kind: Exclude<FindingKind, 'healthy'>;
  /**
   * Rank: lower is more severe. The verdict is the kind of the lowest-ranked finding; rules run in this order, and a
   * rule sees the findings of the ones before it (`ctx.found`), so a consequence can defer to its cause.
   */
  severity: number;
  /** The finding means gradients do not flow well: `doctor --fix` counts a fix as restoring the flow when none remains. */
  flow: boolean;
  /**
   * The finding is a verdict on each layer it names: a layer carries one such verdict, the most severe (a rule does
   * not name a layer that a more severe verdict already named).
   */
  perLayer: boolean;
  /** One letter beside the layers it names in the report's layer table (absent: not shown there). */
  mark?: string;
  /** Shown in red in the terminal report (the run is in trouble now), else yellow. */
  severe: boolean;
  /** The heading's anchor in docs/diagnosis.md (`#vanishing-gradients`). */
  docs: string;
  /** The THRESHOLDS it reads (docs/diagnosis.md describes each). */
  thresholds: readonly ThresholdName[];
  /** It reads the loss alone, so it runs without the monitor too (`monitor.enabled: false`). */
  lossOnly?: boolean;
  /** Looks for the problem in the records; null when it is not there. */
  detect(ctx: Context): Detection | null;
  /**
   * The fixes, most likely first, in the config's terms and for the layers found (nulls are dropped, as are
   * duplicates). Each fix must apply to the layer types and the model it is written for.
   */
  fixes(ctx: Context, facts: ModelFacts, found: Detection): readonly (Fix | null)[];
}
