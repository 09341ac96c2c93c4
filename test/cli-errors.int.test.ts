/**
 * The CLI's error model, command by command: a user's mistake is one line on stderr (no stack trace) and exit status
 * 2, and with --json exactly one JSON object `{"error": {"code", "message"}}` on stdout; a bug is a stack trace and
 * status 1; a diverged run exits with 3, an interrupted one with 130. And the mistakes issue 11 found (prototype
 * pollution, unbounded sizes, bad data, stack traces, options replaced by defaults), each refused as such.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GradguardError } from '../src/base/errors.js';
import { reportError } from '../src/cli/errors.js';
import { main } from '../src/cli/main.js';
import { encodeIdx } from '../src/data/idx.js';
import { RunStore } from '../src/track/store.js';

let out = '';
let err = '';
/** Called with each stderr write (a test may act on a progress line). */
let onStderr: ((s: string) => void) | null = null;
beforeEach(() => {
  out = '';
  err = '';
  onStderr = null;
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    onStderr?.(String(s));
    return true;
  });
});
afterEach(() => vi.restoreAllMocks());

const dir = mkdtempSync(join(tmpdir(), 'gg-cli-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A tiny, fast run: 256 spirals, one epoch (the model's sizes left to `tiny`). */
const tinyData = [
  '--set',
  'data.name=spirals',
  '--set',
  'data.trainSize=256',
  '--set',
  'data.testSize=64',
  '--set',
  'train.batchSize=64',
  '--set',
  'train.epochs=1',
];
const tiny = [...tinyData, '--set', 'model.hidden=[8]'];

/** The one JSON object on stdout (fails when stdout holds anything else). */
function oneJson(): Record<string, unknown> {
  expect(out.endsWith('\n'), out).toBe(true);
  expect(out.trimEnd().split('\n'), out).toHaveLength(1);
  return JSON.parse(out) as Record<string, unknown>;
}

/** A user's mistake: exit 2, one line on stderr (no stack), and with --json the one error object. Returns the line. */
async function refused(args: string[], code?: string | RegExp): Promise<string> {
  out = '';
  err = '';
  const status = await main([...args, '--json']);
  expect(status, `${args.join(' ')}\n${err}`).toBe(2);
  expect(err).not.toMatch(/\n\s+at /);
  expect(err.trimEnd().split('\n'), err).toHaveLength(1);
  expect(err).toMatch(/^gradguard: /);
  const e = oneJson().error as { code: string; message: string };
  expect(Object.keys(e).sort()).toEqual(['code', 'message']);
  expect(e.message).toBe(err.trimEnd().replace(/^gradguard: /, ''));
  if (code !== undefined) expect(e.code).toMatch(code);
  return e.message;
}

describe('one error reporter for every command', () => {
  it('train, doctor and sweep: a bad config is one line, exit 2 and one JSON error object', async () => {
    for (const args of [['train', '--no-store'], ['doctor'], ['sweep', '--no-store', '--grid', 'optim.lr=0.1,0.01']]) {
      expect(await refused([...args, '--set', 'model.depht=3'], 'config.invalid')).toContain("unknown key 'depht'");
    }
  });

  it('runs list/show/compare/rm, export and report: a missing store', async () => {
    const store = join(dir, 'no-store');
    for (const args of [
      ['runs', 'list'],
      ['runs', 'show', 'x'],
      ['runs', 'compare', 'x', 'y'],
      ['runs', 'rm', 'x'],
      ['export', 'x', '--format', 'csv', '--out', join(dir, 'exp')],
      ['export', 'x', '--out', join(dir, 'w.safetensors')],
      ['report', 'x'],
    ]) {
      expect(await refused([...args, '--store', store], 'NO_STORE')).toContain('no run store');
    }
  });

  it('export, dashboard and runs: bad options', async () => {
    expect(await refused(['export', 'x', '--format', 'xml', '--out', dir], 'BAD_ARGUMENT')).toContain('--format');
    expect(await refused(['dashboard', '--port', 'http'], 'usage')).toContain('--port');
    const store = join(dir, 'empty-store');
    RunStore.open(store).close();
    expect(await refused(['runs', 'list', '--limit', 'abc', '--store', store])).toContain('--limit');
    expect(await refused(['runs', 'frobnicate'], 'BAD_ARGUMENT')).toContain("unknown command 'runs frobnicate'");
  });

  it("commander's own usage errors go through the same reporter", async () => {
    expect(await refused(['bogus'], 'usage')).toContain("unknown command 'bogus'");
    expect(await refused(['train', '--frobnicate'], 'usage')).toContain("unknown option '--frobnicate'");
    expect(await refused(['export'], 'usage')).toContain("missing required argument 'id'");
    expect(await refused(['runs'], 'usage')).toContain("missing required argument 'action'");
  });

  it('a bug is a stack trace and exit 1, with --json still one JSON error object', () => {
    const lines: string[] = [];
    const io = { stdout: (s: string) => void (out += s), stderr: (s: string) => void lines.push(s) };
    out = '';
    expect(reportError(new TypeError('x is undefined'), io, true)).toBe(1);
    expect(lines.join('')).toMatch(/internal error .*x is undefined/);
    expect(lines.join('')).toMatch(/\n\s+at /);
    expect(oneJson()).toEqual({ error: { code: 'internal', message: 'x is undefined' } });
    // a GradguardError that is not the user's (user: false) is a bug too
    lines.length = 0;
    out = '';
    expect(reportError(new GradguardError('broken', { code: 'store.bug', user: false }), io, false)).toBe(1);
    expect(out).toBe('');
  });

  it('prints the version', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(await main(['--version'])).toBe(0);
    expect(out.trim()).toBe(pkg.version);
  });
});

