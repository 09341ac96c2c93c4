import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { captureIO } from '../../test/cli-io.js';
import { DB_FILE, RunStore } from '../track/store.js';
import {
  exportCommand,
  formatDuration,
  formatMetricValue,
  formatNumber,
  formatTable,
  runsCommand,
  runsCompare,
  runsList,
  runsRm,
  runsShow,
} from './runs.js';

let dir: string;
let storeDir: string;
let ids: { mlp: string; deep: string; live: string };

/** The one JSON object a --json command printed (fails when stdout holds anything else). */
function json(io: { out: string }): Record<string, unknown> {
  expect(io.out.endsWith('\n')).toBe(true);
  expect(io.out.trimEnd().split('\n')).toHaveLength(1);
  return JSON.parse(io.out) as Record<string, unknown>;
}

/** One line on stderr, no stack trace. */
function oneLine(err: string): string {
  expect(err.endsWith('\n')).toBe(true);
  expect(err.trimEnd().split('\n')).toHaveLength(1);
  expect(err).not.toMatch(/\n\s+at /);
  return err.trimEnd();
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-cli-runs-'));
  storeDir = join(dir, 'store');
  const store = RunStore.open(storeDir);
  const layers = (k: number) =>
    [0, 1].map((i) => ({
      name: `layers.${i}`,
      gradNorm: (i + 1) / (k + 1),
      gradMaxAbs: 1,
      weightNorm: 2,
      updateRatio: 0.001,
      actMean: 0,
      actStd: 1,
      deadFrac: 0.25,
      nonFinite: 0,
    }));
  const mlp = store.createRun({
    name: 'mlp',
    config: { model: { type: 'mlp', hidden: [256] }, optim: { lr: 0.001 } },
    backend: 'native',
  });
  for (let s = 0; s < 20; s++)
    store.logStep(mlp, s, { loss: 2 / (s + 1), lr: 0.001 }, s % 5 === 0 ? layers(s) : undefined);
  store.logStep(mlp, 19, { test_accuracy: 0.955 });
  store.logFinding(mlp, 5, { kind: 'dead-relu', layers: ['layers.1'], suggestion: 'try leaky-relu' });
  store.finishRun(mlp, 'finished', {
    metrics: { test_accuracy: 0.955, test_loss: 0.15 },
    verdict: 'healthy',
    durationMs: 41_200,
    stepsSkipped: 0,
    stepsClipped: 3,
  });
  const deep = store.createRun({
    name: 'deep',
    config: { model: { type: 'mlp', hidden: [256, 256] }, optim: { lr: 0.1 } },
    backend: 'native',
  });
  for (let s = 0; s < 3; s++) store.logStep(deep, s, { loss: s < 2 ? 2 : Number.NaN, lr: 0.1 });
  store.finishRun(deep, 'diverged', { metrics: { test_accuracy: 0.1, test_loss: Number.NaN }, verdict: 'exploding' });
  const live = store.createRun({ name: 'live', config: { model: { type: 'mlp' } }, backend: 'js' });
  store.close();
  // Fix the creation times so the order (newest first) does not depend on the clock.
  const db = new Database(join(storeDir, DB_FILE));
  const setCreated = db.prepare('UPDATE runs SET created_at = ? WHERE id = ?');
  setCreated.run(Date.UTC(2026, 0, 1, 10), mlp);
  setCreated.run(Date.UTC(2026, 0, 1, 11), deep);
  setCreated.run(Date.UTC(2026, 0, 1, 12), live);
  db.close();
  ids = { mlp, deep, live };
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('runs list', () => {
  it('prints an aligned table, newest first, with the final metrics most runs have', async () => {
    const io = captureIO();
    expect(await runsList({ store: storeDir }, io)).toBe(0);
    expect(io.err).toBe('');
    const lines = io.out.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(
      /^ID\s+NAME\s+STATUS\s+STARTED\s+STEPS\s+TIME\s+BACKEND\s+test_accuracy\s+test_loss\s+VERDICT$/,
    );
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([ids.live, ids.deep, ids.mlp]);
    expect(lines[3]).toMatch(/mlp\s+finished\s+.*\s20\s+41\.2s\s+native\s+95\.50%\s+0\.15\s+healthy$/);
    expect(lines[2]).toMatch(/deep\s+diverged\s+.*\s3\s+.*native\s+10\.00%\s+NaN\s+exploding$/);
    expect(lines[1]).toMatch(/live\s+running\s+.*\s0\s+.*js\s+-\s+-\s+-$/);
    // Aligned: every row puts STATUS in the same column.
    const col = lines[0]!.indexOf('STATUS');
    for (const l of lines.slice(1)) expect(l.slice(col)).toMatch(/^(running|finished|diverged) /);
  });

  it('filters, limits and prints one JSON object with --json', async () => {
    const io = captureIO();
    expect(
      await runsCommand('list', [], { store: storeDir, json: true, status: 'finished,diverged', limit: '1' }, io),
    ).toBe(0);
    const doc = json(io) as { store: string; runs: { id: string; summary: { metrics: Record<string, unknown> } }[] };
    expect(doc.runs.map((r) => r.id)).toEqual([ids.deep]);
    expect(doc.runs[0]!.summary.metrics).toEqual({ test_accuracy: 0.1, test_loss: 'NaN' });
    expect(doc.store).toBe(storeDir);
  });

  it('says so when the store has no runs', async () => {
    const empty = join(dir, 'empty');
    RunStore.open(empty).close();
    const io = captureIO();
    expect(await runsList({ store: empty }, io)).toBe(0);
    expect(io.out).toBe(`no runs in ${empty}\n`);
  });
});

describe('runs show', () => {
  it('shows status, summary, last metrics, layers, findings and config', async () => {
    const io = captureIO();
    // the shortest prefix no other run shares (runs made in the same second share their first 16 characters)
    const others = [ids.deep, ids.live];
    let n = 16;
    while (others.some((o) => o.startsWith(ids.mlp.slice(0, n)))) n++;
    expect(await runsShow(ids.mlp.slice(0, n), { store: storeDir }, io)).toBe(0);
    const out = io.out;
    expect(out).toMatch(new RegExp(`^run\\s+${ids.mlp}  \\(mlp\\)\\n`));
    expect(out).toMatch(/^status\s+finished$/m);
    expect(out).toMatch(/^duration\s+41\.2s$/m);
    expect(out).toMatch(/^verdict\s+healthy$/m);
    expect(out).toMatch(/^clipped\s+3 steps$/m);
    expect(out).toMatch(/final metrics\n {2}test_accuracy\s+95\.50%\n {2}test_loss\s+0\.15\n/);
    expect(out).toMatch(/last logged metrics\n {2}loss\s+0\.1 {2}\(step 19\)\n {2}lr\s+0\.001 {2}\(step 19\)\n/);
    expect(out).toMatch(
      /layers at step 15\n {2}LAYER\s+GRAD NORM\s+.*DEAD FRAC\s+NON FINITE\n {2}layers\.0\s+0\.0625\s/,
    );
    expect(out).not.toMatch(/SAT FRAC/);
    expect(out).toMatch(
      /findings \(1\)\n {2}STEP\s+KIND\s+LAYERS\s+SUGGESTION\n\s+5\s+dead-relu\s+layers\.1\s+try leaky-relu\n/,
    );
    expect(out).toMatch(/config\n {2}model\.type\s+= mlp\n {2}model\.hidden = \[256\]\n {2}optim\.lr\s+= 0\.001\n$/);
  });

  it('prints one JSON object with --json', async () => {
    const io = captureIO();
    expect(await runsCommand('show', ['deep'], { store: storeDir, json: true }, io)).toBe(0);
    const doc = json(io) as { run: { id: string; status: string }; lastMetrics: Record<string, { value: unknown }> };
    expect(doc.run).toMatchObject({ id: ids.deep, status: 'diverged' });
    expect(doc.lastMetrics.loss).toEqual({ step: 2, value: 'NaN' });
  });
});

describe('runs compare', () => {
  it('puts runs side by side with the config keys that differ', async () => {
    const io = captureIO();
    expect(await runsCompare([ids.mlp, 'deep'], { store: storeDir }, io)).toBe(0);
    const lines = io.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(new RegExp(`^\\s+${ids.mlp}\\s+${ids.deep}$`));
    const row = (label: string) => lines.find((l) => l.startsWith(`${label} `))?.split(/\s{2,}/);
    expect(row('status')).toEqual(['status', 'finished', 'diverged']);
    expect(row('test_loss')).toEqual(['test_loss', '0.15', 'NaN']);
    expect(row('last loss')).toEqual(['last loss', '0.1', 'NaN']);
    expect(row('last test_accuracy')).toEqual(['last test_accuracy', '95.50%', '-']);
    expect(row('config model.hidden')).toEqual(['config model.hidden', '[256]', '[256,256]']);
    expect(row('config optim.lr')).toEqual(['config optim.lr', '0.001', '0.1']);
    expect(row('config model.type')).toBeUndefined();
  });

  it('prints one JSON object with --json', async () => {
    const io = captureIO();
    expect(await runsCommand('compare', [ids.mlp, ids.deep], { store: storeDir, json: true }, io)).toBe(0);
    const doc = json(io) as { runs: { id: string }[]; configDiff: Record<string, unknown[]> };
    expect(doc.runs.map((r) => r.id)).toEqual([ids.mlp, ids.deep]);
    expect(doc.configDiff).toEqual({ 'model.hidden': [[256], [256, 256]], 'optim.lr': [0.001, 0.1] });
  });
});

describe('runs rm', () => {
  it('deletes runs, refuses a live one without --force, and checks every id first', async () => {
    let io = captureIO();
    expect(await runsRm([ids.deep, 'nope'], { store: storeDir }, io)).toBe(2);
    expect(oneLine(io.err)).toMatch(/^gradguard: no run matches 'nope'/);
    io = captureIO();
    expect(await runsRm([ids.live], { store: storeDir }, io)).toBe(2);
    expect(oneLine(io.err)).toMatch(/run .* is still running \(pid \d+ on .*\); stop it first, or pass --force$/);
    io = captureIO();
    const ckpt = join(storeDir, 'checkpoints', ids.deep, 'ckpt-00000001');
    mkdirSync(ckpt, { recursive: true });
    writeFileSync(join(ckpt, 'state.json'), '{}');
    expect(await runsRm([ids.deep], { store: storeDir }, io)).toBe(0);
    expect(io.out).toBe(`deleted ${ids.deep}\n`);
    expect(existsSync(join(storeDir, 'checkpoints', ids.deep))).toBe(false);
    io = captureIO();
    expect(await runsCommand('rm', [ids.live], { store: storeDir, force: true, json: true }, io)).toBe(0);
    expect(json(io)).toEqual({ deleted: [ids.live] });
    const store = RunStore.open(storeDir);
    expect(store.listRuns().map((r) => r.id)).toEqual([ids.mlp]);
    store.close();
  });
});

describe('export', () => {
  it('writes the files and lists them', async () => {
    const out = join(dir, 'out');
    let io = captureIO();
    expect(await exportCommand('mlp', { store: storeDir, format: 'csv', out }, io)).toBe(0);
    expect(io.out).toBe(
      ['metrics', 'layers', 'findings'].map((k) => `wrote ${join(out, `${ids.mlp}-${k}.csv`)}\n`).join(''),
    );
    io = captureIO();
    expect(await exportCommand(ids.mlp, { store: storeDir, format: 'tensorboard', out, json: true }, io)).toBe(0);
    const doc = json(io) as { id: string; format: string; files: string[] };
    expect(doc).toMatchObject({ id: ids.mlp, format: 'tensorboard' });
    expect(existsSync(doc.files[0]!)).toBe(true);
  });
});

describe('user mistakes', () => {
  const cases: [string, () => Promise<number>, RegExp][] = [
    ['unknown id', () => runsShow('nope', { store: storeDir }, io), /^gradguard: no run matches 'nope' in .*runs\.db/],
    [
      'ambiguous id',
      () => runsShow('2', { store: storeDir }, io),
      /^gradguard: '2' matches 3 runs: .*; give more of the id$/,
    ],
    [
      'missing store',
      () => runsList({ store: join(dir, 'none') }, io),
      /^gradguard: no run store at .*none \(runs\.db not found\)/,
    ],
    ['bad status', () => runsList({ store: storeDir, status: 'done' }, io), /--status: unknown status 'done'/],
    ['bad limit', () => runsList({ store: storeDir, limit: '2x' }, io), /--limit must be a whole number >= 1/],
    ['compare one', () => runsCompare([ids.mlp], { store: storeDir }, io), /compare needs at least two run ids/],
    ['rm none', () => runsRm([], { store: storeDir }, io), /runs rm needs a run id/],
    ['show two', () => runsCommand('show', ['a', 'b'], { store: storeDir }, io), /runs show takes one run id/],
    ['unknown action', () => runsCommand('delete', [], { store: storeDir }, io), /unknown command 'runs delete'/],
    [
      'no format',
      () => exportCommand(ids.mlp, { store: storeDir, out: dir }, io),
      /--format must be one of csv, json, tensorboard \(none given\)/,
    ],
    ['bad format', () => exportCommand(ids.mlp, { store: storeDir, format: 'xml', out: dir }, io), /\(got 'xml'\)/],
    ['no out', () => exportCommand(ids.mlp, { store: storeDir, format: 'csv' }, io), /--out DIR is required/],
    [
      'unknown id on export',
      () => exportCommand('nope', { store: storeDir, format: 'csv', out: dir }, io),
      /no run matches 'nope'/,
    ],
  ];
  let io = captureIO();
  for (const [name, run, message] of cases) {
    it(`${name}: one line on stderr, exit status 2`, async () => {
      io = captureIO();
      expect(await run()).toBe(2);
      expect(oneLine(io.err)).toMatch(message);
      expect(io.out).toBe('');
    });
  }

  it('prints the error as the one JSON object with --json', async () => {
    const io = captureIO();
    expect(await runsShow('nope', { store: storeDir, json: true }, io)).toBe(2);
    expect(json(io)).toEqual({
      error: { code: 'UNKNOWN_RUN', message: expect.stringMatching(/^no run matches 'nope'/) },
    });
    oneLine(io.err);
  });
});

describe('formatting', () => {
  it('formats numbers, durations and tables', () => {
    expect([0.95713, 1e-7, 1234567.8, 3, Number.NaN, Number.NEGATIVE_INFINITY, undefined].map(formatNumber)).toEqual([
      '0.9571',
      '1.00e-7',
      '1.23e+6',
      '3',
      'NaN',
      '-Inf',
      '-',
    ]);
    // accuracies as percentages, as train, the dashboard and reports show them; NaN and losses as numbers
    expect(formatMetricValue('test/accuracy', 0.95713)).toBe('95.71%');
    expect(formatMetricValue('val_accuracy', Number.NaN)).toBe('NaN');
    expect(formatMetricValue('test_loss', 0.95713)).toBe('0.9571');
    expect([850, 41_234, 725_000, 3_720_000].map(formatDuration)).toEqual(['850ms', '41.2s', '12m05s', '1h02m']);
    expect(
      formatTable(
        ['A', 'NUM'],
        [
          ['long', '1'],
          ['x', '100'],
        ],
        new Set([1]),
      ),
    ).toBe('A     NUM\nlong    1\nx     100\n');
  });
});
