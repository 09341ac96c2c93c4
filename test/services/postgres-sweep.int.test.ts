/**
 * A test cluster whose owner process was killed before its teardown (a vitest stopped with SIGKILL) is stopped and
 * removed by the next start's sweep, while clusters whose owners still run are left alone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { canRun } from '../suites.js';
import { adminQuery, hasPostgres } from './pg.js';
import { findPostgresBin, sweepAbandonedClusters } from './postgres.js';

const bin = findPostgresBin();
const present = canRun('postgres', bin !== null, 'PostgreSQL is not installed (apt-get install -y postgresql)');

/**
 * Whether a process with this pid runs (EPERM: it does, under another user). A zombie does not: a stopped server
 * whose parent is the machine's init may stay one until init reaps it.
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** Kills a child and waits until it has exited (and is reaped), so that its pid is gone. */
function killAndWait(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  return exited;
}

/** A child that starts a cluster under `root` (its TMPDIR), prints the directory, and waits to be killed. */
function startOwner(root: string): Promise<{ child: ChildProcess; dir: string }> {
  const script = `import('./test/services/postgres.ts').then(async (m) => {
    const c = await m.startCluster();
    process.stdout.write(c.dir + '\\n');
    setInterval(() => {}, 1 << 30);
  });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', script], {
    env: { ...process.env, TMPDIR: root },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the owner exited (${code}) before printing its cluster`)));
    createInterface({ input: child.stdout! }).once('line', (dir) => resolve({ child, dir }));
  });
}

describe.skipIf(!present)('abandoned test clusters', () => {
  const root = mkdtempSync(join(tmpdir(), 'gradguard-pg-sweep-'));
  // the postgres user (when the tests run as root) must reach the cluster's directory through this one
  chmodSync(root, 0o755);
  const children: ChildProcess[] = [];
  afterAll(async () => {
    await Promise.all(children.map(killAndWait));
    sweepAbandonedClusters(root, bin);
    rmSync(root, { recursive: true, force: true });
  });

  it("stops and removes a killed owner's cluster, and leaves running owners' and unowned ones", async () => {
    const killed = await startOwner(root);
    const running = await startOwner(root);
    children.push(killed.child, running.child);
    const postmaster = (dir: string) =>
      Number(readFileSync(join(dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const killedServer = postmaster(killed.dir);
    const runningServer = postmaster(running.dir);
    expect(alive(killedServer)).toBe(true);
    // a directory being created this instant (no owner file yet) must not be taken for an abandoned one
    const unowned = join(root, 'gradguard-pg-unowned');
    mkdirSync(unowned);
    writeFileSync(join(unowned, 'marker'), '');
    // look-alikes that name a dead owner but are not ours: a link to a directory elsewhere, and (as root, who can
    // give a file away) a directory whose owner file another user wrote
    const elsewhere = mkdtempSync(join(tmpdir(), 'gradguard-sweep-target-'));
    writeFileSync(join(elsewhere, 'owner'), '999999999 1\n');
    const link = join(root, 'gradguard-pg-link');
    symlinkSync(elsewhere, link);
    const foreign = join(root, 'gradguard-pg-foreign');
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      mkdirSync(foreign);
      writeFileSync(join(foreign, 'owner'), '999999999 1\n');
      chownSync(join(foreign, 'owner'), 65534, 65534);
    }

    await killAndWait(killed.child);
    // the server outlives its owner: this is what the sweep is for
    expect(alive(killedServer)).toBe(true);

    expect(sweepAbandonedClusters(root, bin)).toEqual([killed.dir]);
    expect(existsSync(killed.dir)).toBe(false);
    expect(alive(killedServer)).toBe(false);
    expect(existsSync(running.dir)).toBe(true);
    expect(alive(runningServer)).toBe(true);
    expect(existsSync(join(unowned, 'marker'))).toBe(true);
    expect(existsSync(link)).toBe(true);
    expect(existsSync(join(elsewhere, 'owner'))).toBe(true);
    if (asRoot) expect(existsSync(join(foreign, 'owner'))).toBe(true);
    rmSync(elsewhere, { recursive: true, force: true });
  });

  it.skipIf(!hasPostgres)("leaves the tests' own cluster (its owner is this run) alone", async () => {
    sweepAbandonedClusters(tmpdir(), bin);
    expect((await adminQuery('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });
});
