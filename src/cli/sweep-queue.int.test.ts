/**
 * Distributed sweeps on a real PostgreSQL (the `postgres` suite): a 6-trial sweep queued with `sweep --queue
 * --detach`, run by two worker processes, one of which is SIGKILLed in the middle of its trial at a chosen step. The
 * kill is chosen, not timed: worker A runs its trials with a hooks module that SIGKILLs the process at step KILL_STEP
 * of its first trial (after confirming it in a file), and worker B starts only once A has claimed that trial. Then
 * every trial completes, each recorded once and each one run in the store (the killed one resumed from its last
 * checkpoint), and the results are bit-identical to the same sweep run locally (SQLite). The queue and the run store
 * share one PostgreSQL database, as a team's setup does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, hasPostgres, type TestDatabase } from '../../test/services/pg.js';
import { RunStore } from '../track/store.js';
import { runDoctor } from './doctor.js';
import { SweepQueue } from './queue.js';
import type { TrialRow } from './sweep.js';
import { followSweep, queuedRow, sweepStatus } from './sweep-queue.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

/** 160 steps per trial (10 epochs of 16), a checkpoint every 20: killed at step 90, a trial resumes from step 80. */
const KILL_STEP = 90;
const SETS = [
  'data.name=spirals',
  'data.trainSize=256',
  'data.testSize=64',
  'model.hidden=[16,16]',
  'train.batchSize=16',
  'train.epochs=10',
  'train.checkpointEvery=20',
].flatMap((s) => ['--set', s]);
const GRID = ['--grid', 'optim.lr=0.003,0.01,0.03', '--grid', 'init.weight=xavier-normal,kaiming-normal'];

interface Proc {
  child: ChildProcess;
  stderr: () => string;
  /** Resolves once stderr matches `re`. */
  waitFor(re: RegExp): Promise<void>;
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, GRADGUARD_THREADS: '1', ...env },
  });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    err += c;
    for (const w of waiters.filter((w) => w.re.test(err))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (r) => child.on('close', (code, signal) => r({ code, signal, stdout: out, stderr: err })),
  );
  return {
    child,
    stderr: () => err,
    waitFor: (re) =>
      re.test(err)
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            waiters.push({ re, resolve });
            void closed.then((c) => reject(new Error(`exited (${c.code ?? c.signal}) before ${re}: ${c.stderr}`)));
          }),
    closed,
  };
}

/** The gradguard CLI from the sources, in a child process. */
const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => {
  return start(
    [
      '--input-type=module',
      '-e',
      `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(${JSON.stringify(args)});`,
    ],
    env,
  );
};

