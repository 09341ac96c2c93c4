/**
 * Checkpoints under attack (issue 11): a hand-edited state.json with its checksum recomputed, an unreadable one, a
 * full disk in the middle of a write, how many are kept, and when the trainer writes them (driven by steps and a
 * clock the test controls, never by wall time).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spirals } from '../data/synthetic.js';
import { CheckpointError, listCheckpoints, loadCheckpoint, type SavePhase, saveCheckpoint } from './checkpoint.js';
import { Config } from './config.js';
import { type Experiment, runTraining, setupExperiment } from './trainer.js';

let work: string;
let n = 0;
const fresh = () => {
  const d = join(work, `c${n++}`);
  mkdirSync(d);
  return d;
};
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gg-ckpt-safety-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const data = spirals({ trainSize: 64, testSize: 16, seed: 3 });
const config = (train: Record<string, unknown> = {}) =>
  Config.parse({
    seed: 7,
    data: { name: 'spirals' },
    model: { type: 'mlp', hidden: [6] },
    optim: { name: 'adam', lr: 0.01 },
    clip: [
      { type: 'global-norm', max: 1 },
      { type: 'autoclip', percentile: 50 },
    ],
    train: { epochs: 3, batchSize: 16, ...train },
  });
const progress = (step: number) => ({ step, epoch: 0, skippedSteps: 0, consecutiveNonFinite: 0, lastLoss: 1 });

/** An experiment trained for 4 steps. */
function trained(): Experiment {
  const exp = setupExperiment(config(), data);
  let i = 0;
  runTraining(exp, { shouldStop: () => i++ >= 4 });
  return exp;
}

// biome-ignore lint/suspicious/noExplicitAny: a hand edit of parsed JSON reaches into any field
type Edited = Record<string, any>;

function rewriteState(dir: string, edit: (s: Edited) => void): void {
  const path = join(dir, 'state.json');
  const { checksum: _, ...state } = JSON.parse(readFileSync(path, 'utf8')) as Edited;
  edit(state);
  const body = JSON.stringify(state, null, 2);
  const sum = createHash('sha256').update(body).digest('hex');
  writeFileSync(path, `${JSON.stringify({ ...state, checksum: sum }, null, 2)}\n`);
}

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CheckpointError);
    expect((e as Error).message).not.toContain('\n');
    return (e as Error).message;
  }
  throw new Error('expected a CheckpointError');
}

describe('state.json is checked against its schema', () => {
  let exp: Experiment;
  let good: string;
  beforeAll(() => {
    exp = trained();
    good = saveCheckpoint(fresh(), exp, progress(4));
  });
  const copy = () => {
    const d = join(fresh(), 'ckpt-00000004');
    mkdirSync(d);
    for (const f of readdirSync(good)) writeFileSync(join(d, f), readFileSync(join(good, f)));
    return d;
  };

  it('loads the unedited copy', () => {
    expect(loadCheckpoint(copy()).step).toBe(4);
  });

  const cases: [string, (s: Edited) => void, RegExp][] = [
    ['a negative step', (s) => (s.step = -3), /state\.json: step: .*>=0/],
    ['a fractional step', (s) => (s.step = 4.5), /state\.json: step: /],
    ['a step count as text', (s) => (s.optimizer.stepCount = 'four'), /state\.json: optimizer\.stepCount: /],
    [
      'more optimizer steps than steps',
      (s) => (s.optimizer.stepCount = 1e9),
      /optimizer\.stepCount: is 1000000000, more than the 4 steps/,
    ],
    ['more skipped steps than steps', (s) => (s.progress.skippedSteps = 99), /progress\.skippedSteps: is 99/],
    [
      'a transform count past the steps',
      (s) => (s.optimizer.values['inner.1.count'] = 1e12),
      /optimizer\.values\.inner\.1\.count: is 1000000000000/,
    ],
    [
      'a transform count below 0',
      (s) => (s.optimizer.values['inner.0.count'] = -1),
      /optimizer\.values\.inner\.0\.count: is -1/,
    ],
    [
      'an object as an optimizer value',
      (s) => (s.optimizer.values['inner.1.history'] = { a: 1 }),
      /optimizer\.values\.inner\.1\.history: /,
    ],
    ['an unknown field', (s) => (s.extra = 1), /state\.json: \(root\): Unrecognized key.*extra/],
    [
      'a run id that leads elsewhere',
      (s) => (s.runId = '../../victim'),
      /state\.json: runId: is not a well-formed run id/,
    ],
    ['an RNG word out of range', (s) => (s.rng.default.s[1] = 2 ** 40), /state\.json: rng\.default\.s\[1\]: /],
    ['a batch cursor past the data', (s) => (s.loader.batch = 1000), /state\.json: loader\.batch: is 1000/],
  ];
  for (const [name, edit, pattern] of cases) {
    it(`refuses ${name}, naming the field`, () => {
      const d = copy();
      rewriteState(d, edit);
      expect(message(() => loadCheckpoint(d))).toMatch(pattern);
    });
  }

  it('refuses, when applied, an optimizer value of another kind than the optimizer holds', async () => {
    const { applyCheckpoint } = await import('./checkpoint.js');
    const d = copy();
    rewriteState(d, (s) => (s.optimizer.values['inner.1.threshold'] = [1, 2]));
    const ck = loadCheckpoint(d);
    const target = setupExperiment(config(), data);
    expect(message(() => applyCheckpoint(target, ck))).toMatch(
      /optimizer\.values\.inner\.1\.threshold is a list, this optimizer holds a number/,
    );
    const d2 = copy();
    rewriteState(d2, (s) => (s.optimizer.values['inner.1.kind'] = 'clipByValue'));
    expect(message(() => applyCheckpoint(target, loadCheckpoint(d2)))).toMatch(
      /optimizer\.values\.inner\.1\.kind is "clipByValue"/,
    );
  });

  it('an unreadable state.json is one line naming the file', () => {
    const d = copy();
    rmSync(join(d, 'state.json'));
    mkdirSync(join(d, 'state.json'));
    expect(message(() => loadCheckpoint(d))).toMatch(/^checkpoint .*: cannot read state\.json: EISDIR/);
  });
});

