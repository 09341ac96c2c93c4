/**
 * `gradguard train --resume RUN|DIR` and `gradguard export ID --out model.safetensors`, through `main()` as the
 * command line runs them (stdout and stderr captured).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadSafetensors, loadSafetensorsMetadata } from '../io/safetensors.js';
import { RunStore } from '../track/store.js';
import { listCheckpoints, loadCheckpoint, runCheckpointDir } from '../train/checkpoint.js';
import { wantsWeights } from './checkpoint-commands.js';
import { main } from './main.js';

let work: string;
let cfg: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gg-resume-cli-'));
  cfg = join(work, 'tiny.json');
  writeFileSync(
    cfg,
    JSON.stringify({
      seed: 3,
      data: { name: 'spirals', trainSize: 64, testSize: 32 },
      model: { type: 'mlp', hidden: [12], dropout: 0.1 },
      optim: { name: 'adam', lr: 0.01 },
      // NOTE: constant, because the cosine default spans train.maxSteps, which a test below changes on resume
      schedule: { name: 'constant' },
      train: { epochs: 3, batchSize: 16, checkpointEvery: 4 },
      monitor: { every: 2 },
    }),
  );
});
afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => {
  vi.restoreAllMocks();
});

/** Runs the CLI with stdout and stderr captured. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  try {
    const code = await main(argv);
    return { code, out, err };
  } finally {
    vi.restoreAllMocks();
  }
}

const losses = (store: string, id: string) => {
  const s = RunStore.open(store, { readonly: true });
  try {
    const m = s.getMetrics(id);
    return { steps: m.steps, times: m.times, loss: m.series.loss!, test: m.series.test_loss! };
  } finally {
    s.close();
  }
};

describe('gradguard train --resume', () => {
  let store: string;
  let straight: { run: string; steps: number; test: { loss: number } };
  beforeAll(async () => {
    store = join(work, 'store');
    const r = await cli('train', '-c', cfg, '--store', store, '--json', '--quiet');
    expect(r.code, r.err).toBe(0);
    straight = JSON.parse(r.out);
    expect(JSON.parse(r.out).resumedFrom).toBeNull();
  });

  it('every run in a store keeps a checkpoint; its checkpoints go to <store>/checkpoints/<run>', () => {
    expect(straight.steps).toBe(12);
    const root = runCheckpointDir(store, straight.run);
    expect(listCheckpoints(root)).toEqual(['ckpt-00000004', 'ckpt-00000008', 'ckpt-00000012']);
    expect(loadCheckpoint(root).runId).toBe(straight.run);
  });

  it('a run stopped early continues under the same id, bit for bit the uninterrupted one', async () => {
    const a = await cli('train', '-c', cfg, '--set', 'train.maxSteps=5', '--store', store, '--json', '--quiet');
    expect(a.code, a.err).toBe(0);
    const first = JSON.parse(a.out);
    expect(first.steps).toBe(5);
    expect(first.checkpoint).toBe(join(runCheckpointDir(store, first.run), 'ckpt-00000005'));
    // resumed by run id with the stop lifted
    const resumedAt = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    const b = await cli('train', '--resume', first.run, '--set', 'train.maxSteps=12', '--store', store, '--json');
    expect(b.code, b.err).toBe(0);
    const second = JSON.parse(b.out);
    expect(second.run).toBe(first.run);
    expect(second.steps).toBe(12);
    expect(second.status).toBe('finished');
    expect(b.err).toMatch(/resuming from step 5/);
    const got = losses(store, first.run);
    const want = losses(store, straight.run);
    expect(got.steps).toEqual(want.steps);
    expect(got.loss).toStrictEqual(want.loss);
    expect(second.resumedFrom).toBe(5);
    expect(got.times.slice(5).every((t) => t > resumedAt)).toBe(true);
    expect(second.test).toStrictEqual(straight.test);
  });

  it('resumes from a checkpoint directory, without a store (leaving the stored run’s checkpoints alone)', async () => {
    const root = runCheckpointDir(store, straight.run);
    const r = await cli('train', '--resume', join(root, 'ckpt-00000008'), '--no-store', '--json');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(/resuming from step 8 \(.*ckpt-00000008\)/);
    const res = JSON.parse(r.out);
    expect(res.run).toBeNull();
    expect(res.resumedFrom).toBe(8);
    expect(res.checkpoint).toBeNull();
    expect(res.steps).toBe(12);
    expect(res.test).toStrictEqual(straight.test);
    expect(listCheckpoints(root)).toEqual(['ckpt-00000004', 'ckpt-00000008', 'ckpt-00000012']);
  });

  it('refuses, in one line with status 2 and nothing recorded: --config, a changed model, an unknown run, a damaged checkpoint', async () => {
    const before = RunStore.open(store, { readonly: true });
    const runs = before.listRuns().length;
    before.close();
    const root = runCheckpointDir(store, straight.run);
    const cases: [string[], RegExp][] = [
      [['--resume', straight.run, '-c', cfg], /--resume takes the config from the checkpoint; drop --config/],
      [['--resume', straight.run, '--set', 'model.hidden=[8]'], /model\.hidden cannot change when resuming/],
      [['--resume', straight.run, '--set', 'optim.lr=0.5'], /optim\.lr cannot change when resuming/],
      [['--resume', 'zzzz-no-such-run'], /no run|unknown run|zzzz/i],
      [['--resume', join(work, 'missing-dir')], /checkpoint .*missing-dir: no such directory/],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli('train', ...args, '--store', store, '--quiet');
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(pattern);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).not.toMatch(/\n\s+at /);
    }
    // damage the run's latest checkpoint
    const latest = loadCheckpoint(root).dir;
    const model = join(latest, 'model.safetensors');
    const bytes = readFileSync(model);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0x10;
    writeFileSync(model, bytes);
    const r = await cli('train', '--resume', straight.run, '--store', store, '--quiet');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^gradguard: checkpoint .*ckpt-00000012: model\.safetensors does not match its sha256/);
    const e = await cli('export', straight.run, '--out', join(work, 'x.safetensors'), '--store', store);
    expect(e.code).toBe(2);
    expect(e.err).toMatch(/model\.safetensors does not match its sha256/);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0x10;
    writeFileSync(model, bytes);
    const after = RunStore.open(store, { readonly: true });
    expect(after.listRuns().length).toBe(runs);
    expect(after.getRun(straight.run).status).toBe('finished');
    after.close();
  });
});

describe('gradguard export ID --out model.safetensors', () => {
  let store: string;
  let run: string;
  beforeAll(async () => {
    store = join(work, 'store-export');
    const r = await cli(
      'train',
      '-c',
      cfg,
      '--set',
      'train.checkpointEvery=100',
      '--store',
      store,
      '--json',
      '--quiet',
    );
    expect(r.code, r.err).toBe(0);
    run = JSON.parse(r.out).run;
  });

  it('writes the run’s final weights under PyTorch names', async () => {
    const out = join(work, 'model.safetensors');
    const r = await cli('export', run.slice(0, 17), '--out', out, '--store', store);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^wrote .*model\.safetensors: 4 tensors, \d+ bytes, step 12 of run /);
    const ck = loadCheckpoint(runCheckpointDir(store, run));
    expect(readFileSync(out)).toEqual(readFileSync(join(ck.dir, 'model.safetensors')));
    const t = loadSafetensors(out);
    expect(Object.keys(t).sort()).toEqual(['0.bias', '0.weight', '3.bias', '3.weight']);
    expect(t['0.weight']!.shape).toEqual([12, 2]);
    expect(loadSafetensorsMetadata(out)).toEqual({ format: 'pt' });
  });

  it('--json, --format safetensors into a directory, and from a checkpoint directory', async () => {
    const r = await cli('export', run, '--format', 'safetensors', '--out', `${work}/`, '--store', store, '--json');
    expect(r.code, r.err).toBe(0);
    const res = JSON.parse(r.out);
    expect(res).toMatchObject({ run, step: 12, tensors: 4, out: join(work, 'model.safetensors') });
    expect(res.sha256).toMatch(/^[0-9a-f]{64}$/);
    const d = await cli('export', runCheckpointDir(store, run), '--out', join(work, 'd.safetensors'), '--json');
    expect(d.code, d.err).toBe(0);
    expect(JSON.parse(d.out).sha256).toBe(res.sha256);
  });

  it('user mistakes: no --out, an unknown run, no store; --json puts the error on stdout', async () => {
    const noOut = await cli('export', run, '--format', 'safetensors', '--store', store);
    expect(noOut.code).toBe(2);
    expect(noOut.err).toMatch(/--out FILE is required/);
    const unknown = await cli('export', 'nope', '--out', join(work, 'n.safetensors'), '--store', store);
    expect(unknown.code).toBe(2);
    expect(unknown.err.trim().split('\n')).toHaveLength(1);
    const j = await cli(
      'export',
      'nope',
      '--out',
      join(work, 'n.safetensors'),
      '--store',
      join(work, 'nostore'),
      '--json',
    );
    expect(j.code).toBe(2);
    expect(JSON.parse(j.out).error.message).toMatch(/no run store/);
  });

  it('only .safetensors outputs or --format safetensors mean weights', () => {
    expect(wantsWeights({ out: 'm.safetensors' })).toBe(true);
    expect(wantsWeights({ format: 'safetensors', out: 'dir' })).toBe(true);
    expect(wantsWeights({ format: 'csv', out: 'm.safetensors' })).toBe(false);
    expect(wantsWeights({ out: 'dir' })).toBe(false);
  });
});
