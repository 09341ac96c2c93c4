/**
 * End to end in Debian's Chromium (playwright-core, `apt-get install -y chromium`): trains a real short run in a child
 * process, serves the dashboard over a socket, checks the pages draw their charts with data, follows a live run, and
 * fails on any console error. Skipped only when /usr/bin/chromium is absent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canRun } from '../../test/suites.js';
import type { RunResponse, RunsResponse } from './api-types.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './chromium.js';
import { type RunningDashboard, startDashboard } from './server.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const HIDDEN = [32, 32];

let dir: string;
let storeDir: string;
let dashboard: RunningDashboard;
let context: BrowserContext;
const problems: string[] = [];
const children: ChildProcess[] = [];

/** What `gradguard train --json` printed: the numbers a person reads in the terminal. */
interface TrainJson {
  run: string;
  status: string;
  finalLoss: number;
  test: { loss: number; accuracy: number };
}

/**
 * Runs `gradguard train` from the sources in a child process (a separate writer, as in real use); `result()` reads
 * its `--json` output once it has exited.
 */
function train(
  args: string[],
  opts: { anyExit?: boolean } = {},
): { child: ChildProcess; done: Promise<number>; result: () => Promise<TrainJson> } {
  const script = join(dir, 'train.mts');
  if (!existsSync(script)) {
    const main = pathToFileURL(join(ROOT, 'src', 'cli', 'main.ts')).href;
    writeFileSync(
      script,
      `import { main } from ${JSON.stringify(main)};\nprocess.exitCode = await main(process.argv.slice(2));\n`,
    );
  }
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', script, 'train', '--store', storeDir, '--quiet', '--json', ...args],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, GRADGUARD_BACKEND: 'native' } },
  );
  children.push(child);
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d) => {
    stderr += String(d);
  });
  child.stdout!.on('data', (d) => {
    stdout += String(d);
  });
  const done = new Promise<number>((res) =>
    child.on('exit', (code, signal) => {
      if (code !== 0 && signal === null && stderr && !opts.anyExit) problems.push(`train: ${stderr.slice(-500)}`);
      res(code ?? -1);
    }),
  );
  return { child, done, result: () => done.then(() => JSON.parse(stdout) as TrainJson) };
}

async function api<T>(path: string): Promise<T> {
  const res = await fetch(new URL(path, dashboard.url));
  return (await res.json()) as T;
}

async function openPage(hash: string): Promise<Page> {
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // An EventSource the page closes on purpose is reported as aborted; anything else is a problem.
    if (!r.failure()?.errorText.includes('ERR_ABORTED')) problems.push(`request failed: ${r.url()}`);
  });
  await page.goto(`${dashboard.url}${hash}`);
  return page;
}

/** Pixels of a canvas that are not transparent, and how many have the given colour (±8 per channel). */
async function canvasPixels(page: Page, selector: string, rgb: [number, number, number] | null = null) {
  return page.$$eval(
    selector,
    (canvases, color) =>
      (canvases as HTMLCanvasElement[]).map((c) => {
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        let matching = 0;
        const colours = new Set<number>();
        for (let i = 0; i < d.length; i += 4) {
          if (d[i + 3]! === 0) continue;
          painted++;
          colours.add((d[i]! << 16) | (d[i + 1]! << 8) | d[i + 2]!);
          if (
            color &&
            Math.abs(d[i]! - color[0]) <= 8 &&
            Math.abs(d[i + 1]! - color[1]) <= 8 &&
            Math.abs(d[i + 2]! - color[2]) <= 8
          ) {
            matching++;
          }
        }
        return { painted, matching, colours: colours.size };
      }),
    rgb,
  );
}

const hasChromium = canRun('chromium', existsSync(CHROMIUM_PATH), `no ${CHROMIUM_PATH} (apt-get install chromium)`);