describe('a failed write (a full disk) leaves the previous checkpoint intact and nothing half-written', () => {
  const phases: SavePhase[] = ['files', 'state', 'renamed'];
  for (const phase of phases) {
    it(`ENOSPC at '${phase}'`, () => {
      const exp = trained();
      const root = fresh();
      saveCheckpoint(root, exp, progress(4));
      const before = readdirSync(root).sort();
      const enospc = (p: SavePhase) => {
        if (p === phase) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      };
      const m = message(() => saveCheckpoint(root, exp, progress(6), { onPhase: enospc }));
      expect(m).toMatch(
        /^cannot write the checkpoint .*: ENOSPC \(no space left on device\); the previous checkpoint ckpt-00000004 is intact$/,
      );
      expect(readdirSync(root).sort()).toEqual(before);
      expect(loadCheckpoint(root).step).toBe(4);
    });
  }
});

describe('when the trainer checkpoints', () => {
  /** The steps checkpointed by a 12-step run (3 epochs of 4) with `hook` and a clock of `msPerStep` per step. */
  function savedSteps(hook: Record<string, unknown>, msPerStep = 0): { steps: number[]; kept: string[] } {
    const root = fresh();
    const steps: number[] = [];
    let step = 0;
    runTraining(setupExperiment(config(), data), {
      onStep: () => step++,
      checkpoint: { dir: root, clock: () => step * msPerStep, ...hook },
      onCheckpoint: (_, s) => steps.push(s),
    });
    return { steps, kept: listCheckpoints(root) };
  }

  it('every epoch', () => {
    expect(savedSteps({ everyEpoch: true }).steps).toEqual([4, 8, 12]);
  });
  it('at most everySeconds apart by the clock, besides every epoch', () => {
    // 25 s of "training" per step, a checkpoint at most 60 s apart: after 3 steps since the last one
    expect(savedSteps({ everyEpoch: true, everySeconds: 60 }, 25_000).steps).toEqual([3, 4, 7, 8, 11, 12]);
    expect(savedSteps({ everySeconds: 60 }, 25_000).steps).toEqual([3, 6, 9, 12]);
  });
  it('keeps the newest `keep`', () => {
    expect(savedSteps({ everySteps: 1, keep: 2 }).kept).toEqual(['ckpt-00000011', 'ckpt-00000012']);
    expect(savedSteps({ everySteps: 1 }).kept).toEqual(['ckpt-00000010', 'ckpt-00000011', 'ckpt-00000012']);
  });
  it('the session defaults: every epoch, at most 5 minutes apart, 3 kept; the config keys change them', () => {
    const c = config({ checkpointMinutes: 0.5, keepCheckpoints: 4 });
    expect(c.train.checkpointMinutes).toBe(0.5);
    expect(c.train.keepCheckpoints).toBe(4);
    expect(() => config({ checkpointMinutes: 0 })).toThrow();
    expect(() => config({ keepCheckpoints: 0 })).toThrow();
  });
});
