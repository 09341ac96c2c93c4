/**
 * The native addon leaves glibc's malloc keeping freed memory mapped (gg_tune_malloc in native/addon.c): a loop
 * written without `tidy()` drops its activations to the garbage collector every step and asks for the same sizes
 * again, and with glibc's defaults every step page-faulted them in anew (docs/library.md, "Memory"; `npm run
 * bench:tidy` measures the loop). What it saves is time, which no test asserts; these check the rule that decides it,
 * in fresh processes (the tuning is made once, when the addon loads). Skipped where the addon was not built.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canRun } from '../../test/suites.js';

const addon = join(import.meta.dirname, '../../build/Release/gradguard.node');

/** What a fresh process that loads the addon with `env` says of its malloc. */
function tuning(env: Record<string, string>): string {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('MALLOC_') && k !== 'GLIBC_TUNABLES' && k !== 'GRADGUARD_MALLOC',
    ),
  );
  return execFileSync(
    process.execPath,
    ['-e', `process.stdout.write(require(${JSON.stringify(addon)}).mallocTuning())`],
    {
      env: { ...clean, ...env },
      encoding: 'utf8',
    },
  );
}

describe.skipIf(!canRun('native', existsSync(addon), 'the native addon was not built (npm run build:native)'))(
  "the native addon's malloc settings",
  () => {
    it('keeps freed memory mapped by default', () => {
      expect(tuning({})).toBe('heap up to 32 MiB, 256 MiB kept');
    });
    it("leaves glibc's defaults with GRADGUARD_MALLOC=system, and the user's own settings alone", () => {
      expect(tuning({ GRADGUARD_MALLOC: 'system' })).toBe('system (GRADGUARD_MALLOC=system)');
      expect(tuning({ MALLOC_TRIM_THRESHOLD_: '1000000' })).toMatch(/^the environment's/);
      expect(tuning({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=65536' })).toMatch(/^the environment's/);
      // tunables of something else than malloc do not count as the user's malloc settings
      expect(tuning({ GLIBC_TUNABLES: 'glibc.cpu.hwcaps=-AVX512F' })).toBe('heap up to 32 MiB, 256 MiB kept');
    });
  },
);
