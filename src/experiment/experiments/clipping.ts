/**
 * `clipping`: every clip transform gradguard has, on one setting that explodes (a vanilla tanh RNN on the adding
 * problem under SGD with momentum, whose unclipped run blows up within ~50 steps): final loss, steps clipped or
 * skipped, where a run blew up, and how stable each is over seeds.
 */
import { mean, meanStd, runsOf, stepRows } from '../analysis.js';
import { barChart, lineChart, type Row } from '../figures.js';
import { type Analysis, type ExperimentContext, type ExperimentModule, fmtNum, type JudgedRun } from '../framework.js';
import { mdTable } from '../page.js';
import { blowUpStep, regressionOutcome } from './regression.js';

/** One arm's numbers over its seeds. */
interface ArmSummary {
  arm: string;
  runs: number;
  /** Runs whose outcome is healthy (`solves` or `learns`). */
  stable: number;
  diverged: number;
  testLoss: number[];
  /** Fraction of the steps a clip transform changed the gradients. */
  clippedFraction: number;
  skipped: number;
  /** Steps at which each run blew up (null: it did not). */
  blowUps: (number | null)[];
  verdicts: string[];
}

function summarize(ctx: ExperimentContext, arm: string): ArmSummary {
  const rs = runsOf(ctx.runs, arm);
  return {
    arm,
    runs: rs.length,
    stable: rs.filter((r) => r.outcome.ok).length,
    diverged: rs.filter((r) => r.outcome.label === 'diverged').length,
    testLoss: rs.map((r) => r.test.loss),
    clippedFraction: mean(rs.map((r) => r.clippedSteps / Math.max(1, r.steps))),
    skipped: rs.reduce((n, r) => n + r.skippedSteps, 0),
    blowUps: rs.map((r) => blowUpStep(ctx.store, r.run, r.baselineLoss)),
    verdicts: rs.map((r) => r.verdict),
  };
}

/** `43, 56, -`: each seed's blow-up step, `-` for a run that did not blow up. */
function fmtSteps(xs: readonly (number | null)[]): string {
  return xs.map((x) => (x === null ? '-' : String(x))).join(', ');
}

/** The test MSEs of the runs that ended with a finite loss, as `mean ± std`, with how many did. */
function finiteLosses(xs: readonly number[]): string {
  const f = xs.filter(Number.isFinite);
  return f.length === xs.length ? meanStd(f) : f.length ? `${meanStd(f)} (${f.length} finite)` : '-';
}

