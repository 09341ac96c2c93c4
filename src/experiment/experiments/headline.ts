/**
 * `headline`: the tutorial's MNIST MLP (784-256-10, ReLU, Xavier, Adam, global-norm clipping at 1.0) against the
 * 96.5% test accuracy the tutorial states, on full MNIST when its files are on this machine (the download cache,
 * `data.source: download`), else on the 10,000 bundled digits; and the per-layer gradient flow while it trains.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { MNIST_CACHE_DIR, MNIST_FILES } from '../../data/download.js';
import { epochRows, layerRows, layerStatsByStep, mean, meanStd, median, runsOf } from '../analysis.js';
import { lineChart, type Row } from '../figures.js';
import {
  type Analysis,
  type ExperimentContext,
  type ExperimentModule,
  fmtNum,
  fmtPct,
  type PageFigure,
} from '../framework.js';
import { mdTable } from '../page.js';

/** The tutorial's stated test accuracy. */
const TUTORIAL_ACCURACY = 0.965;

/** Whether full MNIST is in the download cache (then `data.source: download` checks it and needs no network). */
export function fullMnistCached(dir = MNIST_CACHE_DIR): boolean {
  return MNIST_FILES.every((f) => existsSync(join(dir, f.name)));
}

function analyze(ctx: ExperimentContext): Analysis {
  const { runs, store } = ctx;
  const arms = ctx.spec.armList.map((a) => a.name);
  const accRows = runs.flatMap((r) =>
    epochRows(store, r.run, 'test_accuracy', { run: `${r.arm.name} s${r.seed}`, arm: r.arm.name }),
  );
  const first = arms.map((a) => runsOf(runs, a)[0]!).filter(Boolean);
  const flowRows = first.flatMap((r) => layerRows(store, r.run, 'gradNorm', { arm: r.arm.name }));
  const ratioRows = first.flatMap((r) => layerRows(store, r.run, 'updateRatio', { arm: r.arm.name }));
  const data = runs[0]?.dataset;
  const full = data !== undefined && data.train >= 60_000;
  const perArm = arms.map((a) => {
    const rs = runsOf(runs, a);
    return {
      arm: a,
      accuracy: mean(rs.map((r) => r.test.accuracy ?? Number.NaN)),
      accuracies: rs.map((r) => r.test.accuracy ?? Number.NaN),
      verdicts: [...new Set(rs.map((r) => r.verdict))],
      clipped: mean(rs.map((r) => r.clippedSteps / Math.max(1, r.steps))),
    };
  });
  const layerTable = first.map((r) => {
    const last = store.getLayerStats(r.run, { last: true });
    return last.map((l) => [
      r.arm.name,
      l.name,
      fmtNum(l.gradNorm),
      fmtNum(l.updateRatio),
      `${fmtNum(l.actMean)} ± ${fmtNum(l.actStd)}`,
      l.deadFrac !== undefined ? fmtPct(l.deadFrac) : '-',
    ]);
  });
  const flowSpread = median(
    first.flatMap((r) => {
      const by = layerStatsByStep(store, r.run);
      return [...by.values()].map((ls) => {
        const g = ls.map((l) => l.gradNorm);
        return Math.max(...g) / Math.min(...g);
      });
    }),
  );
  const clipped = runs.map((r) => ({ r, col: store.getMetrics(r.run).series.clipped ?? [] }));
  const epochSteps = (r: (typeof runs)[number]) => Math.max(1, Math.round(r.steps / r.config.train.epochs));
  const share = (pick: (i: number, r: (typeof runs)[number]) => boolean) => {
    let n = 0;
    let k = 0;
    for (const { r, col } of clipped)
      col.forEach((v, i) => {
        if (v === null || !pick(i, r)) return;
        n++;
        k += v;
      });
    return n ? k / n : Number.NaN;
  };
  const clipEarly = share((i, r) => i < epochSteps(r));
  const clipLate = share((i, r) => i >= epochSteps(r));
  const best = perArm.reduce((a, b) => (b.accuracy > a.accuracy ? b : a));
  const gap = (best.accuracy - TUTORIAL_ACCURACY) * 100;
  const reading = [
    `The tutorial does not measure its 96.5%: it writes "suppose we train on MNIST and reach 96.5% on the test set", and its code would not reach any number as written (it builds the clipped optimizer and then replaces it with a plain Adam, and feeds the whole training set as one batch). So the question this page answers is whether the network it describes, trained as it means, reaches 96.5% with healthy gradients.`,
    '',
    `Data: ${full ? `full MNIST (${data?.train} training and ${data?.test} test images), the tutorial's own data` : `the ${data?.train ?? '?'} + ${data?.test ?? '?'} bundled MNIST digits, because full MNIST is not in \`~/.cache/gradguard/mnist\` on this machine (\`gradguard train --set data.source=download\` fetches it where a network exists; this experiment then uses it). The bundled digits are a 10,000-image subset, so a model sees 8,000 training images instead of 60,000 and its test accuracy is expected to be lower than on full MNIST`}.`,
    '',
    ...perArm.map(
      (p) =>
        `- **${p.arm}**: test accuracy ${meanStd(p.accuracies, 100, 4)}% over ${p.accuracies.length} seed${p.accuracies.length === 1 ? '' : 's'} (${p.accuracy >= TUTORIAL_ACCURACY ? 'at or above' : 'below'} the tutorial's 96.5%); gradguard's verdict ${p.verdicts.map((v) => `\`${v}\``).join(', ')}; the clip at 1.0 scaled ${fmtPct(p.clipped)} of the steps.`,
    ),
    '',
    `The best arm is ${gap >= 0 ? `${gap.toFixed(2)} points above` : `${(-gap).toFixed(2)} points below`} the tutorial's number${full ? '' : ' on the smaller bundled set'}. ${gap >= 0 ? 'The claim holds.' : full ? 'The claim does not hold at this size.' : 'This is in line with PyTorch on the same digits (94.9% after 10 epochs on raw pixels, 96.1% after 20 with standardised inputs, docs/design.md): which points to the smaller training set rather than the engine.'}`,
    '',
    `Gradient flow: a 2-layer MLP is the easy case for the remedies the tutorial is about. The two layers' gradient norms stay within ${fmtNum(flowSpread)}x of each other over the whole run (figure 2; median over steps of the larger over the smaller), and each step changes the weights by a small fraction of their norm (figure 3). ${
      perArm.every((p) => p.verdicts.every((v) => v === 'healthy'))
        ? 'Nothing vanishes or explodes, as the verdicts say.'
        : `Nothing vanishes or explodes; where a verdict is not \`healthy\` (${perArm
            .filter((p) => p.verdicts.some((v) => v !== 'healthy'))
            .map((p) => `${p.arm}: ${p.verdicts.join(', ')}`)
            .join('; ')}), it names something else the diagnosis saw in the last steps, not a flow problem.`
    } The clip at 1.0 scaled ${fmtPct(clipEarly)} of the first epoch's steps and ${fmtPct(clipLate)} of the later ones (all runs).`,
  ].join('\n');
  return {
    figures: headlineFigures(accRows, flowRows, ratioRows),
    sections: [
      {
        heading: 'Per-layer statistics at the last logged step',
        body: mdTable(
          ['arm', 'layer', 'grad norm', '|dw|/|w|', 'activation mean ± std', 'dead units'],
          layerTable.flat(),
        ),
      },
    ],
    reading,
    data: { tutorialAccuracy: TUTORIAL_ACCURACY, fullMnist: full, arms: perArm },
  };
}

