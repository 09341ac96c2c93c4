/**
 * A fuzz test of the CLI (fast-check, bounded): random argument vectors and random `--set` keys and values, each run
 * through `main()` in this process with stdout and stderr captured. Whatever the input: no stack trace, no hang, an
 * exit status that is 0, 2 (a user's mistake) or 3 (a run that diverged) and never 1 (a bug), a user's mistake ending
 * in one `gradguard:` line, with --json exactly one JSON object on stdout, and Object.prototype untouched.
 *
 * Every run is kept tiny (128 spirals, at most 2 steps, `--steps 2` for the doctor; the guards come after the fuzzed
 * arguments, so they win) and nothing fuzzed can reach the network (no `data.source=download`) or start a server or
 * a sweep's trials (the dashboard only with a bad port, sweeps without a grid or with an unwritable --out).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { RunStore } from '../src/track/store.js';

let out = '';
let err = '';
beforeEach(() => {
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

const dir = mkdtempSync(join(tmpdir(), 'gg-cli-fuzz-'));
const store = join(dir, 'store');
RunStore.open(store).close();
const yamlFile = join(dir, 'c.yaml');
writeFileSync(yamlFile, 'model:\n  hidden: [4]\n');
// fuzzed paths (`--store C$$4!y`, `--out ^`) are relative: they land in the temporary directory, not the checkout
const cwd = process.cwd();
beforeAll(() => process.chdir(dir));
afterAll(() => {
  process.chdir(cwd);
  rmSync(dir, { recursive: true, force: true });
});

/** Fixed seed and count in the suite (deterministic); FUZZ_SEED and FUZZ_RUNS explore further by hand. */
const SEED = Number(process.env.FUZZ_SEED ?? 11);
const RUNS = Number(process.env.FUZZ_RUNS ?? 80);

/** Far above what any run here needs (a tiny run takes well under a second): only a hang reaches it. */
const HANG_MS = 120_000;

/** The guards that keep a run tiny; they come last, so they override anything fuzzed before them. */
const GUARD = ['data.trainSize=128', 'data.testSize=32', 'train.maxSteps=2', 'train.epochs=1'].flatMap((s) => [
  '--set',
  s,
]);

const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
const toStringBefore = Object.prototype.toString;

/** Runs `main(argv)` and checks the contract (`json`: --json was given as an option); returns the exit status. */
async function check(argv: string[], json: boolean): Promise<number> {
  out = '';
  err = '';
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`hang: gradguard ${argv.join(' ')}`)), HANG_MS);
  });
  const status = await Promise.race([main(argv), hang]).finally(() => clearTimeout(timer));
  const what = `gradguard ${argv.map((a) => JSON.stringify(a)).join(' ')}\n--- stderr\n${err}\n--- stdout\n${out}`;
  expect([0, 2, 3], what).toContain(status);
  expect(err, what).not.toMatch(/\n\s+at /);
  expect(err, what).not.toMatch(/internal error/);
  if (status === 2) expect(err.trimEnd().split('\n').at(-1), what).toMatch(/^gradguard: \S/);
  if (json) {
    expect(out.endsWith('\n') && out.trimEnd().split('\n').length === 1, what).toBe(true);
    const doc = JSON.parse(out) as Record<string, unknown>;
    expect(typeof doc === 'object' && doc !== null && !Array.isArray(doc), what).toBe(true);
    if (status === 2) expect(Object.keys(doc), what).toEqual(['error']);
  }
  expect(Object.getOwnPropertyNames(Object.prototype).sort(), what).toEqual(protoBefore);
  expect(Object.prototype.toString, what).toBe(toStringBefore);
  return status;
}

