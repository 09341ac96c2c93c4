/**
 * The playground's targets, measured (not a test: the numbers depend on the machine and its load):
 * - steps per second of the default setup (20-layer, width-16 tanh MLP on spirals, batch 32) in headless Chromium
 *   with every view live, over `SECONDS` seconds;
 * - time to interactive from a cold load of the static build (`performance.now()` when the page has loaded the wasm
 *   backend and set up its first run), over fresh browser contexts;
 * - the build's size, gzipped (level 9), wasm included.
 * Run: node --import tsx bench/playground.ts
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { DEFAULT_STATE, toHash } from '../playground/src/state.js';
import { startPlayground } from '../src/cli/playground.js';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../src/dashboard/chromium.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const SECONDS = 10;
const COLD_LOADS = 5;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const dir = mkdtempSync(join(tmpdir(), 'gg-pg-bench-'));
await build({ configFile: join(ROOT, 'playground', 'vite.config.ts'), logLevel: 'error', build: { outDir: dir } });
let raw = 0;
let gz = 0;
for (const f of files(dir)) {
  const b = readFileSync(f);
  raw += b.length;
  gz += gzipSync(b, { level: 9 }).length;
}
const server = await startPlayground({ port: 0, dir });
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] });
const ready: number[] = [];
for (let i = 0; i < COLD_LOADS; i++) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]');
  ready.push(Number(await page.getAttribute('body', 'data-ready-ms')));
  await ctx.close();
}
const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
const page = await ctx.newPage();
// the default setup (spirals, ReLU + He init) at 20 x 16, batch 32, long enough not to end while measured
const hash = toHash({
  ...DEFAULT_STATE,
  'model.depth': '20',
  'model.width': '16',
  'train.batchSize': '32',
  'train.maxSteps': '100000',
});
await page.goto(`${server.url}${hash}`);
await page.waitForSelector('body[data-ready="true"]');
await page.waitForFunction(() => Number(document.getElementById('step')?.dataset.step) > 20);
const at = async () =>
  page.evaluate(() => [Number(document.getElementById('step')!.dataset.step), performance.now()] as const);
const [s0, t0] = await at();
await page.waitForTimeout(SECONDS * 1000);
const [s1, t1] = await at();
const backend = await page.textContent('#backend');
await browser.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
const sorted = [...ready].sort((a, b) => a - b);
console.log(
  JSON.stringify(
    {
      stepsPerSecond: Number((((s1 - s0) * 1000) / (t1 - t0)).toFixed(1)),
      backend,
      readyMs: { median: sorted[Math.floor(sorted.length / 2)], all: ready },
      build: { bytes: raw, gzipBytes: gz },
    },
    null,
    2,
  ),
);
