/**
 * A sweep trial on a worker thread: validates the trial's config, trains it quietly into the shared run store and
 * posts the result (or the user-facing error) back.
 */
import { parentPort, workerData } from 'node:worker_threads';
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
  parentPort!.postMessage({
    ok: false,
    index: req.index,
    error: e instanceof Error ? `${e.name}: ${e.message}` : String(e),
  });
}
