/**
 * `init-zoo`: every initializer crossed with every activation at depth 20 (the grid of experiments/init-zoo.yaml):
 * the gradient flow ratio at init (the first layer's gradient norm over the last layer's, on the first batch) and the
 * training loss after N steps, as a table and two heatmaps.
 */
import { layersAtInit, mean, median } from '../analysis.js';
import { heatmap, type Row } from '../figures.js';
import {
  type Analysis,
  type ArmRun,
  type ExperimentContext,
  type ExperimentModule,
  fmtNum,
  type PageFigure,
  type RunOutcome,
} from '../framework.js';
import { mdTable } from '../page.js';

interface Cell {
  init: string;
  activation: string;
  /** log10 of first-layer / last-layer gradient norm at init (median over seeds); null when not finite. */
  flow: number | null;
  /** log10 of the last hidden layer's activation std over the first's, at init. */
  signal: number | null;
  /** Training loss after the run (whole training split; mean over seeds). */
  loss: number | null;
  outcome: string;
  verdict: string;
}

const finiteOrNull = (x: number) => (Number.isFinite(x) ? x : null);

function cells(ctx: ExperimentContext): Cell[] {
  return ctx.spec.armList.map((arm) => {
    const runs = ctx.runs.filter((r) => r.arm === arm);
    const flows: number[] = [];
    const signals: number[] = [];
    for (const r of runs) {
      const init = layersAtInit(ctx.store, r.run);
      const firstG = init[0]?.gradNorm ?? Number.NaN;
      const lastG = init.at(-1)?.gradNorm ?? Number.NaN;
      flows.push(Math.log10(firstG / lastG));
      const hidden = init.slice(0, -1);
      signals.push(Math.log10((hidden.at(-1)?.actStd ?? Number.NaN) / (hidden[0]?.actStd ?? Number.NaN)));
    }
    return {
      init: String(arm.set['init.weight']),
      activation: String(arm.set['model.activation']),
      flow: finiteOrNull(median(flows)),
      signal: finiteOrNull(median(signals)),
      loss: finiteOrNull(mean(runs.map((r) => r.train.loss))),
      outcome: [...new Set(runs.map((r) => r.outcome.label))].join('/'),
      verdict: [...new Set(runs.map((r) => r.verdict))].join('/'),
    };
  });
}

/** The activations' order of the grid, and the initializers'. */
function axes(cs: readonly Cell[]): { inits: string[]; acts: string[] } {
  return { inits: [...new Set(cs.map((c) => c.init))], acts: [...new Set(cs.map((c) => c.activation))] };
}

