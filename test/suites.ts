/**
 * Suites that skip themselves on a machine that lacks what they test (a C toolchain and OpenBLAS, Chromium, Debian's
 * Fashion-MNIST, a PostgreSQL server). Skipping is right on a user's machine and wrong in CI, where a missing install step would otherwise
 * turn a whole suite silently green: CI sets GRADGUARD_REQUIRE_SUITES (a comma-separated list of suite names, or
 * `all`), and a named suite that would skip fails instead, saying what is missing.
 */
export type Suite = 'native' | 'native-avx2' | 'chromium' | 'fashion-mnist' | 'postgres';

export const SUITES: readonly Suite[] = ['native', 'native-avx2', 'chromium', 'fashion-mnist', 'postgres'];

/** The suites the environment requires (GRADGUARD_REQUIRE_SUITES). */
export function requiredSuites(env: NodeJS.ProcessEnv = process.env): Set<Suite> {
  const raw = (env.GRADGUARD_REQUIRE_SUITES ?? '').split(',').map((s) => s.trim());
  if (raw.includes('all')) return new Set(SUITES);
  const unknown = raw.filter((s) => s && !SUITES.includes(s as Suite));
  if (unknown.length) {
    throw new Error(
      `GRADGUARD_REQUIRE_SUITES names unknown suites ${unknown.join(', ')}; known: ${SUITES.join(', ')}, all`,
    );
  }
  return new Set(raw.filter(Boolean) as Suite[]);
}

/**
 * Whether `suite` can run here: `present`, or, when the environment requires the suite and it is not present, an
 * error (which fails the test file) naming what is missing.
 *
 * @example describe.skipIf(!canRun('chromium', existsSync(CHROMIUM_PATH), `no ${CHROMIUM_PATH}`))('...', () => {...});
 */
export function canRun(suite: Suite, present: boolean, missing: string, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!present && requiredSuites(env).has(suite)) {
    throw new Error(`the ${suite} suite is required here (GRADGUARD_REQUIRE_SUITES) but cannot run: ${missing}`);
  }
  return present;
}
