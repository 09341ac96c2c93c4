/**
 * `gradguard experiment`, end to end in a fresh process per experiment at the tiny size (`--tiny`): the one JSON
 * object (each arm's runs with config, train/test metrics, verdict, outcome and run id), the runs in the store
 * (named and tagged), the page's sections, and figures that are real PNG files. The structure, not the science: the
 * tiny sizes train a few steps. And the user's mistakes: one line, exit 2, the JSON error object with --json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { isNonFiniteString } from '../src/base/json.js';
import { EXPERIMENTS } from '../src/experiment/registry.js';
import { experimentFiles, loadExperiment } from '../src/experiment/spec.js';
import { RunStore } from '../src/track/store.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'gg-experiments-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `gradguard ...args` in a fresh process (from the sources, through tsx). */
function gradguard(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const code = `const { main } = await import(${JSON.stringify(MAIN)}); process.exitCode = await main(${JSON.stringify(args)});`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Checks a PNG file: its signature, an IHDR with a sane size, IDAT data that inflates, and IEND last. */
function expectPng(path: string): { width: number; height: number } {
  const b = readFileSync(path);
  expect([...b.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  let off = 8;
  const types: string[] = [];
  const idat: Buffer[] = [];
  let width = 0;
  let height = 0;
  while (off < b.length) {
    const len = b.readUInt32BE(off);
    const type = b.toString('ascii', off + 4, off + 8);
    types.push(type);
    if (type === 'IHDR') {
      width = b.readUInt32BE(off + 8);
      height = b.readUInt32BE(off + 12);
    }
    if (type === 'IDAT') idat.push(b.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  expect(off).toBe(b.length);
  expect(types[0]).toBe('IHDR');
  expect(types.at(-1)).toBe('IEND');
  expect(width).toBeGreaterThan(100);
  expect(height).toBeGreaterThan(50);
  expect(inflateSync(Buffer.concat(idat)).length).toBeGreaterThan(width * height);
  return { width, height };
}

describe('experiment registry', () => {
  it('has one module per experiments/*.yaml and the other way round, and every file loads', () => {
    expect(EXPERIMENTS.map((m) => m.name).sort()).toEqual(experimentFiles());
    for (const name of experimentFiles()) expect(loadExperiment(name).armList.length).toBeGreaterThan(0);
  });

  it('lists the experiments, for people and as JSON', () => {
    const r = gradguard(['experiment', 'list', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { experiments: { name: string; title: string }[] };
    expect(j.experiments.map((e) => e.name)).toEqual(experimentFiles());
    const h = gradguard(['experiment', 'list']);
    expect(h.status).toBe(0);
    for (const name of experimentFiles()) expect(h.stdout).toMatch(new RegExp(`^${name} `, 'm'));
  });
});

describe('experiment mistakes', () => {
  it('an unknown experiment: one line naming the choices, exit 2; with --json the error object', () => {
    const r = gradguard(['experiment', 'nosuch']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toBe(
      `gradguard: unknown experiment 'nosuch': choose one of ${experimentFiles().join(', ')} (gradguard experiment list)`,
    );
    expect(r.stdout).toBe('');
    const j = gradguard(['experiment', 'nosuch', '--json']);
    expect(j.status).toBe(2);
    expect(JSON.parse(j.stdout)).toEqual({
      error: { code: 'experiment.unknown', message: expect.stringContaining("unknown experiment 'nosuch'") },
    });
  });

  it('a bad flag, a missing name, --quick with --tiny, an --out that is a file: one line, exit 2, nothing run', () => {
    for (const args of [
      ['experiment', 'headline', '--fast'],
      ['experiment'],
      ['experiment', 'headline', '--quick', '--tiny'],
      ['experiment', 'headline', '--tiny', '--out', MAIN],
    ]) {
      const r = gradguard([...args, '--json', '--store', join(dir, 'mistakes')]);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(Object.keys(JSON.parse(r.stdout).error)).toEqual(['code', 'message']);
    }
    expect(existsSync(join(dir, 'mistakes'))).toBe(false);
  });
});

describe.each(EXPERIMENTS.map((m) => m.name))('experiment %s --tiny', (name) => {
  it('trains every arm into the store, prints one JSON object, writes the page and valid PNG figures', () => {
    const out = join(dir, `out-${name}`);
    const store = join(dir, `store-${name}`);
    const r = gradguard(['experiment', name, '--tiny', '--json', '--out', out, '--store', store]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(1);
    const j = JSON.parse(r.stdout);
    const spec = loadExperiment(name);
    expect(j.experiment).toBe(name);
    expect(j.size).toBe('tiny');
    expect(j.arms.map((a: { name: string }) => a.name)).toEqual(spec.armList.map((a) => a.name));
    const st = RunStore.open(store, { readonly: true });
    try {
      for (const arm of j.arms) {
        expect(arm.runs).toHaveLength(spec.sizes.tiny.seeds.length);
        for (const run of arm.runs) {
          expect(Object.keys(run)).toEqual(
            expect.arrayContaining(['seed', 'run', 'config', 'train', 'test', 'verdict', 'outcome', 'agrees']),
          );
          // numbers, or 'NaN' / 'Infinity' for a diverged run (gradguard's JSON codec)
          for (const v of [run.train.loss, run.test.loss])
            expect(typeof v === 'number' || isNonFiniteString(v), String(v)).toBe(true);
          expect(run.config.seed).toBe(run.seed);
          expect(run.outcome.label).toBeTypeOf('string');
          const info = st.getRun(run.run);
          expect(info.name).toBe(`${name}/${arm.name}/s${run.seed}`);
          expect((info.config as { meta: { tags: string[] } }).meta.tags).toContain(name);
          expect(info.summary?.verdict).toBe(run.verdict);
        }
      }
    } finally {
      st.close();
    }
    expect(j.page).toBe(join(out, `${name}.md`));
    const page = readFileSync(j.page, 'utf8');
    for (const h of ['## Setup', '## Results', '## Reading against the paper', '## Runs'])
      expect(page, name).toContain(h);
    expect(page).toContain("gradguard's verdict");
    expect(j.figures.length).toBeGreaterThan(0);
    for (const f of j.figures) {
      expectPng(f);
      expect(page).toContain(`](${f.slice(out.length + 1)})`);
    }
    for (const d of j.disagreements) expect(page).toContain(`**${d.arm}, seed ${d.seed}**`);
  });
});