describe('exit statuses of training', () => {
  const lr = ['--set', 'optim.name=sgd', '--set', 'optim.lr=1e30', '--set', 'clip=[]'];

  it('a diverged run exits with 3 and says so in its JSON object', async () => {
    const code = await main(['train', '--no-store', '--json', ...tiny, ...lr, '--set', 'train.onNonFinite=stop']);
    expect(code, err).toBe(3);
    const r = oneJson();
    expect(r.status).toBe('diverged');
    expect(r.exitStatus).toBe(3);
  });

  it('train.onNonFinite=raise is one line naming the parameter, exit 3, no stack trace', async () => {
    const code = await main([
      'train',
      '--no-store',
      '--json',
      '--quiet',
      ...tiny,
      ...lr,
      '--set',
      'train.onNonFinite=raise',
    ]);
    expect(code).toBe(3);
    expect(err).not.toMatch(/\n\s+at /);
    const e = oneJson().error as { code: string; message: string };
    expect(e.code).toBe('train.non-finite');
    expect(e.message).toMatch(/the gradient of [\w.]*weight holds \d+ NaN\/Inf/);
  });

  it('a run stopped by train.onNonFinite=raise is stored as diverged, not failed', async () => {
    const store = mkdtempSync(join(tmpdir(), 'gg-raise-'));
    try {
      const code = await main([
        'train',
        '--store',
        store,
        '--quiet',
        ...tiny,
        ...lr,
        '--set',
        'train.onNonFinite=raise',
      ]);
      expect(code).toBe(3);
      err = '';
      out = '';
      expect(await main(['runs', 'list', '--store', store, '--json'])).toBe(0);
      const runs = (oneJson().runs ?? []) as { status: string }[];
      expect(runs.map((r) => r.status)).toEqual(['diverged']);
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });

  it('an interrupted run exits with 130 (Ctrl+C at the first progress line)', async () => {
    let sent = false;
    onStderr = (s) => {
      if (!sent && /^ {2}step 1\//.test(s)) {
        sent = true;
        process.emit('SIGINT');
      }
    };
    const code = await main(['train', '--no-store', '--json', ...tiny, '--set', 'train.logEvery=1']);
    expect(sent).toBe(true);
    expect(code, err).toBe(130);
    const r = oneJson();
    expect(r.status).toBe('interrupted');
    expect(r.exitStatus).toBe(130);
  });
});

describe('prototype pollution (issue 11 item 5)', () => {
  it('refuses __proto__, constructor and prototype in --set, config files and values', async () => {
    const before = Object.prototype.toString;
    expect(await refused(['train', '--no-store', '--set', '__proto__.toString=1'], 'config.invalid')).toContain(
      "'__proto__' is not a config key",
    );
    expect(Object.prototype.toString).toBe(before);
    expect(({} as { max?: unknown }).max).toBeUndefined();
    await refused(['train', '--no-store', '--set', 'clip[0].__proto__.max=5'], 'config.invalid');
    expect(({} as { max?: unknown }).max).toBeUndefined();
    await refused(['train', '--no-store', '--set', 'model.constructor.prototype.x=1'], 'config.invalid');
    await refused(['train', '--no-store', '--set', 'model={"__proto__": {"x": 1}}'], 'config.invalid');
    const yaml = join(dir, 'proto.yaml');
    writeFileSync(yaml, 'model:\n  __proto__:\n    polluted: 1\n');
    expect(await refused(['train', '--no-store', '-c', yaml], 'config.invalid')).toContain('model.__proto__');
    const json = join(dir, 'proto.json');
    writeFileSync(json, '{"train": {"constructor": {"prototype": 1}}}');
    expect(await refused(['doctor', '-c', json], 'config.invalid')).toContain("'constructor' is not a config key");
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });
});

describe('mistakes the fuzz test found', () => {
  it('a value that contains itself (a YAML alias to its own anchor), in --set and in a file', async () => {
    expect(await refused(['train', '--no-store', '--set', 'seed=&a [*a]'], 'config.invalid')).toContain('seed');
    const f = join(dir, 'self.yaml');
    writeFileSync(f, 'model:\n  hidden: &a [*a]\n');
    expect(await refused(['train', '--no-store', '-c', f], 'config.invalid')).toContain(
      'model.hidden[0]: the value contains itself',
    );
  });

  it('a model with one output per example on data with a class per time step', async () => {
    expect(await refused(['train', '--no-store', ...tiny, '--set', 'data.name=copy'], 'build.invalid')).toContain(
      "data 'copy' has a class per time step",
    );
  });
});

describe('unbounded sizes (issue 11 item 8)', () => {
  it('refuses huge models before allocating, naming the size and the limit', async () => {
    expect(
      await refused(['train', '--no-store', ...tiny, '--set', 'model.hidden=[1000000000]'], 'build.invalid'),
    ).toMatch(/weight matrix of 3,000,000,000 elements, over the limit of 2,147,483,647/);
    expect(await refused(['train', '--no-store', ...tinyData, '--set', 'model.depth=1000000000'])).toMatch(
      /parameters .* over the limit of .* \(half of this machine's memory\)/,
    );
    expect(await refused(['train', '--no-store', '--set', 'clip[4294967294].type=value'])).toContain(
      'list index 4294967294 is too large (at most 1000)',
    );
    expect(await refused(['train', '--no-store', '--set', 'model.resnetDepth=1000000000'])).toContain('resnetDepth');
  });

  it('refuses a YAML alias bomb and a config that never ends', async () => {
    const bomb = join(dir, 'bomb.yaml');
    const rows = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (const [p, q] of ['ba', 'cb', 'dc', 'ed', 'fe', 'gf', 'hg'])
      rows.push(`${p}: &${p} [${Array(9).fill(`*${q}`).join(',')}]`);
    writeFileSync(bomb, `${rows.join('\n')}\n`);
    expect(await refused(['train', '--no-store', '-c', bomb], 'config.invalid')).toMatch(/alias/i);
    expect(await refused(['train', '--no-store', '-c', '/dev/zero'], 'config.invalid')).toContain(
      'larger than 1048576 bytes',
    );
    expect(await refused(['train', '--no-store', '-c', dir], 'config.invalid')).toContain('is a directory');
  });

  it('refuses an IDX label of 2e9, IDX sizes [0, 1e5, 1e5] and a CSV label of 1e9', async () => {
    const idx = (name: string, files: Record<string, Uint8Array>) => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      for (const [f, bytes] of Object.entries(files)) writeFileSync(join(d, f), bytes);
      return d;
    };
    const images = (n: number, data?: number[], dtype: 'uint8' | 'float32' = 'uint8') =>
      encodeIdx({ dtype, dims: [n, 2, 2], data: data ?? Array.from({ length: n * 4 }, (_, i) => i % 256) });
    const labels = (ls: number[]) => encodeIdx({ dtype: 'int32', dims: [ls.length], data: ls });
    const std = (trainLabels: number[], extra: Record<string, Uint8Array> = {}) => ({
      'train-images-idx3-ubyte': images(trainLabels.length),
      'train-labels-idx1-ubyte': labels(trainLabels),
      't10k-images-idx3-ubyte': images(2),
      't10k-labels-idx1-ubyte': labels([0, 1]),
      ...extra,
    });
    const big = idx('big-label', std([0, 1, 2e9, 1]));
    expect(
      await refused(['train', '--no-store', '--set', 'data.name=idx', '--set', `data.dir=${big}`], 'label-range'),
    ).toMatch(/train-labels-idx1-ubyte: label 2000000000 at index 2 is over the limit of 999999/);
    const empty = idx(
      'empty-images',
      std([0, 1], {
        'train-images-idx3-ubyte': encodeIdx({ dtype: 'uint8', dims: [0, 100000, 100000], data: [] }),
        'train-labels-idx1-ubyte': labels([]),
        't10k-images-idx3-ubyte': encodeIdx({ dtype: 'uint8', dims: [0, 100000, 100000], data: [] }),
        't10k-labels-idx1-ubyte': labels([]),
      }),
    );
    expect(await refused(['train', '--no-store', '--set', 'data.name=idx', '--set', `data.dir=${empty}`])).toContain(
      'holds no images',
    );
    const csv = join(dir, 'big-label.csv');
    writeFileSync(csv, 'a,b,label\n1,2,0\n3,4,1000000000\n5,6,1\n7,8,0\n9,10,1\n');
    expect(
      await refused(['train', '--no-store', '--set', 'data.name=csv', '--set', `data.file=${csv}`], 'csv'),
    ).toMatch(/big-label\.csv:3: label 1000000000 .* over the limit of 999999/);
  });
});

describe('bad data (issue 11 item 9)', () => {
  it('refuses CSV values beyond float32 and NaN labels, naming the file, row and value', async () => {
    const inf = join(dir, 'inf.csv');
    writeFileSync(inf, 'a,b,label\n1,2,0\n3,1e39,1\n5,6,1\n7,8,0\n9,10,1\n');
    expect(
      await refused(['train', '--no-store', '--set', 'data.name=csv', '--set', `data.file=${inf}`], 'csv'),
    ).toMatch(/inf\.csv:3: column "b" \(1\) holds 1e39, beyond float32/);
    const nan = join(dir, 'nan.csv');
    writeFileSync(nan, 'a,b,label\n1,2,cat\n3,4,NaN\n5,6,dog\n7,8,cat\n9,10,dog\n');
    expect(
      await refused(['train', '--no-store', '--set', 'data.name=csv', '--set', `data.file=${nan}`], 'csv'),
    ).toMatch(/nan\.csv:3: label "NaN" .* is a missing value, not a class/);
  });

  it('refuses all-NaN and all-Inf float IDX images, naming the file and the image', async () => {
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const d = join(dir, `float-${v}`);
      mkdirSync(d, { recursive: true });
      const imgs = encodeIdx({ dtype: 'float32', dims: [4, 2, 2], data: new Array(16).fill(v) });
      writeFileSync(join(d, 'train-images-idx3-ubyte'), imgs);
      writeFileSync(join(d, 'train-labels-idx1-ubyte'), encodeIdx({ dtype: 'uint8', dims: [4], data: [0, 1, 0, 1] }));
      writeFileSync(join(d, 't10k-images-idx3-ubyte'), imgs);
      writeFileSync(join(d, 't10k-labels-idx1-ubyte'), encodeIdx({ dtype: 'uint8', dims: [4], data: [0, 1, 0, 1] }));
      expect(
        await refused(['train', '--no-store', '--set', 'data.name=idx', '--set', `data.dir=${d}`], 'format'),
      ).toContain(`train-images-idx3-ubyte: example 0, value 0 is ${v}`);
    }
  });

  it('refuses an empty test split rather than reporting an accuracy of NaN%', async () => {
    const d = join(dir, 'empty-test');
    mkdirSync(d, { recursive: true });
    writeFileSync(
      join(d, 'train-images-idx3-ubyte'),
      encodeIdx({ dtype: 'uint8', dims: [4, 2, 2], data: new Array(16).fill(3) }),
    );
    writeFileSync(join(d, 'train-labels-idx1-ubyte'), encodeIdx({ dtype: 'uint8', dims: [4], data: [0, 1, 0, 1] }));
    writeFileSync(join(d, 't10k-images-idx3-ubyte'), encodeIdx({ dtype: 'uint8', dims: [0, 2, 2], data: [] }));
    writeFileSync(join(d, 't10k-labels-idx1-ubyte'), encodeIdx({ dtype: 'uint8', dims: [0], data: [] }));
    expect(await refused(['train', '--no-store', '--set', 'data.name=idx', '--set', `data.dir=${d}`])).toMatch(
      /t10k-images-idx3-ubyte: the IDX file holds no images/,
    );
  });
});

