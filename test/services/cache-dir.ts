/**
 * The tests' own cache of measured choices (the native addon's per-shape sgemm and convolution choices, native/addon.c:
 * $GRADGUARD_CACHE_DIR, else ~/.cache/gradguard): a fresh temporary directory per `npm test`, removed at the end.
 *
 * Without it the suite wrote the choices it measured into the user's own cache, on a machine busy running the tests,
 * and later trainings and benchmarks kept them; and the suite's results depended on what an earlier run had left
 * there, where a fresh machine (CI's) starts with none. As a vitest globalSetup (vitest.config.ts) it sets
 * GRADGUARD_CACHE_DIR for the test processes and the processes they start; the second tier's setup (same process) sees
 * it set and does nothing. A test that needs a cache of its own still sets one (src/backend/gemm.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The variable that marks the directory as this setup's (so the second tier's setup leaves it). */
const OWNED = 'GRADGUARD_TEST_CACHE_DIR';

/** vitest globalSetup: see the file's comment. */
export default function setup(): () => void {
  if (process.env[OWNED]) return () => {};
  const dir = mkdtempSync(join(tmpdir(), 'gg-test-cache-'));
  const before = process.env.GRADGUARD_CACHE_DIR;
  process.env.GRADGUARD_CACHE_DIR = dir;
  process.env[OWNED] = dir;
  return () => {
    if (before === undefined) delete process.env.GRADGUARD_CACHE_DIR;
    else process.env.GRADGUARD_CACHE_DIR = before;
    delete process.env[OWNED];
    rmSync(dir, { recursive: true, force: true });
  };
}
