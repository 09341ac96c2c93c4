/**
 * Screenshots of the dashboard's three pages for the README, from real runs: trains three short MNIST MLPs into a
 * temporary store (the headline model; a 10-layer sigmoid net with small normal init, whose gradients vanish; the
 * same depth with ReLU and Kaiming init), serves the dashboard, and saves docs/img/dashboard-runs.png,
 * dashboard-run.png (the vanishing run) and dashboard-compare.png (vanishing vs fixed) from headless Chromium.
 *
 * Usage: node --import tsx scripts/dashboard-screenshots.ts [--out docs/img]
 * Needs Debian's chromium (/usr/bin/chromium); builds the front end into a temp dir when dist/ has none.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../src/dashboard/chromium.js';
import { defaultStaticDir, startDashboard } from '../src/dashboard/server.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const RUNS: string[][] = [
  ['--set', 'train.epochs=3'],
  [
    '--set',
    'train.epochs=3',
    '--set',
    'model.depth=10',
    '--set',
    'model.width=64',
    '--set',
    'model.activation=sigmoid',
    '--set',
    'init.weight=normal',
    '--set',
    'init.std=0.05',
  ],
  [
    '--set',
    'train.epochs=3',
    '--set',
    'model.depth=10',
    '--set',
    'model.width=64',
    '--set',
    'model.activation=relu',
    '--set',
    'init.weight=kaiming-normal',
  ],
];

async function main(): Promise<void> {
  const outIdx = process.argv.indexOf('--out');
  const out = resolve(outIdx > 0 ? process.argv[outIdx + 1]! : join(ROOT, 'docs', 'img'));
  if (!existsSync(CHROMIUM_PATH)) {
    process.stderr.write(`${CHROMIUM_PATH} is missing (apt-get install -y chromium)\n`);
    process.exitCode = 2;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'gg-shots-'));
  try {
    const store = join(dir, 'store');
    const entry = join(dir, 'train.mts');
    const mainUrl = pathToFileURL(join(ROOT, 'src', 'cli', 'main.ts')).href;
    writeFileSync(
      entry,
      `import { main } from ${JSON.stringify(mainUrl)};\nprocess.exitCode = await main(process.argv.slice(2));\n`,
    );
    const ids: string[] = [];
    for (const args of RUNS) {
      const r = spawnSync(
        process.execPath,
        ['--import', 'tsx', entry, 'train', '--store', store, '--quiet', '--json', ...args],
        {
          cwd: ROOT,
          encoding: 'utf8',
        },
      );
      if (r.status !== 0) throw new Error(`training failed: ${r.stderr.slice(-400)}`);
      ids.push((JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { run: string }).run);
      process.stderr.write(`trained ${ids.at(-1)}\n`);
    }
    let staticDir = defaultStaticDir();
    if (!existsSync(join(staticDir, 'index.html'))) {
      staticDir = join(dir, 'web');
      const { build } = await import('vite');
      await build({
        configFile: join(ROOT, 'src', 'dashboard', 'web', 'vite.config.ts'),
        logLevel: 'silent',
        build: { outDir: staticDir, emptyOutDir: true },
      });
    }
    const dashboard = await startDashboard({ storeDir: store, port: 0, staticDir });
    const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: [...CHROMIUM_ARGS] });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      mkdirSync(out, { recursive: true });
      const shot = async (hash: string, selector: string, file: string) => {
        await page.goto(`${dashboard.url}${hash}`);
        await page.waitForSelector(selector);
        await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
        await page.screenshot({ path: join(out, file), fullPage: true });
        process.stderr.write(`wrote ${join(out, file)}\n`);
      };
      await page.setViewportSize({ width: 1400, height: 320 });
      await shot('#/', '[data-page="runs"][data-loaded="1"]', 'dashboard-runs.png');
      await page.setViewportSize({ width: 1400, height: 900 });
      await shot(`#/run/${ids[1]}`, '[data-page="run"][data-loaded="1"]', 'dashboard-run.png');
      await shot(`#/compare/${ids[1]},${ids[2]}`, '[data-page="compare"][data-loaded="1"]', 'dashboard-compare.png');
    } finally {
      await browser.close();
      await dashboard.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
