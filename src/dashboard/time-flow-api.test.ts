import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../track/store.js';
import { createDashboardApp, type DashboardApp } from './server.js';
import type { TimeFlowResponse } from './time-flow-api.js';

let dir: string;
let app: DashboardApp;
let id: string;
let mlp: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-dash-time-'));
  const store = RunStore.open(join(dir, 'store'));
  id = store.createRun({ config: {}, backend: 'js' });
  // two monitored steps of a 2-layer LSTM; the second records one more time step of l0, and l1 only on step 5
  store.logTimeFlow(id, 0, [{ layer: 'net.rnn', sub: 'l0', length: 3, steps: [0, 2], norms: [0.25, 1] }]);
  store.logTimeFlow(id, 5, [
    { layer: 'net.rnn', sub: 'l0', length: 3, steps: [0, 1, 2], norms: [0.5, Number.NaN, 2] },
    { layer: 'net.rnn', sub: 'l1', length: 3, steps: [0, 2], norms: [4, 8] },
  ]);
  mlp = store.createRun({ config: {}, backend: 'js' });
  store.close();
  app = createDashboardApp({ storeDir: join(dir, 'store'), staticDir: join(dir, 'no-web') });
});
afterAll(() => {
  app.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /api/runs/:id/time-flow', () => {
  it('serves one time x steps grid per recurrent layer and direction, null where not recorded or not finite', async () => {
    const res = await app.request(`/api/runs/${id}/time-flow`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as TimeFlowResponse;
    expect(body.series).toEqual([
      {
        layer: 'net.rnn',
        sub: 'l0',
        length: 3,
        times: [0, 1, 2],
        steps: [0, 5],
        values: [0.25, 0.5, null, null, 1, 2],
      },
      { layer: 'net.rnn', sub: 'l1', length: 3, times: [0, 2], steps: [5], values: [4, 8] },
    ]);
  });

  it('is empty for a run without recurrent layers, and 404 for a run that is not in the store', async () => {
    const none = (await (await app.request(`/api/runs/${mlp}/time-flow`)).json()) as TimeFlowResponse;
    expect(none.series).toEqual([]);
    expect((await app.request('/api/runs/20990101-000000-ffff/time-flow')).status).toBe(404);
  });
});