function analyze(ctx: ExperimentContext): Analysis {
  const cs = cells(ctx);
  const { inits, acts } = axes(cs);
  const baseline = ctx.runs[0]?.baselineLoss ?? Math.log(10);
  const steps = ctx.runs[0]?.steps ?? 0;
  const depth = ctx.runs[0]?.config.model.depth ?? 20;
  const at = (i: string, a: string) => cs.find((c) => c.init === i && c.activation === a)!;
  const table = inits.map((i) => [
    i,
    ...acts.map((a) => {
      const c = at(i, a);
      return `${c.flow === null ? 'n/a' : fmtNum(10 ** c.flow)} / ${c.loss === null ? 'NaN' : fmtNum(c.loss)}`;
    }),
  ]);
  const verdictTable = inits.map((i) => [i, ...acts.map((a) => `${at(i, a).outcome}: ${at(i, a).verdict}`)]);
  const learned = cs.filter((c) => c.outcome === 'learns');
  const even = (c: Cell) => c.flow !== null && Math.abs(c.flow) < 1;
  const healthyFlow = cs.filter(even);
  const list = (xs: readonly Cell[], f: (c: Cell) => string) => (xs.length ? xs.map(f).join(', ') : 'none');
  const perAct = acts.map((a) => {
    const row = cs.filter((c) => c.activation === a);
    return `- **${a}**: even flow (within 10x) with ${list(row.filter(even), (c) => c.init)}; learns with ${list(
      row.filter((c) => c.outcome === 'learns').sort((x, y) => (x.loss ?? 9) - (y.loss ?? 9)),
      (c) => `${c.init} (${fmtNum(c.loss)})`,
    )}.`;
  });
  const all = (pred: (c: Cell) => boolean, init: string, actsOf = acts) => actsOf.every((a) => pred(at(init, a)));
  const reluLike = acts.filter((a) => ['relu', 'leaky-relu'].includes(a));
  const checks = [
    {
      ok:
        reluLike.length > 0 &&
        reluLike.every((a) => even(at('kaiming-normal', a)) && (at('xavier-normal', a).flow ?? 0) < -1),
      yes: 'He vs Xavier on ReLU (He et al. 2015): with ReLU and leaky ReLU, He init keeps the gradient flow within 10x from the last layer to the first while Xavier normal loses more than 10x over the 20 layers (the halving of the variance per layer that he2015 measures).',
      no: 'He vs Xavier on ReLU: the expected contrast (He even, Xavier vanishing) does not show in every ReLU column here.',
    },
    {
      ok: ['normal', 'uniform'].every((i) => all((c) => c.flow !== null && c.flow < -3, i)),
      yes: "Small fixed scales vanish: N(0, 0.01) and U(-0.05, 0.05) leave the first layer with less than 1/1000 of the last layer's gradient for every activation, and none of those nets moves off the baseline.",
      no: 'Small fixed scales: N(0, 0.01) and U(-0.05, 0.05) do not vanish by 1000x for every activation here.',
    },
    {
      ok: all((c) => c.flow === null && c.outcome !== 'learns', 'zeros'),
      yes: 'All-zero weights do not train: every hidden unit outputs the same value and no gradient reaches the first layer (n/a), for every activation.',
      no: 'All-zero weights: some column got a gradient to the first layer or learned.',
    },
    {
      ok: all((c) => c.outcome !== 'learns', 'ones'),
      yes: `All-one weights do not train either: every unit of a layer computes the same thing, and with unbounded activations the outputs grow by the width at each layer until they overflow (${cs.filter((c) => c.init === 'ones' && c.outcome === 'diverged').length} of the ${acts.length} runs stopped as diverged on non-finite values).`,
      no: 'All-one weights: some column learned.',
    },
    {
      ok: cs.filter((c) => c.activation === 'sigmoid').every((c) => c.outcome !== 'learns'),
      yes: `Sigmoid does not learn in ${steps} steps under any of these inits at depth ${depth}: its derivative is at most 1/4, so even the variance-preserving inits lose the gradient through the layers (median flow ratio ${fmtNum(10 ** median(cs.filter((c) => c.activation === 'sigmoid' && c.flow !== null).map((c) => c.flow!)))}), as Glorot & Bengio found sigmoid the hardest of their activations to train (see glorot2010).`,
      no: 'Sigmoid: at least one init trains the deep sigmoid net here.',
    },
    {
      ok: acts.includes('tanh') && ['xavier-uniform', 'xavier-normal'].every((i) => at(i, 'tanh').outcome === 'learns'),
      yes: 'Xavier init suits tanh (Glorot & Bengio 2010): both Xavier variants train the 20-layer tanh net.',
      no: 'Xavier init did not train the 20-layer tanh net in every variant here.',
    },
  ];
  const disagree = ctx.runs.filter((r) => !r.agrees).length;
  const healthyStall = ctx.runs.filter((r) => !r.outcome.ok && r.verdict === 'healthy').length;
  const flaggedLearn = ctx.runs.filter((r) => r.outcome.ok && r.verdict !== 'healthy').length;
  const evenStall = cs.filter((c) => even(c) && c.outcome !== 'learns');
  const unevenLearn = cs.filter((c) => !even(c) && c.outcome === 'learns');
  const rows: Row[] = cs.map((c) => ({ ...c }));
  const reading = [
    `${cs.length} combinations (${inits.length} initializers x ${acts.length} activations), ${depth} hidden layers, ${steps} SGD steps each. ${healthyFlow.length} start with even flow (the first layer's gradient within 10x of the last's: figure 1, white), ${learned.length} learn in ${steps} steps (training loss under 80% of the trivial ${fmtNum(baseline)}).`,
    '',
    ...perAct,
    '',
    'Against the papers:',
    '',
    ...checks.map((c) => `- ${c.ok ? 'Agrees.' : '**Differs.**'} ${c.ok ? c.yes : c.no}`),
    '',
    `Even flow at init and learning go together, but not one for one: ${evenStall.length} nets flow evenly and still stall after ${steps} steps (${list(evenStall.slice(0, 4), (c) => `${c.init} with ${c.activation}`)}), ${unevenLearn.length} learn without even flow (${list(unevenLearn.slice(0, 4), (c) => `${c.init} with ${c.activation}, flow ${fmtNum(10 ** (c.flow ?? Number.NaN))}`)}); the loss heatmap ranks what the flow heatmap cannot. gradguard's verdict disagrees with the outcome in ${disagree} of ${ctx.runs.length} runs (listed under Results): ${healthyStall} stall with the verdict \`healthy\`, ${flaggedLearn} learn with a finding (${[...new Set(ctx.runs.filter((r) => r.outcome.ok && r.verdict !== 'healthy').map((r) => r.verdict))].join(', ') || 'none'}).`,
  ].join('\n');
  return {
    figures: zooFigures(rows, steps, baseline),
    sections: [
      {
        heading: `Flow ratio at init / training loss after ${steps} steps`,
        body: mdTable(['init \\ activation', ...acts], table),
      },
      { heading: "Outcome and gradguard's verdict", body: mdTable(['init \\ activation', ...acts], verdictTable) },
    ],
    reading,
    data: { cells: cs },
  };
}

