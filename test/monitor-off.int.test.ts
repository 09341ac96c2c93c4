/**
 * `monitor.enabled: false` turns the gradient monitor off: no hooks, no layer statistics, gradient norms, histograms
 * or through-time records in the store; the diagnosis judges the loss alone (a diverged run is still `non-finite`),
 * and the output says so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { RunStore } from '../src/track/store.js';

let out = '';
let err = '';
let dir = '';
beforeEach(() => {
  out = '';
  err = '';
  dir = mkdtempSync(join(tmpdir(), 'gg-monitor-off-'));
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

const small = ['data.trainSize=256', 'data.testSize=64', 'train.maxSteps=20', 'train.batchSize=32'];
const sets = (xs: string[]) => xs.flatMap((s) => ['--set', s]);

describe('monitor.enabled: false', () => {
  it('stores no layer statistics, gradient norms or histograms, and the diagnosis says it judged the loss only', async () => {
    const store = join(dir, 'runs');
    const args = ['train', '--store', store, '--json', ...sets([...small, 'monitor.histogramEvery=1'])];
    expect(await main([...args, '--set', 'monitor.enabled=false'])).toBe(0);
    const r = JSON.parse(out);
    expect(err).toContain('gradguard: monitoring off (monitor.enabled: false)');
    expect(r.layers).toEqual([]);
    expect(r.diagnosis.verdict).toBe('healthy');
    expect(r.diagnosis.findings[0].evidence).toMatch(/^monitoring was off \(monitor\.enabled: false\): only the loss/);
    const st = RunStore.open(store, { readonly: true });
    try {
      expect(st.getLayerStats(r.run, { last: true })).toEqual([]);
      const m = st.getMetrics(r.run);
      expect(Object.keys(m.series)).toContain('loss');
      expect(Object.keys(m.series)).not.toContain('grad_norm');
      expect(st.getHistograms(r.run)).toEqual([]);
    } finally {
      st.close();
    }
    // the same run monitored has all of them (the test above would pass vacuously otherwise)
    out = '';
    expect(await main(args)).toBe(0);
    const on = JSON.parse(out);
    expect(on.layers.length).toBeGreaterThan(0);
    const st2 = RunStore.open(store, { readonly: true });
    try {
      expect(st2.getLayerStats(on.run, { last: true }).length).toBeGreaterThan(0);
      expect(Object.keys(st2.getMetrics(on.run).series)).toContain('grad_norm');
      expect(st2.getHistograms(on.run).length).toBeGreaterThan(0);
    } finally {
      st2.close();
    }
  });

  it('still finds a diverged run non-finite from its loss, and the terminal report has no empty layer table', async () => {
    const diverge = ['optim.name=sgd', 'optim.lr=10000', 'clip=[]', 'monitor.enabled=false', 'train.maxSteps=30'];
    // 3: diverged (10 non-finite steps in a row)
    expect(await main(['train', '--no-store', ...sets([...small, ...diverge])])).toBe(3);
    expect(out).toContain('Verdict: non-finite');
    expect(out).toContain('no layer statistics (monitoring was off)');
    expect(out).not.toMatch(/^layer flag grad norm/m);
  });
});
