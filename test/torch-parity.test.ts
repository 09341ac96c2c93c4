/**
 * Forward values and gradients against PyTorch's own numbers, on every backend that loads here.
 *
 * The fixtures (test/fixtures/ops.json) come from scripts/fixtures/make_fixtures.py (`npm run fixtures`, torch 1.13):
 * float32 inputs, the op's output computed in float64, and the gradient of (out · R).sum() for a fixed random R, so
 * every output element and every input element is checked.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { availableBackends, useBackend } from '../src/backend/index.js';
import { checkFixture, fixtures, OPS, TOL } from './parity.js';

it('the fixtures cover every op the suite knows, and only those', () => {
  expect(new Set(fixtures.map((f) => f.op))).toEqual(new Set(Object.keys(OPS)));
  expect(fixtures.length).toBeGreaterThan(90);
});

for (const backend of availableBackends()) {
  describe(`PyTorch parity on the ${backend} backend`, () => {
    beforeAll(() => {
      useBackend(backend);
    });
    for (const fx of fixtures) {
      it(fx.name, () => checkFixture(fx, TOL[backend]));
    }
  });
}
