import { describe, expect, it } from 'vitest';
import { canRun, requiredSuites } from './suites.js';

describe('required suites', () => {
  it('lets a suite skip where nothing requires it, and fails it where CI does', () => {
    expect(canRun('chromium', false, 'no chromium', {})).toBe(false);
    expect(canRun('chromium', true, 'no chromium', { GRADGUARD_REQUIRE_SUITES: 'chromium' })).toBe(true);
    expect(() =>
      canRun('chromium', false, 'no /usr/bin/chromium', { GRADGUARD_REQUIRE_SUITES: 'native,chromium' }),
    ).toThrow('the chromium suite is required here (GRADGUARD_REQUIRE_SUITES) but cannot run: no /usr/bin/chromium');
    expect(() => canRun('native', false, 'no OpenBLAS', { GRADGUARD_REQUIRE_SUITES: 'all' })).toThrow(/native suite/);
  });

  it('refuses a list that names an unknown suite', () => {
    expect(() => requiredSuites({ GRADGUARD_REQUIRE_SUITES: 'chromium,gpu' })).toThrow(/unknown suites gpu/);
    expect([...requiredSuites({ GRADGUARD_REQUIRE_SUITES: ' native , fashion-mnist ' })]).toEqual([
      'native',
      'fashion-mnist',
    ]);
  });
});