describe.skipIf(!hasChromium)('dashboard in Chromium', () => {
  let finishedId: string;
  /** Two finished runs, as `gradguard train --json` reported them: the default lr, and one too small to learn much. */
  let finished: TrainJson[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gg-e2e-'));
    storeDir = join(dir, 'store');
    const web = join(dir, 'web');
    const { build } = await import('vite');
    const trained = train(['--set', 'train.epochs=1', '--set', `model.hidden=[${HIDDEN.join(',')}]`]);
    const slow = train(['--set', 'train.epochs=1', '--set', 'optim.lr=0.00002', '--set', 'model.hidden=[16]']);
    await build({
      configFile: join(ROOT, 'src', 'dashboard', 'web', 'vite.config.ts'),
      logLevel: 'silent',
      build: { outDir: web, emptyOutDir: true },
    });
    expect(await trained.done).toBe(0);
    expect(await slow.done).toBe(0);
    finished = [await trained.result(), await slow.result()];
    dashboard = await startDashboard({ storeDir, port: 0, staticDir: web, pollMs: 200 });
    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS],
      viewport: { width: 1280, height: 900 },
    });
    finishedId = finished[0]!.run;
  }, 60_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await context?.close();
    await dashboard?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the trained runs with the numbers train printed (test accuracy, test loss, final loss), and sorts by them', async () => {
    const page = await openPage('#/');
    await page.waitForSelector('[data-page="runs"][data-loaded="1"]');
    const rows = () => page.$$eval('tr[data-run]', (trs) => trs.map((t) => t.getAttribute('data-run')));
    expect((await rows()).sort()).toEqual(finished.map((r) => r.run).sort());
    const cell = (id: string, col: string) => page.textContent(`tr[data-run="${id}"] td[data-col="${col}"]`);
    for (const r of finished) {
      expect(await page.textContent(`tr[data-run="${r.run}"] .badge`)).toBe('finished');
      expect(await cell(r.run, 'accuracy')).toBe(`${(r.test.accuracy * 100).toFixed(2)}%`);
      expect(Number(await cell(r.run, 'testLoss'))).toBeCloseTo(r.test.loss, 3);
      expect(Number(await cell(r.run, 'loss'))).toBeCloseTo(r.finalLoss, 3);
    }
    // The two runs differ: the default lr learns, lr=2e-5 barely does.
    const [good, poor] = finished;
    expect(good!.test.accuracy).toBeGreaterThan(poor!.test.accuracy);
    const sortBy = async (title: string) => {
      await page.click(`th.sortable:has-text("${title}")`);
      return rows();
    };
    // The first click on a numeric column sorts high to low, the second low to high.
    expect(await sortBy('Test acc.')).toEqual([good!.run, poor!.run]);
    expect(await sortBy('Test acc.')).toEqual([poor!.run, good!.run]);
    expect(await sortBy('Test loss')).toEqual([poor!.run, good!.run]);
    expect(await sortBy('Test loss')).toEqual([good!.run, poor!.run]);
    const byLoss = [...finished].sort((a, b) => b.finalLoss - a.finalLoss).map((r) => r.run);
    expect(await sortBy('Final loss')).toEqual(byLoss);
    await page.close();
    expect(problems).toEqual([]);
  });

  it('draws the run page: curves with data, heatmaps with one row per layer, findings', async () => {
    const page = await openPage(`#/run/${finishedId}`);
    await page.waitForSelector('[data-page="run"][data-loaded="1"]');
    // The charts are drawn on the next animation frame at the latest.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
    for (const key of ['loss', 'accuracy', 'lr', 'grad-norm']) {
      const points = Number(await page.getAttribute(`[data-chart="${key}"]`, 'data-points'));
      expect({ key, positive: points > 0 }).toEqual({ key, positive: true });
    }
    // The train loss is drawn in its colour (#4e79a7), not just axes.
    const [loss] = await canvasPixels(page, '[data-chart="loss"] canvas', [0x4e, 0x79, 0xa7]);
    expect(loss!.matching).toBeGreaterThan(50);
    const info = await api<RunResponse>(`/api/runs/${finishedId}`);
    // An MLP with hidden layers [32, 32] has three Linear layers.
    expect(info.layers).toHaveLength(HIDDEN.length + 1);
    for (const key of ['gradNorm', 'updateRatio', 'actStd']) {
      const canvas = `canvas[data-heatmap="${key}"]`;
      expect(Number(await page.getAttribute(canvas, 'data-rows'))).toBe(info.layers.length);
      expect(await page.getAttribute(canvas, 'data-layers')).toBe(info.layers.join(','));
      expect(await page.getAttribute(canvas, 'data-drawn')).toBe('1');
      const [px] = await canvasPixels(page, canvas);
      // Many colours: a gradient of values plus the colour bar, not a flat fill.
      expect(px!.colours).toBeGreaterThan(20);
    }
    // The dataset's trivial baseline (stored with the run) is a labelled grey rule beside the loss and the accuracy.
    const baseline = (info.run.summary as { baseline: { loss: number; accuracy: number } }).baseline;
    expect(baseline.loss).toBeCloseTo(Math.log(10), 1);
    expect(Number(await page.getAttribute('[data-chart="loss"]', 'data-baseline'))).toBe(baseline.loss);
    expect(Number(await page.getAttribute('[data-chart="accuracy"]', 'data-baseline'))).toBe(baseline.accuracy);
    expect(await page.textContent('[data-chart="accuracy"] .u-legend')).toContain(
      `trivial baseline ${(baseline.accuracy * 100).toFixed(1)}%`,
    );
    const [rule] = await canvasPixels(page, '[data-chart="loss"] canvas', [0x77, 0x77, 0x77]);
    expect(rule!.matching).toBeGreaterThan(20);
    expect(await page.getAttribute('[data-chart="lr"]', 'data-baseline')).toBeNull();
    // An MLP has no gradient through time to draw.
    expect(await page.getAttribute('[data-time-flow]', 'data-time-flow')).toBe('0');
    // The table of the last step's activation statistics has a row per layer too.
    expect(Number(await page.getAttribute('[data-layers-table]', 'data-layers-table'))).toBe(info.layers.length);
    const findings = Number(await page.getAttribute('[data-findings]', 'data-findings'));
    const fromApi = (await api<{ findings: unknown[] }>(`/api/runs/${finishedId}/findings`)).findings.length;
    expect(findings).toBe(fromApi);
    await page.close();
    expect(problems).toEqual([]);
  });

  it('draws the gradient through time of a recurrent run as a time x step heatmap', async () => {
    const rnn = train(
      [
        ...['data.name=adding', 'data.length=20', 'model.type=rnn', 'model.hiddenSize=8', 'model.layers=2'],
        ...['train.maxSteps=12', 'train.batchSize=16'],
      ].flatMap((x) => ['--set', x]),
    );
    const res = await rnn.result();
    const flow = await api<{ series: { layer: string; sub: string; times: number[]; steps: number[] }[] }>(
      `/api/runs/${res.run}/time-flow`,
    );
    // one grid per stacked layer, every one of the 20 time steps, every monitored step
    expect(flow.series.map((s) => `${s.layer} ${s.sub}`)).toEqual(['net.rnn l0', 'net.rnn l1']);
    expect(flow.series[0]!.times).toHaveLength(20);
    expect(flow.series[0]!.steps).toHaveLength(12);
    const page = await openPage(`#/run/${res.run}`);
    await page.waitForSelector('[data-page="run"][data-loaded="1"]');
    await page.waitForSelector('[data-time-flow="2"]');
    for (const sub of ['l0', 'l1']) {
      const canvas = `canvas[data-heatmap="time-flow:net.rnn:${sub}"]`;
      expect(Number(await page.getAttribute(canvas, 'data-rows'))).toBe(20);
      expect(Number(await page.getAttribute(canvas, 'data-steps'))).toBe(12);
      expect(await page.getAttribute(canvas, 'data-drawn')).toBe('1');
      const [px] = await canvasPixels(page, canvas);
      expect(px!.colours).toBeGreaterThan(20);
    }
    // the adding problem's baseline is a mean squared error: a rule beside the loss, none beside an accuracy
    expect(Number(await page.getAttribute('[data-chart="loss"]', 'data-baseline'))).toBeGreaterThan(0);
    expect(await page.getAttribute('[data-chart="accuracy"]', 'data-baseline')).toBeNull();
    await page.close();
    expect(problems).toEqual([]);
  });

  it('follows a live run as it trains', async () => {
    const live = train([
      '--set',
      'train.epochs=200',
      '--set',
      'train.batchSize=16',
      '--set',
      `model.hidden=[${HIDDEN.join(',')}]`,
    ]);
    // Wait for the run to appear and log a step.
    let id = '';
    for (let i = 0; i < 200 && !id; i++) {
      const running = (await api<RunsResponse>('/api/runs?status=running')).runs.find((r) => r.lastStep !== null);
      if (running) id = running.id;
      else await new Promise((r) => setTimeout(r, 50));
    }
    expect(id).not.toBe('');
    const page = await openPage(`#/run/${id}`);
    await page.waitForSelector('[data-page="run"][data-loaded="1"]');
    const fact = (name: string) => page.textContent(`.run-header [data-fact="${name}"]`);
    const steps0 = Number((await fact('steps'))!.replace('steps ', ''));
    const duration0 = await fact('duration');
    const seen = new Set<number>();
    for (let i = 0; i < 100 && seen.size < 4; i++) {
      const step = await page.getAttribute('#live', 'data-step');
      if (step !== null) seen.add(Number(step));
      await page.waitForTimeout(100);
    }
    // Several updates arrived, each further on.
    expect(seen.size).toBeGreaterThanOrEqual(4);
    const steps = [...seen];
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    const points = Number(await page.getAttribute('[data-chart="loss"]', 'data-points'));
    expect(points).toBeGreaterThan(Math.min(...steps));
    // The header's steps and duration follow the run too (they stayed as loaded while "live · step N" advanced).
    await page.waitForFunction(
      ([s0, d0]) => {
        const f = (n: string) => document.querySelector(`.run-header [data-fact="${n}"]`)?.textContent ?? '';
        return Number(f('steps').replace('steps ', '')) > (s0 as number) + 2 && f('duration') !== d0;
      },
      [steps0, duration0] as const,
      { timeout: 20_000 },
    );
    // The training process dies (as when killed): the run reads as interrupted and the page stops following.
    live.child.kill('SIGKILL');
    await live.done;
    await page.waitForFunction(
      () => document.querySelector('.run-header .badge')?.textContent === 'interrupted',
      null,
      { timeout: 10_000 },
    );
    expect(await page.isHidden('#live')).toBe(true);
    const heat = Number(await page.getAttribute('canvas[data-heatmap="gradNorm"]', 'data-rows'));
    expect(heat).toBe(HIDDEN.length + 1);
    await page.close();
    expect(problems).toEqual([]);
  });

  it('draws a diverged run: what is finite, compact axis labels, and where it stopped being finite', async () => {
    // plain SGD at lr=50 without clipping: the loss reaches ~1e30, then NaN (skipped steps) until the run diverges
    const run = train(
      ['--set', 'optim.name=sgd', '--set', 'optim.lr=50', '--set', 'clip=[]', '--set', 'model.hidden=[32,32]'],
      { anyExit: true },
    );
    const res = await run.result();
    expect(res.status).toBe('diverged');
    const metrics = await api<{ steps: number[]; series: Record<string, (number | string | null)[]> }>(
      `/api/runs/${res.run}/metrics`,
    );
    const firstNaN = metrics.steps[metrics.series.loss!.findIndex((v) => typeof v === 'string')]!;
    expect(firstNaN).toBeGreaterThan(0);
    const page = await openPage(`#/run/${res.run}`);
    await page.waitForSelector('[data-page="run"][data-loaded="1"]');
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
    const chart = (key: string, attr: string) => page.getAttribute(`[data-chart="${key}"]`, attr);
    for (const key of ['loss', 'grad-norm']) {
      // Labels like 1e30 or 0.5 (they were cut to `000,000`), several of them.
      const ticks = (await chart(key, 'data-y-ticks'))!.split(' ');
      expect({ key, many: ticks.length >= 2 }).toEqual({ key, many: true });
      for (const t of ticks)
        expect({ key, t, ok: /^\d+(\.\d+)?(e-?\d+)?$/.test(t) && t.length <= 6 }).toMatchObject({ ok: true });
      expect(Number(await chart(key, 'data-nonfinite'))).toBeGreaterThan(0);
    }
    expect(Number(await chart('loss', 'data-nonfinite-from'))).toBe(firstNaN);
    expect(await page.textContent('[data-chart="loss"] .chart-note')).toContain(`from step ${firstNaN}`);
    // The finite part of the loss is drawn in its colour.
    const [loss] = await canvasPixels(page, '[data-chart="loss"] canvas', [0x4e, 0x79, 0xa7]);
    expect(loss!.matching).toBeGreaterThan(50);
    await page.close();
    expect(problems).toEqual([]);
  });

  it('compares runs: curves overlaid and configs side by side with differences', async () => {
    const ids = (await api<RunsResponse>('/api/runs')).runs.map((r) => r.id);
    expect(ids.length).toBeGreaterThanOrEqual(2);
    const page = await openPage(`#/compare/${ids.join(',')}`);
    await page.waitForSelector('[data-page="compare"][data-loaded="1"]');
    const points = Number(await page.getAttribute('[data-chart="loss"]', 'data-points'));
    expect(points).toBeGreaterThan(0);
    // train.epochs and train.batchSize differ between the two runs.
    const differing = await page.$$eval('tr.differs', (trs) => trs.map((t) => t.getAttribute('data-key')));
    expect(differing).toEqual(expect.arrayContaining(['train.epochs', 'train.batchSize']));
    await page.close();
    expect(problems).toEqual([]);
  });
});
