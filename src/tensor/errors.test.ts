import { describe, expect, it } from 'vitest';
import { GradguardError } from '../base/errors.js';
import { ArgumentError, ShapeError } from './errors.js';
import { conv2d } from './ops/conv.js';
import { dropout } from './ops/dropout.js';
import { crossEntropy } from './ops/loss.js';
import { linear, matmul } from './ops/matmul.js';
import { layerNorm } from './ops/norm.js';
import { tensor, zeros } from './tensor.js';

function caught(f: () => unknown): GradguardError {
  try {
    f();
  } catch (e) {
    if (e instanceof GradguardError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

describe('the ops name the caller mistakes with GradguardErrors', () => {
  it('shape mistakes are ShapeErrors, user errors with code tensor.shape', () => {
    const cases = [
      () => matmul(zeros([2, 3]), zeros([2, 3])),
      () => linear(zeros([2, 3]), zeros([4, 5])),
      () => conv2d(zeros([1, 2, 4]), zeros([1, 2, 3, 3])),
      () => layerNorm(zeros([2, 3]), [4]),
      () => crossEntropy(zeros([2, 3]), tensor([0, 1, 2])),
    ];
    for (const f of cases) {
      const e = caught(f);
      expect(e).toBeInstanceOf(ShapeError);
      expect([e.code, e.user]).toEqual(['tensor.shape', true]);
    }
  });

  it('bad arguments are ArgumentErrors with code tensor.argument', () => {
    const e = caught(() => dropout(zeros([2]), 1.5, { training: true }));
    expect(e).toBeInstanceOf(ArgumentError);
    expect([e.code, e.user, e.message]).toEqual([
      'tensor.argument',
      true,
      'dropout(): p must be a probability in [0, 1], got 1.5',
    ]);
  });
});
