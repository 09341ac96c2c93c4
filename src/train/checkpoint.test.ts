/**
 * Checkpoints: round trip, refusal of damaged or partial ones (with nothing loaded), the write protocol's leftovers,
 * bit-identical resume of a small MLP with dropout, a warm-up + cosine schedule and adaptive clipping, and the
 * trainer's non-finite handling.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spirals } from '../data/synthetic.js';
import type { Dataset } from '../data/types.js';
import { defaultRng } from '../init/random.js';
import { loadSafetensors, loadSafetensorsMetadata } from '../io/safetensors.js';
import { flattenState } from '../optim/optimizer.js';
import {
  applyCheckpoint,
  CheckpointError,
  checkpointRootOf,
  listCheckpoints,
  loadCheckpoint,
  modelRngs,
  saveCheckpoint,
} from './checkpoint.js';
import { Config } from './config.js';
import { type Experiment, evaluate, NonFiniteError, runTraining, type StepInfo, setupExperiment } from './trainer.js';

let work: string;
let n = 0;
const fresh = () => {
  const d = join(work, `c${n++}`);
  mkdirSync(d);
  return d;
};
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gg-ckpt-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const data = spirals({ trainSize: 100, testSize: 40, seed: 3 });

/** A small MLP with dropout, Adam with warm-up + cosine, global-norm clipping then AutoClip (which keeps a history). */
function makeConfig(over: Record<string, unknown> = {}): Config {
  return Config.parse({
    seed: 7,
    data: { name: 'spirals' },
    model: { type: 'mlp', hidden: [16, 16], activation: 'relu', dropout: 0.2 },
    init: { weight: 'kaiming-normal' },
    optim: { name: 'adam', lr: 0.01 },
    schedule: { name: 'cosine', warmupSteps: 4, alpha: 0.1 },
    clip: [
      { type: 'global-norm', max: 1 },
      { type: 'autoclip', percentile: 50 },
    ],
    train: { epochs: 4, batchSize: 16 },
    ...over,
  });
}

interface Trace {
  losses: number[];
  lrs: number[];
  skipped: boolean[];
}
function trace(): Trace & { onStep: (s: StepInfo) => void } {
  const t: Trace = { losses: [], lrs: [], skipped: [] };
  return {
    ...t,
    onStep: (s) => {
      t.losses.push(s.loss);
      t.lrs.push(s.lr);
      t.skipped.push(s.skipped);
    },
  };
}

const weights = (exp: Experiment) => Object.entries(exp.model.stateDict()).map(([k, t]) => [k, Array.from(t.data)]);
/** An RNG state with its words as unsigned (getState may give them signed; setState accepts both). */
const u = (st: { s: number[]; spare: number | null }) => ({ s: st.s.map((x) => x >>> 0), spare: st.spare });
const cur = (c: ReturnType<Experiment['loader']['cursor']>) => ({ ...c, rng: u(c.rng) });
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** Rewrites state.json after `edit`, with a correct checksum (as a careful forger would). */
function rewriteState(dir: string, edit: (s: Record<string, unknown>) => void): void {
  const path = join(dir, 'state.json');
  const { checksum: _, ...state } = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  edit(state);
  const body = JSON.stringify(state, null, 2);
  writeFileSync(path, `${JSON.stringify({ ...state, checksum: sha256(body) }, null, 2)}\n`);
}

