import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { histogram } from '../monitor/histogram.js';
import { RunStore } from '../track/store.js';
import type { HistogramsResponse } from './histograms-api.js';
import { createDashboardApp, type DashboardApp } from './server.js';

let dir: string;
let app: DashboardApp;
let id: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-dash-hist-'));
  const store = RunStore.open(join(dir, 'store'));
  id = store.createRun({ config: {}, backend: 'js' });
  store.logHistograms(id, 0, [
    { name: 'layers.0', grad: histogram([[1, 2, 3]], 3), act: histogram([[Number.NaN]], 3) },
  ]);
  store.logHistograms(id, 50, [{ name: 'layers.0', grad: histogram([[-1, 1]], 3) }]);
  store.close();
  app = createDashboardApp({ storeDir: join(dir, 'store'), staticDir: join(dir, 'no-web') });
});
afterAll(() => {
  app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /api/runs/:id/histograms', () => {
  it('serves every stored histogram with its step, layer, kind, range and counts', async () => {
    const res = await app.request(`/api/runs/${id.slice(0, 12)}/histograms`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as HistogramsResponse;
    expect(body.histograms).toEqual([
      { step: 0, layer: 'layers.0', kind: 'grad', min: 1, max: 3, num: 3, nonFinite: 0, counts: [1, 1, 1] },
      { step: 0, layer: 'layers.0', kind: 'act', min: 'NaN', max: 'NaN', num: 0, nonFinite: 1, counts: [0, 0, 0] },
      { step: 50, layer: 'layers.0', kind: 'grad', min: -1, max: 1, num: 2, nonFinite: 0, counts: [1, 0, 1] },
    ]);
  });

  it('answers 404 for a run that is not in the store', async () => {
    const res = await app.request('/api/runs/20990101-000000-ffff/histograms');
    expect(res.status).toBe(404);
  });
});
