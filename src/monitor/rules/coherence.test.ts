/**
 * Coherent findings, as properties over random synthetic statistics (StepRecord histories built directly): one
 * verdict per layer, no vanishing beside an exploding layer only, and fixes that apply to the layers and the model
 * they are written for.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diagnose } from '../diagnose.js';
import type { ActivationKind, LayerInfo, LayerStats, StepRecord } from '../monitor.js';
import { RULES } from './index.js';
import { THRESHOLDS } from './thresholds.js';
import type { ConfigFacts, Diagnosis, Finding } from './types.js';

const MODELS = ['mlp', 'cnn', 'resnet', 'rnn', 'lstm', 'gru'] as const;
type ModelType = (typeof MODELS)[number];
const RECURRENT = new Set(['rnn', 'lstm', 'gru']);

/** The layers of a model of each type, as the monitor would name and type them. */
function layersOf(type: ModelType, depth: number, act: ActivationKind): LayerInfo[] {
  const l = (name: string, t: string, a: ActivationKind = 'none'): LayerInfo => ({
    name,
    type: t,
    size: 1000,
    params: [`${name}.weight`],
    activation: a,
  });
  if (RECURRENT.has(type)) {
    const cls = type === 'rnn' ? 'RNN' : type.toUpperCase();
    return [l('net.rnn', cls, type === 'rnn' ? 'tanh' : 'none'), l('net.head', 'Linear')];
  }
  if (type === 'mlp')
    return Array.from({ length: depth }, (_, i) => l(`${2 * i}`, 'Linear', i < depth - 1 ? act : 'none'));
  const convs = Array.from({ length: depth - 1 }, (_, i) => l(`net.conv${i}`, 'Conv2d', act));
  return [...convs, l('net.fc', 'Linear')];
}

interface Case {
  type: ModelType;
  infos: LayerInfo[];
  withInfo: boolean;
  config: ConfigFacts | undefined;
  history: StepRecord[];
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    type: fc.constantFrom(...MODELS),
    depth: fc.integer({ min: 2, max: 8 }),
    act: fc.constantFrom<ActivationKind>('relu', 'sigmoid', 'tanh'),
    withInfo: fc.boolean(),
    withConfig: fc.boolean(),
    residual: fc.boolean(),
    gain: fc.option(fc.double({ min: 0.5, max: 3, noNaN: true }), { nil: undefined }),
    steps: fc.integer({ min: 1, max: 12 }),
    initBatches: fc.integer({ min: 0, max: 3 }),
    // per layer: log10 of its gradient norm, of its update ratio, its dead and saturated fractions
    scales: fc.array(
      fc.record({
        g: fc.double({ min: -12, max: 6, noNaN: true }),
        zero: fc.boolean(),
        u: fc.double({ min: -8, max: 0, noNaN: true }),
        dead: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
        sat: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
      }),
      { minLength: 8, maxLength: 8 },
    ),
    noise: fc.array(fc.double({ min: -0.5, max: 0.5, noNaN: true }), { minLength: 12, maxLength: 12 }),
    loss: fc.double({ min: 1e-4, max: 10, noNaN: true }),
    baseline: fc.option(fc.double({ min: 0.05, max: 5, noNaN: true }), { nil: undefined }),
  })
  .map((p) => {
    const infos = layersOf(p.type, p.depth, p.act);
    const history: StepRecord[] = [];
    for (let s = 0; s < p.steps; s++) {
      const layers: LayerStats[] = infos.map((info, i) => {
        const sc = p.scales[i]!;
        const g = sc.zero && sc.g < -6 ? 0 : 10 ** (sc.g + p.noise[(s + i) % 12]!);
        return {
          name: info.name,
          gradNorm: g,
          gradMaxAbs: g / 3,
          weightNorm: 5,
          updateRatio: 10 ** sc.u,
          actMean: 0.1,
          actStd: 0.5,
          nonFinite: 0,
          ...(sc.dead !== undefined && info.activation === 'relu' ? { deadFrac: sc.dead } : {}),
          ...(sc.sat !== undefined && (info.activation === 'tanh' || info.activation === 'sigmoid')
            ? { satFrac: sc.sat }
            : {}),
        };
      });
      const global = Math.hypot(...layers.map((l) => l.gradNorm));
      history.push({
        step: s,
        loss: p.loss * (1 + 0.1 * p.noise[s]!),
        globalNormBefore: global,
        globalNormAfter: global,
        clipped: false,
        skipped: false,
        updated: s >= p.initBatches,
        layers,
      });
    }
    const config: ConfigFacts | undefined = p.withConfig
      ? {
          model: {
            type: p.type,
            activation: p.act,
            residual: p.type === 'mlp' && p.residual,
            norm: 'none',
            zeroInitResidual: false,
            rezero: false,
            depth: p.depth,
            width: 32,
          },
          init: { weight: 'normal', bias: 'zeros', recurrentGain: p.gain },
          optim: { lr: 1e-3 },
          schedule: { warmupSteps: 0 },
          clip: [],
          data: { name: RECURRENT.has(p.type) ? 'adding' : 'spirals', length: 50 },
        }
      : undefined;
    return { type: p.type, infos, withInfo: p.withInfo, config, history, baseline: p.baseline } as Case & {
      baseline: number | undefined;
    };
  });