function catchError(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('saveCheckpoint / loadCheckpoint', () => {
  it('round-trips weights, optimizer state, cursor, RNGs and counters; weights under PyTorch names', () => {
    const config = makeConfig();
    const exp = setupExperiment(config, data);
    runTraining(exp, {
      shouldStop: (() => {
        let i = 0;
        return () => i++ >= 9;
      })(),
    });
    const root = fresh();
    const dir = saveCheckpoint(root, exp, {
      step: 9,
      epoch: 1,
      skippedSteps: 2,
      consecutiveNonFinite: 1,
      lastLoss: Number.NaN,
      runId: 'run-x',
    });
    expect(dir).toBe(join(root, 'ckpt-00000009'));
    expect(readFileSync(join(root, 'latest'), 'utf8')).toBe('ckpt-00000009\n');
    expect(readdirSync(dir).sort()).toEqual(['model.safetensors', 'optimizer.safetensors', 'state.json']);

    const ck = loadCheckpoint(root);
    expect(ck.dir).toBe(dir);
    expect(ck.step).toBe(9);
    expect(ck.epoch).toBe(1);
    expect(ck.runId).toBe('run-x');
    expect(ck.config).toEqual(config);
    expect(Object.keys(ck.model).sort()).toEqual(Object.keys(exp.model.stateDict()).sort());
    expect(Object.keys(ck.model)).toContain('0.weight');
    for (const [k, t] of Object.entries(exp.model.stateDict()))
      expect(Array.from(ck.model[k]!.data)).toEqual(Array.from(t.data));
    const flat = flattenState(exp.optimizer.state);
    expect(Object.keys(ck.optimizer.tensors).sort()).toEqual(Object.keys(flat.tensors).sort());
    for (const [k, t] of Object.entries(flat.tensors))
      expect(Array.from(ck.optimizer.tensors[k]!.data)).toEqual(Array.from(t.data));
    expect(ck.optimizer.values).toEqual(flat.values);
    expect(ck.state.loader).toEqual(exp.loader.cursor());
    expect(ck.state.optimizer.stepCount).toBe(exp.optimizer.stepCount);
    expect(Object.keys(ck.state.rng.modules).length).toBeGreaterThan(0);

    // model.safetensors is a plain PyTorch state dict
    expect(loadSafetensorsMetadata(join(dir, 'model.safetensors'))).toEqual({ format: 'pt' });
    expect(Object.keys(loadSafetensors(join(dir, 'model.safetensors'))).sort()).toEqual(Object.keys(ck.model).sort());

    // applying restores the counters; NaN survives JSON
    const other = setupExperiment(config, data);
    const p = applyCheckpoint(other, ck);
    expect(p).toEqual({
      step: 9,
      epoch: 1,
      skippedSteps: 2,
      consecutiveNonFinite: 1,
      lastLoss: Number.NaN,
      runId: 'run-x',
    });
    expect(weights(other)).toEqual(weights(exp));
    expect(other.optimizer.stepCount).toBe(exp.optimizer.stepCount);
    expect(other.optimizer.clippedSteps()).toBe(exp.optimizer.clippedSteps());
    expect(cur(other.loader.cursor())).toEqual(cur(exp.loader.cursor()));
    const rA = modelRngs(exp.model);
    for (const [k, r] of modelRngs(other.model)) expect(u(r.getState())).toEqual(u(rA.get(k)!.getState()));
  });

  it('finds the RNG of every Dropout layer and of recurrent layers', () => {
    const exp = setupExperiment(makeConfig({ model: { type: 'mlp', hidden: [8, 8], dropout: 0.5 } }), data);
    const keys = [...modelRngs(exp.model).keys()];
    expect(keys.length).toBe(2);
    expect(keys.every((k) => k.endsWith('#rng'))).toBe(true);
    const seq = spirals({ trainSize: 10, testSize: 10 });
    const seqData: Dataset = { ...seq, inputShape: [1, 2] };
    const gru = setupExperiment(
      makeConfig({ data: { name: 'adding' }, model: { type: 'gru', hiddenSize: 4 }, clip: [] }),
      seqData,
    );
    expect([...modelRngs(gru.model).keys()]).toEqual(['net.rnn#rng']);
  });

  it('keeps the newest three checkpoints (or train.keepCheckpoints), and makes each save the latest', () => {
    const exp = setupExperiment(makeConfig(), data);
    const root = fresh();
    const p = { epoch: 0, skippedSteps: 0, consecutiveNonFinite: 0, lastLoss: 1 };
    for (const step of [1, 2, 3, 4]) saveCheckpoint(root, exp, { ...p, step });
    expect(listCheckpoints(root)).toEqual(['ckpt-00000002', 'ckpt-00000003', 'ckpt-00000004']);
    expect(loadCheckpoint(root).step).toBe(4);
    // the one `latest` named before is kept whatever `keep` says
    saveCheckpoint(root, exp, { ...p, step: 5 }, { keep: 1 });
    expect(listCheckpoints(root)).toEqual(['ckpt-00000004', 'ckpt-00000005']);
    saveCheckpoint(root, exp, { ...p, step: 6 }, { keep: 5 });
    expect(listCheckpoints(root)).toEqual(['ckpt-00000004', 'ckpt-00000005', 'ckpt-00000006']);
    saveCheckpoint(root, exp, { ...p, step: 3 }, { keep: 2 });
    expect(listCheckpoints(root)).toEqual(['ckpt-00000003', 'ckpt-00000006']);
    expect(loadCheckpoint(root).step).toBe(3);
    saveCheckpoint(root, exp, { ...p, step: 4 }, { keep: 2 });
    // the same step again (a run resumed from an older checkpoint) gets a new name
    saveCheckpoint(root, exp, { ...p, step: 4 }, { keep: 2 });
    expect(readFileSync(join(root, 'latest'), 'utf8')).toBe('ckpt-00000004-1\n');
    expect(listCheckpoints(root)).toEqual(['ckpt-00000004', 'ckpt-00000004-1']);
    expect(checkpointRootOf(join(root, 'ckpt-00000004'))).toBe(root);
    expect(checkpointRootOf(root)).toBe(root);
  });

  it('survives what a kill leaves: a half-written temporary directory, a half-deleted old one, no latest yet', () => {
    const exp = setupExperiment(makeConfig(), data);
    const root = fresh();
    const p = { epoch: 0, skippedSteps: 0, consecutiveNonFinite: 0, lastLoss: 1 };
    const a = saveCheckpoint(root, exp, { ...p, step: 5 });
    // a dead process's leftovers (pid 2^22 + 1 is above Linux's pid_max default of 2^22)
    const dead = 4194305;
    mkdirSync(join(root, `.tmp-ckpt-00000006-${dead}`));
    writeFileSync(join(root, `.tmp-ckpt-00000006-${dead}`, 'model.safetensors'), 'half');
    mkdirSync(join(root, `.trash-ckpt-00000004-${dead}`));
    writeFileSync(join(root, `.tmp-latest-${dead}`), 'ckpt-0000');
    expect(loadCheckpoint(root).dir).toBe(a);
    saveCheckpoint(root, exp, { ...p, step: 6 });
    expect(readdirSync(root).filter((f) => f.startsWith('.'))).toEqual([]);
    // killed between the first rename and the first `latest`: the newest complete directory is used
    unlinkSync(join(root, 'latest'));
    expect(loadCheckpoint(root).step).toBe(6);
    // a damaged `latest` or one naming a missing directory is refused, naming what exists
    writeFileSync(join(root, 'latest'), 'ckpt-00000099\n');
    const e = catchError(() => loadCheckpoint(root));
    expect(e).toBeInstanceOf(CheckpointError);
    expect(e.message).toMatch(
      /latest names ckpt-00000099, which does not exist; available: ckpt-00000005, ckpt-00000006/,
    );
  });
});

describe('a damaged or partial checkpoint is refused, naming the file, and nothing is loaded', () => {
  let good: string;
  let exp: Experiment;
  beforeAll(() => {
    exp = setupExperiment(makeConfig(), data);
    runTraining(exp, {
      shouldStop: (() => {
        let i = 0;
        return () => i++ >= 5;
      })(),
    });
    good = saveCheckpoint(fresh(), exp, { step: 5, epoch: 0, skippedSteps: 0, consecutiveNonFinite: 0, lastLoss: 1 });
  });
  const copy = () => {
    const root = fresh();
    const d = join(root, 'ckpt-00000005');
    mkdirSync(d);
    for (const f of readdirSync(good)) writeFileSync(join(d, f), readFileSync(join(good, f)));
    return d;
  };
  const flip = (path: string, at: number) => {
    const b = readFileSync(path);
    const i = at < 0 ? b.length + at : at;
    b[i] = b[i]! ^ 0x01;
    writeFileSync(path, b);
  };
  const refused = (dir: string, pattern: RegExp) => {
    const e = catchError(() => loadCheckpoint(dir));
    expect(e).toBeInstanceOf(CheckpointError);
    expect((e as CheckpointError).userError).toBe(true);
    expect(e.message).toMatch(pattern);
    expect(e.message).not.toContain('\n');
    expect(e.message).toContain(dir);
  };

  it('loads the intact copy', () => {
    expect(loadCheckpoint(copy()).step).toBe(5);
  });
  it('a flipped byte in model.safetensors (header or data)', () => {
    for (const at of [3, 20, -1, -100]) {
      const d = copy();
      flip(join(d, 'model.safetensors'), at);
      refused(d, /model\.safetensors does not match its sha256 in state\.json .*damaged/);
    }
  });
  it('a flipped byte in optimizer.safetensors', () => {
    const d = copy();
    flip(join(d, 'optimizer.safetensors'), -5);
    refused(d, /optimizer\.safetensors does not match its sha256/);
  });
  it('a flipped byte anywhere in state.json', () => {
    const size = readFileSync(join(good, 'state.json')).length;
    for (const at of [0, 10, Math.floor(size / 2), size - 20, size - 1]) {
      const d = copy();
      flip(join(d, 'state.json'), at);
      refused(
        d,
        /state\.json (is not valid JSON|does not match its checksum|is not byte for byte|has no checksum|is not a gradguard)/,
      );
    }
  });
  it('a truncated file', () => {
    const d = copy();
    const size = readFileSync(join(d, 'model.safetensors')).length;
    truncateSync(join(d, 'model.safetensors'), size - 7);
    refused(d, new RegExp(`model\\.safetensors is ${size - 7} bytes, state\\.json records ${size}: truncated`));
    const e = copy();
    truncateSync(join(e, 'state.json'), 100);
    refused(e, /state\.json is not valid JSON .*truncated or damaged/);
    const f = copy();
    truncateSync(join(f, 'optimizer.safetensors'), 0);
    refused(f, /optimizer\.safetensors is 0 bytes/);
  });
  it('a missing file', () => {
    const d = copy();
    unlinkSync(join(d, 'optimizer.safetensors'));
    refused(d, /optimizer\.safetensors is missing/);
    const e = copy();
    unlinkSync(join(e, 'state.json'));
    refused(e, /state\.json is missing: the checkpoint was never finished/);
  });
  it('a wrong sha256 in an otherwise valid state.json', () => {
    const d = copy();
    rewriteState(d, (s) => {
      (s.files as Record<string, { sha256: string }>)['model.safetensors']!.sha256 = '0'.repeat(64);
    });
    refused(d, /model\.safetensors does not match its sha256/);
  });
  it('a newer format', () => {
    const d = copy();
    rewriteState(d, (s) => {
      s.version = 99;
    });
    refused(d, /format version 99; this gradguard reads version 1/);
  });
  it('no checkpoint at all', () => {
    refused(fresh(), /no checkpoint here/);
    refused(join(work, 'nope'), /no such directory/);
  });
  it('a checkpoint of another model or optimizer, or other batching, changes nothing in the experiment', () => {
    const ck = loadCheckpoint(good);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ model: { type: 'mlp', hidden: [16, 8], dropout: 0.2 } }, /config differs at model\.hidden/],
      [{ optim: { name: 'adam', lr: 0.5 } }, /config differs at optim\.lr \(checkpoint 0\.01, now 0\.5\)/],
      [{ train: { epochs: 4, batchSize: 10 } }, /config differs at train\.batchSize/],
    ];
    for (const [over, pattern] of cases) {
      const other = setupExperiment(makeConfig(over), data);
      const before = {
        w: weights(other),
        opt: JSON.stringify(flattenState(other.optimizer.state).values),
        cursor: other.loader.cursor(),
        rngs: [...modelRngs(other.model).values()].map((r) => r.getState()),
        def: defaultRng().getState(),
      };
      const e = catchError(() => applyCheckpoint(other, ck));
      expect(e).toBeInstanceOf(CheckpointError);
      expect(e.message).toMatch(pattern);
      expect(weights(other)).toEqual(before.w);
      expect(JSON.stringify(flattenState(other.optimizer.state).values)).toBe(before.opt);
      expect(other.loader.cursor()).toEqual(before.cursor);
      expect([...modelRngs(other.model).values()].map((r) => r.getState())).toEqual(before.rngs);
      expect(defaultRng().getState()).toEqual(before.def);
    }
    // a longer run (more epochs) may resume from it
    expect(() =>
      applyCheckpoint(setupExperiment(makeConfig({ train: { epochs: 9, batchSize: 16 } }), data), ck),
    ).not.toThrow();
  });
});

