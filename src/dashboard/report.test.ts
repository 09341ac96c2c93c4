import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../cli/dashboard.js';
import { RunStore } from '../track/store.js';
import { RUN_CHARTS } from './chart-table.js';
import { loadReportData, renderReport, reportFacts, reportFigures, thin, wrapText } from './report.js';
import { labelled } from './report-charts.js';
import { writeSyntheticRun } from './synthetic.js';

let dir: string;
let storeDir: string;
let id: string;
let divergedId: string;
let rnnId: string;

/** A fix command longer than a line of the findings figure. */
const LONG_FIX =
  'lower the learning rate: --set optim.lr=0.001 --set clip[0].type=global-norm --set clip[0].max=1 --set schedule.warmupSteps=100 --set model.norm=batch --set init.weight=kaiming-normal';

const io = () => {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t) } };
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-report-'));
  storeDir = join(dir, 'store');
  const store = RunStore.open(storeDir);
  id = writeSyntheticRun(store, { name: '<script>alert(1)</script>', steps: 3000, layers: 6, stepsPerEpoch: 500 });
  // A diverged run: the loss and gradient norm grow to 4e14, then NaN/Inf from step 4 (one finite step between).
  divergedId = store.createRun({ name: 'diverged', config: { optim: { name: 'sgd', lr: 50 } }, backend: 'js' });
  const losses = [2.3, 40, 9e6, 414769437736960, Number.NaN, Number.NaN, 3e20, Number.NaN, Number.NaN];
  losses.forEach((loss, s) => {
    const g = Number.isFinite(loss) ? loss * 10 : Number.POSITIVE_INFINITY;
    store.logStep(divergedId, s, { loss, lr: 50, grad_norm: g, skipped: Number.isFinite(loss) ? 0 : 1 });
  });
  store.logFinding(divergedId, 3, { kind: 'exploding', layers: ['0', '2'], suggestion: LONG_FIX });
  store.finishRun(divergedId, 'diverged', { metrics: { 'train/loss': 3e20, 'test/loss': Number.NaN } });
  // A recurrent run: its dataset's baseline in the summary (as train writes it) and gradient norms through time.
  rnnId = store.createRun({ name: 'rnn', config: { model: { type: 'rnn' } }, backend: 'js' });
  store.setSummary(rnnId, { baseline: { loss: 2.3, accuracy: 0.1, predictor: 'the class frequencies' } });
  for (let s = 0; s < 20; s++) {
    store.logStep(rnnId, s, {
      loss: 2.5 - s * 0.05,
      lr: 1e-3,
      ...(s % 10 === 9 ? { test_accuracy: 0.3 + s / 100 } : {}),
    });
    const times = Array.from({ length: 12 }, (_, t) => t);
    store.logTimeFlow(rnnId, s, [
      { layer: 'net.rnn', sub: 'l0', length: 12, steps: times, norms: times.map((t) => 0.5 ** (11 - t)) },
    ]);
  }
  store.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A strict-enough XML check: every tag closes in order, attributes are quoted. */
function wellFormed(xml: string): boolean {
  const stack: string[] = [];
  const re =
    /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>|<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[[\s\S]*?\]\]>/g;
  let last = 0;
  for (let m = re.exec(xml); m !== null; m = re.exec(xml)) {
    if (xml.slice(last, m.index).includes('<')) return false;
    last = re.lastIndex;
    if (m[2] === undefined) continue;
    if (m[1] === '/') {
      if (stack.pop() !== m[2]) return false;
    } else if (m[4] !== '/') stack.push(m[2]);
  }
  return stack.length === 0 && !xml.slice(last).includes('<');
}

