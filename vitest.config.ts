import { defineConfig } from 'vitest/config';

/**
 * Two tiers, both run by `npm test`:
 * - unit: in-process tests of one module or a few (seconds in all); `npm run test:unit` for the inner loop.
 * - integration: tests that start processes, browsers, worker pools or compilers, or kill things on purpose.
 */
const INTEGRATION = [
  'src/train/checkpoint-kill.test.ts',
  'src/dashboard/e2e.test.ts',
  'src/dashboard/report.test.ts',
  'src/track/durability.test.ts',
  'src/backend/gemm.test.ts',
  'src/backend/wasm-threads.test.ts',
  'test/cli.test.ts',
  'test/**/*.int.test.ts',
  'src/**/*.int.test.ts',
];
const ALL = ['src/**/*.test.ts', 'test/**/*.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    pool: 'forks',
    // A throwaway PostgreSQL cluster for the `postgres` suite (skipped without one), shared by both tiers: the
    // first setup starts it and exports GRADGUARD_TEST_PG_URL, the second sees the variable and starts nothing. And a
    // temporary cache of measured choices (test/services/cache-dir.ts), so the suite never writes the user's.
    globalSetup: ['test/services/postgres.ts', 'test/services/cache-dir.ts'],
    // `vitest run --coverage` (npm test does): a summary on the terminal, the full report under coverage/
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.test.ts', 'src/dashboard/web/**'],
      reporter: ['text-summary', 'json-summary', 'html'],
    },
    projects: [
      { extends: true, test: { name: 'unit', include: ALL, exclude: INTEGRATION } },
      { extends: true, test: { name: 'integration', include: INTEGRATION } },
    ],
  },
});
