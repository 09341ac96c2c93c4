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
import { availableParallelism } from 'node:os';
import { loadDataset } from '../data/index.js';
import { RunStore, storeLabel } from '../track/store.js';
import { Config, resolveDefaults } from '../train/config.js';
import { type RunningTrial, startTrial } from '../train/sweep-trial.js';
import { planResume } from './checkpoint-commands.js';
import { type ProbeOutcome, probe } from './doctor.js';
import { EXIT, isUserError, UsageError } from './errors.js';
import { CHECK_SECONDS, type QueuedTrial, queueError, redactUrl, SweepQueue } from './queue.js';
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

/** A trial this worker runs: its lease, and its thread once started. */
interface Slot {
  trial: QueuedTrial;
  lease: string;
  thread: RunningTrial | null;
}

/** The worker's loop and what it keeps: the trials it runs, why it stops, what it recorded. */
class TrialWorker {
  readonly running = new Map<number, Slot>();
  readonly tasks = new Set<Promise<void>>();
  stopping = null as 'signal' | 'lost' | 'idle' | null;
  bug = false;
  recorded = 0;
  handedBack = 0;
  private wake: () => void = () => {};

  constructor(
    private readonly queue: SweepQueue,
    private readonly opts: WorkerOptions & { concurrency: number },
    private readonly env: NodeJS.ProcessEnv,
    private readonly log: (line: string) => void,
  ) {}

  /** Stops taking trials (a signal), or stops at once (the lock connection was lost). */
  stop(why: 'signal' | 'lost'): void {
    if (this.stopping === null || why === 'lost') this.stopping = why;
    this.wake();
  }