describe('gradguard report', () => {
  it('writes an SVG that parses, with every figure', async () => {
    const t = io();
    const out = join(dir, 'report.svg');
    expect(await reportCommand({ run: id, store: storeDir, out }, t.io)).toBe(0);
    expect(t.out.join('')).toContain('wrote');
    const svg = readFileSync(out, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(wellFormed(svg)).toBe(true);
    expect(wellFormed(svg.replace('</g>', ''))).toBe(false);
    for (const title of ['Loss', 'Test accuracy', 'Learning rate', 'Gradient norm per layer', 'Findings (1)']) {
      expect(svg).toContain(title);
    }
    // resvg parses it and finds a picture of a sensible size.
    const r = new Resvg(svg);
    expect(r.width).toBeGreaterThan(800);
    expect(r.height).toBeGreaterThan(800);
  });

  it('writes a PNG with a valid signature and header', async () => {
    const out = join(dir, 'report.png');
    expect(await reportCommand({ run: id, store: storeDir, out }, io().io)).toBe(0);
    const png = readFileSync(out);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
    expect(png.readUInt32BE(16)).toBeGreaterThan(1000);
    expect(png.readUInt32BE(20)).toBeGreaterThan(1000);
  });

  it('writes a self-contained HTML page with inline SVGs, no script, escaped text', async () => {
    const t = io();
    const out = join(dir, 'report.html');
    expect(await reportCommand({ run: id, store: storeDir, out, json: true }, t.io)).toBe(0);
    const res = JSON.parse(t.out.join(''));
    expect(res).toMatchObject({ run: id, out, format: 'html' });
    const html = readFileSync(out, 'utf8');
    expect(res.bytes).toBe(Buffer.byteLength(html));
    expect(html.match(/<svg/g)?.length).toBe(8);
    expect(html).not.toMatch(/<script|<link|src=|@import/i);
    // External references: only XML namespaces.
    const urls = (html.match(/https?:\/\/[^\s"')]+/g) ?? []).filter((u) => !u.startsWith('http://www.w3.org/'));
    expect(urls).toEqual([]);
    expect(html).toContain('&#60;script&#62;alert(1)&#60;/script&#62;');
    expect(html).toContain('--set init.weight=kaiming-normal');
    // Each inline SVG's ids carry its own prefix, so clip paths do not collide.
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('refuses an unknown run, an unknown output type and a missing store with one line and status 2', async () => {
    for (const opts of [
      { run: 'no-such-run', store: storeDir, out: join(dir, 'x.html') },
      { run: id, store: storeDir, out: join(dir, 'x.pdf') },
      { run: id, store: join(dir, 'nowhere'), out: join(dir, 'x.svg') },
      { run: '', store: storeDir },
    ]) {
      const t = io();
      expect(await reportCommand(opts, t.io)).toBe(2);
      const err = t.err.join('');
      expect(err.trim().split('\n')).toHaveLength(1);
      expect(err).toMatch(/^gradguard: /);
      expect(err).not.toMatch(/\n\s+at /);
    }
  });

  it('thins long lines to the min and max of each bin, keeping spikes', () => {
    const n = 10_000;
    const steps = Array.from({ length: n }, (_, i) => i);
    const col = steps.map((i) => (i === 4321 ? 100 : i === 7777 ? -50 : Math.sin(i)));
    const pts = thin(steps, col, 'x', 500);
    expect(pts.length).toBeLessThanOrEqual(1000);
    expect(pts.some((p) => p.step === 4321 && p.value === 100)).toBe(true);
    expect(pts.some((p) => p.step === 7777 && p.value === -50)).toBe(true);
    for (let i = 1; i < pts.length; i++) expect(pts[i]!.step).toBeGreaterThan(pts[i - 1]!.step);
  });

  it('has a heatmap with one row per layer', () => {
    const store = RunStore.open(storeDir, { readonly: true });
    try {
      const figs = reportFigures(loadReportData(store, id));
      const heat = figs.find((f) => f.key === 'heat-grad')!.spec as { data: { values: { layer: string }[] } };
      expect(new Set(heat.data.values.map((v) => v.layer)).size).toBe(6);
    } finally {
      store.close();
    }
  });

  describe('a recurrent run with its baseline', () => {
    const data = () => {
      const store = RunStore.open(storeDir, { readonly: true });
      try {
        return loadReportData(store, rnnId);
      } finally {
        store.close();
      }
    };
    type Layered = { layer: { mark: { type: string }; data: { values: Record<string, unknown>[] } }[] };

    it('has the figures of the chart table in its order, the time heatmap among them', () => {
      const keys = reportFigures(data()).map((f) => f.key);
      expect(keys).toEqual([...RUN_CHARTS.map((c) => c.id), 'findings']);
      // a run without recurrent layers has no time heatmap
      const store = RunStore.open(storeDir, { readonly: true });
      try {
        expect(reportFigures(loadReportData(store, id)).map((f) => f.key)).not.toContain('time-flow');
      } finally {
        store.close();
      }
    });

    it('draws the gradient through time as one row per recorded time step', () => {
      const fig = reportFigures(data()).find((f) => f.key === 'time-flow')!;
      expect(fig.title).toContain('net.rnn l0, T = 12');
      const cells = (fig.spec as unknown as { data: { values: { layer: string; value: number }[] } }).data.values;
      expect(new Set(cells.map((c) => c.layer)).size).toBe(12);
      // the first time step gets 0.5^11 of the last's gradient
      const t0 = cells.find((c) => c.layer === 't 0')!.value;
      const t11 = cells.find((c) => c.layer === 't 11')!.value;
      expect(t0 / t11).toBeCloseTo(0.5 ** 11, 8);
      // 12 rows: every one named on the axis
      const y = (fig.spec as unknown as { encoding: { y: { axis: { values: string[] } } } }).encoding.y;
      expect(y.axis.values).toHaveLength(12);
    });

    it('names every k-th row of a tall grid, k round, so that its labels do not overlap', () => {
      const rows = (n: number) => Array.from({ length: n }, (_, t) => `t ${t}`);
      expect(labelled(rows(40))).toEqual(rows(40));
      expect(labelled(rows(100))).toEqual(rows(100).filter((_, i) => i % 5 === 0));
      expect(labelled(rows(1000))).toEqual(rows(1000).filter((_, i) => i % 50 === 0));
      expect(labelled(rows(41))[1]).toBe('t 5');
    });

    it('draws the trivial baseline beside the loss and the accuracy as a labelled rule', async () => {
      const figs = reportFigures(data());
      const rule = (key: string) => {
        const layers = (figs.find((f) => f.key === key)!.spec as unknown as Layered).layer;
        const r = layers.find((l) => l.mark.type === 'rule')!;
        return r.data.values[0];
      };
      expect(rule('loss')).toEqual({ value: 2.3, label: 'trivial baseline 2.3' });
      expect(rule('accuracy')).toEqual({ value: 0.1, label: 'trivial baseline 10.0%' });
      const svg = (await renderReport(data(), 'svg')) as string;
      expect(svg).toContain('trivial baseline 2.3');
      expect(svg).toContain('trivial baseline 10.0%');
      // no baseline stored, no rule
      const store = RunStore.open(storeDir, { readonly: true });
      try {
        const loss = reportFigures(loadReportData(store, id)).find((f) => f.key === 'loss')!.spec as unknown as Layered;
        expect(loss.layer.some((l) => l.mark.type === 'rule')).toBe(false);
      } finally {
        store.close();
      }
    });
  });

  describe('a diverged run', () => {
    const data = () => {
      const store = RunStore.open(storeDir, { readonly: true });
      try {
        return loadReportData(store, divergedId);
      } finally {
        store.close();
      }
    };
    /** The text of every <text> element of an SVG, unescaped. */
    const texts = (svg: string) =>
      [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) =>
        m[1]!.replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c))).replace(/&amp;/g, '&'),
      );

    it('draws what is finite, with compact axis labels, and marks where the values stop being finite', async () => {
      const svg = (await renderReport(data(), 'svg')) as string;
      const t = texts(svg);
      // no `100,000,000,000,000` (cut to `000,000` beside a chart), but 1e5-style labels
      expect(t.filter((x) => /\d,\d{3},\d{3}/.test(x))).toEqual([]);
      expect(t.filter((x) => /^\d(\.\d+)?e\d+$/.test(x)).length).toBeGreaterThan(3);
      expect(t).toContain('Loss (NaN/Inf at 4 steps from step 4: red)');
      const figs = reportFigures(data());
      const loss = figs.find((f) => f.key === 'loss')!.spec as unknown as {
        layer: { mark: { type: string; color?: string }; data: { values: Record<string, number>[] } }[];
      };
      // the finite losses are the line's points; the non-finite steps are red bands
      expect(loss.layer[0]!.data.values.map((p) => p.step)).toEqual([0, 1, 2, 3, 6]);
      const band = loss.layer.find((l) => l.mark.type === 'rect' && l.mark.color === '#e15759')!;
      expect(band.data.values).toEqual([
        { s0: 3.5, s1: 5.5 },
        { s0: 6.5, s1: 8 },
      ]);
      // the header's numbers: one formatter (4.15e14 style), not 300000000000000000000
      expect(reportFacts(data().run).lines.join('\n')).toContain('loss 3e20');
    });

    it('wraps a long fix command instead of cutting it', async () => {
      const svg = (await renderReport(data(), 'svg')) as string;
      const t = texts(svg);
      const start = t.findIndex((x) => x.startsWith('step 3 · exploding'));
      expect(start).toBeGreaterThanOrEqual(0);
      // its lines follow each other (the next finding would start with `step `)
      const lines = [t[start]!];
      for (let i = start + 1; i < t.length && i < start + 4 && !t[i]!.startsWith('step '); i++) lines.push(t[i]!);
      expect(lines.join(' ')).toContain(LONG_FIX);
      expect(t[start]!.length).toBeLessThanOrEqual(140);
      expect(t.some((x) => x.includes('…'))).toBe(false);
    });
  });

  it('wrapText cuts at spaces, and cuts a word longer than a line', () => {
    expect(wrapText('a bb ccc dddd', 6)).toEqual(['a bb', 'ccc', 'dddd']);
    expect(wrapText('xxxxxxxxxx yy', 4)).toEqual(['xxxx', 'xxxx', 'xx', 'yy']);
    expect(wrapText('short', 80)).toEqual(['short']);
  });
});
