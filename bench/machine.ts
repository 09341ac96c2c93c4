/**
 * What `npm run bench` (bench/bench.ts) needs besides the measurement: the machine it runs on, and the worker
 * processes it talks to (bench/ours-worker.ts, bench/torch_worker.py), one JSON line each way.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { NativeBackend } from '../src/backend/native.js';

/** The native thread pool's job counts (NativeBackend.poolJobs), as our worker reports them a block. */
export type PoolJobs = ReturnType<NativeBackend['poolJobs']>;

/** Debian's Python, with python3-torch. */
export const PYTHON = '/usr/bin/python3';

// ---- the machine ----------------------------------------------------------------------------------------------

const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(cpuinfo)?.[1]?.trim();
export const avx512 = /\bavx512f\b/.test(field('flags') ?? '');
function safeLscpu(): string {
  try {
    return execFileSync('lscpu', { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  } catch {
    return '';
  }
}
const lscpu = safeLscpu();
function openblasVersion(): string {
  try {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libopenblas0-pthread'], { encoding: 'utf8' });
  } catch {
    return '?';
  }
}
export const machine = {
  cpu: /^Model name:\s*(.*)$/m.exec(lscpu)?.[1]?.trim() ?? field('model name') ?? '?',
  family: field('cpu family'),
  model: field('model'),
  cores: Number(/^CPU\(s\):\s*(\d+)/m.exec(lscpu)?.[1] ?? 0),
  avx512,
  node: process.version,
  openblas: openblasVersion(),
  presetCoretype: process.env.OPENBLAS_CORETYPE ?? null,
  load: existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') : '?',
  date: new Date().toISOString(),
};
// ---- workers --------------------------------------------------------------------------------------------------

/** A worker process answering one JSON line per JSON line (bench/ours-worker.ts, bench/torch_worker.py). */
export class Worker {
  readonly #proc: ChildProcessWithoutNullStreams;
  readonly #waiting: ((line: string) => void)[] = [];
  #stderr = '';
  #dead: string | null = null;

  constructor(
    readonly name: string,
    cmd: string,
    argv: string[],
    env: NodeJS.ProcessEnv,
    cwd: string,
  ) {
    this.#proc = spawn(cmd, argv, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.#proc.stdout }).on('line', (line) => this.#waiting.shift()?.(line));
    this.#proc.stderr.on('data', (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-2000);
    });
    this.#proc.on('exit', (code) => {
      this.#dead = `${this.name} exited (status ${code}): ${this.#stderr.trim().split('\n').slice(-3).join(' ')}`;
      for (const w of this.#waiting.splice(0)) w(JSON.stringify({ error: this.#dead }));
    });
  }

  /** The worker's process id (for pinning it to a CPU: bench/processes.ts, pinTo). */
  get pid(): number | undefined {
    return this.#proc.pid;
  }

  async call<T>(msg: Record<string, unknown>): Promise<T> {
    if (this.#dead) throw new Error(this.#dead);
    const line = await new Promise<string>((resolve) => {
      this.#waiting.push(resolve);
      this.#proc.stdin.write(`${JSON.stringify(msg)}\n`);
    });
    const out = JSON.parse(line) as T & { error?: string };
    if (out.error) throw new Error(`${this.name}: ${out.error}`);
    return out;
  }

  close(): void {
    this.#proc.stdin.end();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
};

export function torchAvailable(): boolean {
  if (!existsSync(PYTHON)) return false;
  return spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
}
