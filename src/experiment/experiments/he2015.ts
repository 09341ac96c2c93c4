/**
 * `he2015`: a 30-layer plain ReLU MLP under SGD with Xavier and with He init (He et al. 2015, figure 3). At init the
 * activations' standard deviation through depth is compared with the theory (Xavier on ReLU: x1/√2 per square layer;
 * He: x1), and so are the layers' gradients; then the loss curves show which trains.
 */
import { layersAtInit, mean, meanStd, runsOf, stepRows } from '../analysis.js';
import { lineChart, type Row } from '../figures.js';
import {
  type Analysis,
  type ExperimentContext,
  type ExperimentModule,
  fmtNum,
  fmtPct,
  type JudgedRun,
} from '../framework.js';
import { mdTable } from '../page.js';

/** The hidden layers' index (1-based) of a layer path of an MLP (`0`, `2`, ... are Linear layers 1, 2, ...). */
function layerIndex(name: string): number {
  return Number(name) / 2 + 1;
}

/** Init statistics of the first run of each arm: activation std and gradient norm per Linear layer. */
function initRows(ctx: ExperimentContext): Row[] {
  return ctx.spec.armList.flatMap((a) => {
    const r = runsOf(ctx.runs, a.name)[0];
    if (!r) return [];
    return layersAtInit(ctx.store, r.run).map((l) => ({
      arm: a.name,
      layer: layerIndex(l.name),
      actStd: l.actStd,
      gradNorm: l.gradNorm,
    }));
  });
}

/** log2 of the activation std's ratio from the first hidden layer to the last, per arm; and its slope per layer. */
function decay(rows: readonly Row[], arm: string): { ratio: number; perLayer: number } {
  const hidden = rows.filter((r) => r.arm === arm).slice(0, -1); // the output layer has no ReLU
  const first = hidden[0]?.actStd as number;
  const last = hidden.at(-1)?.actStd as number;
  const ratio = last / first;
  return { ratio, perLayer: ratio ** (1 / Math.max(1, hidden.length - 1)) };
}