describe.skipIf(!hasPostgres)('a distributed sweep on PostgreSQL', () => {
  let db: TestDatabase;
  let work: string;
  beforeAll(async () => {
    db = await freshDatabase();
    work = mkdtempSync(join(tmpdir(), 'gg-queue-'));
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  it('6 trials on 2 workers, one SIGKILLed mid-trial: all complete, each once, bit-identical to a local sweep', async () => {
    // the same sweep run locally, for reference
    const localStore = join(work, 'local');
    const local = await cli(['sweep', '--json', '--parallel', '2', '--store', localStore, ...SETS, ...GRID]).closed;
    expect(local.code, local.stderr).toBe(0);
    const localRows = (JSON.parse(local.stdout) as { trials: TrialRow[] }).trials;
    expect(localRows).toHaveLength(6);

    // queued, then run by worker A (which dies at step KILL_STEP of its first trial) and worker B
    const queued = await cli(['sweep', '--json', '--detach', '--queue', db.url, ...SETS, ...GRID]).closed;
    expect(queued.code, queued.stderr).toBe(0);
    const sweepId = (JSON.parse(queued.stdout) as { sweep: string }).sweep;
    // the run store on the queue's PostgreSQL, checkpoints in a directory every worker reaches
    const store = `${db.url}?checkpoints=${encodeURIComponent(join(work, 'shared'))}`;
    const confirm = join(work, 'confirm.txt');
    const hooks = join(work, 'hooks.mjs');
    writeFileSync(
      hooks,
      `import { openSync, writeSync } from 'node:fs';
const fd = openSync(${JSON.stringify(confirm)}, 'a');
export function onStep(step) {
  if (step === ${KILL_STEP}) {
    writeSync(fd, 'killed at step ' + step + '\\n');
    process.kill(process.pid, 'SIGKILL');
  }
}
`,
    );
    const a = start([
      '--input-type=module',
      '-e',
      `const { workerCommand } = await import(${JSON.stringify(WORKER)});
process.exitCode = await workerCommand({ queue: ${JSON.stringify(db.url)}, store: ${JSON.stringify(store)}, hooks: ${JSON.stringify(`file://${hooks}`)}, log: (l) => process.stderr.write(l) });`,
    ]);
    await a.waitFor(/trial 0 \(.*\): starting/);
    const b = cli(['worker', '--queue', db.url, '--store', store]);
    const aEnd = await a.closed;
    expect(aEnd.signal, aEnd.stderr).toBe('SIGKILL');
    expect(readFileSync(confirm, 'utf8')).toBe(`killed at step ${KILL_STEP}\n`);

    const followed = await followSweep(db.url, sweepId, { log: () => {}, progressBar: false });
    expect(followed.interrupted).toBe(false);
    b.child.kill('SIGTERM');
    const bEnd = await b.closed;
    expect(bEnd.code, bEnd.stderr).toBe(130);
    // B took trial 0 over from its last checkpoint (step 80), in the run A had started
    expect(bEnd.stderr).toMatch(/trial 0 \(.*\): resuming run \S+ from step 80 \(attempt 2\)/);

    // every trial done, recorded once; trial 0 took two attempts
    const status = await sweepStatus(db.url, sweepId);
    expect(status.sweep.counts).toEqual({ queued: 0, running: 0, done: 6, failed: 0 });
    expect(status.trials.map((t) => t.attempts)).toEqual([2, 1, 1, 1, 1, 1]);
    const queue = await SweepQueue.open(db.url, { supervise: false });
    try {
      const trials = await queue.trials(sweepId);
      expect(trials).toHaveLength(6);
      // one run per trial in the store: the killed attempt's run was continued, not duplicated
      const st = RunStore.open(store, { readonly: true });
      const lst = RunStore.open(localStore, { readonly: true });
      try {
        const runs = st.listRuns();
        expect(runs).toHaveLength(6);
        expect(new Set(trials.map((t) => t.run)).size).toBe(6);
        for (const t of trials) {
          const row = queuedRow(t);
          const ref = localRows[t.index]!;
          expect(row.params).toEqual(ref.params);
          // bit-identical results: the same numbers, not merely close ones
          for (const k of ['status', 'testAccuracy', 'testLoss', 'finalLoss', 'verdict'] as const)
            expect(row[k], `trial ${t.index} ${k}`).toBe(ref[k]);
          expect(st.getRun(t.run!).status).toBe('finished');
          const m = st.getMetrics(t.run!);
          const r = lst.getMetrics(ref.run!);
          expect(m.steps, `trial ${t.index} steps`).toStrictEqual(r.steps);
          for (const key of ['loss', 'test_loss', 'test_accuracy', 'grad_norm'])
            expect(m.series[key], `trial ${t.index} ${key}`).toStrictEqual(r.series[key]);
        }
      } finally {
        st.close();
        lst.close();
      }
    } finally {
      await queue.close();
    }
  }, 600_000);

  it('doctor --fix --queue: the fix trials run on a worker and judge as the local ones do, to the bit', async () => {
    const sets = [
      'data.name=spirals',
      'model.depth=12',
      'model.width=16',
      'model.activation=sigmoid',
      'init.weight=normal',
    ];
    const local = await runDoctor(undefined, sets, { fix: true });
    expect(local.trials!.length).toBeGreaterThan(1);
    const w = cli(['worker', '--queue', db.url, '--store', join(work, 'doctor-runs'), '--json']);
    const lines: string[] = [];
    const queued = await runDoctor(undefined, sets, { fix: true, queue: db.url, onProgress: (l) => lines.push(l) });
    w.child.kill('SIGTERM');
    const end = await w.closed;
    expect(end.code, end.stderr).toBe(130);
    expect(JSON.parse(end.stdout)).toMatchObject({ recorded: local.trials!.length - 1, handedBack: 0 });
    expect(lines.some((l) => /trials queued as sw-/.test(l))).toBe(true);
    expect(queued.trials).toStrictEqual(local.trials);
  }, 300_000);
});