describe('user mistakes that were stack traces (issue 11 item 10)', () => {
  it('Adam betas of 1, batch norm on batches of one, a residual MLP of odd depth', async () => {
    expect(await refused(['train', '--no-store', ...tiny, '--set', 'optim.b1=1'])).toContain('optim.b1');
    expect(await refused(['train', '--no-store', ...tiny, '--set', 'optim.b2=1'])).toContain('optim.b2');
    expect(
      await refused(
        ['train', '--no-store', ...tiny, '--set', 'model.norm=batch', '--set', 'train.batchSize=1'],
        'build.invalid',
      ),
    ).toContain('model.norm=batch needs at least 2 examples per batch');
    expect(
      await refused(
        ['train', '--no-store', ...tiny, '--set', 'model.norm=batch', '--set', 'train.batchSize=85'],
        'build.invalid',
      ),
    ).toContain('leaves the last batch of each epoch with 1 example');
    expect(
      await refused(['train', '--no-store', ...tinyData, '--set', 'model.depth=3', '--set', 'model.residual=true']),
    ).toContain('depth must be even');
  });

  it('sweep --out into a missing directory is refused before any trial runs', async () => {
    const msg = await refused([
      'sweep',
      '--no-store',
      ...tiny,
      '--grid',
      'optim.lr=0.1,0.01',
      '--out',
      join(dir, 'nope', 't.md'),
    ]);
    expect(msg).toContain('does not exist');
    expect(err).not.toContain('trial');
  });

  it('sweep: a trial refused as a user mistake is its row and the one JSON error object, exit 2 (not 1, a bug), no stack trace', async () => {
    const code = await main([
      'sweep',
      '--no-store',
      '--json',
      '--parallel',
      '2',
      ...tinyData,
      '--set',
      'model.depth=3',
      '--grid',
      'model.residual=false,true',
    ]);
    expect(code, err).toBe(2);
    expect(err).not.toMatch(/\n\s+at /);
    const refused = 'model: nn.mlp(): a residual MLP has blocks of two layers, so depth must be even, got 3';
    const out = oneJson() as { error: { code: string; message: string }; trials: { status: string; error?: string }[] };
    // the one object is the error, as every command prints its errors with --json; the table comes with it
    expect(out.error).toEqual({
      code: 'sweep.trial-failed',
      message: `sweep: 1 of 2 trials were refused; trial 1: ${refused}`,
    });
    expect(err).toContain(`gradguard: sweep: 1 of 2 trials were refused; trial 1: ${refused}\n`);
    expect(out.trials[0]!.status).toBe('finished');
    expect(out.trials[1]!.error).toBe(refused);
  }, 120_000);

  it('GRADGUARD_BACKEND=bogus is one line and exit 2 (fresh process)', () => {
    const mainTs = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
    const code = `const { main } = await import(${JSON.stringify(mainTs)}); process.exitCode = await main(['train', '--no-store', '--json', '--set', 'data.name=spirals', '--set', 'train.epochs=1']);`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      env: { ...process.env, GRADGUARD_BACKEND: 'bogus' },
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/^gradguard: unknown backend 'bogus'/m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(JSON.parse(r.stdout).error.code).toBe('env.backend');
  });
});

