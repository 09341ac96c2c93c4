/**
 * `gradguard worker --queue URL --store URL [--concurrency N]`: runs the trials of distributed sweeps (and of
 * `doctor --fix --queue`), on any machine that reaches the queue's PostgreSQL and the run store. Each trial runs on a
 * worker thread through the same code as a local sweep's trial (train/sweep-trial.ts), into the run store; its
 * result is recorded in the queue once (cli/queue.ts).
 *
 * A trial whose worker died (killed, its machine gone) is retried by another worker: its run continues from its last
 * checkpoint when it has one (bit-identical to an uninterrupted run: training is deterministic per seed), and starts
 * over (the partial run removed) when it has none. Ctrl+C or SIGTERM stops the worker: its running trials are handed
 * back to the queue at once, and continue elsewhere from their checkpoints.
 */
import { loadDataset } from '../data/index.js';
import { RunStore } from '../track/store.js';
import { Config, resolveDefaults } from '../train/config.js';
import { type RunningTrial, startTrial } from '../train/sweep-trial.js';
import { planResume } from './checkpoint-commands.js';
import { type ProbeOutcome, probe } from './doctor.js';
import { EXIT, isUserError, UsageError } from './errors.js';
import { CHECK_SECONDS, type QueuedTrial, queueError, SweepQueue } from './queue.js';
import { trialRow } from './sweep.js';

export interface WorkerOptions {
  queue: string;
  store: string;
  /** Trials at a time (default 1). */
  concurrency?: number;
  /** Progress lines (stderr for the CLI). */
  log?: (line: string) => void;
  /** A module URL whose `onStep` each trial calls (train/sweep-worker.ts `hooks`; the kill tests). */
  hooks?: string;
  /** Stop once no job is left and nothing runs (the benchmark's workers); default: wait for more. */
  untilIdle?: boolean;
  /** When it stops, print one JSON object `{ worker, recorded, handedBack }` on stdout. */
  json?: boolean;
}

/** How long an idle worker waits between looks at the queue (ms). */
const POLL_MS = 1000;

/**
 * Where a taken trial starts: its run's last checkpoint when a previous attempt left one (the run continues, and
 * what it stored after that checkpoint is dropped), else from scratch (a previous attempt's run, if any, removed).
 */
export function resumeFor(trial: QueuedTrial, store: string): { run: string; checkpoint: string; step: number } | null {
  const run = trial.run ?? runByName(store, trial.name);
  if (!run) return null;
  try {
    // the run's latest checkpoint, loaded and verified (the trial's thread loads it again)
    const { plan } = planResume(run, { store });
    if (plan.runId === null) throw new Error('the run is not in the store');
    return { run: plan.runId, checkpoint: plan.checkpoint.dir, step: plan.checkpoint.step };
  } catch {
    // no checkpoint (killed before its first one), or the run is gone: start over in a new run
    const st = RunStore.open(store);
    try {
      if (st.hasRun(run)) st.deleteRun(run, { force: true });
    } finally {
      st.close();
    }
    return null;
  }
}

/** The run a previous attempt created under the trial's (unique) name, when it died before recording its id. */
function runByName(store: string, name: string): string | null {
  let st: RunStore;
  try {
    st = RunStore.open(store, { readonly: true });
  } catch {
    return null; // no store yet: no run either
  }
  try {
    return st.listRuns({ name }).find((r) => r.name === name)?.id ?? null;
  } finally {
    st.close();
  }
}

/**
 * A trial of `doctor --fix --queue`: the doctor's probe of the fix's config (its batches and steps from the sweep's
 * spec), here in this process (a probe is a few dozen steps). A config or data the builder refuses is the trial's
 * error; anything else is a bug.
 */
async function doctorTrial(
  trial: QueuedTrial,
): Promise<{ result: ProbeOutcome | null; error: string | null; bug: boolean }> {
  const { batches, steps } = trial.spec as { batches: number; steps: number };
  try {
    const config = resolveDefaults(Config.parse(trial.config));
    const data = await loadDataset(config.data as Parameters<typeof loadDataset>[0]);
    return { result: probe(config, data, batches, steps), error: null, bug: false };
  } catch (e) {
    const user = isUserError(e);
    return {
      result: null,
      error: user ? e.message : String(e instanceof Error ? (e.stack ?? e.message) : e),
      bug: !user,
    };
  }
}