/** The figures of the page. */
function zooFigures(rows: Row[], steps: number, baseline: number): PageFigure[] {
  return [
    {
      key: 'flow',
      title: 'Gradient flow at init: first layer / last layer (log10)',
      caption:
        "log10 of the first layer's gradient norm over the last layer's on the first batch: 0 (white) is even flow, negative (red) vanishing towards the input, positive (blue) exploding; grey where no gradient reached the first layer or it was not finite.",
      spec: heatmap(rows, {
        title: 'log10 gradient-norm ratio, first / last layer, at init',
        x: 'activation',
        y: 'init',
        value: 'flow',
        valueTitle: 'log10 ratio',
        mid: 0,
        domain: [-8, 8],
        text: '.1f',
      }),
    },
    {
      key: 'loss',
      title: `Training loss after ${steps} steps`,
      caption: `The loss on the whole training split after ${steps} SGD steps (the trivial baseline is ${fmtNum(baseline)}); grey where it was not finite.`,
      spec: heatmap(rows, {
        title: `Training loss after ${steps} steps`,
        x: 'activation',
        y: 'init',
        value: 'loss',
        valueTitle: 'loss',
        reverse: true,
        domain: [0, Math.max(3, baseline)],
        text: '.2f',
      }),
    },
  ];
}

/**
 * A run learns when its training loss after the few steps of the grid is under 80% of the trivial baseline (it has
 * left the plateau; 50%, the default, asks too much of 100 steps), diverged when not finite, else stalls.
 */
function outcome(run: ArmRun): RunOutcome {
  const loss = run.train.loss;
  if (run.status === 'diverged' || !Number.isFinite(loss))
    return { label: 'diverged', ok: false, detail: `status ${run.status}, train loss ${fmtNum(loss)}` };
  const base = run.baselineLoss ?? Math.log(10);
  const learns = loss < 0.8 * base;
  return {
    label: learns ? 'learns' : 'stalls',
    ok: learns,
    detail: `train loss ${fmtNum(loss)} against the trivial baseline ${fmtNum(base)}`,
  };
}

export const initZoo: ExperimentModule = { name: 'init-zoo', outcome, analyze };
