import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from '../track/store.js';
import type { LayerStat } from '../track/types.js';
import type {
  CompareResponse,
  FindingsResponse,
  LayersResponse,
  MetricsResponse,
  RunResponse,
  RunsResponse,
  StatusEvent,
  StepsEvent,
} from './api-types.js';
import { createDashboardApp, type DashboardApp, startDashboard } from './server.js';

const LAYERS = ['layers.0', 'layers.1', 'layers.2'];

function layerStats(step: number): LayerStat[] {
  return LAYERS.map((name, l) => ({
    name,
    gradNorm: 10 ** -l * (1 + step / 100),
    gradMaxAbs: 0.1,
    weightNorm: 5 + l,
    updateRatio: 1e-3 * (l + 1),
    actMean: 0.01 * l,
    actStd: 1 - 0.1 * l,
    deadFrac: 0.05 * l,
    nonFinite: 0,
  }));
}

const baseConfig = {
  seed: 0,
  data: { name: 'mnist' },
  model: { type: 'mlp', hidden: [32, 32], activation: 'relu' },
  init: { weight: 'xavier-normal' },
  optim: { name: 'adam', lr: 0.001 },
  clip: [{ type: 'global-norm', max: 1 }],
};

let dir: string;
let store: RunStore;
let app: DashboardApp;
let finishedId: string;
let otherId: string;
let runningId: string;

function logSteps(id: string, from: number, to: number): void {
  for (let s = from; s < to; s++) {
    store.logStep(
      id,
      s,
      {
        loss: 2 / (s + 1),
        lr: 1e-3,
        grad_norm: s === 3 ? Number.POSITIVE_INFINITY : 1.5,
        grad_norm_clipped: 1,
        clipped: 1,
        skipped: s === 3 ? 1 : 0,
      },
      layerStats(s),
    );
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-dash-'));
  store = RunStore.open(join(dir, 'store'));
  finishedId = store.createRun({ name: 'baseline', config: baseConfig, backend: 'js' });
  logSteps(finishedId, 0, 20);
  store.logStep(finishedId, 19, { test_loss: 0.3, test_accuracy: 0.91 });
  store.logFinding(finishedId, 5, {
    kind: 'vanishing-gradient',
    layers: ['layers.0'],
    evidence: 'layers.0 gets 1e-4 of the largest gradient',
    suggestion: '--set init.weight=kaiming-normal',
  });
  store.finishRun(finishedId, 'finished', {
    test: { loss: 0.3, accuracy: 0.91 },
    finalLoss: 0.1,
    steps: 20,
    seconds: 1.5,
    verdict: 'vanishing-gradient',
  });
  otherId = store.createRun({
    name: 'kaiming',
    config: { ...baseConfig, init: { weight: 'kaiming-normal' }, optim: { name: 'adam', lr: 0.01 } },
    backend: 'js',
  });
  logSteps(otherId, 0, 10);
  // as gradguard train records its final metrics (session.ts), which the runs list must show
  store.finishRun(otherId, 'diverged', {
    verdict: 'exploding-gradient',
    metrics: { 'test/loss': Number.NaN, 'train/loss': 4.15e14, 'test/accuracy': 0.1035, f1: 0.5 },
  });
  // Written by this process, which is alive: it reads back as running.
  runningId = store.createRun({ name: 'live', config: baseConfig, backend: 'native' });
  logSteps(runningId, 0, 5);
  app = createDashboardApp({ storeDir: join(dir, 'store'), staticDir: join(dir, 'no-web'), pollMs: 25 });
});

