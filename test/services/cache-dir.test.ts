/**
 * The suite's cache of measured choices (test/services/cache-dir.ts): a temporary directory of the run's own, where
 * the native addon writes the choices the tests make, and never the user's ~/.cache/gradguard.
 */
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNativeBackend } from '../../src/backend/native.js';
import type { Buf } from '../../src/backend/types.js';

describe('the test run cache of measured choices', () => {
  const dir = process.env.GRADGUARD_CACHE_DIR ?? '';

  it('is a temporary directory of its own, not the user cache', () => {
    expect(dir.startsWith(join(tmpdir(), 'gg-test-cache-'))).toBe(true);
    expect(process.env.GRADGUARD_TEST_CACHE_DIR).toBe(dir);
  });

  it("receives the native addon's per-shape choices", () => {
    const native = createNativeBackend();
    if (!native?.selectGemm('auto').startsWith('per-shape:')) return; // no choice to make on this build
    // a shape no other test multiplies, large enough to be measured (over 1 MFLOP)
    const [m, n, k] = [83, 167, 211];
    const buf = (d: Float32Array): Buf => ({ data: d }) as unknown as Buf;
    const C = new Float32Array(m * n);
    native.sgemm(
      false,
      true,
      m,
      n,
      k,
      1,
      buf(new Float32Array(m * k).fill(0.5)),
      0,
      k,
      buf(new Float32Array(n * k).fill(2)),
      0,
      k,
      0,
      buf(C),
      0,
      n,
    );
    expect(C[0]).toBe(k);
    expect(readdirSync(dir).filter((f) => f.endsWith(`-NT-${m}x${n}x${k}`))).toHaveLength(1);
  });
});
