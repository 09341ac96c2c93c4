/**
 * Two processes writing to one store: every write of a RunStore waits for another process's write transaction
 * (busy_timeout) instead of failing with "database is locked". A deferred transaction that reads before it writes
 * cannot wait: once the other writer commits, its snapshot is stale and SQLite refuses the write at once. This is how
 * two `gradguard train` runs into one new store failed (the histogram write), so each write below is made while a
 * child process holds the write lock and then commits a change.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { histogram } from '../monitor/histogram.js';
import { RunStore } from './store.js';

const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');

/**
 * A child that takes the write lock (BEGIN IMMEDIATE), changes a row, says `locked`, holds the lock for `holdMs`, then
 * commits. Resolves once it has said `locked`; `done` resolves with its exit code.
 */
function holdWriteLock(dbPath: string, holdMs: number) {
  const script = `
    const Database = require(${JSON.stringify(sqlite)});
    const db = new Database(${JSON.stringify(dbPath)});
    db.exec('BEGIN IMMEDIATE');
    db.prepare("UPDATE runs SET name = 'touched'").run();
    process.stdout.write('locked\\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${holdMs});
    db.exec('COMMIT');
    db.close();
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const locked = new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (out.includes('locked\n')) resolve();
    });
    child.on('close', () => reject(new Error(`the lock holder exited before locking: ${out}`)));
  });
  return { locked, done };
}

let dir: string;
let store: RunStore;
let id: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-writers-'));
  store = RunStore.open(dir);
  id = store.createRun({ name: 'mine', config: {}, backend: 'js' });
  store.logStep(id, 0, { loss: 1 });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const writes: [string, () => void][] = [
  ['logStep', () => store.logStep(id, 1, { loss: 0.5 })],
  ['logHistograms', () => store.logHistograms(id, 1, [{ name: 'layers.0', grad: histogram([[1, 2, 3]], 4) }])],
  [
    'logTimeFlow',
    () => store.logTimeFlow(id, 1, [{ layer: 'rnn', sub: 'l0', length: 2, steps: [0, 1], norms: [1, 2] }]),
  ],
  ['setSummary', () => store.setSummary(id, { baseline: { loss: 1, predictor: 'the mean' } })],
  ['logFinding', () => store.logFinding(id, 1, { kind: 'tick' })],
  ['finishRun', () => store.finishRun(id, 'finished', { steps: 2 })],
];

describe('a write while another process holds the write lock and then commits', () => {
  it.each(writes)('%s waits for it and succeeds', async (_name, write) => {
    // A read first, so this connection has a snapshot from before the other process's commit.
    expect(store.getRun(id).name).toBe('mine');
    const holder = holdWriteLock(join(dir, 'runs.db'), 300);
    await holder.locked;
    write();
    expect(await holder.done).toBe(0);
    // The other process's change and ours are both there.
    expect(store.getRun(id).name).toBe('touched');
  });
});