afterAll(() => {
  app.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get<T>(path: string, status = 200): Promise<T> {
  const res = await app.request(path);
  const text = await res.text();
  expect({ path, status: res.status, text: res.status === status ? '' : text }).toEqual({ path, status, text: '' });
  return JSON.parse(text) as T;
}

describe('JSON API', () => {
  it('lists runs newest first with status, config summary, final metrics, verdict, backend and duration', async () => {
    const res = await get<RunsResponse>('/api/runs');
    // Runs made in the same millisecond have no order between them: check the set and the order of creation times.
    expect(res.runs.map((r) => r.name).sort()).toEqual(['baseline', 'kaiming', 'live']);
    const created = res.runs.map((r) => r.createdAt);
    expect(created).toEqual([...created].sort((a, b) => b - a));
    const base = res.runs.find((r) => r.id === finishedId)!;
    expect(base).toMatchObject({
      status: 'finished',
      backend: 'js',
      steps: 20,
      lastStep: 19,
      durationMs: 1500,
      verdict: 'vanishing-gradient',
      final: { test_accuracy: 0.91, test_loss: 0.3, loss: 0.1 },
    });
    expect(base.configSummary).toBe('mlp 32-32 relu · xavier-normal · adam lr=0.001 · clip global-norm 1 · mnist');
    expect(res.runs.find((r) => r.id === runningId)!.status).toBe('running');
    expect(res.runs.find((r) => r.id === otherId)!.status).toBe('diverged');
    // the trainer's `test/accuracy`, `test/loss`, `train/loss` under the shared list's names (track/metrics.ts)
    expect(res.runs.find((r) => r.id === otherId)!.final).toEqual({
      test_accuracy: 0.1035,
      test_loss: 'NaN',
      loss: 4.15e14,
      f1: 0.5,
    });
  });

  it('filters the list by status and limits it', async () => {
    const res = await get<RunsResponse>('/api/runs?status=diverged,running');
    expect(res.runs.map((r) => r.name).sort()).toEqual(['kaiming', 'live']);
    expect((await get<RunsResponse>('/api/runs?limit=1')).runs).toHaveLength(1);
    await get('/api/runs?status=bogus', 400);
    await get('/api/runs?limit=0', 400);
  });

  it('returns one run by id, prefix or name, with its layers', async () => {
    const res = await get<RunResponse>(`/api/runs/${finishedId}`);
    expect(res.run.id).toBe(finishedId);
    expect(res.run.config).toEqual(baseConfig);
    expect(res.layers).toEqual(LAYERS);
    expect(res.layerFields).toContain('gradNorm');
    expect(res.lastLayers!.step).toBe(19);
    expect(res.lastLayers!.layers.map((l) => l.name)).toEqual(LAYERS);
    expect(res.lastLayers!.layers[2]!.updateRatio).toBeCloseTo(3e-3, 12);
    expect((await get<RunResponse>('/api/runs/kaiming')).run.id).toBe(otherId);
  });

  it('returns metrics by column, non-finite values as strings, from a step on', async () => {
    const m = await get<MetricsResponse>(`/api/runs/${finishedId}/metrics`);
    expect(m.steps).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(m.keys).toEqual(expect.arrayContaining(['loss', 'grad_norm', 'test_accuracy', 'skipped']));
    expect(m.series.grad_norm![3]).toBe('Infinity');
    expect(m.series.loss![1]).toBe(1);
    expect(m.series.test_accuracy![19]).toBe(0.91);
    expect(m.series.test_accuracy![0]).toBeNull();
    const tail = await get<MetricsResponse>(`/api/runs/${finishedId}/metrics?from=15&keys=loss`);
    expect(tail.steps).toEqual([15, 16, 17, 18, 19]);
    expect(tail.keys).toEqual(['loss']);
  });

  it('returns layer statistics as layers x steps matrices, as JSON or base64 float32', async () => {
    const j = await get<LayersResponse>(`/api/runs/${finishedId}/layers?fields=gradNorm,deadFrac`);
    expect(j.layers).toEqual(LAYERS);
    expect(j.steps).toHaveLength(20);
    const g = j.fields.gradNorm as number[];
    expect(g).toHaveLength(3 * 20);
    // Row-major: values[l * steps + s].
    expect(g[1 * 20 + 10]).toBeCloseTo(0.1 * 1.1, 12);
    const f = await get<LayersResponse>(`/api/runs/${finishedId}/layers?fields=gradNorm&encoding=f32&from=10`);
    expect(f.steps).toEqual(Array.from({ length: 10 }, (_, i) => i + 10));
    const bytes = Buffer.from(f.fields.gradNorm as string, 'base64');
    const values = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    expect(values).toHaveLength(30);
    expect(values[1 * 10 + 0]).toBeCloseTo(0.1 * 1.1, 6);
    await get(`/api/runs/${finishedId}/layers?fields=password`, 400);
    await get(`/api/runs/${finishedId}/layers?encoding=xml`, 400);
  });

  it('returns findings', async () => {
    const res = await get<FindingsResponse>(`/api/runs/${finishedId}/findings`);
    expect(res.findings).toHaveLength(1);
    expect(res.findings[0]).toMatchObject({
      step: 5,
      kind: 'vanishing-gradient',
      layers: ['layers.0'],
      suggestion: '--set init.weight=kaiming-normal',
    });
  });

  it('compares runs: metrics per run and the config keys that differ', async () => {
    const res = await get<CompareResponse>(`/api/compare?ids=${finishedId},${otherId}&keys=loss`);
    expect(res.runs.map((r) => r.id)).toEqual([finishedId, otherId]);
    expect(res.metrics[0]!.keys).toEqual(['loss']);
    expect(res.metrics[1]!.steps).toHaveLength(10);
    const differing = res.config.filter((r) => r.differs).map((r) => r.key);
    expect(differing.sort()).toEqual(['init.weight', 'optim.lr']);
    expect(res.config.find((r) => r.key === 'optim.lr')!.values).toEqual(['0.001', '0.01']);
    await get('/api/compare', 400);
    await get('/api/compare?ids=../etc', 400);
  });
});

describe('safety', () => {
  const refused: [string, number][] = [
    ['/api/runs/..%2F..%2Fetc%2Fpasswd', 400],
    ['/api/runs/..%2F..%2Fetc%2Fpasswd/metrics', 400],
    // URL parsing turns %2e%2e into '..' and resolves it: /api/findings, no such route.
    ['/api/runs/%2e%2e/findings', 404],
    ['/api/runs/a%00b', 400],
    ['/api/runs/%20x', 400],
    [`/api/runs/${'x'.repeat(200)}`, 400],
    ['/api/runs/no-such-run', 404],
    ['/api/runs/no-such-run/metrics', 404],
    ['/api/runs/2/metrics?from=-1', 400],
    ['/api/runs/2/metrics?from=1e3', 400],
    ['/api/nothing-here', 404],
    ['/assets/..%2F..%2Fpackage.json', 404],
    ['/..%2fpackage.json', 404],
    ['/src/dashboard/server.ts', 404],
  ];
  for (const [path, status] of refused) {
    it(`refuses ${path.slice(0, 60)} with ${status} and no stack trace`, async () => {
      const res = await app.request(path);
      expect(res.status).toBe(status);
      const text = await res.text();
      expect(text).not.toMatch(/\n\s+at |node:internal|\.ts:\d+/);
      if (path.startsWith('/api/')) expect(JSON.parse(text).error.code).toMatch(/^[A-Z_]+$/);
    });
  }

  it('an ambiguous prefix is a 409 naming the candidates', async () => {
    const prefix = finishedId.slice(0, 2);
    const res = await app.request(`/api/runs/${prefix}`);
    expect(res.status).toBe(409);
    expect((await res.json()).error.message).toContain(finishedId);
  });

  it('serves only GET and HEAD', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await app.request(`/api/runs/${finishedId}`, { method });
      expect(res.status).toBe(405);
      expect((await res.json()).error.code).toBe('READ_ONLY');
    }
  });

  it('never writes: a dead writer reads as interrupted but stays running in the file', async () => {
    const deadPid = spawnSync(process.execPath, ['-e', '0']).pid;
    const id = store.createRun({ name: 'dead', config: {}, backend: 'js' });
    const db = new Database(join(dir, 'store', 'runs.db'));
    db.prepare('UPDATE runs SET pid = ?, proc_start = NULL WHERE id = ?').run(deadPid, id);
    db.close();
    const hash = () =>
      createHash('sha256')
        .update(readFileSync(join(dir, 'store', 'runs.db')))
        .digest('hex');
    const before = hash();
    const res = await get<RunResponse>(`/api/runs/${id}`);
    expect(res.run.status).toBe('interrupted');
    await get<RunsResponse>('/api/runs');
    expect(hash()).toBe(before);
    const check = new Database(join(dir, 'store', 'runs.db'), { readonly: true });
    expect(check.prepare('SELECT status FROM runs WHERE id = ?').pluck().get(id)).toBe('running');
    check.close();
  });

  it('refuses foreign Host headers when told which hosts to accept (DNS rebinding)', async () => {
    const guarded = createDashboardApp({ storeDir: join(dir, 'store'), allowedHosts: ['127.0.0.1', 'localhost'] });
    try {
      const ok = await guarded.request('http://127.0.0.1:6007/api/health');
      expect(ok.status).toBe(200);
      const evil = await guarded.request('http://evil.example:6007/api/health');
      expect(evil.status).toBe(403);
    } finally {
      guarded.close();
    }
  });

  it('sets no-sniff, no-referrer and frame headers', async () => {
    const res = await app.request('/api/health');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect((await res.json()).readonly).toBe(true);
  });
});

