import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { expandGrid, formatTable } from '../src/cli/sweep.js';

let out = '';
let err = '';
beforeEach(() => {
  out = '';
  err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
});
afterEach(() => vi.restoreAllMocks());

const spirals = [
  '--set',
  'data.name=spirals',
  '--set',
  'train.epochs=2',
  '--set',
  'model.hidden=[16]',
  '--set',
  'train.batchSize=64',
];

describe('gradguard train', () => {
  it('trains and prints exactly one JSON object with --json', async () => {
    const code = await main(['train', '--no-store', '--json', ...spirals]);
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const r = JSON.parse(lines[0]!);
    expect(r.status).toBe('finished');
    expect(r.data.name).toBe('spirals');
    expect(r.steps).toBeGreaterThan(0);
    expect(r.test.accuracy).toBeGreaterThan(0);
    expect(r.diagnosis.verdict).toBeTypeOf('string');
    expect(r.layers.map((l: { name: string }) => l.name)).toEqual(['0', '2']);
  });

  it('prints the summary and the gradient report for humans', async () => {
    const code = await main(['train', '--no-store', '--quiet', ...spirals]);
    expect(code).toBe(0);
    expect(out).toMatch(/finished: \d+ steps, 2 epochs/);
    expect(out).toContain('Gradient report');
    expect(out).toMatch(/Verdict: /);
  });

  it('refuses a bad config with file:line:col, exit 2 and no stack trace, before any work', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gg-cli-'));
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'model:\n  type: mlp\n  depht: 3\n');
    const code = await main(['train', '--no-store', '--config', f]);
    expect(code).toBe(2);
    expect(err).toContain(`${f}:3:3 model.depht: unknown key 'depht' (did you mean 'depth'?`);
    expect(err).not.toMatch(/\n\s+at /);
    expect(out).toBe('');
  });

  it('refuses a GRADGUARD_THREADS that is not a thread count: one line, exit 2 (fresh process)', () => {
    const mainTs = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
    const code = `const { main } = await import(${JSON.stringify(mainTs)}); process.exitCode = await main(['train', '--no-store', '--set', 'data.name=spirals', '--set', 'train.epochs=1']);`;
    for (const backend of ['native', 'wasm']) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        encoding: 'utf8',
        env: { ...process.env, GRADGUARD_THREADS: 'lots', GRADGUARD_BACKEND: backend },
        timeout: 60_000,
      });
      if (backend === 'native' && /not available/.test(r.stderr)) continue; // no addon on this machine
      expect(r.status).toBe(2);
      expect(r.stderr.trim()).toBe(
        "gradguard: GRADGUARD_THREADS='lots' is not a thread count: set it to an integer from 1 to 256, or unset it to use every core",
      );
    }
  });

  it('names the --set that is wrong', async () => {
    const code = await main(['train', '--no-store', '--set', 'optim.lr=-1']);
    expect(code).toBe(2);
    expect(err).toContain('--set optim.lr=-1: optim.lr:');
  });
});

describe('gradguard sweep', () => {
  it('expands grids into their cartesian product', () => {
    const t = expandGrid(['optim.lr=0.1,0.01', 'init.weight=xavier-normal,kaiming-normal,orthogonal']);
    expect(t).toHaveLength(6);
    expect(t[5]!.assignments).toEqual({ 'optim.lr': 0.01, 'init.weight': 'orthogonal' });
    expect(t[5]!.sets).toEqual(['optim.lr=0.01', 'init.weight=orthogonal']);
    expect(() => expandGrid([])).toThrow(/at least one --grid/);
    expect(() => expandGrid(['optim.lr'])).toThrow(/expected key=v1,v2/);
  });

  it('formats csv with quoting and markdown tables', () => {
    const rows = [
      {
        trial: 0,
        params: { a: 1 },
        status: 'finished',
        testAccuracy: 0.5,
        testLoss: 1,
        finalLoss: 1,
        verdict: 'healthy',
        seconds: 2,
        run: null,
      },
      {
        trial: 1,
        params: { a: 2 },
        status: 'failed',
        testAccuracy: null,
        testLoss: null,
        finalLoss: null,
        verdict: '-',
        seconds: null,
        run: null,
        error: 'x, y',
      },
    ];
    const csv = formatTable(rows, 'csv').split('\n');
    expect(csv[0]).toBe('trial,a,status,test acc,test loss,final loss,verdict,seconds,run');
    expect(csv[2]).toContain('"error: x, y"');
    expect(formatTable(rows, 'md').split('\n')[1]).toMatch(/^\|(---\|)+$/);
  });

  it('runs the trials on worker threads and writes the table', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gg-sweep-'));
    const md = join(dir, 'table.md');
    const code = await main([
      'sweep',
      '--no-store',
      '--json',
      '--out',
      md,
      '--parallel',
      '2',
      '--grid',
      'init.weight=xavier-normal,kaiming-normal',
      ...spirals,
    ]);
    expect(code).toBe(0);
    const r = JSON.parse(out.trim());
    expect(r.trials).toHaveLength(2);
    expect(r.trials.map((t: { status: string }) => t.status)).toEqual(['finished', 'finished']);
    expect(r.trials[1].params).toEqual({ 'init.weight': 'kaiming-normal' });
    expect(readFileSync(md, 'utf8')).toContain('| 1 | kaiming-normal | finished |');
  });

  it('validates every trial before starting any', async () => {
    const code = await main(['sweep', '--no-store', '--grid', 'optim.lr=0.1,-1', ...spirals]);
    expect(code).toBe(2);
    expect(err).toContain('optim.lr');
  });
});
