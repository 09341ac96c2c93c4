/**
 * The run store from the command line under attack (issue 11), as a user or a scheduler would do it: SIGTERM and
 * SIGHUP to a training process, `runs rm --force` of a live run, a read-only store read by another user, a full disk,
 * directories where nothing can be made (/proc), run ids edited into `runs.db`. Every child is driven by what it
 * prints (a handshake), never by a timer.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../test/cli-io.js';
import { DB_FILE, RunStore } from '../track/store.js';
import { listCheckpoints, loadCheckpoint, runCheckpointDir } from '../train/checkpoint.js';
import { exportCommand, runsCommand, runsRm } from './runs.js';

const ROOT = join(import.meta.dirname, '..', '..');
let work: string;
let script: string;
let tinyConfig: string;
let longConfig: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'gg-cli-store-safety-'));
  chmodSync(work, 0o755);
  script = join(work, 'cli.mts');
  const main = pathToFileURL(join(ROOT, 'src', 'cli', 'main.ts')).href;
  writeFileSync(
    script,
    `import { main } from ${JSON.stringify(main)};\nprocess.exitCode = await main(process.argv.slice(2));\n`,
  );
  const base = {
    seed: 3,
    data: { name: 'spirals', trainSize: 64, testSize: 16 },
    model: { type: 'mlp', hidden: [8] },
    optim: { name: 'adam', lr: 0.01 },
  };
  tinyConfig = join(work, 'tiny.json');
  writeFileSync(tinyConfig, JSON.stringify({ ...base, train: { epochs: 2, batchSize: 16 } }));
  // long enough that it is still training whenever the test acts on it (the test stops it)
  longConfig = join(work, 'long.json');
  writeFileSync(longConfig, JSON.stringify({ ...base, train: { epochs: 1_000_000, batchSize: 16, logEvery: 1 } }));
  for (const f of [script, tinyConfig, longConfig]) chmodSync(f, 0o644);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Done {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/**
 * Runs the CLI in a child process. `onStep(step, child, err)` is called for each progress line (`step N/...`) it
 * prints, so a test acts at a step it chooses. `asUser` runs it as that uid/gid (through setpriv).
 */
function runCli(
  args: string[],
  opts: { onStep?: (step: number, child: ChildProcess, err: string) => void; asUser?: number } = {},
): Promise<Done> {
  const argv = [process.execPath, '--import', 'tsx', script, ...args];
  const cmd =
    opts.asUser === undefined
      ? argv
      : ['setpriv', `--reuid=${opts.asUser}`, `--regid=${opts.asUser}`, '--clear-groups', ...argv];
  const child = spawn(cmd[0]!, cmd.slice(1), {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: work, GRADGUARD_BACKEND: 'js' },
  });
  let out = '';
  let err = '';
  let seen = -1;
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => {
    err += c;
    for (const m of c.matchAll(/step (\d+)\//g)) {
      const step = Number(m[1]);
      if (step > seen) {
        seen = step;
        opts.onStep?.(step, child, err);
      }
    }
  });
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out, err })));
}

/** One line on stderr, no stack trace. */
function oneLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  expect(lines, text).toHaveLength(1);
  expect(text).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('stop signals', () => {
  for (const sig of ['SIGTERM', 'SIGHUP'] as const) {
    it(`${sig} stops the run like Ctrl+C: a checkpoint at the last step, the run interrupted`, async () => {
      const store = join(work, `store-${sig}`);
      let sent = false;
      const done = await runCli(['train', '-c', longConfig, '--store', store, '--json'], {
        onStep: (step, child) => {
          if (step >= 3 && !sent) {
            sent = true;
            child.kill(sig);
          }
        },
      });
      expect(done.signal, done.err).toBeNull();
      expect(done.err).toContain(`gradguard: ${sig}: stopping after this step (writing a checkpoint)`);
      const result = JSON.parse(done.out) as { run: string; status: string; reason: string; steps: number };
      expect(result.status).toBe('interrupted');
      expect(result.reason).toBe(`stopped by ${sig}`);
      expect(result.steps).toBeGreaterThanOrEqual(3);
      const reader = RunStore.open(store, { readonly: true });
      try {
        expect(reader.getRun(result.run).status).toBe('interrupted');
      } finally {
        reader.close();
      }
      expect(loadCheckpoint(runCheckpointDir(store, result.run)).step).toBe(result.steps);
    }, 120_000);
  }
});

