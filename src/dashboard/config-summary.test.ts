/** The dashboard's one-line config names only the model keys that apply to its type (issue 17, item 5). */
import { describe, expect, it } from 'vitest';
import { configSummary } from './data.js';

describe('configSummary', () => {
  it('does not print the MLP defaults a stored LSTM config carries ("lstm relu")', () => {
    const stored = {
      model: { type: 'lstm', activation: 'relu', residual: false, norm: 'none', hiddenSize: 64, dropout: 0 },
      data: { name: 'adding' },
    };
    expect(configSummary(stored)).toBe('lstm h64 · adding');
  });

  it('names a CNN by its depth and channels', () => {
    const cnn = { model: { type: 'cnn', depth: 20, channels: [16, 32], activation: 'relu', residual: true } };
    expect(configSummary(cnn)).toBe('cnn 20 conv 16-32 relu residual');
  });
});