function run(c: Case & { baseline?: number | undefined }): Diagnosis {
  return diagnose(c.history, {
    ...(c.withInfo ? { layers: c.infos } : {}),
    ...(c.config ? { config: c.config } : {}),
    ...(c.baseline !== undefined ? { baseline: { loss: c.baseline, predictor: 'a constant' } } : {}),
  });
}

/** Median over the records of a layer's gradient norm, as the rules take it. */
function medianGrad(h: readonly StepRecord[], name: string): number {
  const v = h.map((r) => r.layers.find((l) => l.name === name)!.gradNorm).sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

const perLayerKinds = new Set<string>(RULES.filter((r) => r.perLayer).map((r) => r.kind));
const settings = (f: Finding) => f.fixes.flatMap((x) => x.set);

describe('coherent findings over random statistics', () => {
  it('each layer carries at most one per-layer verdict, and none is both exploding and vanishing', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const d = run(c);
        const count = new Map<string, number>();
        for (const f of d.findings) {
          if (!perLayerKinds.has(f.kind)) continue;
          for (const n of f.layers) count.set(n, (count.get(n) ?? 0) + 1);
        }
        for (const [, k] of count) expect(k).toBe(1);
        const exploding = new Set(d.findings.find((f) => f.kind === 'exploding')?.layers ?? []);
        for (const n of d.findings.find((f) => f.kind === 'vanishing')?.layers ?? [])
          expect(exploding.has(n)).toBe(false);
        expect(d.verdict).toBe(d.findings[0]!.kind);
      }),
      { numRuns: 400, seed: 17 },
    );
  });

  it('a layer is vanishing only against a layer that is not exploding, a thousand times larger', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const d = run(c);
        const v = d.findings.find((f) => f.kind === 'vanishing');
        if (!v) return;
        const names = c.infos.map((i) => i.name);
        const med = new Map(names.map((n) => [n, medianGrad(c.history, n)]));
        if (v.metrics.loss !== undefined) {
          // "vanish everywhere": nothing reaches any layer
          for (const n of names) expect(med.get(n)!).toBeLessThan(THRESHOLDS.vanishAbsolute);
          return;
        }
        const neverExploding = names.filter((n) =>
          c.history.every((r) => r.layers.find((l) => l.name === n)!.gradNorm <= THRESHOLDS.explodeNorm),
        );
        for (const n of v.layers) {
          const larger = neverExploding.filter((m) => m !== n && med.get(n)! < THRESHOLDS.vanishRatio * med.get(m)!);
          expect(larger.length, `${n} (${med.get(n)}) vanishing beside ${[...med]}`).toBeGreaterThan(0);
        }
      }),
      { numRuns: 400, seed: 23 },
    );
  });

  it('every fix applies to the model and to the layers it is written for', () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const d = run(c);
        // the model type the fixes may assume: the config's, else what the layer facts show (a recurrent layer, a
        // convolution; a ResNet's look like a CNN's), else an MLP
        const seen = c.type === 'resnet' ? 'cnn' : c.type;
        const type = c.config?.model.type ?? (c.withInfo ? seen : 'mlp');
        const recurrentModel = RECURRENT.has(type);
        const infoOf = new Map(c.infos.map((i) => [i.name, i]));
        for (const f of d.findings) {
          const sets = settings(f);
          const namesRecurrent = f.layers.some((n) =>
            c.withInfo ? RECURRENT.has(infoOf.get(n)!.type.toLowerCase()) : recurrentModel,
          );
          for (const fix of f.fixes) {
            for (const s of fix.set) {
              const [key] = s.split('=');
              const why = `${f.kind}: ${s}`;
              if (key === 'model.type') expect(type, why).toBe('rnn');
              if (key === 'model.forgetBias') expect(type, why).toBe('lstm');
              if (key === 'init.recurrentGain' || key === 'data.length') expect(recurrentModel, why).toBe(true);
              if (s === 'init.weight=orthogonal') expect(recurrentModel, why).toBe(true);
              if (key === 'model.activation' || key === 'model.norm') expect(['mlp', 'cnn'], why).toContain(type);
              // residual connections: an MLP's blocks, or a CNN's (model.residual builds both)
              if (key === 'model.residual') expect(['mlp', 'cnn'], why).toContain(type);
              // zero-initialised branches: for a residual MLP, or together with making it one
              if (key === 'model.zeroInitResidual')
                expect(c.config?.model.residual || fix.set.includes('model.residual=true'), why).toBe(true);
            }
          }
          // a finding about the layers of a recurrent model: recurrent fixes only when it names the recurrent layer
          if ((f.kind === 'vanishing' || f.kind === 'exploding') && !namesRecurrent) {
            for (const s of sets) {
              expect(
                ['model.type=lstm', 'init.weight=orthogonal', 'init.recurrentGain=1'],
                `${f.kind}: ${s}`,
              ).not.toContain(s);
            }
          }
        }
      }),
      { numRuns: 400, seed: 29 },
    );
  });
});

