/**
 * An experiment's page: `OUT/NAME.md` with its figures beside it as `OUT/NAME-KEY.png` (vega-lite -> SVG by the
 * report renderer -> PNG by resvg). Every figure is rendered before anything is written, and each file is written
 * whole (write-then-rename), so a failure leaves the previous page as it was.
 */
import { join } from 'node:path';
import { stringify } from 'yaml';
import { configSummary } from '../dashboard/data.js';
import { specToSvg, svgToPng } from '../dashboard/report.js';
import { writeFileAtomic } from '../io/atomic.js';
import { type Analysis, type ExperimentContext, fmtNum, fmtPct, type JudgedRun } from './framework.js';
import { describeSet } from './spec.js';

/** The path of figure `key` of experiment `name` in `out`. */
export function figurePath(out: string, name: string, key: string): string {
  return join(out, `${name}-${key}.png`);
}

const FIGURE_KEY = /^[a-z0-9][a-z0-9-]{0,63}$/;

/** A markdown table from a header and rows (cells with `|` escaped). */
export function mdTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `| ${header.map(cell).join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

/** The results table: one row per run, its metrics, its outcome, gradguard's verdict and whether they agree. */
export function resultsTable(runs: readonly JudgedRun[]): string {
  const cls = runs.some((r) => r.test.accuracy !== undefined);
  const header = [
    'arm',
    'seed',
    'steps',
    'train loss',
    ...(cls ? ['train acc'] : []),
    'test loss',
    ...(cls ? ['test acc'] : []),
    'outcome',
    "gradguard's verdict",
    'agree?',
  ];
  const rows = runs.map((r) => [
    r.arm.name || '(base)',
    String(r.seed),
    String(r.steps),
    fmtNum(r.train.loss),
    ...(cls ? [fmtPct(r.train.accuracy)] : []),
    fmtNum(r.test.loss),
    ...(cls ? [fmtPct(r.test.accuracy)] : []),
    r.outcome.label,
    r.verdict,
    r.agrees ? 'yes' : '**no**',
  ]);
  return mdTable(header, rows);
}

/** The paragraph under the results table that names every disagreement between an outcome and the verdict. */
export function disagreementText(runs: readonly JudgedRun[]): string {
  const bad = runs.filter((r) => !r.agrees);
  if (bad.length === 0)
    return "gradguard's verdict agrees with every run's outcome: `healthy` where the network trained as it should, a finding where it did not.";
  const lines = bad.map((r) => {
    const f = r.diagnosis.findings[0];
    const why = f && f.kind !== 'healthy' ? ` (${f.kind}${f.layers?.length ? ` in ${f.layers.join(', ')}` : ''})` : '';
    return `- **${r.arm.name || '(base)'}, seed ${r.seed}**: the run ${r.outcome.label} (${r.outcome.detail}) but gradguard's verdict is \`${r.verdict}\`${why}: ${r.outcome.ok ? 'it flags a network that trained (the finding may still be true of it, as a net can learn with loss spikes or some dead units, but it is not what the outcome measures)' : 'it calls a network healthy that did not train as it should'}.`;
  });
  return [`gradguard's verdict disagrees with the outcome of ${bad.length} of ${runs.length} runs:`, '', ...lines].join(
    '\n',
  );
}

function setupSection(ctx: ExperimentContext, machine: string, seconds: number): string {
  const s = ctx.spec.sizes[ctx.size];
  const cmd = `gradguard experiment ${ctx.spec.name}${ctx.size === 'quick' ? ' --quick' : ctx.size === 'tiny' ? ' --tiny' : ''}`;
  const first = ctx.runs[0];
  const armRows = ctx.spec.armList.map((a) => [a.name || '(base)', a.label, describeSet(a.set) || '-']);
  return [
    `- Command: \`${cmd}\` (size **${ctx.size}**${s.note ? `: ${s.note}` : ''}; seeds ${s.seeds.join(', ')}; ${ctx.runs.length} runs in ${seconds.toFixed(0)} s).`,
    `- Machine: ${machine}.`,
    ...(first
      ? [`- Data: ${first.dataset.name}, ${first.dataset.train} train / ${first.dataset.test} test examples.`]
      : []),
    ...ctx.notes.map((n) => `- ${n}`),
    `- Base config (\`experiments/${ctx.spec.name}.yaml\`), then each arm's overrides, then the size's ${describeSet(s.set) ? `(\`${describeSet(s.set)}\`)` : '(none)'}:`,
    '',
    '```yaml',
    stringify(ctx.spec.base).trimEnd(),
    '```',
    '',
    mdTable(['arm', 'what it is', 'overrides'], armRows),
    '',
    ...(first ? [`A run's config in short: ${configSummary(first.config)} (the first run).`] : []),
  ].join('\n');
}

/**
 * Renders the figures, then writes the page: title, the paper and its claim, setup, results beside gradguard's
 * verdicts, figures, the analysis's sections, the reading, and the run ids.
 * @returns the page's path and the figures' paths
 */
export async function renderPage(
  ctx: ExperimentContext,
  analysis: Analysis,
  opts: { out: string; machine: string; seconds: number },
): Promise<{ page: string; figures: string[] }> {
  const name = ctx.spec.name;
  const pngs: { path: string; bytes: Uint8Array }[] = [];
  const keys = new Set<string>();
  for (const f of analysis.figures) {
    if (!FIGURE_KEY.test(f.key) || keys.has(f.key))
      throw new Error(`experiment ${name}: figure key '${f.key}' is not a unique lower-case name`);
    keys.add(f.key);
    pngs.push({ path: figurePath(opts.out, name, f.key), bytes: svgToPng(await specToSvg(f.spec)) });
  }
  const figures = analysis.figures.map((f) => `### ${f.title}\n\n![${f.title}](${name}-${f.key}.png)\n\n${f.caption}`);
  const ids = ctx.runs.map((r) => r.run);
  const text = [
    `# ${ctx.spec.title}`,
    '',
    `<!-- generated by \`gradguard experiment ${name}\`; edit experiments/${name}.yaml or src/experiment/experiments/${name}.ts and regenerate -->`,
    '',
    `**Paper.** ${ctx.spec.paper}`,
    '',
    `**Its result.** ${ctx.spec.claim}`,
    '',
    '## Setup',
    '',
    setupSection(ctx, opts.machine, opts.seconds),
    '',
    '## Results',
    '',
    resultsTable(ctx.runs),
    '',
    disagreementText(ctx.runs),
    '',
    ...(figures.length ? ['## Figures', '', figures.join('\n\n'), ''] : []),
    ...(analysis.sections ?? []).flatMap((s) => [`## ${s.heading}`, '', s.body.trimEnd(), '']),
    '## Reading against the paper',
    '',
    analysis.reading.trimEnd(),
    '',
    '## Runs',
    '',
    `Stored in the run store as \`${name}/ARM/sSEED\`, tagged \`${name}\`: \`gradguard runs list --name ${name}/\`, \`gradguard dashboard\`, or \`gradguard runs compare ${ids.slice(0, 4).join(' ')}\`. Run ids: ${ids.map((i) => `\`${i}\``).join(', ')}.`,
    '',
  ].join('\n');
  for (const p of pngs) writeFileAtomic(p.path, p.bytes);
  const page = join(opts.out, `${name}.md`);
  writeFileAtomic(page, text);
  return { page, figures: pngs.map((p) => p.path) };
}