describe('resume is bit-identical', () => {
  const config = makeConfig();
  let straight: Trace & { weights: unknown; test: unknown; summary: ReturnType<typeof runTraining> };
  beforeAll(() => {
    const exp = setupExperiment(config, data);
    const t = trace();
    const root = fresh();
    // checkpoints on (every 3 steps) must not change anything either
    const summary = runTraining(exp, { onStep: t.onStep, checkpoint: { dir: root, everySteps: 3 } });
    straight = { ...t, weights: weights(exp), test: summary.test, summary };
  });

  it('the uninterrupted run is what it should be', () => {
    expect(straight.summary.status).toBe('finished');
    expect(straight.summary.steps).toBe(28); // 4 epochs of ceil(100 / 16) = 7 batches
    expect(straight.losses.length).toBe(28);
    expect(new Set(straight.losses).size).toBe(28);
    // the schedule moved: warm-up then cosine (onStep reports the lr the step used)
    expect(straight.lrs[0]).toBeCloseTo(0.0025, 12);
    expect(straight.lrs[1]).toBeCloseTo(0.005, 12);
    expect(straight.lrs[3]).toBeCloseTo(0.01, 12);
    expect(straight.lrs[27]).toBeLessThan(0.002);
  });

  for (const split of [1, 6, 7, 13, 14, 20, 27]) {
    it(`stopped after ${split} steps, resumed in a fresh experiment: every loss, lr and weight equal`, () => {
      const root = fresh();
      const first = trace();
      const exp1 = setupExperiment(config, data);
      let i = 0;
      const s1 = runTraining(exp1, {
        onStep: first.onStep,
        shouldStop: () => i++ >= split,
        checkpoint: { dir: root, everySteps: 5 },
      });
      expect(s1.status).toBe('interrupted');
      expect(s1.steps).toBe(split);
      // the second half: a new experiment, the default generator disturbed, the checkpoint from disk
      defaultRng().uniform();
      const ck = loadCheckpoint(root);
      expect(ck.step).toBe(split);
      const second = trace();
      const exp2 = setupExperiment(config, data);
      const s2 = runTraining(exp2, { onStep: second.onStep, resume: ck, checkpoint: { dir: root, everySteps: 5 } });
      expect(s2.status).toBe('finished');
      expect(s2.steps).toBe(28);
      expect(s2.epochs).toBe(4);
      expect([...first.losses, ...second.losses]).toStrictEqual(straight.losses);
      expect([...first.lrs, ...second.lrs]).toStrictEqual(straight.lrs);
      expect(weights(exp2)).toStrictEqual(straight.weights);
      expect(s2.test).toStrictEqual(straight.test);
      expect(s2.finalLoss).toBe(straight.summary.finalLoss);
      expect(s2.clippedSteps).toBe(straight.summary.clippedSteps);
      expect(loadCheckpoint(root).step).toBe(28);
    });
  }

  it('fails when something is not restored (so the comparison can fail): dropout RNGs left as built', () => {
    const root = fresh();
    let i = 0;
    const first = trace();
    runTraining(setupExperiment(config, data), {
      onStep: first.onStep,
      shouldStop: () => i++ >= 10,
      checkpoint: { dir: root },
    });
    const ck = loadCheckpoint(root);
    const exp2 = setupExperiment(config, data);
    const asBuilt = Object.fromEntries([...modelRngs(exp2.model)].map(([k, r]) => [k, r.getState()]));
    const wrong = { ...ck, state: { ...ck.state, rng: { ...ck.state.rng, modules: asBuilt } } };
    const second = trace();
    runTraining(exp2, { onStep: second.onStep, resume: wrong });
    expect(first.losses).toStrictEqual(straight.losses.slice(0, 10));
    expect(second.losses[0]).not.toBe(straight.losses[10]);
  });

  it('evaluation draws from no RNG', () => {
    const exp = setupExperiment(config, data);
    const snap = () => [...modelRngs(exp.model).values(), defaultRng()].map((r) => r.getState());
    const cursor = exp.loader.cursor();
    const before = snap();
    evaluate(exp.model, data, 'test');
    evaluate(exp.model, data, 'train');
    expect(snap()).toEqual(before);
    expect(exp.loader.cursor()).toEqual(cursor);
    expect(exp.model.training).toBe(true);
  });
});