describe('store states', () => {
  it('an empty store directory lists no runs, and a run there is a 404', async () => {
    const empty = createDashboardApp({ storeDir: join(dir, 'missing') });
    try {
      const list = await empty.request('/api/runs');
      expect(list.status).toBe(200);
      expect((await list.json()).runs).toEqual([]);
      const one = await empty.request('/api/runs/abc');
      expect(one.status).toBe(404);
      expect((await one.json()).error.code).toBe('NO_STORE');
    } finally {
      empty.close();
    }
  });

  it('lists hundreds of runs, each with its final accuracy', async () => {
    const many = RunStore.open(join(dir, 'many'));
    for (let i = 0; i < 300; i++) {
      const id = many.createRun({ name: `r${i}`, config: { ...baseConfig, seed: i }, backend: 'js' });
      many.logStep(id, 0, { loss: 1 });
      many.finishRun(id, 'finished', { test: { accuracy: i / 300 }, verdict: 'healthy' });
    }
    many.close();
    const big = createDashboardApp({ storeDir: join(dir, 'many') });
    try {
      // (how fast is a benchmark's question, not a test's: no wall-clock assertion here)
      const res = await big.request('/api/runs');
      const body = (await res.json()) as RunsResponse;
      expect(body.runs).toHaveLength(300);
      expect(new Set(body.runs.map((r) => r.name)).size).toBe(300);
    } finally {
      big.close();
    }
  });
});

