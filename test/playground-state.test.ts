import { describe, expect, it } from 'vitest';
import {
  applies,
  applyFix,
  DEFAULT_STATE,
  fromHash,
  LESSONS,
  toCommand,
  toHash,
  toSets,
} from '../playground/src/state.js';
import { loadConfig } from '../src/train/config.js';

describe('playground state', () => {
  it('round-trips through the URL hash', () => {
    for (const s of [DEFAULT_STATE, ...LESSONS.map((l) => l.state)]) {
      const back = fromHash(toHash(s));
      expect(back.unknown).toEqual([]);
      expect(toSets(back.state)).toEqual(toSets(s));
    }
  });

  it('every lesson and the default are valid CLI configs', () => {
    for (const s of [DEFAULT_STATE, ...LESSONS.map((l) => l.state)]) {
      expect(() => loadConfig(undefined, toSets(s))).not.toThrow();
    }
  });

  it('the hash uses the CLI keys, and the command is the same assignments', () => {
    const lesson = LESSONS[0]!;
    const hash = toHash(lesson.state);
    expect(hash).toMatch(/^#seed=0&data\.name=spirals&model\.type=mlp&model\.depth=30&/);
    expect(hash).toContain('init.weight=normal&init.std=0.05');
    expect(hash).toContain('clip=%5B%5D');
    expect(toCommand(lesson.state)).toBe(
      `gradguard train ${toSets(lesson.state)
        .map((a) => `--set ${a.includes('[') ? `'${a}'` : a}`)
        .join(' ')}`,
    );
    const { config } = loadConfig(undefined, toSets(lesson.state));
    expect(config.model).toMatchObject({ depth: 30, width: 32, activation: 'sigmoid' });
    expect(config.init).toMatchObject({ weight: 'normal', std: 0.05 });
    expect(config.clip).toEqual([{ type: 'global-norm', max: 1, normType: 2 }]);
    expect(toSets(DEFAULT_STATE)).toContain('clip=[]');
    expect(loadConfig(undefined, toSets(DEFAULT_STATE)).config.clip).toEqual([]);
  });

  it('drops keys that do not apply, and lists the clip after emptying the CLI default', () => {
    const sets = toSets({ ...DEFAULT_STATE, 'model.type': 'lstm', 'model.hiddenSize': '8', 'clip[0].type': 'agc' });
    expect(sets.some((s) => s.startsWith('model.depth='))).toBe(false);
    expect(sets.some((s) => s.startsWith('clip[0].max='))).toBe(false);
    expect(sets.indexOf('clip=[]')).toBeLessThan(sets.indexOf('clip[0].type=agc'));
    expect(loadConfig(undefined, sets).config.clip).toEqual([{ type: 'agc', clipping: 0.01, eps: 1e-3 }]);
    const g = toSets({ ...DEFAULT_STATE, 'clip[0].type': 'global-norm' });
    expect(g).toContain('clip[0].max=1');
  });

  it('reports unknown hash keys instead of dropping them silently', () => {
    const { state, unknown } = fromHash('#model.depth=3&model.dpeth=4');
    expect(state['model.depth']).toBe('3');
    expect(unknown).toEqual(['model.dpeth']);
  });

  it('applies a fix from the diagnosis, reporting what it cannot set', () => {
    const { state, ignored } = applyFix(DEFAULT_STATE, [
      'model.activation=relu',
      'schedule.warmupSteps=100',
      'data.noise=0.1',
    ]);
    expect(state['model.activation']).toBe('relu');
    expect(state['schedule.warmupSteps']).toBe('100');
    expect(ignored).toEqual(['data.noise=0.1']);
  });
});

describe('playground controls', () => {
  it('show only what applies to the setup', () => {
    const mlp = { ...DEFAULT_STATE, 'init.weight': 'normal' };
    expect(applies('init.std', mlp)).toBe(true);
    expect(applies('init.gain', mlp)).toBe(false);
    expect(applies('model.zeroInitResidual', mlp)).toBe(false);
    expect(applies('model.zeroInitResidual', { ...mlp, 'model.residual': 'true' })).toBe(true);
    const rnn = { ...DEFAULT_STATE, 'data.name': 'adding', 'model.type': 'gru' };
    expect(applies('model.depth', rnn)).toBe(false);
    expect(applies('model.hiddenSize', rnn)).toBe(true);
    expect(applies('data.length', rnn)).toBe(true);
    expect(applies('clip[0].max', { ...DEFAULT_STATE, 'clip[0].type': 'agc' })).toBe(false);
  });
});
