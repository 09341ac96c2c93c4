import { afterEach, describe, expect, it, vi } from 'vitest';
import { diagnose, type FindingKind } from '../monitor/diagnose.js';
import type { LayerInfo, StepObserver, StepRecord } from '../monitor/monitor.js';
import { ConfigError, loadConfig } from '../train/config.js';
import { doctorCommand, fixesToTry, offset, runDoctor } from './doctor.js';

/** The 20-layer sigmoid MLP with normal(0, 0.05) weights (Glorot & Bengio 2010's failure), on 2-D spirals. */
const VANISHING = [
  'data.name=spirals',
  'data.trainSize=1024',
  'model.depth=20',
  'model.width=32',
  'model.activation=sigmoid',
  'init.weight=normal',
  'init.std=0.05',
  'train.batchSize=64',
];

afterEach(() => {
  vi.restoreAllMocks();
});

describe('gradguard doctor', () => {
  it('finds the vanishing case, and --fix recommends a fix that its trial shows working', async () => {
    const r = await runDoctor(undefined, VANISHING, { fix: true, steps: 20 });
    expect(r.verdict).toBe('vanishing');
    expect(r.layers[0]!.name).toBe('0');
    const trials = r.trials!;
    expect(trials[0]!.label).toBe('original');
    expect(trials[0]!.verdict).toBe('vanishing');
    const suggested = new Set(r.findings.flatMap((f) => f.fixes.map((x) => x.set.join(' '))));
    const working = trials.filter((t) => t.works);
    expect(working.length).toBeGreaterThan(0);
    for (const t of working) {
      expect(suggested.has(t.set.join(' '))).toBe(true);
      expect(t.verdict).not.toBe('vanishing');
      // a lower loss, or (both still at the trivial baseline, where 20 steps' loss says nothing yet) judged on the flow
      if (t.loss >= trials[0]!.loss) expect(t.outcome).toContain('both still at the trivial baseline');
    }
    // and the switch to ReLU with Kaiming init is among them
    expect(working.map((t) => t.set.join(' '))).toContain('model.activation=relu init.weight=kaiming-normal');
  });

  it('raises no alarm on the headline example (the defaults: MNIST MLP, Xavier, Adam, clip 1.0)', async () => {
    const r = await runDoctor(undefined, [], { steps: 20 });
    expect(r.findings.map((f) => f.kind)).toEqual(['healthy']);
    expect(r.layers.map((l) => l.name)).toEqual(['0', '2']);
    expect(r.trials).toBeUndefined();
  });

  it('--json prints exactly one JSON object and exits 0 whatever the verdict', async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out.push(String(s));
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const code = await doctorCommand({ set: VANISHING, json: true, fix: false, steps: 5 });
    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    const obj = JSON.parse(out[0]!);
    expect(obj.verdict).toBe('vanishing');
    expect(obj.layers[0]).toMatchObject({ name: '0' });
    expect(typeof obj.layers[0].gradNorm).toBe('number');
    expect(obj.findings[0]).toMatchObject({ kind: 'vanishing' });
    expect(Array.isArray(obj.findings[0].fixes)).toBe(true);
    expect(obj.trials).toBeUndefined();
  });

  it('prints the report as plain text when stdout is not a terminal', async () => {
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out.push(String(s));
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await doctorCommand({ set: VANISHING, json: false, fix: false, steps: 3 })).toBe(0);
    const text = out.join('');
    expect(text).toContain('Verdict: vanishing');
    expect(text).toContain('--set model.activation=relu --set init.weight=kaiming-normal');
    expect(text).not.toContain('\u001b[');
  });

  it('refuses a bad config or option before any work, naming the key', async () => {
    await expect(runDoctor(undefined, ['model.depht=3'])).rejects.toThrow(ConfigError);
    await expect(runDoctor(undefined, ['model.depht=3'])).rejects.toThrow("unknown key 'depht'");
    await expect(runDoctor(undefined, [], { steps: 0 })).rejects.toThrow(
      'doctor: --steps must be an integer >= 1, got 0',
    );
  });
});

