import { describe, expect, it } from 'vitest';
import { canonicalFinal, isPercentMetric, METRICS, metricKey } from './metrics.js';

describe('the shared list of metric keys', () => {
  it('finds a quantity under the first key present, whichever alias a writer used', () => {
    const has = (keys: string[]) => (k: string) => keys.includes(k);
    expect(metricKey('testLoss', has(['loss', 'val/loss']))).toBe('val/loss');
    expect(metricKey('testLoss', has(['test_loss', 'val/loss']))).toBe('test_loss');
    expect(metricKey('accuracy', has(['test/accuracy']))).toBe('test/accuracy');
    expect(metricKey('gradNorm', has(['loss']))).toBeUndefined();
  });

  it('names final metrics one way: what the trainer records in its summary maps to the per-step names', () => {
    expect(canonicalFinal({ 'test/accuracy': 0.96, 'test/loss': 0.14, 'train/loss': 0.1, f1: 0.9 })).toEqual({
      test_accuracy: 0.96,
      test_loss: 0.14,
      loss: 0.1,
      f1: 0.9,
    });
    // the first alias present wins; the others are not repeated
    expect(canonicalFinal({ 'val/loss': 2, test_loss: 1 })).toEqual({ test_loss: 1 });
    for (const spec of Object.values(METRICS)) {
      if ('final' in spec) expect(spec.keys).toContain(spec.final);
    }
  });

  it('knows which are shares', () => {
    expect(isPercentMetric('test/accuracy')).toBe(true);
    expect(isPercentMetric('test_loss')).toBe(false);
    expect(isPercentMetric('train_acc')).toBe(true);
  });
});