describe('static files', () => {
  it('serves the built front end from its file list, with a CSP on HTML', async () => {
    const web = join(dir, 'web');
    mkdirSync(join(web, 'assets'), { recursive: true });
    writeFileSync(join(web, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(web, 'assets', 'app-1.js'), 'export {}');
    const s = createDashboardApp({ storeDir: join(dir, 'store'), staticDir: web });
    try {
      const index = await s.request('/');
      expect(index.status).toBe(200);
      expect(index.headers.get('content-security-policy')).toContain("default-src 'self'");
      const js = await s.request('/assets/app-1.js');
      expect(js.headers.get('content-type')).toContain('text/javascript');
      expect(js.headers.get('cache-control')).toContain('immutable');
      expect((await s.request('/assets/app-2.js')).status).toBe(404);
    } finally {
      s.close();
    }
  });

  it('says how to build the front end when it is missing', async () => {
    const res = await app.request('/');
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('npm run build');
  });
});

/** Reads server-sent events from a response body until `until` says stop or `ms` pass. */
async function readEvents(
  res: Response,
  until: (events: { event: string; data: unknown }[]) => boolean,
  ms: number,
  onEvent?: (event: string, data: unknown) => void,
): Promise<{ event: string; data: unknown }[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const events: { event: string; data: unknown }[] = [];
  let buf = '';
  const deadline = Date.now() + ms;
  try {
    while (!until(events) && Date.now() < deadline) {
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), deadline - Date.now()));
      const chunk = await Promise.race([reader.read(), timeout]);
      if (chunk === 'timeout' || chunk.done) break;
      buf += decoder.decode(chunk.value, { stream: true });
      let i = buf.indexOf('\n\n');
      while (i >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) {
          const parsed = JSON.parse(data);
          events.push({ event, data: parsed });
          onEvent?.(event, parsed);
        }
        i = buf.indexOf('\n\n');
      }
    }
  } finally {
    await reader.cancel();
  }
  return events;
}

