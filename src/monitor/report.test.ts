import { describe, expect, it } from 'vitest';
import type { Diagnosis } from './diagnose.js';
import type { LayerStats } from './monitor.js';
import { logBar, renderFindings, renderLayerTable, renderReport, renderTrials, type TrialResult } from './report.js';

const layer = (name: string, gradNorm: number, o: Partial<LayerStats> = {}): LayerStats => ({
  name,
  gradNorm,
  gradMaxAbs: gradNorm / 2,
  weightNorm: 3,
  updateRatio: 1e-3,
  actMean: 0.5,
  actStd: 0.25,
  nonFinite: 0,
  ...o,
});

const vanishing: Diagnosis = {
  verdict: 'vanishing',
  findings: [
    {
      kind: 'vanishing',
      layers: ['layers.0'],
      evidence: 'Gradients vanish.',
      metrics: {},
      suggestion: '',
      fixes: [{ label: 'Kaiming (He) initialisation', set: ['init.weight=kaiming-normal'], why: 'He et al. 2015' }],
    },
  ],
};

describe('logBar', () => {
  it('is longer for larger values on a log scale, and marks zero and NaN', () => {
    const bars = [1e-6, 1e-4, 1e-2, 1].map((v) => logBar(v, 1e-6, 1, 16).trimEnd());
    for (let i = 1; i < bars.length; i++) expect(bars[i]!.length).toBeGreaterThanOrEqual(bars[i - 1]!.length);
    expect(bars[3]).toBe('█'.repeat(16));
    expect(logBar(1e-2, 1e-6, 1, 16).length).toBe(16);
    // 1e-3 is half-way between 1e-6 and 1 in log10
    expect(logBar(1e-3, 1e-6, 1, 16).trimEnd()).toBe('█'.repeat(8));
    expect(logBar(0, 1e-6, 1, 8).trim()).toBe('·');
    expect(logBar(Number.NaN, 1e-6, 1, 8).trim()).toBe('NaN');
  });
});

describe('renderLayerTable', () => {
  it('prints one row per layer, flags the layers a finding names, no colour unless asked', () => {
    const rows = [layer('layers.0', 1e-9, { deadFrac: 0.25 }), layer('layers.2', 0.5, { satFrac: 0.9 })];
    const text = renderLayerTable(rows, vanishing);
    const lines = text.split('\n');
    expect(lines).toHaveLength(4); // header, 2 rows, flag legend
    expect(lines[1]).toMatch(/^layers\.0 +V /);
    expect(lines[1]).toContain('25% d');
    expect(lines[2]).toContain('90% s');
    expect(lines[3]).toContain('V vanishing');
    expect(text).not.toContain('\u001b[');
    expect(renderLayerTable(rows, vanishing, { color: true })).toContain('\u001b[');
  });

  it('elides the middle of a very deep network', () => {
    const rows = Array.from({ length: 100 }, (_, i) => layer(`l${i}`, 1));
    const text = renderLayerTable(rows, undefined, { maxLayers: 10 });
    expect(text).toContain('(91 more layers)');
    expect(text).toMatch(/^l0 /m);
    expect(text).toMatch(/^l99 /m);
  });
});

describe('renderFindings and renderTrials', () => {
  it('gives the verdict, the evidence and each fix as --set flags', () => {
    const text = renderFindings(vanishing);
    expect(text).toContain('Verdict: vanishing');
    expect(text).toContain('Gradients vanish.');
    expect(text).toContain('fix: Kaiming (He) initialisation: --set init.weight=kaiming-normal');
  });

  it('says which fix works and recommends the one with the lowest loss', () => {
    const t = (label: string, set: string[], loss: number, flow: boolean): TrialResult => ({
      label,
      set,
      verdict: flow ? 'healthy' : 'vanishing',
      kinds: [],
      loss,
      restoresFlow: flow,
      lowersLoss: loss < 1.1,
      works: flow && loss < 1.1,
    });
    const text = renderTrials(
      [
        t('original', [], 1.1, false),
        t('residual', ['model.residual=true'], 1.2, true),
        t('relu', ['model.activation=relu'], 0.9, true),
      ],
      20,
    );
    expect(text).toContain('20 training steps each');
    expect(text).toMatch(/residual .*healthy gradient flow, but the loss is not lower/);
    expect(text).toMatch(/relu .*✓ works/);
    expect(text).toContain('Recommended: relu: --set model.activation=relu');
    expect(renderTrials([t('original', [], 1, true)], 5)).toContain('Nothing to try');
  });

  it('keeps the trial table aligned when a loss is huge, tiny or not finite', () => {
    const t = (label: string, loss: number): TrialResult => ({
      label,
      set: label === 'original' ? [] : [`optim.lr=${label}`],
      verdict: 'exploding',
      kinds: [],
      loss,
      restoresFlow: false,
      lowersLoss: false,
      works: false,
    });
    const text = renderTrials(
      [t('original', 414769437736960), t('1', 2.302585), t('2', 3.2e-7), t('3', Number.NaN), t('4', -1234.56789)],
      20,
    );
    expect(text).not.toContain('414769437736960');
    const rows = text.split('\n').filter((l) => / exploding /.test(l));
    const losses = ['4.15e14', '2.3026', '3.2e-7', 'NaN', '-1234.5679'];
    // every loss ends in the same column, where the header's 'loss' ends
    const ends = rows.map((r, i) => r.indexOf(` ${losses[i]!}  `) + losses[i]!.length + 1);
    const header = text.split('\n')[1]!;
    expect(ends).toEqual(new Array(5).fill(header.indexOf('loss') + 4));
    expect(rows.map((r) => r.split(/\s+/)[3])).toEqual(losses);
  });

  it('puts the title, table, findings and trials together', () => {
    const text = renderReport([layer('layers.0', 1)], vanishing, { title: 'Gradient report' });
    expect(text.split('\n')[0]).toBe('Gradient report');
    expect(text).toContain('Verdict: vanishing');
  });
});