describe('numeric options are validated, never defaulted (issue 11 item 12)', () => {
  it('refuses doctor --steps/--batches/--max-trials and sweep --parallel that are not whole numbers in range', async () => {
    for (const args of [
      ['doctor', '--steps', '0'],
      ['doctor', '--steps', 'abc'],
      ['doctor', '--steps', '1.5'],
      ['doctor', '--batches', 'x'],
      ['doctor', '--batches', '-1'],
      ['doctor', '--max-trials', 'many'],
      ['doctor', '--steps', '99999999999'],
      ['sweep', '--parallel', 'abc', '--grid', 'optim.lr=0.1,0.01'],
      ['sweep', '--parallel', '0', '--grid', 'optim.lr=0.1,0.01'],
    ]) {
      expect(await refused(args, 'usage')).toMatch(
        /argument '.*' is invalid\. Give a whole number from \d+ to 1,000,000/,
      );
    }
    expect(await refused(['train', '--no-store', '--set', 'clip[99999999999].type=value'])).toContain('too large');
  });
});

describe('run metadata and the run header (issue 11 item 18)', () => {
  it('stores --name, --tag and --notes with the run', async () => {
    const store = join(dir, 'meta-store');
    const code = await main([
      'train',
      '--store',
      store,
      '--quiet',
      ...tiny,
      '--name',
      'spiral probe',
      '--tag',
      'baseline',
      '--tag',
      'tiny',
      '--notes',
      'first try',
    ]);
    expect(code, err).toBe(0);
    out = '';
    expect(await main(['runs', 'list', '--store', store, '--name', 'spiral', '--json'])).toBe(0);
    const list = oneJson() as { runs: { id: string; name: string }[] };
    expect(list.runs).toHaveLength(1);
    expect(list.runs[0]!.name).toBe('spiral probe');
    out = '';
    expect(await main(['runs', 'show', list.runs[0]!.id, '--store', store, '--json'])).toBe(0);
    const show = oneJson() as { run: { config: { meta: unknown } } };
    expect(show.run.config.meta).toEqual({ tags: ['baseline', 'tiny'], notes: 'first try' });
    expect(await refused(['train', '--no-store', '--name', 'x'])).toContain('drop --no-store');
    expect(await refused(['train', '--store', store, '--tag', 'a\nb'])).toContain('control characters');
  });

  it('the headers say how many --set overrides were given', async () => {
    expect(await main(['train', '--no-store', ...tiny])).toBe(0);
    expect(err).toContain('config defaults + 6 overrides');
    err = '';
    expect(await main(['doctor', '--steps', '2', '--batches', '1', ...tiny, '--json'])).toBe(0);
    expect(err).toContain('(defaults + 6 overrides)');
    expect(err).not.toContain('((');
  });
});