describe('fixes are valid config', () => {
  const rec = (step: number, g: number[], o: (i: number) => object = () => ({})): StepRecord => ({
    step,
    loss: 2,
    globalNormBefore: Math.hypot(...g),
    globalNormAfter: Math.hypot(...g),
    clipped: false,
    skipped: false,
    updated: step > 1,
    layers: g.map((x, i) => ({
      name: `${i}`,
      gradNorm: x,
      gradMaxAbs: x,
      weightNorm: 1,
      updateRatio: 1e-3,
      actMean: 0,
      actStd: 1,
      nonFinite: 0,
      ...o(i),
    })),
  });
  const layers: LayerInfo[] = [0, 1, 2].map((i) => ({
    name: `${i}`,
    type: 'Linear',
    size: 1000,
    params: [],
    activation: 'relu',
  }));
  const cases: [string, StepRecord[]][] = [
    ['vanishing', [0, 1, 2, 3, 4].map((s) => rec(s, [1e-9, 1e-5, 1]))],
    ['exploding', [0, 1, 2, 3, 4].map((s) => rec(s, [1e4, 1e4, 1e4]))],
    ['dead', [0, 1, 2, 3, 4].map((s) => rec(s, [0, 0, 1], (i) => (i < 2 ? { deadFrac: 1 } : {})))],
    ['saturated', [0, 1, 2, 3, 4].map((s) => rec(s, [1, 1, 1], () => ({ satFrac: 0.9 })))],
    ['non-finite', [0, 1, 2].map((s) => rec(s, [1, 1, 1], (i) => (s === 2 && i === 0 ? { nonFinite: 3 } : {})))],
    ['ratio-high', [0, 1, 2, 3, 4, 5, 6, 7].map((s) => rec(s, [1, 1, 1], () => ({ updateRatio: 0.5 })))],
    ['spike', [2, 1.9, 1.8, 1.7, 1.6, 1.5, 9, 1.4].map((l, s) => ({ ...rec(s, [1, 1, 1]), loss: l }))],
  ];
  const bases: string[][] = [
    [],
    ['model.activation=sigmoid', 'model.depth=20', 'model.width=32', 'init.weight=normal'],
    ['model.activation=tanh', 'model.depth=8', 'model.width=16', 'clip=[]', 'init.bias=-5'],
    [
      'model.residual=true',
      'model.depth=10',
      'model.width=16',
      'init.weight=kaiming-normal',
      'clip=[{type: value, max: 5}]',
    ],
    ['model.type=rnn', 'data.name=adding', 'clip=[]', 'init.weight=orthogonal', 'init.recurrentGain=2'],
    ['model.type=lstm', 'data.name=copy', 'schedule.warmupSteps=10'],
  ];
  it('every suggested fix of every kind of finding loads on top of the config it was written for', () => {
    const seen = new Set<FindingKind>();
    for (const base of bases) {
      const { config } = loadConfig(undefined, base);
      for (const [, history] of cases) {
        const d = diagnose(history, { config, layers });
        for (const f of d.findings) {
          seen.add(f.kind);
          for (const fix of f.fixes) {
            expect(
              () => loadConfig(undefined, [...base, ...fix.set]),
              `${base.join(' ')} + ${fix.set.join(' ')}`,
            ).not.toThrow();
          }
        }
      }
    }
    expect([...seen].sort()).toEqual(
      [
        'dead-units',
        'exploding',
        'loss-spike',
        'non-finite',
        'saturation',
        'update-ratio-too-high',
        'vanishing',
      ].sort(),
    );
  });

  it("tries every fix of the verdict's finding, then the first fix of every other finding before the second of any, each once", () => {
    const f = (kind: FindingKind, sets: string[][]) => ({
      kind,
      layers: [],
      evidence: '',
      metrics: {},
      suggestion: '',
      fixes: sets.map((set) => ({ label: set.join(' '), set, why: '' })),
    });
    const findings = [
      f('exploding', [['a=1'], ['b=1']]),
      f('non-finite', [['b=1'], ['d=1']]),
      f('dead-units', [['e=1'], ['g=1']]),
    ];
    expect(fixesToTry(findings, 9).map((x) => x.set[0])).toEqual(['a=1', 'b=1', 'e=1', 'd=1', 'g=1']);
    expect(fixesToTry(findings, 3).map((x) => x.set[0])).toEqual(['a=1', 'b=1', 'e=1']);
  });
});

describe('the probe observer', () => {
  it('offsets the step numbers and passes every call and its options through', () => {
    const calls: unknown[][] = [];
    const inner: StepObserver = {
      beginStep: (s) => calls.push(['begin', s]) > 0,
      afterBackward: (p, opts) => calls.push(['backward', p, opts]),
      afterUpdate: (u, p, st, opts) => calls.push(['update', u, p, st, opts]),
      endStep: (l) => calls.push(['end', l]),
    };
    const o = offset(inner, 3);
    const params = {};
    expect(o.beginStep(2)).toBe(true);
    o.afterBackward(params, { gradNormsFollow: true });
    o.afterUpdate({}, params, {}, { updateNormsFollow: true });
    o.endStep(0.5);
    expect(calls).toEqual([
      ['begin', 5],
      ['backward', params, { gradNormsFollow: true }],
      ['update', {}, params, {}, { updateNormsFollow: true }],
      ['end', 0.5],
    ]);
    expect(o.afterApply).toBeUndefined();
  });
});
