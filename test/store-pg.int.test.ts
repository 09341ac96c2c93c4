/**
 * The PostgreSQL run store through the faces a user meets: the CLI (train, runs, export, report, resume) and the
 * dashboard's API, on a fresh database of the test server; and the rule that the store's password never appears
 * in what gradguard prints or serves.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import type { MetricsResponse, RunResponse, RunsResponse } from '../src/dashboard/api-types.js';
import { createDashboardApp } from '../src/dashboard/server.js';
import { RunStore } from '../src/track/store.js';
import { freshDatabase, hasPostgres, type TestDatabase } from './services/pg.js';

const spirals = ['--set', 'data.name=spirals', '--set', 'train.epochs=2', '--set', 'model.hidden=[16]'];

describe.skipIf(!hasPostgres)('gradguard on a PostgreSQL run store', () => {
  let db: TestDatabase;
  let work: string;
  let url: string;
  let password: string;
  let out = '';
  let err = '';

  beforeEach(async () => {
    db = await freshDatabase();
    work = mkdtempSync(join(tmpdir(), 'gg-pg-cli-'));
    // Checkpoints go to the shared directory the URL names.
    url = `${db.url}?checkpoints=${encodeURIComponent(join(work, 'shared'))}`;
    password = decodeURIComponent(new URL(db.url).password);
    out = '';
    err = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
      out += String(s);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      err += String(s);
      return true;
    });
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    rmSync(work, { recursive: true, force: true });
    await db.drop();
  });

  /** Runs the CLI; returns its exit status and what it printed, checking that the password is not in it. */
  async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    out = '';
    err = '';
    const code = await main(argv);
    expect(out).not.toContain(password);
    expect(err).not.toContain(password);
    return { code, out, err };
  }

  it('trains into it, lists, shows, exports, reports and resumes from a checkpoint in the shared directory', async () => {
    const train = await cli(
      'train',
      '--store',
      url,
      '--json',
      '--name',
      'pg',
      '--set',
      'train.checkpointEvery=10',
      ...spirals,
    );
    expect(train.code).toBe(0);
    const id = JSON.parse(train.out).run as string;
    expect(train.err).toMatch(new RegExp(`run ${id} in postgres://postgres@127\\.0\\.0\\.1:\\d+/${db.name}\\n`));
    expect(existsSync(join(work, 'shared', 'checkpoints', id, 'latest'))).toBe(true);

    const list = await cli('runs', 'list', '--store', url, '--json');
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.out);
    expect(listed.store).toBe(`postgres://postgres@127.0.0.1:${new URL(db.url).port}/${db.name}`);
    expect(listed.runs.map((r: { id: string; status: string }) => [r.id, r.status])).toEqual([[id, 'finished']]);

    const show = await cli('runs', 'show', id, '--store', url);
    expect(show.code).toBe(0);
    expect(show.out).toContain(id);

    const exported = await cli('export', id, '--store', url, '--format', 'json', '--out', join(work, 'exp'));
    expect(exported.code).toBe(0);
    const json = JSON.parse(readFileSync(join(work, 'exp', `${id}.json`), 'utf8'));
    expect(json.metrics.steps.length).toBe(JSON.parse(train.out).steps);

    const report = await cli('report', id, '--store', url, '--out', join(work, 'r.html'));
    expect(report.code).toBe(0);
    expect(readFileSync(join(work, 'r.html'), 'utf8')).not.toContain(password);

    const resumed = await cli('train', '--store', url, '--resume', id, '--json', '--set', 'train.epochs=3');
    expect(resumed.code).toBe(0);
    expect(JSON.parse(resumed.out).run).toBe(id);
    const after = await cli('runs', 'list', '--store', url, '--json');
    expect(JSON.parse(after.out).runs).toHaveLength(1);
  });

  it('records a sweep run on worker threads, each trial a run of its own', async () => {
    const sweep = await cli(
      'sweep',
      '--store',
      url,
      '--json',
      '--parallel',
      '2',
      '--grid',
      'init.weight=xavier-normal,kaiming-normal',
      ...spirals,
    );
    expect(sweep.code, sweep.err).toBe(0);
    const trials = JSON.parse(sweep.out).trials as { run: string; status: string }[];
    expect(trials.map((t) => t.status)).toEqual(['finished', 'finished']);
    const list = await cli('runs', 'list', '--store', url, '--json');
    const runs = JSON.parse(list.out).runs as { id: string; status: string; lastStep: number }[];
    expect(runs.map((r) => r.id).sort()).toEqual(trials.map((t) => t.run).sort());
    expect(runs.every((r) => r.status === 'finished' && r.lastStep > 0)).toBe(true);
  });

  it('a writer killed (SIGKILL) right after the check before a checkpoint has every step up to it in the store', () => {
    // The trainer asks hasRun before writing each checkpoint (session-guard.ts): that call is a flush. The child logs
    // 300 steps, makes that call, "writes its checkpoint" (a marker file) and kills itself: nothing may be missing.
    const child = `
      import { writeFileSync } from 'node:fs';
      import { RunStore } from ${JSON.stringify(fileURLToPath(new URL('../src/track/store.ts', import.meta.url)))};
      const [url, marker] = process.argv.slice(-2);
      const store = RunStore.open(url);
      const id = store.createRun({ config: {}, backend: 'js' });
      const layers = [{ name: '0', gradNorm: 1, gradMaxAbs: 1, weightNorm: 1, updateRatio: 1, actMean: 0, actStd: 1, nonFinite: 0 }];
      for (let s = 0; s < 300; s++) store.logStep(id, s, { loss: s }, layers);
      if (!store.hasRun(id)) process.exit(3);
      writeFileSync(marker, id);
      for (let s = 300; s < 310; s++) store.logStep(id, s, { loss: s }); // after the checkpoint: may be lost
      process.kill(process.pid, 'SIGKILL');
    `;
    const marker = join(work, 'checkpoint');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', child, url, marker], {
      encoding: 'utf8',
    });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    const id = readFileSync(marker, 'utf8');
    const store = RunStore.open(url, { readonly: true });
    try {
      const m = store.getMetrics(id);
      expect(m.steps.slice(0, 300)).toEqual(Array.from({ length: 300 }, (_, i) => i));
      expect(store.getLayerStats(id).filter((l) => l.step < 300)).toHaveLength(300);
      expect(store.getRun(id).status).toBe('interrupted'); // its writer is gone
    } finally {
      store.close();
    }
  });

  it('takes the store from GRADGUARD_STORE when --store is not given', async () => {
    vi.stubEnv('GRADGUARD_STORE', url);
    try {
      expect((await cli('train', '--quiet', ...spirals)).code).toBe(0);
      const list = await cli('runs', 'list', '--json');
      expect(JSON.parse(list.out).runs).toHaveLength(1);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('refuses a wrong password or a server that is down with one line and status 2, the password left out', async () => {
    const bad = new URL(db.url);
    bad.password = `${password}-wrong`;
    const wrong = await cli('runs', 'list', '--store', bad.toString());
    expect(wrong.code).toBe(2);
    expect(wrong.err).toMatch(
      /^gradguard: cannot connect to the run store postgres:\/\/postgres@127\.0\.0\.1:\d+\/gg_test_\w+: password authentication failed for user "postgres"; check the URL/,
    );
    expect(wrong.err).not.toContain(`${password}-wrong`);
    expect(wrong.err.trim().split('\n')).toHaveLength(1);
    const down = new URL(db.url);
    down.port = '1';
    const refused = await cli('train', '--store', down.toString(), '--quiet', ...spirals);
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/cannot connect to the run store .*ECONNREFUSED/);
  });

  it('serves the dashboard from it: runs listed, curves and layers drawn, no password anywhere', async () => {
    const trained = await cli('train', '--store', url, '--quiet', '--name', 'dash', ...spirals);
    expect(trained.code, trained.err).toBe(0);
    const app = createDashboardApp({ storeDir: url });
    try {
      const get = async <T>(path: string): Promise<T> => {
        const res = await app.request(path);
        const text = await res.text();
        expect(res.status, text).toBe(200);
        expect(text).not.toContain(password);
        return JSON.parse(text) as T;
      };
      const runs = await get<RunsResponse>('/api/runs');
      expect(runs.store).toMatch(/^postgres:\/\/postgres@127\.0\.0\.1:\d+\/gg_test_\w+$/);
      expect(runs.runs.map((r) => [r.name, r.status])).toEqual([['dash', 'finished']]);
      const id = runs.runs[0]!.id;
      const run = await get<RunResponse>(`/api/runs/${id}`);
      expect(run.layers).toEqual(['0', '2']);
      const metrics = await get<MetricsResponse>(`/api/runs/${id}/metrics`);
      expect(metrics.steps.length).toBeGreaterThan(0);
      expect(metrics.series.loss!.every((v) => typeof v === 'number')).toBe(true);
      await get(`/api/runs/${id}/layers?field=gradNorm`);
      await get('/api/health');
    } finally {
      app.close();
    }
  });
});