function reading(ctx: ExperimentContext, sums: ArmSummary[]): string {
  const by = new Map(sums.map((s) => [s.arm, s]));
  const none = by.get('none');
  const skip = by.get('skip-non-finite');
  const clipArms = sums.filter((s) => s.arm !== 'none' && s.arm !== 'skip-non-finite');
  const list = (xs: ArmSummary[], f: (s: ArmSummary) => string = (s) => `\`${s.arm}\``) =>
    xs.length ? xs.map(f).join(', ') : 'none';
  const all = clipArms.filter((s) => s.runs > 0 && s.stable === s.runs);
  const some = clipArms.filter((s) => s.stable > 0 && s.stable < s.runs);
  const never = clipArms.filter((s) => s.stable === 0);
  const blew = clipArms.filter((s) => s.blowUps.some((b) => b !== null));
  const agc = by.get('agc');
  const seeds = ctx.spec.sizes[ctx.size].seeds.length;
  const lines: string[] = [];
  if (none) {
    const n = none.blowUps.filter((b) => b !== null).length;
    lines.push(
      `**The setting explodes.** Without clipping, ${n} of ${none.runs} runs blew up (the step where the loss passed 100x the baseline or went non-finite, per seed: ${fmtSteps(none.blowUps)})${none.diverged ? `, and ${none.diverged} ${none.diverged === 1 ? 'was' : 'were'} then stopped as diverged after ${ctx.runs.find((r) => r.arm.name === 'none')?.config.train.maxConsecutiveNonFinite ?? 10} non-finite steps in a row` : ''}; test MSE ${finiteLosses(none.testLoss)}. This is Pascanu et al.'s picture: a recurrent net's gradient norm can jump by orders of magnitude from one step to the next (the "cliffs", walls of high curvature in the error surface, that they draw), and plain SGD takes the full step along it (figure 2). gradguard's verdicts for these runs: ${none.verdicts.map((v) => `\`${v}\``).join(', ')}.`,
    );
  }
  lines.push(
    '',
    `**Clipping.** Among the clip transforms, ${blew.length ? `${list(blew)} still blew up on some seed (a loss over 100x the baseline at some step)` : 'none blew up on any seed'}. Learned (training MSE under half the baseline) on every seed: ${list(all)}; on some seeds: ${list(some, (s) => `\`${s.arm}\` (${s.stable}/${s.runs})`)}; on none: ${list(never)}. Global-norm clipping (Pascanu et al.'s rescaling, PyTorch's \`clip_grad_norm_\`) keeps the direction of the whole update and only caps its length, so the run takes many small steps through the cliff instead of one huge one. AGC caps each unit's gradient against its weight norm; at 0.01 (gradguard's default) it changed the gradients on ${agc ? `${(agc.clippedFraction * 100).toFixed(0)}%` : '-'} of the steps here, so it acts as a smaller, weight-relative learning rate throughout. Value clipping changes the direction of the update (each element clamped on its own); per-parameter norm clipping caps each tensor separately, so the total can still be several times the threshold; AutoClip's threshold is the 10th percentile of all norms seen so far, so it depends on the first, explosive steps.`,
  );
  if (skip && none) {
    const same = skip.blowUps.every((b, i) => b === none.blowUps[i]);
    lines.push(
      '',
      `**Skipping non-finite steps is not clipping.** \`skip-non-finite\` ${same ? 'blew up at exactly the same steps as no clipping' : `blew up at steps ${fmtSteps(skip.blowUps)} (no clipping: ${fmtSteps(none.blowUps)})`}. Two reasons, both by design: the updates that blow the weights up are finite (a huge but finite gradient times the learning rate), so there is nothing to skip until it is too late; and once the weights are huge every later step is non-finite, so skipping them cannot recover the run. In gradguard the trainer itself already skips a step whose loss or gradients are not finite (\`train.onNonFinite: skip\`, the default) before the transform chain runs, so in \`gradguard train\` the transform only matters in a chain used from the library; both arms count ${none.skipped} and ${skip.skipped} skipped steps over ${seeds} seeds.`,
    );
  }
  const gn = by.get('global-norm');
  const gnStable = gn !== undefined && gn.runs > 0 && gn.stable === gn.runs;
  const noneFailed = none !== undefined && none.stable === 0;
  lines.push(
    '',
    `**Against the papers.** ${noneFailed && gnStable ? "The papers' ordering holds here: no clipping fails on every seed, global-norm rescaling learns on every seed, and skip-if-non-finite is a safety net, not a cure." : `The papers' ordering holds only in part here: no clipping ${noneFailed ? 'fails on every seed' : `learned on ${none?.stable ?? 0} of ${none?.runs ?? 0} seeds`}, global-norm rescaling learned on ${gn?.stable ?? 0} of ${gn?.runs ?? 0}.`} What this page does not show: AGC was designed for normaliser-free ResNets with large batches (Brock et al.), not RNNs, and AutoClip for audio source separation; their thresholds (0.01 and the 10th percentile) are the papers' defaults, not tuned here, and neither are the value (0.1) and norm (1) thresholds. ${seeds} seeds of a ${ctx.runs[0]?.config.model.hiddenSize ?? '?'}-unit RNN for ${ctx.runs[0]?.config.train.maxSteps ?? '?'} steps is a small sample: the ranking among the transforms that did not blow up is within seed noise (see the spread of the test MSE); the split between "blows up" and "stays finite" is the robust result.`,
  );
  return lines.join('\n');
}

function analyze(ctx: ExperimentContext): Analysis {
  const arms = ctx.spec.armList.map((a) => a.name);
  const sums = arms.map((a) => summarize(ctx, a));
  const first = arms.map((a) => runsOf(ctx.runs, a)[0]).filter((r): r is JudgedRun => r !== undefined);
  const baseline = ctx.runs[0]?.baselineLoss ?? null;
  const lossRows = first.flatMap((r) => stepRows(ctx.store, r.run, 'loss', { arm: r.arm.name }));
  const normRows = first.flatMap((r) => stepRows(ctx.store, r.run, 'grad_norm', { arm: r.arm.name }));
  const barRows: Row[] = ctx.runs.map((r) => ({
    arm: r.arm.name,
    seed: `seed ${r.seed}`,
    // a diverged run has no meaningful final loss: drawn at the cap so the bar shows it failed
    value: Number.isFinite(r.test.loss) && r.outcome.label !== 'diverged' ? Math.min(r.test.loss, 10) : 10,
  }));
  const table = mdTable(
    [
      'clip',
      'runs stable',
      'diverged',
      'test MSE (mean ± std)',
      'steps clipped',
      'steps skipped',
      'blew up at step',
      'verdicts',
    ],
    sums.map((s) => [
      s.arm,
      `${s.stable}/${s.runs}`,
      String(s.diverged),
      finiteLosses(s.testLoss),
      `${(s.clippedFraction * 100).toFixed(0)}%`,
      String(s.skipped),
      fmtSteps(s.blowUps),
      s.verdicts.join(', '),
    ]),
  );
  return {
    figures: [
      {
        key: 'loss',
        title: 'Training loss per arm (first seed)',
        caption: `The training loss (MSE) at every step, log scale, for the first seed of each arm; the dashed line is the trivial baseline ${fmtNum(baseline)}. A line that stops early is a run the trainer stopped as diverged (non-finite steps are not drawn).`,
        spec: lineChart(lossRows, {
          title: 'Training loss (log scale)',
          x: 'step',
          y: 'value',
          color: 'arm',
          logY: true,
          yTitle: 'MSE',
          ...(baseline !== null ? { rule: { y: baseline, label: 'baseline' } } : {}),
        }),
      },
      {
        key: 'grad-norm',
        title: 'Gradient norm before clipping (first seed)',
        caption:
          'The global L2 norm of the raw gradients (before any clip transform) at every step, log scale, of the first seed of each arm. An arm whose run is identical to another (`skip-non-finite` and `none` where skipping changed nothing) is drawn over it. A run that blows up climbs by many orders of magnitude within a few dozen steps; the clipped runs stay within a few orders of magnitude of 1.',
        spec: lineChart(normRows, {
          title: 'Raw gradient norm (log scale)',
          x: 'step',
          y: 'value',
          color: 'arm',
          logY: true,
          yTitle: 'global gradient norm',
        }),
      },
      {
        key: 'final',
        title: 'Final test MSE per arm and seed',
        caption: `Test MSE at the end of each run, log scale, capped at 10 (a diverged run is drawn at the cap); the red line is the baseline ${fmtNum(baseline)}. Bars well below it learned the task.`,
        spec: barChart(barRows, {
          title: 'Final test MSE (log scale, capped at 10)',
          x: 'arm',
          y: 'value',
          group: 'seed',
          logY: true,
          yTitle: 'test MSE',
          ...(baseline !== null ? { rule: { y: baseline, label: 'baseline' } } : {}),
        }),
      },
    ],
    sections: [{ heading: 'Per arm over seeds', body: table }],
    reading: reading(ctx, sums),
    data: { baseline, arms: sums },
  };
}

export const clipping: ExperimentModule = { name: 'clipping', outcome: regressionOutcome, analyze };
