/**
 * The queue side of `gradguard sweep`: `--queue URL` queues one job per trial (the trials' configs resolved here, so
 * a worker needs no config file) and follows them with a progress bar, or returns at once with `--detach`;
 * `--status ID` shows where a sweep is. The workers are `gradguard worker` processes (worker.ts).
 */
import cliProgress from 'cli-progress';
import { CHECK_SECONDS, type QueuedTrial, queueError, type SweepInfo, SweepQueue, type TrialSpec } from './queue.js';
import { formatTable as alignedTable } from './runs.js';
import type { TrialRow } from './sweep.js';

/** A trial's row of the table, from the queue: its recorded result, or where it stands. */
export function queuedRow(t: QueuedTrial): TrialRow {
  if (t.result && t.kind === 'sweep') return { ...(t.result as TrialRow), trial: t.index, params: t.params };
  return {
    trial: t.index,
    params: t.params,
    status: t.state,
    testAccuracy: null,
    testLoss: null,
    finalLoss: null,
    verdict: '-',
    seconds: null,
    run: t.run,
    ...(t.state === 'failed' && t.error ? { error: t.error } : {}),
  };
}

/** Queues a sweep (its trials made for its id); returns the id. */
export async function enqueueSweep(
  url: string,
  kind: 'sweep' | 'doctor',
  spec: Record<string, unknown>,
  trials: (id: string) => readonly TrialSpec[],
): Promise<string> {
  const queue = await SweepQueue.open(url, { supervise: false });
  try {
    return await queue.enqueue(kind, spec, trials);
  } finally {
    await queue.close();
  }
}

export interface FollowOptions {
  /** A line per finished trial (stderr). */
  log: (line: string) => void;
  /** Draw a progress bar on stderr (a terminal only). */
  progressBar: boolean;
}

/**
 * Follows sweep `id` until every trial is done or failed: woken by the workers' notifications, and every few seconds
 * also checking for trials whose worker died (handed back to the queue, as a worker would). Ctrl+C stops following
 * (the sweep goes on); `interrupted` is then true.
 */
export async function followSweep(
  url: string,
  id: string,
  opts: FollowOptions,
): Promise<{ trials: QueuedTrial[]; interrupted: boolean }> {
  const queue = await SweepQueue.open(url);
  let wake: () => void = () => {};
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    wake();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const bar =
    opts.progressBar && process.stderr.isTTY
      ? new cliProgress.SingleBar(
          { format: '  {bar} {value}/{total} trials | {running} running | {failed} failed', hideCursor: true },
          cliProgress.Presets.shades_classic,
        )
      : null;
  const reported = new Set<number>();
  try {
    await queue.listen((sweep) => {
      if (sweep === id) wake();
    });
    let trials = await queue.trials(id);
    bar?.start(trials.length, 0, { running: 0, failed: 0 });
    let lastCheck = 0;
    for (;;) {
      trials = await queue.trials(id);
      const finished = trials.filter((t) => t.state === 'done' || t.state === 'failed');
      for (const t of finished) {
        if (reported.has(t.id)) continue;
        reported.add(t.id);
        if (!bar) opts.log(trialLine(t));
      }
      bar?.update(finished.length, {
        running: trials.filter((t) => t.state === 'running').length,
        failed: trials.filter((t) => t.state === 'failed').length,
      });
      if (finished.length === trials.length || interrupted) break;
      if (Date.now() - lastCheck >= CHECK_SECONDS * 1000) {
        lastCheck = Date.now();
        if (await queue.reapDead()) continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CHECK_SECONDS * 1000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    bar?.stop();
    return { trials, interrupted };
  } catch (e) {
    bar?.stop();
    throw queueError(url, e);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await queue.close();
  }
}

/** The stderr line of a finished trial (as a local sweep prints it). */
function trialLine(t: QueuedTrial): string {
  const params = Object.entries(t.params)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  if (t.kind !== 'sweep') return `  trial ${t.index} (${params}): ${t.state}${t.error ? ` — ${t.error}` : ''}\n`;
  const r = queuedRow(t);
  const acc = r.testAccuracy !== null ? `, test accuracy ${(r.testAccuracy * 100).toFixed(2)}%` : '';
  return `  trial ${t.index} (${params}): ${r.status}${acc}${r.error ? ` — ${r.error}` : ''}\n`;
}

/** What `sweep --status ID --json` prints. */
export interface SweepStatus {
  sweep: { id: string; kind: string; createdAt: string; trials: number; counts: Record<string, number> };
  trials: (TrialRow & { state: string; attempts: number; worker: string | null })[];
}

/** Where sweep `id` (a unique prefix works) is: per trial its state, run and result. */
export async function sweepStatus(url: string, id: string): Promise<SweepStatus> {
  const queue = await SweepQueue.open(url, { supervise: false });
  try {
    const sweep: SweepInfo = await queue.sweep(id);
    const trials = await queue.trials(sweep.id);
    const counts: Record<string, number> = { queued: 0, running: 0, done: 0, failed: 0 };
    for (const t of trials) counts[t.state] = (counts[t.state] ?? 0) + 1;
    return {
      sweep: {
        id: sweep.id,
        kind: sweep.kind,
        createdAt: new Date(sweep.createdAt).toISOString(),
        trials: sweep.size,
        counts,
      },
      trials: trials.map((t) => ({
        ...queuedRow(t),
        state: t.state,
        attempts: t.attempts,
        worker: t.worker,
        run: t.run ?? queuedRow(t).run,
      })),
    };
  } finally {
    await queue.close();
  }
}

/** `sweep --status` as text: a header line and one row per trial. */
export function formatStatus(s: SweepStatus): string {
  const c = s.sweep.counts;
  const head = `sweep ${s.sweep.id} (${s.sweep.kind}, queued ${s.sweep.createdAt}): ${s.sweep.trials} trials, ${c.done} done, ${c.failed} failed, ${c.running} running, ${c.queued} queued`;
  const keys = [...new Set(s.trials.flatMap((r) => Object.keys(r.params)))];
  const header = ['trial', ...keys, 'state', 'attempts', 'test acc', 'final loss', 'verdict', 'run', 'worker'];
  const body = s.trials.map((r) => [
    String(r.trial),
    ...keys.map((k) => String(r.params[k])),
    r.state,
    String(r.attempts),
    r.testAccuracy === null ? '-' : `${(r.testAccuracy * 100).toFixed(2)}%`,
    r.finalLoss === null || !Number.isFinite(r.finalLoss) ? '-' : r.finalLoss.toFixed(4),
    r.error ? `error: ${r.error}` : r.verdict,
    r.run ?? '-',
    r.worker ?? '-',
  ]);
  return `${head}\n${alignedTable(header, body).trimEnd()}`;
}
