/**
 * Non-finite values never reach the weights: not through an update whose gradients were finite (a huge learning
 * rate), and not through the initialisation (a huge gain or bias); and the check itself is exact on every backend.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { availableBackends, getBackend, useBackend } from '../backend/index.js';
import { spirals } from '../data/synthetic.js';
import { findNonFiniteUpdate } from '../optim/transform.js';
import { tensor } from '../tensor/tensor.js';
import { applyInit, buildModel } from './build.js';
import { Config, ConfigError } from './config.js';
import { type Experiment, NonFiniteError, runTraining, setupExperiment } from './trainer.js';

const data = spirals({ trainSize: 40, testSize: 20, seed: 5 });

/** A small MLP trained by plain SGD at `lr`, without clipping (as `--set optim.name=sgd --set clip=[]`). */
const cfg = (lr: number, train: Record<string, unknown> = {}, init: Record<string, unknown> = {}) =>
  Config.parse({
    seed: 1,
    data: { name: 'spirals' },
    model: { type: 'mlp', hidden: [8] },
    init,
    optim: { name: 'sgd', lr },
    schedule: { name: 'constant' },
    clip: [],
    train: { epochs: 1, batchSize: 8, ...train },
  });

const weights = (exp: Experiment) => Object.values(exp.model.stateDict()).map((t) => Array.from(t.data));

// NOTE: lr·g is computed in float64 and stored as float32, so lr=1e300 makes every non-zero g an infinity (lr=1e39
// only those above 0.34: the first steps may pass, finite but huge, then the loss overflows and is caught there)
describe('an update that is not finite (finite gradients, optim.lr=1e300)', () => {
  it('skip: every such step is skipped and counted by layer, and the weights stay as they were', () => {
    const exp = setupExperiment(cfg(1e300, { onNonFinite: 'skip', maxConsecutiveNonFinite: 1000 }), data);
    const before = weights(exp);
    const flagged: string[] = [];
    const s = runTraining(exp, { onStep: (i) => (i.nonFiniteUpdate ? flagged.push(i.nonFiniteUpdate) : 0) });
    expect(s.status).toBe('finished');
    expect(s.steps).toBe(5);
    expect(s.skippedSteps).toBe(5);
    expect(flagged).toHaveLength(5);
    expect(s.skippedByLayer).toEqual({ [flagged[0]!]: 5 });
    expect(Object.keys(exp.params)).toContain(flagged[0]);
    expect(weights(exp)).toEqual(before);
  });

  it('skip: after maxConsecutiveNonFinite such steps the run is diverged, the reason naming the layer', () => {
    const exp = setupExperiment(cfg(1e300, { onNonFinite: 'skip', maxConsecutiveNonFinite: 3 }), data);
    const s = runTraining(exp);
    expect(s.status).toBe('diverged');
    expect(s.steps).toBe(3);
    expect(s.reason).toMatch(
      /^3 consecutive steps with an update that is not finite \('[\w.]+'\) \(train\.maxConsecutiveNonFinite=3\)$/,
    );
    expect(weights(exp).flat().every(Number.isFinite)).toBe(true);
  });

  it('raise: a NonFiniteError names the step and the layer, and nothing was written', () => {
    const exp = setupExperiment(cfg(1e300, { onNonFinite: 'raise' }), data);
    const before = weights(exp);
    let err: unknown;
    try {
      runTraining(exp);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NonFiniteError);
    const e = err as NonFiniteError;
    expect(e.message).toMatch(/^step 0: the update of '[\w.]+' holds NaN or Inf \(train\.onNonFinite=raise\)$/);
    expect(e.update?.cause).toBe('update');
    expect(weights(exp)).toEqual(before);
  });

  it('an ordinary learning rate is not flagged', () => {
    const s = runTraining(setupExperiment(cfg(0.1, { onNonFinite: 'raise' }), data));
    expect(s.skippedSteps).toBe(0);
    expect(s.skippedByLayer).toBeUndefined();
  });
});

describe('initialised weights that are not finite are a config error naming the key and the layer', () => {
  const init = (over: Record<string, unknown>) => {
    const config = cfg(0.1, {}, over);
    return () => applyInit(buildModel(config, data), config, data);
  };
  it.each([
    [{ gain: 1e300 }, "init.gain=1e+300: the initialised '0.weight' holds 16 NaN/Inf values"],
    [{ bias: 1e300 }, "init.bias=1e+300: the initialised '0.bias' holds 8 NaN/Inf values"],
    [{ weight: 'normal', std: 1e300 }, "init.std=1e+300: the initialised '0.weight' holds 16 NaN/Inf values"],
    [{ weight: 'uniform', a: 1e300 }, "init.a=1e+300: the initialised '0.weight' holds 16 NaN/Inf values"],
  ])('%o', (over, msg) => {
    expect(init(over)).toThrow(ConfigError);
    expect(init(over)).toThrow(`${msg} (float32 holds at most 3.4e38); choose a smaller ${msg.split('=')[0]}`);
  });
  it('large but finite values pass', () => {
    expect(init({ gain: 1e30, bias: 1e30 })).not.toThrow();
  });
});

describe('findNonFiniteUpdate on every backend', () => {
  const start = getBackend().name;
  afterAll(() => {
    useBackend(start);
  });
  const big = 3e38;
  it.each(availableBackends())('%s: finds what w + u would make non-finite, and only that', (name) => {
    useBackend(name);
    const n = 1000; // past the kernels' vector blocks
    const find = (wv: number[], uv: number[], at = 777, ss?: number) => {
      const wd = new Float32Array(n).fill(0.5);
      const ud = new Float32Array(n).fill(-0.25);
      wv.forEach((v, i) => {
        wd[at + i] = v;
      });
      uv.forEach((v, i) => {
        ud[at + i] = v;
      });
      const p = { w: tensor(wd, [n]) };
      return findNonFiniteUpdate(p, { w: tensor(ud, [n]) }, ss === undefined ? undefined : { w: ss });
    };
    expect(find([], [])).toBeNull();
    expect(find([], [Number.POSITIVE_INFINITY])).toEqual({ path: 'w', cause: 'update' });
    expect(find([], [Number.NaN], 3)).toEqual({ path: 'w', cause: 'update' });
    expect(find([Number.NaN], [])).toEqual({ path: 'w', cause: 'weights' });
    expect(find([big], [big])).toEqual({ path: 'w', cause: 'overflow' });
    // huge but cancelling, or huge in different places: finite
    expect(find([big, -big], [-big, big])).toBeNull();
    expect(find([big, 0], [0, big])).toBeNull();
    // with the weights' (current) sum of squares given, the same answers: the bound only skips reading the weights
    const ss = (v: number) => 0.25 * (n - 1) + v * v;
    expect(find([], [], 777, ss(0.5))).toBeNull();
    expect(find([big], [big], 777, ss(big))).toEqual({ path: 'w', cause: 'overflow' });
    expect(find([big], [-big], 777, ss(big))).toBeNull();
  });
});
