/**
 * How long the dashboard takes to open a long run in headless Chromium: a synthetic run of 5,000 steps with 20 layers
 * (layer statistics on every step, as `monitor.every: 1` logs them), from navigation to every chart and heatmap
 * drawn with the run's data. Target: under 1 s (issue 6).
 *
 * Each open is a new browser context (empty HTTP cache, as a first visit) and page on `#/run/ID`, on one browser and
 * one dashboard server (started as `gradguard dashboard` starts it); the time is from `page.goto` to the page's
 * `data-loaded="1"` plus the next animation frame (uPlot and the heatmaps draw synchronously before that). Reported:
 * the first open, the median and the maximum; the API's share is read from the page's resource timings. Because wall
 * time on a shared machine depends on its load, the CPU time is reported too: the server's (this process, which
 * serves the dashboard) and the page's main thread (Chromium's TaskDuration), per open.
 *
 * Usage: node --import tsx bench/dashboard-open.ts [--steps=5000] [--layers=20] [--opens=7] [--json]
 * Needs Debian's chromium (/usr/bin/chromium) and the built front end (npm run build), or builds it into a temp dir.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../src/dashboard/chromium.js';
import { defaultStaticDir, startDashboard } from '../src/dashboard/server.js';
import { writeSyntheticRun } from '../src/dashboard/synthetic.js';
import { RunStore } from '../src/track/store.js';

function arg(name: string, fallback: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const steps = arg('steps', 5000);
  const layers = arg('layers', 20);
  const opens = arg('opens', 7);
  const json = process.argv.includes('--json');
  if (!existsSync(CHROMIUM_PATH)) {
    process.stderr.write(`bench: ${CHROMIUM_PATH} is missing (apt-get install -y chromium)\n`);
    process.exitCode = 2;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'gg-dash-bench-'));
  const log = (s: string) => {
    if (!json) process.stderr.write(`${s}\n`);
  };
  try {
    let staticDir = defaultStaticDir();
    if (!existsSync(join(staticDir, 'index.html'))) {
      log('building the front end into a temp dir (npm run build makes dist/dashboard/web)');
      staticDir = join(dir, 'web');
      const { build } = await import('vite');
      const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
      await build({
        configFile: join(root, 'src', 'dashboard', 'web', 'vite.config.ts'),
        logLevel: 'silent',
        build: { outDir: staticDir, emptyOutDir: true },
      });
    }
    const t0 = performance.now();
    const store = RunStore.open(join(dir, 'store'));
    const id = writeSyntheticRun(store, { name: 'bench', steps, layers, stepsPerEpoch: 500 });
    store.close();
    log(`wrote a run of ${steps} steps x ${layers} layers in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    const dashboard = await startDashboard({ storeDir: join(dir, 'store'), port: 0, staticDir });
    const browser: Browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS],
    });
    const times: number[] = [];
    const serverCpu: number[] = [];
    const pageCpu: number[] = [];
    const api: number[] = [];
    let bytes = 0;
    const errors: string[] = [];
    try {
      for (let i = 0; i < opens; i++) {
        const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
        const page = await context.newPage();
        page.on('console', (m) => {
          if (m.type() === 'error') errors.push(m.text());
        });
        const cdp = await context.newCDPSession(page);
        await cdp.send('Performance.enable');
        const taskDuration = async () =>
          ((await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration')?.value ?? 0) *
          1000;
        const task0 = await taskDuration();
        const cpu0 = process.cpuUsage();
        const start = performance.now();
        await page.goto(`${dashboard.url}#/run/${id}`);
        await page.waitForSelector('[data-page="run"][data-loaded="1"]', { timeout: 30_000 });
        await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
        times.push(performance.now() - start);
        const cpu = process.cpuUsage(cpu0);
        serverCpu.push((cpu.user + cpu.system) / 1000);
        pageCpu.push((await taskDuration()) - task0);
        const drawn = await page.$eval('canvas[data-heatmap="gradNorm"]', (c) => c.getAttribute('data-rows'));
        if (Number(drawn) !== layers) throw new Error(`the heatmap has ${drawn} rows, expected ${layers}`);
        const res = await page.evaluate(() =>
          (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
            .filter((e) => e.name.includes('/api/'))
            .map((e) => ({ start: e.startTime, end: e.responseEnd, size: e.transferSize })),
        );
        api.push(Math.max(...res.map((r) => r.end)) - Math.min(...res.map((r) => r.start)));
        bytes = res.reduce((a, r) => a + r.size, 0);
        await context.close();
      }
    } finally {
      await browser.close();
      await dashboard.close();
    }
    const result = {
      steps,
      layers,
      opens,
      firstMs: Math.round(times[0]!),
      medianMs: Math.round(median(times)),
      maxMs: Math.round(Math.max(...times)),
      allMs: times.map((t) => Math.round(t)),
      apiMedianMs: Math.round(median(api)),
      serverCpuMedianMs: Math.round(median(serverCpu)),
      pageCpuMedianMs: Math.round(median(pageCpu)),
      loadAverage: loadavg()[0] ?? 0,
      apiBytes: bytes,
      targetMs: 1000,
      consoleErrors: errors,
    };
    if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      process.stdout.write(
        `open a ${steps}-step, ${layers}-layer run in headless Chromium: median ${result.medianMs} ms, first ${result.firstMs} ms, max ${result.maxMs} ms over ${opens} opens (${result.allMs.join(', ')}); ` +
          `API requests ${result.apiMedianMs} ms, ${(bytes / 1e6).toFixed(2)} MB; CPU per open: server ${result.serverCpuMedianMs} ms (incl. this script), page main thread ${result.pageCpuMedianMs} ms; ` +
          `load average ${result.loadAverage.toFixed(1)}; target < ${result.targetMs} ms\n`,
      );
      if (errors.length) process.stdout.write(`console errors: ${errors.join(' | ')}\n`);
    }
    if (result.medianMs > result.targetMs || errors.length > 0) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
