/**
 * The playground end to end in Debian's Chromium (playwright-core): the static build (vite, into a temporary
 * directory) served by `gradguard playground`'s server, every request outside it refused (the page must work with
 * no network). It loads, trains on the wasm backend, its gradient bars change; lesson 1 (a 30-layer sigmoid net,
 * normal(0, 0.05) init) reads `vanishing` and the applied fix `healthy`; and a link reproduces the CLI's numbers:
 * the page's loss after N steps is the one `gradguard train --set ...` gets in-process with the same config and seed.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LESSONS, toHash, toSets } from '../playground/src/state.js';
import { installBackend } from '../src/backend/index.js';
import { createWasmBackend } from '../src/backend/wasm.js';
import { type RunningPlayground, startPlayground } from '../src/cli/playground.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../src/dashboard/chromium.js';
import { loadConfig } from '../src/train/config.js';
import { trainSession } from '../src/train/session.js';
import { canRun } from './suites.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const run = canRun('chromium', existsSync(CHROMIUM_PATH), `no ${CHROMIUM_PATH} (apt-get install -y chromium)`);

let dir: string;
let server: RunningPlayground;
let browser: Browser;
const problems: string[] = [];

async function open(hash: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page: ${e.message}`));
  // no network: only the playground's own origin answers
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(server.url) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
    problems.push(`request outside the playground: ${url}`);
    return route.abort();
  });
  await page.goto(server.url + hash);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 30_000 });
  return page;
}

async function stepOf(page: Page, id = 'step'): Promise<number> {
  return Number(await page.getAttribute(`#${id}`, 'data-step'));
}

async function waitStep(page: Page, n: number, id = 'step'): Promise<void> {
  await page.waitForFunction(
    ([el, k]) => Number(document.getElementById(el as string)?.dataset.step) >= (k as number),
    [id, n],
    { timeout: 120_000, polling: 50 },
  );
}

/** Waits until the main run has run all its steps and the page shows its final diagnosis. */
async function waitDone(page: Page, steps: number): Promise<void> {
  await page.waitForFunction(
    (k) => {
      const el = document.getElementById('step')!;
      return el.dataset.done === 'true' && Number(el.dataset.step) === k;
    },
    steps,
    { timeout: 120_000, polling: 50 },
  );
}

describe.skipIf(!run)('playground in Chromium', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gg-playground-'));
    await build({
      configFile: join(ROOT, 'playground', 'vite.config.ts'),
      logLevel: 'error',
      build: { outDir: dir, emptyOutDir: true },
    });
    server = await startPlayground({ port: 0, dir });
    browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads with no network, trains on the threaded wasm backend, and its gradient bars change', async () => {
    const page = await open('');
    expect(await page.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
    expect(await page.getAttribute('body', 'data-backend')).toBe('wasm');
    await waitStep(page, 5);
    const bars0 = await page.evaluate(() => (document.getElementById('bars') as HTMLCanvasElement).toDataURL());
    const step0 = await stepOf(page);
    await waitStep(page, step0 + 100);
    const bars1 = await page.evaluate(() => (document.getElementById('bars') as HTMLCanvasElement).toDataURL());
    expect(bars1).not.toBe(bars0);
    expect(await page.textContent('#command')).toMatch(/^gradguard train --set seed=0 --set data\.name=spirals /);
    expect(problems).toEqual([]);
    await page.close();
  }, 180_000);

  it('a 30-layer sigmoid net with normal(0, 0.05) init reads vanishing; the applied fix reads healthy', async () => {
    const lesson = LESSONS.find((l) => l.id === 'vanishing')!;
    expect(lesson.state).toMatchObject({ 'model.depth': '30', 'model.activation': 'sigmoid', 'init.std': '0.05' });
    const page = await open(toHash(lesson.state));
    const steps = Number(lesson.state['train.maxSteps']);
    await waitDone(page, steps);
    expect(await page.getAttribute('#verdict', 'data-verdict')).toBe('vanishing');
    await page.click('#apply-fix');
    // the click starts the fixed run at once (step 0, not done), so this waits for its end
    expect(await page.getAttribute('#step', 'data-done')).toBe('false');
    await waitDone(page, steps);
    expect(await page.getAttribute('#verdict', 'data-verdict')).toBe('healthy');
    expect(await page.getAttribute('#before-verdict', 'data-verdict')).toBe('vanishing');
    // the fix is in the link and the command
    expect(await page.evaluate(() => location.hash)).toContain('init.weight=kaiming-normal');
    expect(await page.textContent('#command')).toContain('--set model.activation=relu');
    expect(problems).toEqual([]);
    await page.close();
  }, 240_000);

  it('a link reproduces the CLI: same config and seed, same loss after N steps', async () => {
    const lesson = LESSONS.find((l) => l.id === 'vanishing')!;
    const state = { ...lesson.state, 'model.depth': '8', 'model.activation': 'tanh', 'train.maxSteps': '60' };
    const page = await open(toHash(state));
    await waitDone(page, 60);
    const pageLoss = Number(await page.getAttribute('#step', 'data-loss'));
    const pageVerdict = await page.getAttribute('#verdict', 'data-verdict');
    // the CLI's run, in this process, on the same wasm module as the page: the threaded one when the page runs more
    // than one thread, else the one-thread one (the two round differently: relaxed-SIMD FMA in the threaded module)
    const threads = Number(await page.getAttribute('body', 'data-threads'));
    installBackend(createWasmBackend(undefined, { threads })!);
    const { config } = loadConfig(undefined, toSets(state));
    const cli = await trainSession(config, { store: null, source: 'test' });
    expect(cli.steps).toBe(60);
    expect(pageLoss).toBe(cli.finalLoss);
    expect(pageVerdict).toBe(cli.diagnosis.verdict);
    expect(problems).toEqual([]);
    await page.close();
  }, 240_000);
});
