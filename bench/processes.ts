/**
 * The benchmark's processes (bench/bench.ts): the environment every worker of a thread count gets, PyTorch's
 * configurations, the workers themselves, and the --busy competitors.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { avx512, PYTHON, Worker } from './machine.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

/** The environment every process of one thread count gets; `extra` adds the forced core type. */
export function envFor(threads: number, backend: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  delete env.GRADGUARD_GEMM;
  Object.assign(env, {
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
    GRADGUARD_THREADS: String(threads),
    GRADGUARD_BACKEND: backend,
    // glibc's largest mmap threshold: it silently ignores a larger value (this was 4000000000 until the eleventh
    // session, so both sides ran with glibc's sliding default)
    MALLOC_MMAP_THRESHOLD_: '33554432',
    MALLOC_TRIM_THRESHOLD_: '4000000000',
    MALLOC_TOP_PAD_: '268435456',
    ...extra,
  });
  return env;
}

/**
 * PyTorch's configurations for a thread count: OpenBLAS's own CPU detection and, on an AVX-512 CPU, SkylakeX
 * forced; with several threads each also with OMP_WAIT_POLICY=PASSIVE, since PyTorch's OpenMP threads spin at
 * their barriers and, on a machine busy with other work, a spinning thread holds the core its partner needs
 * (measured here under load: the LSTM step took 12 s with the default policy, 0.15 s with PASSIVE).
 */
export function torchConfigs(threads: number): [string, Record<string, string>][] {
  const cores: [string, Record<string, string>][] = [['auto', {}]];
  if (avx512) cores.push(['SkylakeX', { OPENBLAS_CORETYPE: 'SkylakeX' }]);
  if (threads === 1) return cores;
  return [
    ...cores,
    ...cores.map(([n, e]): [string, Record<string, string>] => [`${n}+passive`, { ...e, OMP_WAIT_POLICY: 'PASSIVE' }]),
  ];
}

/** A worker of ours (bench/ours-worker.ts) on `threads` threads. */
export function oursWorker(threads: number, backend: string): Worker {
  const label = `gradguard ${backend}${threads === 1 ? ', 1 thread' : ''}`;
  return new Worker(
    label,
    process.execPath,
    ['--import', 'tsx', join(here, 'ours-worker.ts')],
    envFor(threads, backend),
    root,
  );
}

/** A PyTorch worker (bench/torch_worker.py) in configuration `name` (its extra environment `extra`). */
export function torchWorker(threads: number, backend: string, name: string, extra: Record<string, string>): Worker {
  const args = [join(here, 'torch_worker.py'), String(threads)];
  return new Worker(`PyTorch (${name})`, PYTHON, args, envFor(threads, backend, extra), root);
}

/** Starts the --busy competitors; they are killed when this process exits. */
export function startBusy(busy: number): void {
  const procs = Array.from({ length: busy }, () => {
    const p = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore', detached: false });
    p.unref(); // a child keeps the event loop alive: without this the bench never exits after its table
    return p;
  });
  const stop = () => {
    for (const p of procs) p.kill('SIGKILL');
  };
  process.on('exit', stop);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      stop();
      process.exit(130);
    });
  }
}

/**
 * The CPUs this process may run on (/proc/self/status, Cpus_allowed_list: "0-1", "0,2-3"); empty where unknown.
 */
export function allowedCpus(): number[] {
  const status = existsSync('/proc/self/status') ? readFileSync('/proc/self/status', 'utf8') : '';
  return parseCpuList(/^Cpus_allowed_list:\s*(\S+)/m.exec(status)?.[1] ?? '');
}

/** A kernel CPU list ("0-1", "0,2-3,8") as CPU numbers in order; empty where it does not parse. */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) return [];
    const a = Number(m[1]),
      b = Number(m[2] ?? m[1]);
    if (b < a) return [];
    for (let c = a; c <= b; c++) cpus.push(c);
  }
  return cpus;
}

/**
 * Pins every thread of each worker to `cpu` (`taskset -a -p -c`), so that both sides of a 1-thread round run on the
 * same CPU: the two virtual CPUs of the machines this was measured on run at different speeds at a time (5-25%), and
 * a 1-thread process stays on the CPU the OS first gave it, so unpinned sides could spend a whole run on different
 * CPUs. False where taskset is missing or refused (the run goes on unpinned).
 */
export function pinTo(workers: readonly Worker[], cpu: number): boolean {
  try {
    for (const w of workers)
      if (w.pid !== undefined)
        execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(w.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
