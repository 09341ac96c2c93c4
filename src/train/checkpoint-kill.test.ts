/**
 * The kill test: a child process trains a tiny MLP (dropout, warm-up + cosine schedule, AutoClip) with a checkpoint
 * after every step and a run store, and is SIGKILLed 20 times at chosen (seeded) moments, each time resumed from what
 * it left. After every kill: every checkpoint directory left loads, every step the child had finished (its metrics
 * committed) is in the store with the loss of an uninterrupted run, bit for bit. At the end the run is complete and
 * equal to the uninterrupted one: every loss, every test metric, every weight.
 *
 * The moments are chosen, not timed: the child is told where to die (a step and a point in it: while starting, after
 * the step's metrics are committed, after they are confirmed, or at a phase of writing the checkpoint) and SIGKILLs
 * itself there, so the test does the same on a busy machine as on an idle one.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { spirals } from '../data/synthetic.js';
import { Rng } from '../tensor/rng.js';
import { RunStore } from '../track/store.js';
import { listCheckpoints, loadCheckpoint } from './checkpoint.js';
import { Config } from './config.js';
import { runTraining, setupExperiment } from './trainer.js';

const KILLS = 20;
const src = (p: string) => JSON.stringify(fileURLToPath(new URL(p, import.meta.url)));

const CONFIG = {
  seed: 11,
  data: { name: 'spirals' },
  model: { type: 'mlp', hidden: [12, 12], dropout: 0.25 },
  init: { weight: 'kaiming-normal' },
  optim: { name: 'adam', lr: 0.02 },
  schedule: { name: 'cosine', warmupSteps: 10, alpha: 0.1 },
  clip: [
    { type: 'global-norm', max: 1 },
    { type: 'autoclip', percentile: 30 },
  ],
  train: { epochs: 40, batchSize: 8, checkpointEvery: 1 },
};
const DATA = { trainSize: 64, testSize: 32, seed: 2 };

/** Where a child may be killed: while starting, within a step, or at a phase of writing a checkpoint. */
const KILL_POINTS = [
  'boot',
  'resumed',
  'logged',
  'confirmed',
  'files',
  'state',
  'renamed',
  'latest',
  'pruned',
] as const;
type KillPoint = (typeof KILL_POINTS)[number];

/**
 * The child: resumes from the checkpoint root if it holds a checkpoint (continuing its run in the store), else starts
 * a new run. After each step's metrics are committed it appends `<run> <step> <loss>` to the confirmation file with a
 * plain write(2), which survives SIGKILL, then prints `step <n>`. Its last argument, `{ step, at }`, says where it
 * SIGKILLs itself: `boot` (before opening the store), `resumed` (its run created or resumed, not yet training),
 * `logged` (step `step`'s metrics committed, not yet confirmed), `confirmed`, or a phase of writing the checkpoint
 * after step `step` (`files`: data files written, no state.json; `state`: complete in its temporary directory;
 * `renamed`: renamed, `latest` not yet updated; `latest`: before pruning; `pruned`).
 */
