/**
 * The store under real processes: a reader while another process writes, and writers killed with SIGKILL at random
 * moments. The writers are child Node processes running the real RunStore (through tsx).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunStore } from './store.js';
import type { LayerStatRow, MetricSeries } from './types.js';

const LAYERS = 20;
const storeModule = fileURLToPath(new URL('./store.ts', import.meta.url));

/**
 * The child: creates a run, prints `id <id>`, then logs steps (3 metrics each; 20 layers on even steps; a finding
 * every 50 steps; a 1 ms pause every 20) and, once logStep has returned, appends the step's number to a confirmation
 * file with a plain write(2) (stdout to a pipe may still be queued in the process when it is killed). Stops after
 * `maxSteps` when given.
 */
const WRITER = `
import { openSync, writeSync } from 'node:fs';
import { RunStore } from ${JSON.stringify(storeModule)};
const [dir, confirmPath, maxSteps] = process.argv.slice(2);
const confirm = openSync(confirmPath, 'w');
const pause = new Int32Array(new SharedArrayBuffer(4));
const store = RunStore.open(dir);
const id = store.createRun({ name: 'writer', config: { pid: process.pid }, backend: 'js' });
process.stdout.write('id ' + id + '\\n');
const layers = Array.from({ length: ${LAYERS} }, (_, i) => ({
  name: 'layers.' + i, gradNorm: 0, gradMaxAbs: i, weightNorm: 1, updateRatio: 0, actMean: 0, actStd: 1, nonFinite: 0,
}));
const max = maxSteps === undefined ? Infinity : Number(maxSteps);
for (let step = 0; step < max; step++) {
  for (let i = 0; i < layers.length; i++) layers[i].gradNorm = step + i / 100;
  store.logStep(id, step, { loss: step / 2, lr: 1 / (step + 1), acc: step % 7 }, step % 2 === 0 ? layers : undefined);
  if (step % 50 === 0) store.logFinding(id, step, { kind: 'tick', evidence: { step } });
  writeSync(confirm, step + '\\n');
  // A breath every 20 steps, as a real training step would leave, so five writers on two cores take turns.
  if (step % 20 === 19) Atomics.wait(pause, 0, 0, 1);
}
store.finishRun(id, 'finished', { steps: max });
store.close();
`;

