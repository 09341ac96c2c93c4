/** Loading test/fixtures/remedies.json (made by scripts/fixtures/fx_remedies.py) and comparing against it. */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Tensor, tensor } from '../src/tensor/tensor.js';

export interface Packed {
  shape: number[];
  data: number[];
}

export const FIXTURES_DIR = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

// biome-ignore lint/suspicious/noExplicitAny: the fixture file is plain JSON read by many tests
export const remedies: any = JSON.parse(readFileSync(join(FIXTURES_DIR, 'remedies.json'), 'utf8'));

/** A packed fixture tensor as a float32 Tensor. */
export function fromPacked(p: Packed, opts: { requiresGrad?: boolean } = {}): Tensor {
  return tensor(p.data, p.shape, opts);
}

/**
 * The largest |a − b| / (|b| + floor) over the elements: a relative error that does not blow up near 0. Throws on
 * a shape mismatch.
 */
export function maxRelError(
  actual: Tensor | ArrayLike<number>,
  expected: Packed | ArrayLike<number>,
  floor = 1e-3,
): number {
  const a =
    'data' in actual && !(actual instanceof Float32Array) ? (actual as Tensor).data : (actual as ArrayLike<number>);
  const e =
    'data' in expected && Array.isArray((expected as Packed).data)
      ? (expected as Packed).data
      : (expected as ArrayLike<number>);
  if ('shape' in actual && 'shape' in expected) {
    const sa = (actual as Tensor).shape.join();
    const se = (expected as Packed).shape.join();
    if (sa !== se) throw new Error(`shape [${sa}] differs from the fixture's [${se}]`);
  }
  if (a.length !== e.length) throw new Error(`${a.length} values, the fixture has ${e.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i]! - e[i]!) / (Math.abs(e[i]!) + floor);
    if (!(err <= worst)) worst = err; // NaN sticks
  }
  return worst;
}
