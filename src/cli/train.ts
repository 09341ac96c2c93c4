/**
 * `gradguard train`: validates the config before any work, trains (see train/session.ts: monitor on, live warnings,
 * run store, progress) and ends with the summary and the gradient report, or one JSON object with `--json`.
 */
import { formatMetric } from '../monitor/format.js';
import { renderReport } from '../monitor/report.js';
import { loadConfig } from '../train/config.js';
import { type SessionResult, trainSession } from '../train/session.js';
import { planResume } from './checkpoint-commands.js';
import { EXIT, UsageError } from './errors.js';

export interface TrainCommandOptions {
  config?: string;
  set: string[];
  json: boolean;
  /** Run store directory, or null for none. */
  store: string | null;
  quiet: boolean;
  /** `--resume RUN|DIR`: continue a run from its latest checkpoint, or from a checkpoint directory. */
  resume?: string | undefined;
  /** `--name`: the run's name in the store. */
  name?: string;
  /** `--tag` (repeatable): tags stored with the run (in its stored config, under `meta.tags`). */
  tags?: string[];
  /** `--notes`: free text stored with the run (`meta.notes`). */
  notes?: string;
}

/** The exit status of a finished training session: 0, or 3 diverged, 130 interrupted, 1 failed (see errors.ts). */
export function exitStatusOf(status: SessionResult['status']): number {
  return status === 'finished'
    ? EXIT.ok
    : status === 'diverged'
      ? EXIT.diverged
      : status === 'interrupted'
        ? EXIT.interrupted
        : EXIT.bug;
}

/** The longest run name and notes taken (characters): a name is a label, notes a paragraph. */
const MAX_NAME = 200;
const MAX_NOTES = 10_000;

/** Checks `--name`, `--tag` and `--notes` (no empty or control-character names and tags, bounded lengths). */
function runMeta(opts: TrainCommandOptions): { name?: string; meta?: { tags: string[]; notes?: string } } {
  const label = (what: string, v: string, max: number) => {
    const control = [...v].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f);
    if (v.trim() === '' || v.length > max || control)
      throw new UsageError(
        `${what} '${v.slice(0, 40)}': give 1 to ${max} characters without control characters (newlines, tabs)`,
      );
    return v;
  };
  const out: { name?: string; meta?: { tags: string[]; notes?: string } } = {};
  if (opts.name !== undefined) out.name = label('--name', opts.name, MAX_NAME);
  const tags = [...new Set((opts.tags ?? []).map((t) => label('--tag', t, MAX_NAME)))];
  if (opts.notes !== undefined && opts.notes.length > MAX_NOTES)
    throw new UsageError(`--notes: at most ${MAX_NOTES} characters (got ${opts.notes.length})`);
  if (tags.length || opts.notes !== undefined)
    out.meta = { tags, ...(opts.notes !== undefined ? { notes: opts.notes } : {}) };
  if ((out.name !== undefined || out.meta) && opts.store === null)
    throw new UsageError('--name, --tag and --notes are stored with the run: drop --no-store, or drop them');
  return out;
}

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(2)}%`);

/** The human-readable end of a run: status, test metrics, and the gradient report. */
export function formatResult(r: SessionResult, color: boolean): string {
  return [
    '',
    `${r.status === 'finished' ? 'finished' : r.status.toUpperCase()}: ${r.steps} steps, ${r.epochs} epochs in ${r.trainSeconds.toFixed(1)} s (${r.msPerStep.toFixed(2)} ms/step, backend ${r.backend})${r.reason ? ` — ${r.reason}` : ''}`,
    `test: loss ${formatMetric(r.test.loss)}${r.test.accuracy !== undefined ? `, accuracy ${pct(r.test.accuracy)}` : ''}   steps skipped ${r.skippedSteps}, clipped ${r.clippedSteps}${r.run ? `   run ${r.run}` : ''}`,
    '',
    renderReport(r.layers, r.diagnosis, { color, title: 'Gradient report (last 50 logged steps)' }),
  ].join('\n');
}

/**
 * `gradguard train`: returns the exit status (0 finished, 3 diverged, 130 interrupted); with `--json` the one object
 * on stdout carries it as `exitStatus`. Errors are thrown for main's reporter.
 */
export async function trainCommand(opts: TrainCommandOptions): Promise<number> {
  const meta = runMeta(opts);
  const resumed = opts.resume
    ? planResume(opts.resume, { store: opts.store, set: opts.set, config: opts.config })
    : null;
  const { config, source } = resumed
    ? { config: resumed.config, source: resumed.plan.checkpoint.dir }
    : loadConfig(opts.config, opts.set);
  const result = await trainSession(config, {
    ...(resumed ? { resume: resumed.plan } : {}),
    store: opts.store,
    source,
    ...meta,
    log: (s) => {
      if (!opts.quiet || s.startsWith('warning')) process.stderr.write(`${s}\n`);
    },
    progressBar: !opts.quiet && !opts.json,
  });
  const exitStatus = exitStatusOf(result.status);
  if (opts.json) process.stdout.write(`${JSON.stringify({ ...result, exitStatus })}\n`);
  else process.stdout.write(`${formatResult(result, Boolean(process.stdout.isTTY))}\n`);
  return exitStatus;
}