describe('the cases of issue 17, pinned', () => {
  const rnnLayers = layersOf('rnn', 2, 'tanh');
  const rec = (step: number, g: [number, number]): StepRecord => ({
    step,
    loss: 0.5,
    globalNormBefore: Math.hypot(...g),
    globalNormAfter: Math.hypot(...g),
    clipped: false,
    skipped: false,
    updated: true,
    layers: rnnLayers.map((l, i) => ({
      name: l.name,
      gradNorm: g[i]!,
      gradMaxAbs: g[i]!,
      weightNorm: 5,
      updateRatio: 1e-3,
      actMean: 0,
      actStd: 0.5,
      nonFinite: 0,
    })),
  });
  const rnnConfig: ConfigFacts = {
    model: { type: 'rnn', activation: 'tanh', residual: false, norm: 'none', zeroInitResidual: false, rezero: false },
    init: { weight: 'orthogonal', bias: 'zeros', recurrentGain: 2 },
    optim: { lr: 0.05 },
    schedule: { warmupSteps: 0 },
    clip: [],
  };

  it('a healthy output layer (grad norm 3.5) beside an exploding RNN layer is not vanishing', () => {
    const h = Array.from({ length: 6 }, (_, s) => rec(s, [1e4, 3.5]));
    const d = diagnose(h, { layers: rnnLayers, config: rnnConfig });
    expect(d.findings.map((f) => f.kind)).toEqual(['exploding']);
    expect(d.findings[0]!.layers).toEqual(['net.rnn']);
    expect(settings(d.findings[0]!)).toContain('init.recurrentGain=1');
  });

  it('the output Linear layer of an RNN is never told to use an LSTM or orthogonal recurrent weights', () => {
    // a recurrent layer at 50 (not exploding) and an output layer 5000x smaller: that layer is the one vanishing
    const h = Array.from({ length: 6 }, (_, s) => rec(s, [50, 0.01]));
    const d = diagnose(h, { layers: rnnLayers, config: rnnConfig });
    const v = d.findings.find((f) => f.kind === 'vanishing')!;
    expect(v.layers).toEqual(['net.head']);
    expect(settings(v)).not.toContain('model.type=lstm');
    expect(settings(v)).not.toContain('init.weight=orthogonal');
    // the recurrent layer itself vanishing gets them
    const h2 = Array.from({ length: 6 }, (_, s) => rec(s, [1e-5, 1]));
    const v2 = diagnose(h2, {
      layers: rnnLayers,
      config: { ...rnnConfig, init: { weight: 'xavier-normal', bias: 'zeros' } },
    }).findings[0]!;
    expect(v2.kind).toBe('vanishing');
    expect(settings(v2)).toEqual(['model.type=lstm', 'init.weight=orthogonal']);
  });
});
