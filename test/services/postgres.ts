/**
 * A throwaway PostgreSQL cluster for the tests (and the store benchmark): `initdb` into a temporary directory, a
 * server on 127.0.0.1 and a unix socket inside that directory, on a free port; stopped and removed at the end.
 *
 * As a vitest globalSetup (vitest.config.ts) it exports the server's URL as `GRADGUARD_TEST_PG_URL` for the test
 * processes; when that variable is already set, that server is used and nothing is started. When PostgreSQL is not
 * installed, nothing is started and `GRADGUARD_TEST_PG_MISSING` says why: the `postgres` suite then skips, or fails
 * where CI requires it (test/suites.ts). Tests take a fresh database each from test/services/pg.ts.
 *
 * A cluster's directory names the process that started it (its `owner` file: pid and start time). A process killed
 * before its teardown (a vitest stopped with SIGKILL, a benchmark interrupted) leaves its server running and its
 * directory behind; the next start sweeps those whose owner is gone (stops the server, removes the directory), and
 * leaves alone every cluster whose owner still runs (another worktree's tests, in parallel).
 *
 * NOTE: initdb refuses to run as root, so as root the cluster runs as the `postgres` user (Debian's package creates
 * it) in a directory that user owns. The superuser has a random password and connects over TCP with SCRAM, as a
 * team's server would, so the tests that check that credentials never leak have a real password to look for.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running throwaway cluster. */
export interface PgCluster {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  dir: string;
  /** Stops the server and removes its directory. */
  stop(): void;
}

export interface PgClusterOptions {
  /**
   * Test settings (default true): no fsync and no synchronous commit, which a throwaway cluster does not need. The
   * benchmark passes false to measure the server as shipped.
   */
  fast?: boolean;
}

/** The directory of `initdb` and `pg_ctl`: `PG_BIN`, else the newest /usr/lib/postgresql/N/bin, else PATH; or null. */
export function findPostgresBin(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.PG_BIN) return existsSync(join(env.PG_BIN, 'initdb')) ? env.PG_BIN : null;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions.length) return join(root, versions[0]!, 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const path = which.stdout.trim();
  return which.status === 0 && path ? join(path, '..') : null;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** `[uid, gid]` of the `postgres` user, or null. */
function postgresUser(): [number, number] | null {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) return null;
  return [Number(r.stdout.trim()), Number(g.stdout.trim())];
}

/** The prefix of a cluster's directory under the temporary directory. */
const DIR_PREFIX = 'gradguard-pg-';

/**
 * What identifies a running process across pid reuse: its pid and, on Linux, its start time in clock ticks since
 * boot (field 22 of /proc/PID/stat); elsewhere the start time is empty and the pid alone is compared.
 */
function processIdentity(pid: number): string | null {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  let start = '';
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) is in parentheses and may hold spaces: count the fields after its closing one
    start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {}
  return `${pid} ${start}`;
}

/** Whether the process an `owner` file names (see {@link processIdentity}) still runs. */
function ownerAlive(owner: string): boolean {
  const pid = Number(owner.split(' ')[0]);
  return Number.isInteger(pid) && pid > 0 && processIdentity(pid) === owner.trim();
}

/**
 * Stops and removes the clusters under `root` whose owner process is gone (see the file's comment); a directory
 * without an `owner` file (being created this instant, or left by an older harness), a link, or one whose owner file
 * another user wrote is left alone.
 * @returns the directories removed
 */
export function sweepAbandonedClusters(root: string = tmpdir(), bin: string | null = findPostgresBin()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n.startsWith(DIR_PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = join(root, name);
    let owner: string;
    try {
      // only a real directory whose owner file this user wrote: on a shared /tmp, another user's look-alike
      // directory (or a link to somewhere else) is not ours to stop or remove
      const ownerFile = join(dir, 'owner');
      if (!lstatSync(dir).isDirectory() || !lstatSync(ownerFile).isFile()) continue;
      if (process.getuid && statSync(ownerFile).uid !== process.getuid()) continue;
      owner = readFileSync(ownerFile, 'utf8');
    } catch {
      continue;
    }
    if (ownerAlive(owner)) continue;
    const data = join(dir, 'data');
    if (bin && existsSync(join(data, 'postmaster.pid'))) {
      const user = process.getuid?.() === 0 ? postgresUser() : null;
      const ctl = join(bin, 'pg_ctl');
      const args = ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop'];
      // the server may have died with its owner: pg_ctl then says so and fails, and the directory goes all the same
      if (user) spawnSync('runuser', ['-u', 'postgres', '--', ctl, ...args], { stdio: 'ignore' });
      else spawnSync(ctl, args, { stdio: 'ignore' });
    }
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

/**
 * Starts a cluster (a few seconds: initdb, then the server), after sweeping the clusters of processes that died
 * before stopping theirs.
 * @throws Error naming what is missing or what failed (initdb's or pg_ctl's output included)
 */
export async function startCluster(options: PgClusterOptions = {}): Promise<PgCluster> {
  const bin = findPostgresBin();
  if (bin === null) throw new Error('PostgreSQL is not installed (apt-get install -y postgresql)');
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? postgresUser() : null;
  if (asRoot && user === null) throw new Error('running as root and there is no postgres user to run the server as');
  sweepAbandonedClusters(tmpdir(), bin);
  const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
  writeFileSync(join(dir, 'owner'), `${processIdentity(process.pid)}\n`);
  if (user) chownSync(dir, user[0], user[1]);
  chmodSync(dir, 0o700);
  const run = (cmd: string, args: string[]) => {
    const argv = user ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    return execFileSync(argv[0] as string, argv[1] as string[], { encoding: 'utf8', stdio: 'pipe', cwd: dir });
  };
  const password = randomBytes(12).toString('hex');
  const data = join(dir, 'data');
  const pwfile = join(dir, 'pw');
  try {
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (user) chownSync(pwfile, user[0], user[1]);
    run('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      `--pwfile=${pwfile}`,
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-instructions',
    ]);
    rmSync(pwfile);
    const port = await freePort();
    const settings = [
      `-c listen_addresses=127.0.0.1`,
      `-c port=${port}`,
      `-c unix_socket_directories=${dir}`,
      '-c max_connections=300',
      '-c shared_buffers=32MB',
      ...(options.fast === false ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
    ];
    run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', settings.join(' '), 'start']);
    const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
    let stopped = false;
    return {
      url,
      port,
      dir,
      stop() {
        if (stopped) return;
        stopped = true;
        try {
          run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    let log = '';
    try {
      log = execFileSync('tail', ['-n', '20', join(dir, 'server.log')], { encoding: 'utf8' });
    } catch {}
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start a PostgreSQL cluster: ${e.stderr || e.stdout || e.message}${log}`);
  }
}

/** vitest globalSetup: see the file's comment. */
export default async function setup(): Promise<() => void> {
  // Set already: a server given from outside, or the cluster another project's setup (same process) started.
  if (process.env.GRADGUARD_TEST_PG_URL || process.env.GRADGUARD_TEST_PG_MISSING) return () => {};
  let cluster: PgCluster;
  try {
    cluster = await startCluster();
  } catch (err) {
    process.env.GRADGUARD_TEST_PG_MISSING = (err as Error).message;
    return () => {};
  }
  process.env.GRADGUARD_TEST_PG_URL = cluster.url;
  return () => {
    delete process.env.GRADGUARD_TEST_PG_URL;
    cluster.stop();
  };
}