export async function workerCommand(opts: WorkerOptions): Promise<number> {
  const concurrency = opts.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UsageError(`worker: --concurrency must be a whole number >= 1, got ${String(opts.concurrency)}`);
  const log = opts.log ?? (() => {});
  const queue = await SweepQueue.open(opts.queue);
  const env: NodeJS.ProcessEnv = { ...process.env };
  // NOTE: one matrix-product thread per trial unless GRADGUARD_THREADS says otherwise. A worker runs trial after trial
  // on fresh threads of one process, and with the native backend's thread pool in use (2+ threads) the second trial
  // on a new thread hangs in its first matrix product (seen on main as of this writing, in a local `sweep --parallel 1`
  // on 2 cores too); with one thread the pool is not used. Run more trials at once (--concurrency) to use more cores.
  if (!env.GRADGUARD_THREADS) env.GRADGUARD_THREADS = '1';
  const running = new Map<number, { trial: QueuedTrial; lease: string; thread: RunningTrial | null }>();
  let stopping = null as 'signal' | 'lost' | 'idle' | null;
  let wake: () => void = () => {};
  const stop = (why: 'signal' | 'lost') => {
    if (stopping === null || why === 'lost') stopping = why;
    wake();
  };
  const onSignal = () => stop('signal');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  queue.onLockLost = (e) => {
    log(`gradguard worker: lost the connection that holds its trials (${e.message}); stopping them\n`);
    stop('lost');
  };
  let bug = false;
  let recordedCount = 0;
  let handedBack = 0;
  log(
    `gradguard worker ${queue.me}: ${concurrency} trial${concurrency === 1 ? '' : 's'} at a time from ${queue.url.replace(/:[^:@/]*@/, ':***@')}, runs into ${opts.store}\n`,
  );

  const runOne = async (claimed: { trial: QueuedTrial; lease: string }) => {
    const { trial, lease } = claimed;
    const slot = { trial, lease, thread: null as RunningTrial | null };
    running.set(trial.id, slot);
    try {
      await runClaimed(slot);
    } catch (e) {
      // not the trial's doing (that is its result): hand it back, so that it runs again, here or elsewhere
      await queue.handBack(trial, lease, `worker ${queue.me} failed: ${String(e)}`).catch(() => {});
      throw e;
    } finally {
      if (!stopping) running.delete(trial.id);
    }
  };

  const runClaimed = async (slot: { trial: QueuedTrial; lease: string; thread: RunningTrial | null }) => {
    const { trial, lease } = slot;
    if (trial.kind === 'doctor') {
      const outcome = await doctorTrial(trial);
      if (outcome.bug) bug = true;
      if (await queue.record(trial, lease, { ...outcome, run: null }, outcome.bug)) recordedCount++;
      log(`  ${trial.sweep} doctor trial ${trial.index}: ${outcome.error ? `failed — ${outcome.error}` : 'done'}\n`);
      return;
    }
    const resume = resumeFor(trial, opts.store);
    const params = Object.entries(trial.params).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    log(
      `  ${trial.sweep} trial ${trial.index} (${params.join(' ')}): ${resume ? `resuming run ${resume.run} from step ${resume.step}` : 'starting'} (attempt ${trial.attempts})\n`,
    );
    slot.thread = startTrial(
      {
        index: trial.index,
        sets: trial.sets,
        config: trial.config,
        store: opts.store,
        name: trial.name,
        ...(resume ? { resume: { run: resume.run, checkpoint: resume.checkpoint } } : {}),
        ...(opts.hooks ? { hooks: opts.hooks } : {}),
      },
      env,
      (run) => void queue.setRun(trial, lease, run).catch(() => {}),
    );
    const outcome = await slot.thread.outcome;
    if (stopping) return; // handed back below
    const row = trialRow({ index: trial.index, assignments: trial.params }, outcome);
    const isBug = !outcome.ok && !outcome.user;
    if (isBug) {
      bug = true;
      log(
        `gradguard worker: trial ${trial.index} of ${trial.sweep} hit a bug in gradguard:\n${outcome.stack ?? outcome.error}\n`,
      );
    }
    const recorded = await queue.record(trial, lease, { result: row, error: row.error ?? null, run: row.run }, isBug);
    if (recorded) recordedCount++;
    log(
      `  ${trial.sweep} trial ${trial.index}: ${recorded ? row.status : 'handed on (this worker was judged dead)'}${row.error ? ` — ${row.error}` : ''}\n`,
    );
  };

  const tasks = new Set<Promise<void>>();
  let lastCheck = 0;
  try {
    while (!stopping) {
      if (Date.now() - lastCheck >= CHECK_SECONDS * 1000) {
        lastCheck = Date.now();
        const n = await queue.reapDead();
        if (n) log(`gradguard worker: ${n} trial${n === 1 ? '' : 's'} of a dead worker handed back to the queue\n`);
      }
      const claimed = tasks.size < concurrency ? await queue.claimNext() : 'empty';
      if (claimed === null) continue; // a job whose trial needed no run
      if (claimed !== 'empty') {
        const t: Promise<void> = runOne(claimed).catch((e) => {
          bug = true;
          log(`gradguard worker: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
        });
        tasks.add(t);
        void t.finally(() => {
          tasks.delete(t);
          wake();
        });
        continue;
      }
      if (opts.untilIdle && tasks.size === 0) {
        stopping = 'idle';
        break;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    if (stopping !== 'idle') {
      // stop the trials where they are and hand them back: they continue elsewhere from their checkpoints
      for (const slot of running.values()) await slot.thread?.terminate();
      if (stopping === 'signal')
        for (const slot of running.values())
          await queue.handBack(slot.trial, slot.lease, `worker ${queue.me} stopped`).catch(() => {});
      handedBack = running.size;
      log(`gradguard worker: stopped; ${running.size} running trial${running.size === 1 ? '' : 's'} handed back\n`);
    }
    await Promise.allSettled(tasks);
  } catch (e) {
    for (const slot of running.values()) await slot.thread?.terminate();
    throw queueError(opts.queue, e);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await queue.close();
  }
  if (opts.json) process.stdout.write(`${JSON.stringify({ worker: queue.me, recorded: recordedCount, handedBack })}\n`);
  if (stopping === 'lost') return EXIT.user;
  return bug ? EXIT.bug : stopping === 'signal' ? EXIT.interrupted : EXIT.ok;
}