describe('non-finite loss or gradients', () => {
  /** Spirals whose examples `bad` (indices into the training split) are NaN. */
  function poisoned(bad: (i: number) => boolean): Dataset {
    const ds = spirals({ trainSize: 40, testSize: 20, seed: 5 });
    const x = ds.train.x.slice();
    for (let i = 0; i < ds.train.n; i++) if (bad(i)) x.fill(Number.NaN, 2 * i, 2 * i + 2);
    return { ...ds, train: { ...ds.train, x } };
  }
  const cfg = (train: Record<string, unknown>) =>
    makeConfig({ model: { type: 'mlp', hidden: [8] }, clip: [], train: { epochs: 2, batchSize: 1, ...train } });
  const finiteWeights = (exp: Experiment) =>
    Object.values(exp.model.stateDict()).every((t) => t.data.every((v) => Number.isFinite(v)));

  it('skip: skipped steps are counted, change no weight, and the run goes on', () => {
    const bad = (i: number) => i % 5 === 0; // 8 of 40, never two in a row... unless shuffled together
    const exp = setupExperiment(cfg({ onNonFinite: 'skip', maxConsecutiveNonFinite: 1000 }), poisoned(bad));
    const t = trace();
    let before: number[][] = [];
    let changedOnSkip = false;
    const s = runTraining(exp, {
      onStep: (info) => {
        t.onStep(info);
        const now = weights(exp).map(([, v]) => v as number[]);
        if (info.skipped && JSON.stringify(now) !== JSON.stringify(before)) changedOnSkip = true;
        before = now;
      },
      shouldStop: () => {
        before = weights(exp).map(([, v]) => v as number[]);
        return false;
      },
    });
    expect(s.status).toBe('finished');
    expect(s.steps).toBe(80);
    expect(s.skippedSteps).toBe(16);
    expect(t.skipped.filter(Boolean).length).toBe(16);
    expect(changedOnSkip).toBe(false);
    expect(finiteWeights(exp)).toBe(true);
    expect(Number.isFinite(s.finalLoss)).toBe(true);
  });

  it('skip: K consecutive non-finite steps mark the run diverged, every step reported', () => {
    const exp = setupExperiment(
      cfg({ onNonFinite: 'skip', maxConsecutiveNonFinite: 4 }),
      poisoned(() => true),
    );
    const w0 = weights(exp);
    const t = trace();
    const s = runTraining(exp, { onStep: t.onStep });
    expect(s.status).toBe('diverged');
    expect(s.reason).toMatch(/4 consecutive steps .*maxConsecutiveNonFinite=4/);
    expect(s.steps).toBe(4);
    expect(s.skippedSteps).toBe(4);
    expect(t.skipped).toEqual([true, true, true, true]);
    expect(weights(exp)).toEqual(w0);
    expect(finiteWeights(exp)).toBe(true);
  });

  it('a finite step resets the count: non-finite steps below K in a row never diverge', () => {
    // in order, every other example poisoned: runs of one non-finite step
    const exp = setupExperiment(
      cfg({ onNonFinite: 'skip', maxConsecutiveNonFinite: 2 }),
      poisoned((i) => i % 2 === 0),
    );
    exp.loader = new (exp.loader.constructor as typeof import('../data/loader.js').DataLoader)(exp.dataset.train, {
      batchSize: 1,
      shuffle: false,
    });
    const s = runTraining(exp);
    expect(s.status).toBe('finished');
    expect(s.skippedSteps).toBe(40);
  });

  it('stop: the first non-finite step ends the run as diverged', () => {
    const exp = setupExperiment(
      cfg({ onNonFinite: 'stop' }),
      poisoned((i) => i === 7),
    );
    const t = trace();
    const s = runTraining(exp, { onStep: t.onStep });
    expect(s.status).toBe('diverged');
    expect(s.reason).toMatch(/non-finite loss or gradients at step \d+ \(train\.onNonFinite=stop\)/);
    expect(t.skipped[t.skipped.length - 1]).toBe(true);
    expect(t.skipped.filter(Boolean).length).toBe(1);
    expect(s.steps).toBe(t.losses.length);
    expect(finiteWeights(exp)).toBe(true);
  });

  it('raise: throws NonFiniteError naming the step, weights untouched by it', () => {
    const exp = setupExperiment(
      cfg({ onNonFinite: 'raise' }),
      poisoned((i) => i === 7),
    );
    const e = catchError(() => runTraining(exp));
    expect(e).toBeInstanceOf(NonFiniteError);
    expect(e.message).toMatch(/^step \d+: the (loss is|gradients hold) NaN or Inf \(train\.onNonFinite=raise\)$/);
    expect(finiteWeights(exp)).toBe(true);
  });

  it('a diverged run checkpoints its counters; resuming it with a higher K goes on', () => {
    const root = fresh();
    const ds = poisoned((i) => i < 3);
    const noShuffle = (exp: Experiment) => {
      exp.loader = new (exp.loader.constructor as typeof import('../data/loader.js').DataLoader)(exp.dataset.train, {
        batchSize: 1,
        shuffle: false,
      });
      return exp;
    };
    const exp = noShuffle(setupExperiment(cfg({ maxConsecutiveNonFinite: 2 }), ds));
    const s = runTraining(exp, { checkpoint: { dir: root } });
    expect(s.status).toBe('diverged');
    const ck = loadCheckpoint(root);
    expect(ck.step).toBe(2);
    expect(ck.state.progress).toMatchObject({ skippedSteps: 2, consecutiveNonFinite: 2 });
    const again = noShuffle(setupExperiment(cfg({ maxConsecutiveNonFinite: 5 }), ds));
    const s2 = runTraining(again, { resume: ck });
    expect(s2.status).toBe('finished');
    expect(s2.skippedSteps).toBe(6); // 3 per epoch
  });
});

it('cleans up: nothing but checkpoints in a root after a finished run', () => {
  const root = fresh();
  runTraining(setupExperiment(makeConfig(), data), { checkpoint: { dir: root, everySteps: 2 } });
  expect(readdirSync(root).sort()).toEqual(['ckpt-00000024', 'ckpt-00000026', 'ckpt-00000028', 'latest']);
  expect(existsSync(join(root, 'ckpt-00000028', 'state.json'))).toBe(true);
  renameSync(join(root, 'latest'), join(root, 'latest.bak'));
  expect(loadCheckpoint(root).step).toBe(28);
});