describe('distributed sweeps: mistakes in the queue options (issue 15)', () => {
  // a port nothing listens on: the server cannot be reached, and the password must not show
  const unreachable = 'postgres://gg:s3cret-pw@127.0.0.1:1/runs';

  it('refuses --detach and --status without --queue, --status with a grid, --parallel with --queue', async () => {
    expect(await refused(['sweep', '--detach', '--grid', 'optim.lr=0.1,0.01'], 'usage')).toContain(
      '--detach needs --queue postgres://',
    );
    expect(await refused(['sweep', '--status', 'sw-1'], 'usage')).toContain('--status needs --queue');
    expect(await refused(['sweep', '--queue', unreachable, '--status', 'sw-1', '--grid', 'optim.lr=0.1'])).toContain(
      'drop the --grid options',
    );
    expect(await refused(['sweep', '--queue', unreachable, '--parallel', '2', '--grid', 'optim.lr=0.1'])).toContain(
      'start workers with --concurrency',
    );
  });

  it('refuses a queue URL that is not PostgreSQL, and an unreachable server in one line without its password', async () => {
    expect(await refused(['sweep', '--queue', 'redis://127.0.0.1:6379', '--grid', 'optim.lr=0.1'])).toContain(
      'give a PostgreSQL URL',
    );
    for (const args of [
      ['sweep', '--queue', unreachable, '--detach', '--set', 'data.name=spirals', '--grid', 'optim.lr=0.1'],
      ['sweep', '--queue', unreachable, '--status', 'sw-1'],
      ['worker', '--queue', unreachable],
    ]) {
      const msg = await refused(args, 'usage');
      expect(msg).toBe(
        '--queue postgres://gg:***@127.0.0.1:1/runs: cannot reach the PostgreSQL server (ECONNREFUSED); is it running there?',
      );
      expect(err + out).not.toContain('s3cret');
    }
    expect(await refused(['worker', '--queue', unreachable, '--concurrency', '0'])).toContain('--concurrency');
  });
});
