/**
 * `gradguard train`: validates the config before any work, trains (see train/session.ts: monitor on, live warnings,
 * run store, progress) and ends with the summary and the gradient report, or one JSON object with `--json`.
 */
import { renderReport } from '../monitor/report.js';
import { loadConfig } from '../train/config.js';
import { type SessionResult, trainSession } from '../train/session.js';
import { planResume } from './checkpoint-commands.js';

export interface TrainCommandOptions {
  config?: string;
  set: string[];
  json: boolean;
  /** Run store directory, or null for none. */
  store: string | null;
  quiet: boolean;
  /** `--resume RUN|DIR`: continue a run from its latest checkpoint, or from a checkpoint directory. */
  resume?: string | undefined;
}

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(2)}%`);

/** The human-readable end of a run: status, test metrics, and the gradient report. */
export function formatResult(r: SessionResult, color: boolean): string {
  return [
    '',
    `${r.status === 'finished' ? 'finished' : r.status.toUpperCase()}: ${r.steps} steps, ${r.epochs} epochs in ${r.trainSeconds.toFixed(1)} s (${r.msPerStep.toFixed(2)} ms/step, backend ${r.backend})${r.reason ? ` — ${r.reason}` : ''}`,
    `test: loss ${r.test.loss.toFixed(4)}${r.test.accuracy !== undefined ? `, accuracy ${pct(r.test.accuracy)}` : ''}   steps skipped ${r.skippedSteps}, clipped ${r.clippedSteps}${r.run ? `   run ${r.run}` : ''}`,
    '',
    renderReport(r.layers, r.diagnosis, { color, title: 'Gradient report (last 50 logged steps)' }),
  ].join('\n');
}

export async function trainCommand(opts: TrainCommandOptions): Promise<number> {
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
    log: (s) => {
      if (!opts.quiet || s.startsWith('warning')) process.stderr.write(`${s}\n`);
    },
    progressBar: !opts.quiet && !opts.json,
  });
  if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${formatResult(result, Boolean(process.stdout.isTTY))}\n`);
  return result.status === 'failed' ? 1 : 0;
}
