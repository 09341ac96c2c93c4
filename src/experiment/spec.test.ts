import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultOutcome, fmtNum } from './framework.js';
import { disagreementText, mdTable } from './page.js';
import { judge } from './run.js';
import { armConfig, ExperimentError, experimentFiles, loadExperiment } from './spec.js';

const dir = mkdtempSync(join(tmpdir(), 'gg-exp-spec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SIZES = `sizes:
  tiny: { seeds: [0], set: { train.maxSteps: 2 } }
  quick: { seeds: [0, 1], set: { train.epochs: 2 }, arms: { b: { optim.lr: 0.5 } } }
  full: { seeds: [0, 1, 2], set: { train.epochs: 20 } }
`;

function write(name: string, text: string): string {
  writeFileSync(join(dir, `${name}.yaml`), text);
  return name;
}

describe('experiment files', () => {
  it('applies base, arm, size, size-arm, extra and seed in that order', () => {
    const name = write(
      'order',
      `title: t\npaper: p\nclaim: c\nbase: { data: { name: spirals }, optim: { lr: 0.1 }, train: { epochs: 5 } }
arms:
  - { name: a, set: { optim.lr: 0.2, train.epochs: 7 } }
  - { name: b, label: bee, set: { model.hidden: [8, 8] } }
${SIZES}`,
    );
    const spec = loadExperiment(name, dir);
    expect(spec.armList.map((a) => [a.name, a.label])).toEqual([
      ['a', 'optim.lr=0.2, train.epochs=7'],
      ['b', 'bee'],
    ]);
    const [a, b] = spec.armList;
    const ca = armConfig(spec, a!, 'quick', 1);
    expect([ca.optim.lr, ca.train.epochs, ca.seed, ca.data.name]).toEqual([0.2, 2, 1, 'spirals']);
    const cb = armConfig(spec, b!, 'quick', 0, { 'optim.name': 'sgd' });
    expect([cb.optim.lr, cb.optim.name, cb.model.hidden]).toEqual([0.5, 'sgd', [8, 8]]);
    expect(armConfig(spec, b!, 'full', 2).optim.lr).toBe(0.1);
    expect(experimentFiles(dir)).toContain('order');
  });

  it('crosses arms with a grid, and a grid alone makes the arms', () => {
    const crossed = loadExperiment(
      write(
        'grid',
        `title: t\npaper: p\nclaim: c\nbase: { data: { name: spirals } }\narms: [{ name: x, set: { optim.lr: 0.1 } }]
grid: { model.activation: [relu, tanh], init.weight: [xavier-normal, orthogonal] }\n${SIZES.replace('arms: { b: { optim.lr: 0.5 } }', 'arms: {}')}`,
      ),
      dir,
    );
    expect(crossed.armList.map((a) => a.name)).toEqual([
      'x-relu-xavier-normal',
      'x-relu-orthogonal',
      'x-tanh-xavier-normal',
      'x-tanh-orthogonal',
    ]);
    expect(crossed.armList[3]!.set).toEqual({
      'optim.lr': 0.1,
      'model.activation': 'tanh',
      'init.weight': 'orthogonal',
    });
    const alone = loadExperiment(
      write(
        'gridonly',
        `title: t\npaper: p\nclaim: c\ngrid: { model.activation: [relu, tanh] }\n${SIZES.replace('arms: { b: { optim.lr: 0.5 } }', 'arms: {}')}`,
      ),
      dir,
    );
    expect(alone.armList.map((a) => [a.name, a.label])).toEqual([
      ['relu', 'model.activation=relu'],
      ['tanh', 'model.activation=tanh'],
    ]);
  });

  it('refuses a bad file before anything trains, naming the file, the arm and the key', () => {
    const bad = (name: string, text: string) => () => loadExperiment(write(name, text), dir);
    const head = 'title: t\npaper: p\nclaim: c\n';
    expect(bad('badkey', `${head}arms: [{ name: a, set: { model.depht: 3 } }]\n${SIZES}`)).toThrow(
      /badkey\.yaml: arm 'a' \(tiny\): model: unknown key 'depht'|badkey\.yaml: arm 'a' \(tiny\): model\.depht/,
    );
    expect(bad('badval', `${head}arms: [{ name: a, set: { optim.lr: -1 } }]\n${SIZES}`)).toThrow(
      /badval\.yaml: arm 'a' \(tiny\): optim\.lr:/,
    );
    expect(bad('dup', `${head}arms: [{ name: b }, { name: b }]\n${SIZES}`)).toThrow(/two arms are named 'b'/);
    expect(bad('noarm', `${head}arms: [{ name: a }]\n${SIZES}`)).toThrow(/sizes\.quick\.arms: no arm is named 'b'/);
    expect(bad('nosize', `${head}arms: [{ name: a }]\nsizes: {}\n`)).toThrow(/nosize\.yaml: sizes\.tiny/);
    expect(bad('none', `${head}${SIZES}`)).toThrow(/give arms, a grid, or both/);
    expect(() => loadExperiment('nosuch', dir)).toThrow(ExperimentError);
    expect(() => loadExperiment('../etc', dir)).toThrow(/unknown experiment/);
  });
});

describe('outcomes and verdicts', () => {
  const base = {
    arm: { name: 'a', label: 'a', set: {} },
    seed: 0,
    status: 'finished',
    test: { loss: 1 },
    baselineLoss: 2.3,
  };
  const run = (loss: number, verdict: string, status = 'finished') =>
    ({
      ...base,
      status,
      train: { loss },
      diagnosis: { verdict, findings: [{ kind: verdict, layers: ['0'], evidence: '', suggestion: '', fixes: [] }] },
    }) as never;

  it('learns under half the baseline, stalls above it, diverged on a stop or a non-finite loss', () => {
    expect(defaultOutcome(run(0.5, 'healthy')).label).toBe('learns');
    expect(defaultOutcome(run(2.2, 'healthy')).label).toBe('stalls');
    expect(defaultOutcome(run(Number.NaN, 'healthy')).label).toBe('diverged');
    expect(defaultOutcome(run(0.1, 'healthy', 'diverged')).ok).toBe(false);
  });

  it('agrees when a learning run is healthy and a stalled one has a finding; the page names each disagreement', () => {
    const mod = { name: 'x', analyze: () => ({ figures: [], reading: '' }) };
    const runs = [
      judge(mod, run(0.5, 'healthy')),
      judge(mod, run(2.2, 'vanishing-gradient')),
      judge(mod, run(2.2, 'healthy')),
      judge(mod, run(0.5, 'dead-units')),
    ];
    expect(runs.map((r) => r.agrees)).toEqual([true, true, false, false]);
    const text = disagreementText(runs);
    expect(text).toContain('disagrees with the outcome of 2 of 4 runs');
    expect(text).toContain(
      "the run stalls (train loss 2.2 against the trivial baseline 2.3) but gradguard's verdict is `healthy`",
    );
    expect(text).toContain('`dead-units` (dead-units in 0): it flags a network that trained');
    expect(disagreementText(runs.slice(0, 2))).toContain('agrees with every run');
  });

  it('formats numbers and tables for pages', () => {
    expect([fmtNum(0.00012), fmtNum(2.3456), fmtNum(123456), fmtNum(Number.NaN), fmtNum(null)]).toEqual([
      '1.20e-4',
      '2.35',
      '1.23e+5',
      'NaN',
      '-',
    ]);
    expect(mdTable(['a', 'b|c'], [['1', 'x|y']])).toBe('| a | b\\|c |\n|---|---|\n| 1 | x\\|y |');
  });
});