const KEYS = [
  'seed',
  'data.name',
  'data.source',
  'data.classes',
  'data.noise',
  'data.normalize',
  'data.length',
  'model.type',
  'model.hidden',
  'model.depth',
  'model.width',
  'model.activation',
  'model.norm',
  'model.residual',
  'model.dropout',
  'model.layers',
  'model.hiddenSize',
  'init.weight',
  'init.bias',
  'init.gain',
  'optim.name',
  'optim.lr',
  'optim.b1',
  'optim.b2',
  'optim.momentum',
  'optim.eps',
  'schedule.name',
  'schedule.stepSize',
  'clip',
  'clip[0].type',
  'clip[0].max',
  'clip[1].type',
  'clip[4294967294].max',
  'clip[99999999999]',
  'train.batchSize',
  'train.onNonFinite',
  'train.maxConsecutiveNonFinite',
  'train.logEvery',
  'monitor.every',
  '__proto__.polluted',
  'constructor.prototype.x',
  'clip[0].__proto__.max',
  'model.prototype',
  'nope',
  'model.depht',
  'a..b',
  '[0]',
  '',
];

const VALUES = [
  '0',
  '1',
  '2',
  '3',
  '-1',
  '0.5',
  '1e-3',
  '1e39',
  '1e300',
  '99999999999',
  '4294967294',
  'NaN',
  '.nan',
  'inf',
  'abc',
  '',
  'true',
  'null',
  '[]',
  '[4]',
  '[0]',
  '[1000000000]',
  '{}',
  '{type: value, max: 1}',
  '{__proto__: {x: 1}}',
  '&a [*a]',
  'spirals',
  'adding',
  'copy',
  'csv',
  'idx',
  'mlp',
  'rnn',
  'lstm',
  'cnn',
  'resnet',
  'batch',
  'layer',
  'sgd',
  'adam',
  'raise',
  'stop',
  'skip',
  'global-norm',
  'agc',
  'tanh',
  'lsuv',
  'orthogonal',
];

/** Per key, values of its own kind (mostly valid, some at or past the edges), so that many fuzzed runs train. */
const TYPED: Record<string, string[]> = {
  seed: ['0', '1', '-1', '99999999999'],
  'data.name': ['spirals', 'adding', 'copy', 'csv', 'idx'],
  'data.classes': ['2', '3', '1', '1000'],
  'data.noise': ['0', '0.5', '1e39'],
  'data.normalize': ['none', 'standardize', 'standardize-features'],
  'data.length': ['2', '5', '1', '100001'],
  'model.type': ['mlp', 'rnn', 'lstm', 'gru', 'cnn', 'resnet'],
  'model.hidden': ['[4]', '[4, 4]', '[]', '[1000000000]', '[0]'],
  'model.depth': ['1', '2', '3', '99999999999'],
  'model.width': ['4', '1', '99999999999'],
  'model.activation': ['relu', 'tanh', 'sigmoid', 'selu', 'gelu'],
  'model.norm': ['none', 'batch', 'layer'],
  'model.residual': ['true', 'false'],
  'model.dropout': ['0', '0.5', '1', '2'],
  'model.layers': ['1', '2', '1001'],
  'model.hiddenSize': ['4', '1'],
  'init.weight': ['zeros', 'orthogonal', 'lsuv', 'kaiming-normal', 'default'],
  'init.bias': ['zeros', '0.1', '1e300'],
  'init.gain': ['1', '0.001', '1e300'],
  'optim.name': ['sgd', 'adam', 'adamw', 'rmsprop'],
  'optim.lr': ['0.1', '1e-3', '1e30', '0', '-1'],
  'optim.b1': ['0', '0.9', '1'],
  'optim.b2': ['0.999', '1', '0'],
  'optim.momentum': ['0', '0.9', '1'],
  'optim.eps': ['1e-8', '0'],
  'schedule.name': ['constant', 'step', 'cosine'],
  'schedule.stepSize': ['1', '0'],
  clip: ['[]', '[{type: value, max: 1}]', '[{type: agc}]', '[{type: skip-non-finite}]', '{}'],
  'clip[0].type': ['value', 'norm', 'global-norm', 'agc', 'autoclip', 'skip-non-finite'],
  'clip[0].max': ['1', '0', '1e39'],
  'clip[1].type': ['value', 'autoclip'],
  'train.batchSize': ['1', '3', '16', '4294967294'],
  'train.onNonFinite': ['skip', 'stop', 'raise'],
  'train.maxConsecutiveNonFinite': ['1', '2'],
  'train.logEvery': ['1', '99999999999'],
  'monitor.every': ['1', '2'],
  'monitor.enabled': ['true', 'false'],
};