let work: string;
let writerPath: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gg-durable-'));
  writerPath = join(work, 'writer.mts');
  writeFileSync(writerPath, WRITER);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Writer {
  child: ChildProcess;
  /** The run id, once printed. */
  id: Promise<string>;
  /** Resolves once the first step is confirmed (or the process is gone). */
  started: Promise<void>;
  /** When the process has closed: the steps it confirmed (complete lines only), how it ended, its stderr. */
  closed: Promise<{ steps: number[]; code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

let writers = 0;

function startWriter(dir: string, maxSteps?: number): Writer {
  const confirmPath = join(work, `confirmed-${writers++}.txt`);
  const args = ['--import', 'tsx', writerPath, dir, confirmPath, ...(maxSteps === undefined ? [] : [String(maxSteps)])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let exited = false;
  let resolveId!: (id: string) => void;
  const id = new Promise<string>((r) => (resolveId = r));
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    const m = /^id (\S+)\n/.exec(out);
    if (m) resolveId(m[1]!);
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const started = (async () => {
    await Promise.race([id, new Promise((r) => child.once('exit', r))]);
    while (!exited && !(existsSync(confirmPath) && statSync(confirmPath).size > 0)) {
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  const closed = new Promise<{ steps: number[]; code: number | null; signal: NodeJS.Signals | null; stderr: string }>(
    (resolve) => {
      child.on('close', (code, signal) => {
        exited = true;
        const lines = existsSync(confirmPath) ? readFileSync(confirmPath, 'utf8').split('\n') : [];
        lines.pop(); // a partial last line is not a confirmation
        resolve({ steps: lines.map(Number), code, signal, stderr: err });
      });
    },
  );
  return { child, id, started, closed };
}

/** mulberry32: a small seeded generator, so the kill moments are the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Checks a snapshot of the writer's metrics exactly: steps 0..n-1 with n > upTo, each with its three values.
 * @returns the first problem, or null (plain comparisons: this runs on every snapshot)
 */
function metricsProblem(m: MetricSeries, upTo: number): string | null {
  if (m.steps.length <= upTo) return `only ${m.steps.length} steps, expected more than ${upTo}`;
  const { loss, lr, acc } = m.series;
  for (let i = 0; i < m.steps.length; i++) {
    if (m.steps[i] !== i) return `step ${m.steps[i]} at position ${i}`;
    if (loss?.[i] !== i / 2 || lr?.[i] !== 1 / (i + 1) || acc?.[i] !== i % 7) return `wrong metrics at step ${i}`;
  }
  return null;
}

/** Checks the writer's layer statistics: 20 layers on every even step up to lastStep. */
function layersProblem(rows: readonly LayerStatRow[], lastStep: number): string | null {
  const expected = (Math.floor(lastStep / 2) + 1) * LAYERS;
  if (rows.length !== expected) return `${rows.length} layer rows up to step ${lastStep}, expected ${expected}`;
  for (let k = 0; k < rows.length; k++) {
    const r = rows[k]!;
    const step = 2 * Math.floor(k / LAYERS);
    const i = k % LAYERS;
    if (r.step !== step || r.name !== `layers.${i}` || r.gradNorm !== step + i / 100 || r.gradMaxAbs !== i) {
      return `wrong layer row ${k}: ${JSON.stringify(r)}`;
    }
  }
  return null;
}

describe('RunStore across processes', () => {
  it('lets a reader read consistent snapshots while another process writes', async () => {
    const dir = join(work, 'concurrent');
    const steps = 3000;
    const writer = startWriter(dir, steps);
    const id = await writer.id;
    const reader = RunStore.open(dir, { create: false });
    let reads = 0;
    let partial = 0;
    let done = false;
    void writer.closed.then(() => (done = true));
    try {
      while (!done) {
        const m = reader.getMetrics(id);
        if (m.steps.length > 0) expect(metricsProblem(m, m.steps.length - 1)).toBeNull();
        const layers = reader.getLayerStats(id);
        if (layers.length > 0) expect(layersProblem(layers, layers[layers.length - 1]!.step)).toBeNull();
        reads++;
        if (m.steps.length > 0 && m.steps.length < steps) partial++;
        await new Promise((r) => setTimeout(r, 5));
      }
      const result = await writer.closed;
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(reads).toBeGreaterThan(2);
      expect(partial).toBeGreaterThan(0); // it did read while the writer was half-way
      expect(metricsProblem(reader.getMetrics(id), steps - 1)).toBeNull();
      expect(layersProblem(reader.getLayerStats(id), steps - 1)).toBeNull();
      expect(reader.getRun(id)).toMatchObject({ status: 'finished', lastStep: steps - 1 });
      expect(reader.integrityCheck()).toBe('ok');
    } finally {
      reader.close();
    }
  });

  it('never loses a logged step nor corrupts the file when writers are killed at random moments', async () => {
    const dir = join(work, 'killed');
    const random = rng(20261126);
    // Two rounds of five writers at once (as a parallel sweep would run them), each killed at its own random moment;
    // the second round starts on the file the killed first round left behind.
    for (let round = 0; round < 2; round++) {
      const writers = Array.from({ length: 5 }, () => startWriter(dir));
      await Promise.all(
        writers.map(async (w) => {
          await w.started;
          await new Promise((r) => setTimeout(r, 5 + random() * 300));
          w.child.kill('SIGKILL');
        }),
      );
      const results = await Promise.all(writers.map((w) => w.closed));
      const ids = await Promise.all(writers.map((w) => w.id));

      const store = RunStore.open(dir, { create: false });
      try {
        expect(store.integrityCheck()).toBe('ok');
        results.forEach((result, k) => {
          expect(result.signal, result.stderr).toBe('SIGKILL');
          const confirmed = result.steps[result.steps.length - 1]!;
          expect(result.steps).toEqual(Array.from({ length: confirmed + 1 }, (_, i) => i));
          const m = store.getMetrics(ids[k]!);
          // Every confirmed step is there (and perhaps the one being logged when it died), nothing half-written.
          expect(metricsProblem(m, confirmed)).toBeNull();
          const last = m.steps[m.steps.length - 1]!;
          expect(last - confirmed).toBeLessThanOrEqual(1);
          expect(layersProblem(store.getLayerStats(ids[k]!), last)).toBeNull();
          // A finding is its own transaction after its step's: a kill between the two loses only the finding.
          const findings = store.getFindings(ids[k]!).length;
          expect(findings).toBeLessThanOrEqual(Math.floor(last / 50) + 1);
          expect(findings).toBeGreaterThanOrEqual(Math.floor(last / 50) + (last % 50 === 0 ? 0 : 1));
          expect(store.getRun(ids[k]!).status).toBe('interrupted');
        });
        expect(store.listRuns()).toHaveLength(5 * (round + 1));
      } finally {
        store.close();
      }
    }
  });
});
