/**
 * A sweep trial on a worker thread: validates the trial's config, trains it quietly into the shared run store and
 * posts the result (or the error: a user's mistake as its message, a bug with its stack) back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isUserError } from '../base/errors.js';
import { loadConfig } from './config.js';
import { trainSession } from './session.js';

export interface TrialRequest {
  index: number;
  file?: string;
  sets: string[];
  store: string | null;
  name: string;
}

const req = workerData as TrialRequest;
try {
  const { config, source } = loadConfig(req.file, req.sets);
  const result = await trainSession(config, { store: req.store, source, name: req.name });
  parentPort!.postMessage({ ok: true, index: req.index, result });
} catch (e) {
  // a user's mistake is its message; a bug keeps its name and stack (the sweep prints it and exits with 1)
  const user = isUserError(e);
  parentPort!.postMessage({
    ok: false,
    index: req.index,
    user,
    error: user ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e),
    ...(!user && e instanceof Error && e.stack ? { stack: e.stack } : {}),
  });
}