describe('runs rm of a live run', () => {
  it('refuses without --force; with it, the writer stops in one line and the next run gets none of its steps', async () => {
    const store = join(work, 'store-rm');
    let runId = '';
    let refused: { code: number; err: string } | null = null;
    let forced: { code: number; err: string } | null = null;
    // Set at once, not in the .then: two step lines in one stderr chunk call onStep twice before a promise settles,
    // and a second pass would find the run already removed.
    let fired = false;
    const done = await runCli(['train', '-c', longConfig, '--store', store, '--json'], {
      onStep: (step, _child, err) => {
        if (step < 3 || fired) return;
        fired = true;
        runId = /gradguard: run (\S+) in /.exec(err)![1]!;
        const io1 = captureIO();
        const io2 = captureIO();
        // synchronous under the hood: both finish before this callback returns
        void runsRm([runId], { store }, io1).then((code) => (refused = { code, err: io1.err }));
        void runsRm([runId], { store, force: true }, io2).then((code) => (forced = { code, err: io2.err }));
      },
    });
    expect(refused!.code, refused!.err).toBe(2);
    expect(oneLine(refused!.err)).toMatch(
      new RegExp(`run ${runId} is still running \\(pid \\d+ on .*\\); stop it first, or pass --force`),
    );
    expect(forced!.code, forced!.err).toBe(0);
    expect(forced!.err).toMatch(new RegExp(`run ${runId} was still running .*its process stops writing`));
    expect(done.signal, done.err).toBeNull();
    expect(done.err).not.toMatch(/\n\s+at /);
    const warnings = done.err.split('\n').filter((l) => l.includes('was removed from the run store'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`^warning: run ${runId} was removed from the run store .*; stopping$`));
    const result = JSON.parse(done.out) as { status: string; reason: string; checkpoint: string | null };
    expect(result).toMatchObject({
      status: 'interrupted',
      reason: 'the run was removed from the store',
      checkpoint: null,
    });
    expect(existsSync(join(store, 'checkpoints', runId))).toBe(false);
    const s = RunStore.open(store);
    try {
      expect(s.listRuns()).toEqual([]);
      const next = s.createRun({ config: {}, backend: 'js' });
      expect(s.getMetrics(next).steps).toEqual([]);
      expect(s.getFindings(next)).toEqual([]);
    } finally {
      s.close();
    }
  }, 120_000);
});

/** A store with two finished runs, made by the CLI. */
async function makeStore(dir: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await runCli(['train', '-c', tinyConfig, '--store', dir, '--json', '--quiet']);
    expect(r.code, r.err).toBe(0);
    ids.push((JSON.parse(r.out) as { run: string }).run);
  }
  return ids;
}

const root = process.getuid?.() === 0;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;

describe.skipIf(root && !hasSetpriv)('a read-only store (another user reads it)', () => {
  it('reading commands work; writing ones fail in one line naming the store and the fix', async () => {
    const store = join(work, 'store-ro');
    const [a, b] = await makeStore(store);
    const out = join(work, 'ro-out');
    mkdirSync(out);
    chmodSync(out, 0o777);
    for (const f of readdirSync(store)) if (f.startsWith(DB_FILE)) chmodSync(join(store, f), 0o444);
    const chmodTree = (d: string) => {
      for (const f of readdirSync(d, { withFileTypes: true })) if (f.isDirectory()) chmodTree(join(d, f.name));
      chmodSync(d, 0o555);
    };
    chmodTree(store);
    const as = root ? { asUser: 65534 } : {};
    try {
      // every reading command, and the dashboard's API, in one child (each `main` call as the command line runs it)
      const reads = [
        ['runs', 'list'],
        ['runs', 'show', a!],
        ['runs', 'compare', a!, b!],
        ['report', a!, '--out', join(out, 'r.html')],
        ['export', a!, '--format', 'json', '--out', out],
        ['export', a!, '--out', join(out, 'model.safetensors')],
      ].map((args) => [...args, '--store', store]);
      const reader = join(work, 'reader.mts');
      const src = (p: string) => JSON.stringify(pathToFileURL(join(ROOT, 'src', ...p.split('/'))).href);
      writeFileSync(
        reader,
        `import { main } from ${src('cli/main.ts')};
import { createDashboardApp } from ${src('dashboard/server.ts')};
const codes = [];
for (const args of ${JSON.stringify(reads)}) codes.push(await main(args));
const app = createDashboardApp({ storeDir: ${JSON.stringify(store)} });
const res = await app.request('/api/runs', { headers: { Host: '127.0.0.1' } });
const body = await res.text();
app.close();
process.stdout.write('\\n@@ ' + JSON.stringify({ codes, status: res.status, body }) + '\\n');`,
      );
      chmodSync(reader, 0o644);
      const argv = [process.execPath, '--import', 'tsx', reader];
      const cmd = root ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv;
      const d = spawnSync(cmd[0]!, cmd.slice(1), { cwd: ROOT, encoding: 'utf8', env: { ...process.env, HOME: work } });
      const report = JSON.parse(d.stdout.split('\n@@ ')[1] ?? 'null') as {
        codes: number[];
        status: number;
        body: string;
      };
      expect(report?.codes, d.stderr).toEqual(reads.map(() => 0));
      expect(existsSync(join(out, `${a}.json`))).toBe(true);
      expect(existsSync(join(out, 'r.html'))).toBe(true);
      expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
      expect(report.status).toBe(200);
      expect(report.body).toContain(a);
      for (const args of [
        ['runs', 'rm', a!],
        ['train', '-c', tinyConfig, '--quiet'],
      ]) {
        const r = await runCli([...args, '--store', store], as);
        expect(r.code, r.err).toBe(2);
        expect(oneLine(r.err)).toMatch(
          new RegExp(
            `the run store ${store} is read-only.*make it writable \\(chmod -R u\\+w ${store}\\) or pass --store another directory`,
          ),
        );
      }
    } finally {
      chmodSync(store, 0o755);
    }
  }, 240_000);
});