const CHILD = `
import { existsSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { spirals } from ${src('../data/synthetic.ts')};
import { RunStore } from ${src('../track/store.ts')};
import { listCheckpoints, loadCheckpoint } from ${src('./checkpoint.ts')};
import { Config } from ${src('./config.ts')};
import { runTraining, setupExperiment } from ${src('./trainer.ts')};
const [storeDir, root, confirmPath, killSpec] = process.argv.slice(2);
const kill = killSpec ? JSON.parse(killSpec) : null;
const die = (at, step) => {
  if (kill && kill.at === at && (step === undefined || step === kill.step)) process.kill(process.pid, 'SIGKILL');
};
die('boot');
const config = Config.parse(${JSON.stringify(CONFIG)});
const data = spirals(${JSON.stringify(DATA)});
const confirm = openSync(confirmPath, 'a');
const store = RunStore.open(storeDir);
const exp = setupExperiment(config, data);
const has = listCheckpoints(root).length > 0 || existsSync(join(root, 'latest'));
const resume = has ? loadCheckpoint(root) : undefined;
const runId = resume ? store.resumeRun(resume.runId) : store.createRun({ config, backend: 'test' });
die('resumed');
process.stdout.write('ready ' + runId + ' ' + (resume ? resume.step : 0) + '\\n');
let lastStep = -1;
const s = runTraining(exp, {
  ...(resume ? { resume } : {}),
  checkpoint: {
    dir: root,
    everySteps: config.train.checkpointEvery,
    runId,
    // the checkpoint written after step lastStep
    onPhase: (phase) => die(phase, lastStep),
  },
  onStep: (i) => {
    store.logStep(runId, i.step, { loss: i.loss, lr: i.lr });
    die('logged', i.step);
    writeSync(confirm, runId + ' ' + i.step + ' ' + JSON.stringify(i.loss) + '\\n');
    die('confirmed', i.step);
    lastStep = i.step;
    process.stdout.write('step ' + i.step + '\\n');
  },
  onEpoch: (epoch, test) => {
    store.logStep(runId, epoch * exp.loader.batchesPerEpoch - 1, { test_loss: test.loss, test_accuracy: test.accuracy });
  },
});
store.finishRun(runId, s.status, { steps: s.steps });
store.close();
process.stdout.write('done ' + s.status + '\\n');
`;

let work: string;
let childPath: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gg-kill-'));
  childPath = join(work, 'child.mts');
  writeFileSync(childPath, CHILD);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Launch {
  child: ChildProcess;
  /** Resolves with the step it resumed from once it is about to train, or null if it died first. */
  ready: Promise<number | null>;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function launch(storeDir: string, root: string, confirmPath: string, kill: string): Launch {
  const child = spawn(process.execPath, ['--import', 'tsx', childPath, storeDir, root, confirmPath, kill], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let resolveReady!: (v: number | null) => void;
  const ready = new Promise<number | null>((r) => (resolveReady = r));
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c;
    const m = /^ready \S+ (\d+)\n/m.exec(out);
    if (m) resolveReady(Number(m[1]));
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (r) =>
      child.on('close', (code, signal) => {
        resolveReady(null);
        r({ code, signal, stdout: out, stderr: err });
      }),
  );
  return { child, ready, closed };
}

/** Complete lines of the confirmation file: run, step, loss. */
function confirmed(path: string): { run: string; step: number; loss: number }[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  return text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [run, step, loss] = l.split(' ');
      return { run: run!, step: Number(step), loss: JSON.parse(loss!) as number };
    });
}

