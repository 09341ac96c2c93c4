/**
 * A sweep trial on a worker thread (started by `runTrial`, sweep-trial.ts): takes the trial's config (its file and
 * `--set`s, or the config already resolved by the machine that queued it), trains it quietly into the run store, and
 * posts the result (or the error: a user's mistake as its message, a bug with its stack) back. On the way it posts
 * `{ type: 'run', run }` once the run exists in the store, so a queue worker can record which run a trial writes.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isUserError } from '../base/errors.js';
import { loadCheckpoint, type ResumePlan } from './checkpoint.js';
import { Config, loadConfig, resolveDefaults } from './config.js';
import { trainSession } from './session.js';

export interface TrialRequest {
  index: number;
  file?: string;
  sets: string[];
  /** The trial's config as resolved where it was queued (a distributed sweep); `file` and `sets` are then unused. */
  config?: unknown;
  store: string | null;
  name: string;
  /**
   * Continue the trial's run `run` from the checkpoint directory `checkpoint` (a retried trial of a distributed sweep);
   * what the run stored after that checkpoint is dropped and trained again.
   */
  resume?: { run: string; checkpoint: string };
  /**
   * The URL of a module whose `onStep(step, totalSteps)` export is called after each step's metrics are stored (the
   * kill tests use it to die at a chosen step); none in normal use.
   */
  hooks?: string;
}

/** What the thread posts: `run` as soon as the run exists, then one `result`. */
export type TrialMessage =
  | { type: 'run'; run: string }
  | { type: 'result'; ok: true; index: number; result: import('./session.js').SessionResult }
  | { type: 'result'; ok: false; index: number; user: boolean; error: string; stack?: string };

const req = workerData as TrialRequest;
const post = (m: TrialMessage) => parentPort!.postMessage(m);
try {
  const hooks = req.hooks
    ? ((await import(req.hooks)) as { onStep?: (step: number, total: number) => void })
    : undefined;
  const { config, source } =
    req.config !== undefined
      ? { config: resolveDefaults(Config.parse(req.config)), source: req.resume ? 'checkpoint' : 'queue' }
      : loadConfig(req.file, req.sets);
  // NOTE: the checkpoint is loaded here, not passed in: its tensors cannot cross to a thread
  const resume: ResumePlan | undefined = req.resume
    ? { checkpoint: loadCheckpoint(req.resume.checkpoint), runId: req.resume.run, truncate: true, root: null }
    : undefined;
  const result = await trainSession(config, {
    store: req.store,
    source,
    name: req.name,
    ...(resume ? { resume } : {}),
    onRun: (run) => post({ type: 'run', run }),
    ...(hooks?.onStep ? { onStep: hooks.onStep } : {}),
  });
  post({ type: 'result', ok: true, index: req.index, result });
} catch (e) {
  // a user's mistake is its message; a bug keeps its name and stack (the sweep prints it and exits with 1)
  const user = isUserError(e);
  post({
    type: 'result',
    ok: false,
    index: req.index,
    user,
    error: user ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    ...(!user && e instanceof Error && e.stack ? { stack: e.stack } : {}),
  });
}