describe('server-sent events', () => {
  it('pushes the new steps of a running run, then its end', async () => {
    const res = await app.request(`/api/runs/${runningId}/events?fields=gradNorm`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    let wrote = false;
    const events = await readEvents(
      res,
      (evs) => evs.some((e) => e.event === 'end'),
      5000,
      (event, data) => {
        // Once the stream has said hello, the "training process" writes two steps and a finding; it finishes once
        // a status event has told the page about those steps (the header's steps and duration follow the run).
        const run = (data as StatusEvent).run;
        if (event === 'status' && !wrote) {
          wrote = true;
          setTimeout(() => {
            logSteps(runningId, 5, 7);
            store.logFinding(runningId, 6, { kind: 'dead-relu', layers: ['layers.1'] });
          }, 60);
        } else if (event === 'status' && run.status === 'running' && run.steps === 7) {
          store.finishRun(runningId, 'finished', { verdict: 'healthy' });
        }
      },
    );
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe('status');
    const steps = events.filter((e) => e.event === 'steps').map((e) => e.data as StepsEvent);
    expect(steps.length).toBeGreaterThan(0);
    const got = new Set(steps.flatMap((s) => s.metrics.steps));
    expect(got.has(5) && got.has(6)).toBe(true);
    expect(got.has(4)).toBe(false);
    const last = steps.at(-1)!;
    expect(last.layers.layers).toEqual(LAYERS);
    expect(last.layers.encoding).toBe('f32');
    expect(last.lastLayers!.step).toBe(6);
    const f = events.find((e) => e.event === 'findings')!.data as FindingsResponse;
    expect(f.findings.map((x) => x.kind)).toEqual(['dead-relu']);
    expect(kinds.at(-1)).toBe('end');
    const status = events.filter((e) => e.event === 'status').map((e) => (e.data as StatusEvent).run);
    expect(status.at(-1)!.status).toBe('finished');
    // while it ran, a status event carried its steps so far (5 at the start, then 7) and its duration
    const running = status.filter((r) => r.status === 'running');
    expect(running.map((r) => r.steps)).toEqual(expect.arrayContaining([5, 7]));
    expect(running.every((r) => r.durationMs >= 0)).toBe(true);
  });

  it('sends a finished run from the asked step and ends at once', async () => {
    const res = await app.request(`/api/runs/${finishedId}/events?from=18`);
    const events = await readEvents(res, (evs) => evs.some((e) => e.event === 'end'), 3000);
    const steps = events.filter((e) => e.event === 'steps').map((e) => e.data as StepsEvent);
    expect(steps).toHaveLength(1);
    expect(steps[0]!.metrics.steps).toEqual([18, 19]);
    expect(events.at(-1)!.event).toBe('end');
  });

  it('stops polling when a client over a socket goes away, and when the app closes', async () => {
    const id = store.createRun({ name: 'socket', config: baseConfig, backend: 'js' });
    logSteps(id, 0, 2);
    const served = await startDashboard({ storeDir: join(dir, 'store'), port: 0, pollMs: 20 });
    try {
      const abort = new AbortController();
      const res = await fetch(new URL(`/api/runs/${id}/events?from=0`, served.url), { signal: abort.signal });
      const reader = res.body!.getReader();
      await reader.read();
      expect(served.app.streams()).toBe(1);
      abort.abort();
      const end = Date.now() + 3000;
      while (served.app.streams() > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      expect(served.app.streams()).toBe(0);
      // A second stream, left open: closing the dashboard ends it.
      const again = await fetch(new URL(`/api/runs/${id}/events`, served.url));
      const r2 = again.body!.getReader();
      await r2.read();
      expect(served.app.streams()).toBe(1);
      served.app.close();
      expect(served.app.streams()).toBe(0);
      await r2.cancel();
    } finally {
      await served.close();
      store.finishRun(id, 'finished');
    }
  });

  it('refuses a malformed id before streaming', async () => {
    const res = await app.request('/api/runs/..%2Fx/events');
    expect(res.status).toBe(400);
  });
});
