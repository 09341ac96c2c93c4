import { describe, expect, it } from 'vitest';
import { calculateGain } from '../init/initializers.js';
import { ModelConfig } from '../train/config.js';
import { activation, gainName } from './activation.js';
import { ACTIVATIONS, activationKey, CONFIG_ACTIVATIONS } from './activation-names.js';

describe('the activation table', () => {
  it('gives every activation a module, a gain and a spelling-independent name', () => {
    for (const key of Object.keys(ACTIVATIONS) as (keyof typeof ACTIVATIONS)[]) {
      expect(activation(key).constructor.name.toLowerCase()).toBe(key.toLowerCase());
      expect(Number.isFinite(calculateGain(gainName(key)))).toBe(true);
      expect(activationKey(key.replace(/([A-Z])/g, '-$1').toLowerCase())).toBe(key);
    }
    expect(activationKey('linear')).toBe('identity');
    expect(activationKey('swish')).toBeUndefined();
    expect(gainName('leaky_relu')).toBe('leakyRelu');
    expect(gainName('gelu')).toBe('linear');
  });

  it('is the config enum, in its order', () => {
    expect(CONFIG_ACTIVATIONS).toEqual(['relu', 'leaky-relu', 'elu', 'selu', 'gelu', 'sigmoid', 'tanh']);
    for (const a of CONFIG_ACTIVATIONS) expect(activationKey(a)).toBeDefined();
    expect(ModelConfig.shape.activation.unwrap().options).toEqual(CONFIG_ACTIVATIONS);
  });
});