/** The figures of the page. */
function headlineFigures(accRows: Row[], flowRows: Row[], ratioRows: Row[]): PageFigure[] {
  return [
    {
      key: 'accuracy',
      title: 'Test accuracy per epoch',
      caption: `Each run's test accuracy after every epoch; the dashed line is the tutorial's 96.5%.`,
      spec: lineChart(accRows, {
        title: 'Test accuracy per epoch',
        x: 'epoch',
        y: 'value',
        color: 'run',
        yTitle: 'test accuracy',
        points: true,
        rule: { y: TUTORIAL_ACCURACY, label: "tutorial's 96.5%" },
      }),
    },
    {
      key: 'flow',
      title: 'Gradient norm per layer',
      caption:
        'The L2 norm of each layer’s raw gradient (before clipping) at every logged step, log scale; the first seed of each arm. Layer `0` is the hidden layer, `2` the output layer.',
      spec: lineChart(flowRows, {
        title: 'Per-layer gradient norm (raw, before clipping)',
        x: 'step',
        y: 'value',
        color: 'layer',
        facet: 'arm',
        logY: true,
        yTitle: 'gradient norm',
        width: 360,
      }),
    },
    {
      key: 'update-ratio',
      title: 'Update-to-weight ratio per layer',
      caption:
        '‖Δw‖/‖w‖ per layer and step, log scale: the size of each update against the weights it changes (around 1e-3 is the usual healthy range).',
      spec: lineChart(ratioRows, {
        title: 'Per-layer update / weight ratio',
        x: 'step',
        y: 'value',
        color: 'layer',
        facet: 'arm',
        logY: true,
        yTitle: '|dw| / |w|',
        width: 360,
      }),
    },
  ];
}

export const headline: ExperimentModule = {
  name: 'headline',
  prepare(size) {
    if (size !== 'tiny' && fullMnistCached())
      return {
        set: { 'data.source': 'download' },
        notes: [`Full MNIST from the download cache ${MNIST_CACHE_DIR} (checked against its SHA-256 sums).`],
      };
    return {
      notes: [
        `Full MNIST is not on this machine (${MNIST_CACHE_DIR} does not hold its four files), so the bundled 10,000 digits are used (a stratified 8,000 / 2,000 split). With the files there (\`gradguard train --set data.source=download\` fetches them where a network exists) the experiment uses them.`,
      ],
    };
  },
  analyze,
};