it(`killed ${KILLS} times at chosen moments: no finished step lost, every checkpoint loads, the result is bit-identical`, async () => {
  // the uninterrupted run, in this process
  const config = Config.parse(CONFIG);
  const data = spirals(DATA);
  const ref = setupExperiment(config, data);
  const refLoss: number[] = [];
  const refTest = new Map<number, number>();
  const refSummary = runTraining(ref, {
    onStep: (s) => refLoss.push(s.loss),
    onEpoch: (e, t) => refTest.set(e * ref.loader.batchesPerEpoch - 1, t.loss),
  });
  const total = refSummary.steps;
  expect(total).toBe(320);

  const storeDir = join(work, 'store');
  const root = join(work, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const confirmPath = join(work, 'confirmed.txt');
  const rng = new Rng(20261126);
  let kills = 0;
  let launches = 0;
  let finished = false;
  const resumedFrom: number[] = [];
  let midWrite = 0;

  const checkAfterKill = () => {
    // every checkpoint left loads, and the latest one is one of them
    const dirs = listCheckpoints(root);
    // where the kill landed: while a checkpoint was being written (its temporary directory is left)
    if (readdirSync(root).some((f) => f.startsWith('.tmp-ckpt-'))) midWrite++;
    for (const d of dirs) loadCheckpoint(join(root, d));
    const lines = confirmed(confirmPath);
    if (dirs.length > 0) {
      const latest = loadCheckpoint(root);
      // a checkpoint holds only finished steps: its step's predecessors were all confirmed
      const runSteps = new Set(lines.filter((l) => l.run === latest.runId).map((l) => l.step));
      for (let s = 0; s < latest.step; s++)
        expect(runSteps.has(s), `step ${s} of checkpoint ${latest.step}`).toBe(true);
    }
    // every confirmed step is in the store, with the uninterrupted run's loss
    const store = RunStore.open(storeDir, { readonly: true });
    try {
      const byRun = new Map<string, Map<number, number | null>>();
      for (const l of lines) {
        let m = byRun.get(l.run);
        if (!m) {
          const series = store.getMetrics(l.run);
          m = new Map(series.steps.map((s, i) => [s, series.series.loss![i]!]));
          byRun.set(l.run, m);
        }
        expect(m.has(l.step), `run ${l.run} step ${l.step} in the store`).toBe(true);
        expect(m.get(l.step)).toBe(l.loss);
        expect(l.loss).toBe(refLoss[l.step]);
      }
    } finally {
      store.close();
    }
  };

  // the kills: every kill point at least twice, in a seeded order, at steps spread over the whole run
  const points: KillPoint[] = Array.from({ length: KILLS }, (_, i) => KILL_POINTS[i % KILL_POINTS.length]!);
  for (let i = points.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [points[i], points[j]] = [points[j]!, points[i]!];
  }
  const plan = points.map((at, k) => ({ at, step: Math.floor(((k + 1) * total) / (KILLS + 1)) + rng.int(9) - 4 }));
  while (!finished) {
    expect(launches++).toBeLessThan(KILLS + 10);
    const kill = kills < KILLS ? JSON.stringify(plan[kills]) : '';
    const l = launch(storeDir, root, confirmPath, kill);
    const from = await l.ready;
    if (from !== null) resumedFrom.push(from);
    const end = await l.closed;
    if (end.signal === 'SIGKILL') {
      kills++;
      checkAfterKill();
    } else {
      expect(kill, `the child was to die at ${kill}: ${end.stderr}`).toBe('');
      expect(end.code, end.stderr).toBe(0);
      expect(end.stdout).toMatch(/done finished/);
      finished = true;
    }
  }
  expect(kills).toBe(KILLS);
  // the kills landed at different places: every launch that got going resumed from another step
  expect(new Set(resumedFrom).size).toBe(resumedFrom.length);
  expect(resumedFrom.length).toBeGreaterThan(KILLS / 2);
  expect(Math.max(...resumedFrom)).toBeGreaterThan(total / 2);
  expect(midWrite).toBeGreaterThan(0);

  // the final run: complete, and bit for bit the uninterrupted one
  const last = loadCheckpoint(root);
  expect(last.step).toBe(total);
  const store = RunStore.open(storeDir, { readonly: true });
  try {
    const run = store.getRun(last.runId!);
    expect(run.status).toBe('finished');
    const m = store.getMetrics(last.runId!);
    const losses = new Map(m.steps.map((s, i) => [s, m.series.loss![i]]));
    const tests = new Map(m.steps.map((s, i) => [s, m.series.test_loss?.[i]]));
    expect(m.steps.length).toBe(total);
    for (let s = 0; s < total; s++) expect(losses.get(s), `step ${s}`).toBe(refLoss[s]);
    for (const [s, t] of refTest) expect(tests.get(s), `test loss at ${s}`).toBe(t);
  } finally {
    store.close();
  }
  for (const [k, t] of Object.entries(ref.model.stateDict())) {
    expect(Array.from(last.model[k]!.data), k).toStrictEqual(Array.from(t.data));
  }
}, 300_000);