/** Mostly a key with a value of its kind, sometimes any key with any value, sometimes any string. */
const assignment = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .constantFrom(...Object.keys(TYPED))
      .chain((k) => fc.constantFrom(...TYPED[k]!).map((v) => `${k}=${v}`)),
  },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom(...VALUES)).map(([k, v]) => `${k}=${v}`) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...KEYS), fc.string({ maxLength: 12 })).map(([k, v]) => `${k}=${v}`),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 16 }) },
);

describe('CLI fuzz', () => {
  it('random --set keys and values: exit 0, 2 or 3, no stack trace, one JSON object with --json', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('train', 'doctor'),
        fc.array(assignment, { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        async (cmd, sets, json) => {
          const argv = [
            cmd,
            ...(cmd === 'train' ? ['--no-store', '--quiet'] : []),
            '--set',
            'data.name=spirals',
            '--set',
            'model.hidden=[8]',
            ...sets.flatMap((s) => ['--set', s]),
            ...GUARD,
            ...(cmd === 'doctor' ? ['--steps', '2', '--batches', '1'] : []),
            ...(json ? ['--json'] : []),
          ];
          await check(argv, json);
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  }, 300_000);

  it('random argument vectors: exit 0 or 2, no stack trace, one JSON object with --json', async () => {
    const commands = ['train', 'doctor', 'sweep', 'runs', 'export', 'report', 'dashboard', 'bogus', ''];
    const tokens = [
      '--json',
      '--quiet',
      '--no-store',
      '--store',
      store,
      '--store',
      join(dir, 'none'),
      '--steps',
      '--batches',
      '--max-trials',
      '--parallel',
      '--limit',
      '--status',
      '--format',
      '--out',
      '--name',
      '--tag',
      '--notes',
      '--resume',
      '-c',
      yamlFile,
      '/dev/zero',
      join(dir, 'missing', 'x.md'),
      '--set',
      'model.depht=1',
      'list',
      'show',
      'compare',
      'rm',
      'x',
      'csv',
      'tensorboard',
      'safetensors',
      '0',
      '-1',
      'abc',
      '1.5',
      '99999999999',
      '',
      '--frobnicate',
      '-z',
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...commands),
        fc.array(fc.oneof(fc.constantFrom(...tokens), fc.string({ maxLength: 8 })), { maxLength: 6 }),
        fc.boolean(),
        async (cmd, rest, json) => {
          // never a real server, a sweep's trials, the help text or a run that can reach the network
          const args = rest.filter((a) => !/^(-h|--help|help|-V|--version|--grid|-g|--port|--host|--fix)$/.test(a));
          // --json right after the command, where no fuzzed option can take it as its value
          const argv = [
            ...(cmd ? [cmd] : []),
            ...(json ? ['--json'] : []),
            // a run store in the temporary directory unless the fuzzed arguments name another (the last one wins)
            ...(cmd === 'train' ? ['--store', join(dir, 'train-store')] : []),
            ...args,
            ...(cmd === 'dashboard' ? ['--port', 'not-a-port'] : []),
            ...(cmd === 'sweep' ? ['--out', join(dir, 'missing', 'table.md')] : []),
            ...(cmd === 'train' || cmd === 'doctor'
              ? ['--set', 'data.name=spirals', '--set', 'model.hidden=[8]', ...GUARD]
              : []),
            ...(cmd === 'doctor' ? ['--steps', '2', '--batches', '1'] : []),
          ];
          const status = await check(argv, json);
          expect(status, argv.join(' ')).not.toBe(3);
        },
      ),
      { numRuns: RUNS, seed: SEED + 1 },
    );
  }, 300_000);
});
