/**
 * A local sweep runs trial after trial on fresh worker threads of one process. With the native backend's thread pool
 * in use, the addon's pool threads outlive the worker thread that started them; Node unloaded the addon when that
 * worker exited (no other thread held it) and the next trial loaded it afresh over the sleeping pool threads, and its
 * first threaded product hung in pthread_cond_broadcast. The addon is now linked `-z nodelete`. A fresh process
 * (whose main thread never loads the addon, as the CLI's does not) runs three trials one at a time on two threads;
 * a hang is the spawn's timeout killing it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createNativeBackend } from '../src/backend/native.js';
import { canRun } from './suites.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const hasNative = canRun(
  'native',
  createNativeBackend() !== null,
  'the native addon did not build or load (needs build-essential and libopenblas-dev)',
);
const dir = mkdtempSync(join(tmpdir(), 'gg-sweep-threads-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!hasNative)('a local sweep on the native backend with its thread pool', () => {
  it('runs trial after trial on fresh threads without hanging', () => {
    const script = join(dir, 'cli.mts');
    const main = pathToFileURL(join(ROOT, 'src', 'cli', 'main.ts')).href;
    writeFileSync(
      script,
      `import { main } from ${JSON.stringify(main)};\nprocess.exitCode = await main(process.argv.slice(2));\n`,
    );
    const args = ['sweep', '--no-store', '--json', '--parallel', '1', '--grid', 'optim.lr=0.001,0.002,0.003'];
    // the headline MLP: its products (128x784x256) are far above the size the pool takes on
    args.push('--set', 'train.maxSteps=3', '--set', 'train.epochs=1');
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 100_000,
      env: { ...process.env, GRADGUARD_BACKEND: 'native', GRADGUARD_THREADS: '2' },
    });
    expect(r.signal, `killed (hung?): ${r.stderr}`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { trials: { status: string }[] };
    expect(out.trials.map((t) => t.status)).toEqual(['finished', 'finished', 'finished']);
  }, 120_000);
});