const canMount =
  root &&
  (() => {
    const d = mkdtempSync(join(tmpdir(), 'gg-mount-probe-'));
    const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', d]).status === 0;
    if (ok) spawnSync('umount', [d]);
    rmSync(d, { recursive: true, force: true });
    return ok;
  })();

describe.skipIf(!canMount)('a full disk (a 1 MB tmpfs)', () => {
  it('one line naming the path and ENOSPC, exit 2, the run marked failed, the previous checkpoint intact', async () => {
    const disk = join(work, 'disk');
    mkdirSync(disk);
    expect(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk]).status).toBe(0);
    try {
      const store = join(disk, 'store');
      // ~150 KB per checkpoint (a 6,000-weight model and Adam's two moments): the disk fills after a few epochs
      const config = join(work, 'fill.json');
      writeFileSync(
        config,
        JSON.stringify({
          seed: 3,
          data: { name: 'spirals', trainSize: 64, testSize: 16 },
          model: { type: 'mlp', hidden: [80, 64] },
          optim: { name: 'adam', lr: 0.01 },
          train: { epochs: 100, batchSize: 16, keepCheckpoints: 10 },
        }),
      );
      const r = await runCli(['train', '-c', config, '--store', store, '--quiet']);
      expect(r.code, r.err).toBe(2);
      expect(oneLine(r.err)).toMatch(/^gradguard: cannot write .*: ENOSPC \(no space left on device\)/);
      const reader = RunStore.open(store, { readonly: true });
      let id: string;
      try {
        const runs = reader.listRuns();
        expect(runs).toHaveLength(1);
        id = runs[0]!.id;
        expect(runs[0]!.status).toBe('failed');
      } finally {
        reader.close();
      }
      const ckRoot = runCheckpointDir(store, id);
      expect(listCheckpoints(ckRoot).length).toBeGreaterThan(0);
      expect(readdirSync(ckRoot).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
      expect(loadCheckpoint(ckRoot).step % 4).toBe(0);
    } finally {
      spawnSync('umount', [disk]);
    }
  }, 120_000);
});

describe('where nothing can be made (/proc)', () => {
  it('export --out /proc/x and train --store /proc/gg fail at once in one line', async () => {
    const store = join(work, 'store-proc');
    const [a] = await makeStore(store);
    const io = captureIO();
    expect(await exportCommand(a!, { store, format: 'csv', out: '/proc/gg-x' }, io)).toBe(2);
    expect(oneLine(io.err)).toMatch(/^gradguard: cannot create --out \/proc\/gg-x: ENOENT/);
    const r = await runCli(['train', '-c', tinyConfig, '--store', '/proc/gg', '--quiet']);
    expect(r.code).toBe(2);
    expect(oneLine(r.err)).toMatch(/cannot create the run store directory \/proc\/gg: ENOENT/);
  }, 120_000);
});

describe('a run id edited into runs.db', () => {
  it('is refused by runs rm, export, report and --resume; nothing outside is removed or written', async () => {
    const store = join(work, 'store-tampered');
    const [a] = await makeStore(store);
    const victim = join(work, 'victim');
    mkdirSync(victim);
    writeFileSync(join(victim, 'keep.txt'), 'precious');
    // `<store>/checkpoints/../../victim` is `victim`
    const evil = '../../victim';
    const db = new Database(join(store, DB_FILE));
    db.prepare("UPDATE runs SET id = ?, name = 'victim' WHERE id = ?").run(evil, a);
    db.close();
    const out = join(work, 'tampered-out');
    const attempts: [string, () => Promise<number>][] = [
      ['runs rm', () => runsCommand('rm', [evil], { store, force: true }, io)],
      ['export csv', () => exportCommand(evil, { store, format: 'csv', out }, io)],
      ['export json', () => exportCommand(evil, { store, format: 'json', out }, io)],
    ];
    let io = captureIO();
    for (const [name, attempt] of attempts) {
      io = captureIO();
      expect(await attempt(), name).toBe(2);
      expect(oneLine(io.err), name).toMatch(/malformed run id "..\/..\/victim".*nothing was written or removed/);
    }
    for (const args of [
      ['report', 'victim', '--store', store],
      ['train', '--resume', 'victim', '--store', store, '--quiet'],
      ['export', 'victim', '--out', join(out, 'm.safetensors'), '--store', store],
    ]) {
      const r = await runCli(args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(2);
      expect(oneLine(r.err)).toMatch(/malformed run id "..\/..\/victim"/);
    }
    expect(existsSync(join(victim, 'keep.txt'))).toBe(true);
    expect(existsSync(join(work, 'victim-report.html'))).toBe(false);
    expect(existsSync(join(ROOT, '..', 'victim-report.html'))).toBe(false);
  }, 120_000);
});