  /** Takes trials until stopped (or, with `untilIdle`, until the queue is empty), then hands back what runs. */
  async loop(): Promise<void> {
    let lastCheck = 0;
    while (!this.stopping) {
      if (Date.now() - lastCheck >= CHECK_SECONDS * 1000) {
        lastCheck = Date.now();
        const n = await this.queue.reapDead();
        if (n)
          this.log(`gradguard worker: ${n} trial${n === 1 ? '' : 's'} of a dead worker handed back to the queue\n`);
      }
      const claimed = this.tasks.size < this.opts.concurrency ? await this.queue.claimNext() : 'empty';
      if (claimed === null) continue; // a job whose trial needed no run
      if (claimed !== 'empty') {
        this.spawn(claimed);
        continue;
      }
      if (this.opts.untilIdle && this.tasks.size === 0) {
        this.stopping = 'idle';
        break;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, POLL_MS);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    if (this.stopping !== 'idle') {
      // stop the trials where they are and hand them back: they continue elsewhere from their checkpoints
      await this.terminateAll();
      if (this.stopping === 'signal')
        for (const slot of this.running.values())
          await this.queue.handBack(slot.trial, slot.lease, `worker ${this.queue.me} stopped`).catch(() => {});
      this.handedBack = this.running.size;
      const n = this.running.size;
      this.log(`gradguard worker: stopped; ${n} running trial${n === 1 ? '' : 's'} handed back\n`);
    }
    await Promise.allSettled(this.tasks);
  }

  async terminateAll(): Promise<void> {
    for (const slot of this.running.values()) await slot.thread?.terminate();
  }

  private spawn(claimed: { trial: QueuedTrial; lease: string }): void {
    const t: Promise<void> = this.runOne(claimed).catch((e) => {
      this.bug = true;
      this.log(`gradguard worker: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    });
    this.tasks.add(t);
    void t.finally(() => {
      this.tasks.delete(t);
      this.wake();
    });
  }

  private async runOne({ trial, lease }: { trial: QueuedTrial; lease: string }): Promise<void> {
    const slot: Slot = { trial, lease, thread: null };
    this.running.set(trial.id, slot);
    try {
      if (trial.kind === 'doctor') await this.runDoctor(slot);
      else await this.runTrial(slot);
    } catch (e) {
      // not the trial's doing (that is its result): hand it back, so that it runs again, here or elsewhere
      await this.queue.handBack(trial, lease, `worker ${this.queue.me} failed: ${String(e)}`).catch(() => {});
      throw e;
    } finally {
      if (!this.stopping) this.running.delete(trial.id);
    }
  }

  private async runDoctor({ trial, lease }: Slot): Promise<void> {
    const outcome = await doctorTrial(trial);
    if (outcome.bug) this.bug = true;
    if (await this.queue.record(trial, lease, { ...outcome, run: null }, outcome.bug)) this.recorded++;
    this.log(`  ${trial.sweep} doctor trial ${trial.index}: ${outcome.error ? `failed — ${outcome.error}` : 'done'}\n`);
  }

  private async runTrial(slot: Slot): Promise<void> {
    const { trial, lease } = slot;
    const resume = resumeFor(trial, this.opts.store);
    const params = Object.entries(trial.params).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
    this.log(
      `  ${trial.sweep} trial ${trial.index} (${params.join(' ')}): ${resume ? `resuming run ${resume.run} from step ${resume.step}` : 'starting'} (attempt ${trial.attempts})\n`,
    );
    slot.thread = startTrial(
      {
        index: trial.index,
        sets: trial.sets,
        config: trial.config,
        store: this.opts.store,
        name: trial.name,
        ...(resume ? { resume: { run: resume.run, checkpoint: resume.checkpoint } } : {}),
        ...(this.opts.hooks ? { hooks: this.opts.hooks } : {}),
      },
      this.env,
      (run) => void this.queue.setRun(trial, lease, run).catch(() => {}),
    );
    const outcome = await slot.thread.outcome;
    if (this.stopping) return; // handed back by the loop
    const row = trialRow({ index: trial.index, assignments: trial.params }, outcome);
    const isBug = !outcome.ok && !outcome.user;
    if (isBug) {
      this.bug = true;
      this.log(
        `gradguard worker: trial ${trial.index} of ${trial.sweep} hit a bug in gradguard:\n${outcome.stack ?? outcome.error}\n`,
      );
    }
    const recorded = await this.queue.record(
      trial,
      lease,
      { result: row, error: row.error ?? null, run: row.run },
      isBug,
    );
    if (recorded) this.recorded++;
    this.log(
      `  ${trial.sweep} trial ${trial.index}: ${recorded ? row.status : 'handed on (this worker was judged dead)'}${row.error ? ` — ${row.error}` : ''}\n`,
    );
  }
}

export async function workerCommand(opts: WorkerOptions): Promise<number> {
  const concurrency = opts.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new UsageError(`worker: --concurrency must be a whole number >= 1, got ${String(opts.concurrency)}`);
  const log = opts.log ?? (() => {});
  const queue = await SweepQueue.open(opts.queue);
  const env: NodeJS.ProcessEnv = { ...process.env };
  // The cores shared between the trials running at once, as in a local sweep (unless GRADGUARD_THREADS says otherwise).
  if (!env.GRADGUARD_THREADS)
    env.GRADGUARD_THREADS = String(Math.max(1, Math.floor(availableParallelism() / concurrency)));
  const w = new TrialWorker(queue, { ...opts, concurrency }, env, log);
  const onSignal = () => w.stop('signal');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  queue.onLockLost = (e) => {
    log(`gradguard worker: lost the connection that holds its trials (${e.message}); stopping them\n`);
    w.stop('lost');
  };
  log(
    `gradguard worker ${queue.me}: ${concurrency} trial${concurrency === 1 ? '' : 's'} at a time from ${redactUrl(queue.url)}, runs into ${storeLabel(opts.store)}\n`,
  );
  try {
    await w.loop();
  } catch (e) {
    await w.terminateAll();
    throw queueError(opts.queue, e);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await queue.close();
  }
  if (opts.json)
    process.stdout.write(`${JSON.stringify({ worker: queue.me, recorded: w.recorded, handedBack: w.handedBack })}\n`);
  if (w.stopping === 'lost') return EXIT.user;
  return w.bug ? EXIT.bug : w.stopping === 'signal' ? EXIT.interrupted : EXIT.ok;
}
