import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportCommand } from '../cli/dashboard.js';
import { RunStore } from '../track/store.js';
import { loadReportData, reportFigures, thin } from './report.js';
import { writeSyntheticRun } from './synthetic.js';

let dir: string;
let storeDir: string;
let id: string;

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
});
