/**
 * One sweep trial on its own worker thread (sweep-worker.ts): the same code runs a trial of a local `gradguard sweep`
 * and a trial a `gradguard worker` took from the queue.
 */
import { Worker } from 'node:worker_threads';
import type { SessionResult } from './session.js';
import type { TrialMessage, TrialRequest } from './sweep-worker.js';

export type TrialOutcome =
  | { ok: true; result: SessionResult }
  | { ok: false; error: string; user: boolean; stack?: string };

/** A trial running on its thread: its outcome, and `terminate` to stop it where it is. */
export interface RunningTrial {
  outcome: Promise<TrialOutcome>;
  terminate(): Promise<void>;
}

/**
 * Starts `req` on a worker thread with `env` (its GRADGUARD_THREADS shares the cores among the trials running at
 * once); `onRun` receives the run's id once it is in the store.
 */
export function startTrial(req: TrialRequest, env: NodeJS.ProcessEnv, onRun?: (run: string) => void): RunningTrial {
  const here = new URL(import.meta.url);
  const isTs = here.pathname.endsWith('.ts');
  const url = new URL(`./sweep-worker.${isTs ? 'ts' : 'js'}`, here);
  // NOTE: running from TypeScript sources (tests, tsx), the worker registers tsx's loader itself before importing
  const w = isTs
    ? new Worker(
        `(async () => { const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}); register(); await import(${JSON.stringify(url.href)}); })();`,
        { eval: true, workerData: req, stdout: true, env },
      )
    : new Worker(url, { workerData: req, stdout: true, env });
  const outcome = new Promise<TrialOutcome>((resolve) => {
    let settled = false;
    const settle = (o: TrialOutcome) => {
      if (!settled) resolve(o);
      settled = true;
    };
    w.on('message', (m: TrialMessage) => {
      if (m.type === 'run') onRun?.(m.run);
      else if (m.ok) settle({ ok: true, result: m.result });
      else settle({ ok: false, error: m.error, user: m.user, ...(m.stack ? { stack: m.stack } : {}) });
    });
    w.once('error', (e) =>
      settle({ ok: false, error: e.message, user: false, ...(e.stack ? { stack: e.stack } : {}) }),
    );
    w.once('exit', (code) => settle({ ok: false, error: `worker exited with code ${code}`, user: false }));
  });
  return { outcome, terminate: () => w.terminate().then(() => undefined) };
}

/** Runs `req` on a worker thread to its end (see `startTrial`). */
export function runTrial(req: TrialRequest, env: NodeJS.ProcessEnv): Promise<TrialOutcome> {
  return startTrial(req, env).outcome;
}