function analyze(ctx: ExperimentContext): Analysis {
  const { runs, store } = ctx;
  const init = initRows(ctx);
  const lossRows = runs.flatMap((r) => stepRows(store, r.run, 'loss', { run: `${r.arm.name} s${r.seed}` }));
  const baseline = runs[0]?.baselineLoss ?? Math.log(10);
  const depth = runs[0]?.config.model.depth ?? 30;
  const x = decay(init, 'xavier');
  const h = decay(init, 'he');
  const arms = ctx.spec.armList.map((a) => {
    const rs = runsOf(runs, a.name);
    return {
      arm: a.name,
      trainLoss: rs.map((r) => r.train.loss),
      testAcc: rs.map((r) => r.test.accuracy ?? Number.NaN),
      outcomes: [...new Set(rs.map((r) => r.outcome.label))],
      verdicts: [...new Set(rs.map((r) => r.verdict))],
    };
  });
  const xa = arms.find((a) => a.arm === 'xavier');
  const ha = arms.find((a) => a.arm === 'he');
  const heTrains = ha?.outcomes.length === 1 && ha.outcomes[0] === 'learns';
  const xavierStalls = xa?.outcomes.every((o) => o !== 'learns') ?? false;
  const theory = 2 ** (-(depth - 1) / 2);
  const xr = runsOf(runs, 'xavier')[0];
  const fix = xr?.diagnosis.findings
    .flatMap((f) => (f.suggestion ?? '').split(';'))
    .find((part) => part.includes('init.weight=kaiming'))
    ?.trim()
    .replace(/^or /, '');
  const xavierLive = xr
    ? `While the Xavier net trained, gradguard's first live finding was \`${xr.warnings[0]?.kind ?? 'none'}\` (all of them: the table above)${fix ? `; its final diagnosis suggests ${fix}, the paper's remedy` : ''}.`
    : '';
  const reading = [
    `**Theory.** For a ReLU layer with n inputs and weights of variance σ², the variance of the next pre-activation is n·σ²/2 times the current one (He et al., eq. 10). Xavier normal gives σ² = 2/(n_in + n_out) = 1/n for square layers, so each layer halves the variance: after the ${depth - 1} square hidden layers the activations' standard deviation is 2^-${(depth - 1) / 2} ≈ ${fmtNum(theory)} of the first hidden layer's. He init (σ² = 2/n) keeps it.`,
    '',
    `**Measured at init** (figure 1, the first batch): from the first hidden layer to the last, the activation std changes by ${fmtNum(x.ratio)}x with Xavier (${fmtNum(x.perLayer)}x per layer; theory 0.707x) and by ${fmtNum(h.ratio)}x with He (${fmtNum(h.perLayer)}x per layer; theory 1x). The gradients (figure 2) follow: with Xavier the first layer's gradient norm is ${fmtNum(gradSpread(init, 'xavier'))}x the last layer's, with He ${fmtNum(gradSpread(init, 'he'))}x.`,
    '',
    `**Training** (figure 3): ${arms.map((a) => `${a.arm}: train loss ${meanStd(a.trainLoss)}, test accuracy ${meanStd(a.testAcc, 100, 3)}% (${a.outcomes.join(', ')}; gradguard: ${a.verdicts.map((v) => `\`${v}\``).join(', ')})`).join('; ')}.`,
    '',
    heTrains && xavierStalls
      ? `This is the paper's result: He init trains the 30-layer plain net and Xavier init stalls at the trivial loss ln 10 ≈ ${fmtNum(baseline)}. The paper's figure 3 shows the same on ImageNet with a 30-layer convolutional net; here it is an MLP on MNIST digits, where the same variance argument holds layer by layer.`
      : `This differs from the paper: ${heTrains ? '' : 'He init did not clearly train here; '}${xavierStalls ? '' : 'Xavier init did learn here; '}at this size (${ctx.spec.sizes[ctx.size].note ?? ctx.size}) the runs may be too short or the learning rate too different from the paper's setting to show it.`,
    '',
    `gradguard's verdicts: ${runs.map((r) => `${r.arm.name} s${r.seed} \`${r.verdict}\` (${r.agrees ? 'agrees with' : 'disagrees with'} the outcome)`).join(', ')}. ${xavierLive}`,
  ].join('\n');
  const warnRows = runs.map((r) => [`${r.arm.name} s${r.seed}`, liveFindings(r)]);
  return {
    figures: [
      {
        key: 'activations-at-init',
        title: 'Activation standard deviation through depth, at init',
        caption: `The standard deviation of each layer's output (after its ReLU; the last is the output layer's logits) on the first batch, log scale. Xavier loses about half the variance per layer (theory: x0.707 in std), He keeps it.`,
        spec: lineChart(init, {
          title: 'Activation std per layer at init',
          x: 'layer',
          y: 'actStd',
          color: 'arm',
          logY: true,
          points: true,
          integerX: true,
          xTitle: 'layer (1 = first hidden)',
          yTitle: 'activation std',
        }),
      },
      {
        key: 'gradients-at-init',
        title: 'Gradient norm per layer, at init',
        caption:
          "Each layer's weight-gradient norm on the first batch, log scale: with Xavier the gradients vanish towards the input.",
        spec: lineChart(init, {
          title: 'Gradient norm per layer at init',
          x: 'layer',
          y: 'gradNorm',
          color: 'arm',
          logY: true,
          points: true,
          integerX: true,
          xTitle: 'layer (1 = first hidden)',
          yTitle: 'gradient norm',
        }),
      },
      {
        key: 'loss',
        title: 'Training loss',
        caption: `The training loss of every run and step; the dashed line is the trivial baseline ${fmtNum(baseline)} (predicting the class frequencies).`,
        spec: lineChart(lossRows, {
          title: 'Training loss per step',
          x: 'step',
          y: 'value',
          color: 'run',
          yTitle: 'loss',
          rule: { y: baseline, label: 'trivial baseline' },
        }),
      },
    ],
    sections: [
      {
        heading: 'What gradguard said while they trained',
        body: mdTable(['run', 'live findings (first time each)'], warnRows),
      },
    ],
    reading,
    data: {
      actStdRatio: { xavier: x.ratio, he: h.ratio },
      perLayer: { xavier: x.perLayer, he: h.perLayer },
      theoryXavier: theory,
      arms: arms.map((a) => ({ arm: a.arm, trainLoss: mean(a.trainLoss), testAccuracy: mean(a.testAcc) })),
      heTrains,
      xavierStalls,
      testAccuracy: Object.fromEntries(arms.map((a) => [a.arm, fmtPct(mean(a.testAcc))])),
    },
  };
}

/** A run's live findings, first time each kind, with the most layers it reached: `vanishing (11 layers)`. */
function liveFindings(r: JudgedRun): string {
  const most = new Map<string, number>();
  for (const w of r.warnings) most.set(w.kind, Math.max(most.get(w.kind) ?? 0, w.layers.length));
  return [...most].map(([k, n]) => (n === 0 ? k : `${k} (up to ${n} layer${n === 1 ? '' : 's'})`)).join(', ') || 'none';
}

/** First layer's gradient norm over the last layer's, at init, for one arm. */
function gradSpread(rows: readonly Row[], arm: string): number {
  const r = rows.filter((x) => x.arm === arm);
  return (r[0]?.gradNorm as number) / (r.at(-1)?.gradNorm as number);
}

export const he2015: ExperimentModule = { name: 'he2015', analyze };
