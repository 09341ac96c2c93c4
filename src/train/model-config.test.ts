/**
 * Model keys that apply (issue 17, item 5): `model.type` decides which model keys are valid; a key for another model
 * is a config error at its `file:line:col key.path` listing the keys that do apply; summaries name what is built.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../cli/main.js';
import { loadDataset } from '../data/index.js';
import { Conv2d } from '../nn/conv.js';
import { Residual } from '../nn/residual.js';
import { applyInit, buildModel } from './build.js';
import { ConfigError, describeModel, loadConfig, MODEL_KEYS, withApplicableModelKeys } from './config.js';

const dir = mkdtempSync(join(tmpdir(), 'gg-model-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const problem = (sets: string[], file?: string): string => {
  try {
    loadConfig(file, sets);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).user).toBe(true);
    return (e as Error).message;
  }
  throw new Error(`accepted: ${sets.join(' ')}`);
};

describe('model keys that do not apply to model.type', () => {
  it.each([
    ['model.type=cnn', 'model.hidden=[64]', 'hidden', 'cnn'],
    ['model.type=resnet', 'model.residual=false', 'residual', 'resnet'],
    ['model.type=resnet', 'model.depth=20', 'depth', 'resnet'],
    ['model.type=lstm', 'model.activation=sigmoid', 'activation', 'lstm'],
    ['model.type=gru', 'model.norm=batch', 'norm', 'gru'],
    ['model.type=rnn', 'model.dropout=0.5', 'dropout', 'rnn'],
    ['model.type=mlp', 'model.hiddenSize=64', 'hiddenSize', 'mlp'],
    ['model.type=mlp', 'model.channels=[8]', 'channels', 'mlp'],
  ])('%s %s is an error naming the key and the keys that apply', (type, set, key, t) => {
    const msg = problem([type, set]);
    expect(msg).toBe(
      `--set ${set}: model.${key}: '${key}' does not apply to model.type=${t} (keys that apply to ${t}: type, ${MODEL_KEYS[t as keyof typeof MODEL_KEYS].join(', ')})`,
    );
  });

  it('points at the key in a config file (file:line:col key.path), the default type being mlp', () => {
    const f = join(dir, 'cnn.yaml');
    writeFileSync(f, 'seed: 1\nmodel:\n  type: cnn\n  depth: 20\n  hidden: [256]\n');
    expect(problem([], f)).toMatch(new RegExp(`^${f}:5:3 model\\.hidden: 'hidden' does not apply to model\\.type=cnn`));
    const g = join(dir, 'mlp.yaml');
    writeFileSync(g, 'model:\n  resnetDepth: 20\n');
    expect(problem([], g)).toMatch(
      new RegExp(`^${g}:2:3 model\\.resnetDepth: 'resnetDepth' does not apply to model\\.type=mlp`),
    );
  });

  it('refuses values a type cannot build: a CNN normalises by batch or not at all, an RNN is relu or tanh', () => {
    expect(problem(['model.type=cnn', 'model.norm=layer'])).toContain(
      'model.type=cnn takes norm none or batch, got "layer"',
    );
    expect(problem(['model.type=rnn', 'model.activation=sigmoid'])).toContain(
      'model.type=rnn takes activation relu or tanh, got "sigmoid"',
    );
  });

  it('accepts every key that applies, and still reports unknown keys as unknown', () => {
    expect(() => loadConfig(undefined, ['model.type=cnn', 'model.depth=20', 'model.residual=true'])).not.toThrow();
    expect(() => loadConfig(undefined, ['model.type=rnn', 'model.activation=tanh', 'model.layers=2'])).not.toThrow();
    expect(problem(['model.type=cnn', 'model.hiden=3'])).toContain("unknown key 'hiden'");
  });

  it('exits 2 from the CLI with one line and no stack trace', async () => {
    let err = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      err += String(s);
      return true;
    });
    try {
      const code = await main(['train', '--no-store', '--set', 'model.type=lstm', '--set', 'model.activation=sigmoid']);
      expect(code).toBe(2);
    } finally {
      vi.restoreAllMocks();
    }
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toContain("model.activation: 'activation' does not apply to model.type=lstm");
  });

  it("doctor's trials may switch model.type: the old type's keys are dropped, not refused", () => {
    const base = ['model.type=rnn', 'model.activation=tanh', 'data.name=adding'];
    expect(() => loadConfig(undefined, [...base, 'model.type=lstm'])).toThrow(ConfigError);
    const { config } = loadConfig(undefined, [...base, 'model.type=lstm'], { dropInapplicable: true });
    expect(config.model.type).toBe('lstm');
  });

  it('a stored config carrying every default (as runs saved before these checks) still loads', () => {
    const full = { model: { type: 'lstm', activation: 'relu', residual: false, norm: 'none', dropout: 0 } };
    expect(withApplicableModelKeys(full)).toEqual({ model: { type: 'lstm' } });
    const resolved = loadConfig(undefined, ['model.type=gru']).config;
    expect(() => loadConfig(undefined, [])).not.toThrow();
    expect(withApplicableModelKeys(resolved)).toMatchObject({ model: { type: 'gru' } });
  });
});

describe('summaries print the architecture that is built', () => {
  const model = (sets: string[]) => describeModel(loadConfig(undefined, sets).config.model);
  it('names only what applies', () => {
    expect(model([])).toBe('mlp [256] relu');
    expect(model(['model.type=lstm'])).toBe('lstm 1x128');
    expect(model(['model.type=rnn', 'model.activation=tanh', 'model.hiddenSize=64'])).toBe('rnn 1x64 tanh');
    expect(model(['model.type=cnn'])).toBe('cnn 2 conv [32, 64] plain relu');
    expect(model(['model.type=cnn', 'model.depth=20', 'model.residual=true', 'model.norm=batch'])).toBe(
      'cnn 20 conv [32, 64] relu residual batch-norm',
    );
    expect(model(['model.type=resnet', 'model.resnetDepth=20'])).toBe('resnet-20 width 16');
  });

  it('the train header says so', async () => {
    let err = '';
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      err += String(s);
      return true;
    });
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const sets = ['model.type=lstm', 'model.hiddenSize=8', 'data.name=adding', 'data.length=5'];
      const more = ['data.trainSize=32', 'data.testSize=8', 'train.maxSteps=1', 'train.batchSize=16'];
      const code = await main(['train', '--no-store', ...[...sets, ...more].flatMap((s) => ['--set', s])]);
      expect(code).toBe(0);
    } finally {
      vi.restoreAllMocks();
    }
    expect(err).toContain('gradguard: training lstm 1x8 on adding');
    expect(err).not.toContain('lstm relu');
  });
});

describe('the configurable CNN from the config', () => {
  let digits: Awaited<ReturnType<typeof loadDataset>>;
  beforeEach(async () => {
    digits ??= await loadDataset({ name: 'mnist', trainSize: 64, testSize: 16 });
  });
  afterEach(() => vi.restoreAllMocks());

  const convs = (sets: string[]) => {
    const m = buildModel(loadConfig(undefined, ['model.type=cnn', ...sets]).config, digits);
    return { m, convs: [...m.modules()].filter((x) => x instanceof Conv2d).length };
  };

  it('builds depth convolutions, plain or in residual blocks of two', () => {
    expect(convs([]).convs).toBe(2);
    expect(convs(['model.depth=20']).convs).toBe(20);
    const res = convs(['model.depth=20', 'model.residual=true']);
    expect(res.convs).toBe(20);
    expect([...res.m.modules()].filter((x) => x instanceof Residual)).toHaveLength(9);
    expect(convs(['model.depth=6', 'model.channels=[8, 16, 32]']).convs).toBe(6);
    expect(
      convs(['model.width=8'])
        .m.namedParameters()
        .map(([n, p]) => `${n}:${p.shape}`)
        .slice(0, 3),
    ).toEqual(['net.0.weight:8,1,3,3', 'net.0.bias:8', 'net.3.weight:16,8,3,3']);
  });

  it('refuses shapes it cannot build, as config errors', () => {
    expect(() => convs(['model.depth=1'])).toThrow(/depth must be an integer of at least 2/);
    expect(() => convs(['model.depth=5', 'model.residual=true'])).toThrow(/depth - 2 must be even/);
    expect(() => convs(['model.width=8', 'model.channels=[8]'])).toThrow(/either model.channels/);
  });

  it('zeroInitResidual starts every residual block of a CNN as the identity', () => {
    const config = loadConfig(undefined, [
      'model.type=cnn',
      'model.depth=6',
      'model.residual=true',
      'model.zeroInitResidual=true',
    ]).config;
    const m = buildModel(config, digits);
    applyInit(m, config);
    const blocks = [...m.modules()].filter((x): x is Residual => x instanceof Residual);
    expect(blocks).toHaveLength(2);
    for (const b of blocks) {
      const [last] = [...b.branch.children()].reverse();
      for (const [, t] of last!.namedParameters()) expect(t.data.every((v) => v === 0)).toBe(true);
      const [first] = b.branch.children();
      expect(first!.namedParameters()[0]![1].data.some((v) => v !== 0)).toBe(true);
    }
  });
});

describe('model.forgetBias (an LSTM only)', () => {
  const lstmBiases = async (sets: string[]) => {
    const config = loadConfig(undefined, ['model.type=lstm', 'model.hiddenSize=4', 'model.layers=2', ...sets]).config;
    const ds = await loadDataset({ name: 'adding', length: 5, trainSize: 8, testSize: 4 } as Parameters<
      typeof loadDataset
    >[0]);
    const m = buildModel(config, ds);
    applyInit(m, config);
    const b = Object.fromEntries(m.namedParameters().filter(([n]) => /bias_(ih|hh)/.test(n)));
    // the forget gate's slice (the second quarter) of each bias, every layer
    return Object.fromEntries(Object.entries(b).map(([n, t]) => [n.replace(/^.*\./, ''), [...t.data.slice(4, 8)]]));
  };

  it('sets b_ih of gate f to it and b_hh of gate f to 0 in every layer; unset keeps init.bias', async () => {
    const set = await lstmBiases(['model.forgetBias=1']);
    for (const l of ['l0', 'l1']) {
      expect(set[`bias_ih_${l}`]).toEqual([1, 1, 1, 1]);
      expect(set[`bias_hh_${l}`]).toEqual([0, 0, 0, 0]);
    }
    const unset = await lstmBiases(['init.bias=0.25']);
    expect(unset.bias_ih_l0).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(unset.bias_hh_l1).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('is validated, applies to lstm only, and the summary names it', () => {
    expect(problem(['model.type=lstm', 'model.forgetBias=50'])).toContain(
      'model.forgetBias must be between -10 and 10',
    );
    expect(problem(['model.type=lstm', 'model.forgetBias=abc'])).toContain('model.forgetBias');
    expect(problem(['model.type=gru', 'model.forgetBias=1'])).toContain(
      "'forgetBias' does not apply to model.type=gru",
    );
    expect(describeModel(loadConfig(undefined, ['model.type=lstm', 'model.forgetBias=1']).config.model)).toBe(
      'lstm 1x128 forget-bias 1',
    );
  });
});
