/**
 * The benchmark's processes (bench/bench.ts): the environment every worker of a thread count gets, PyTorch's
 * configurations, the workers themselves, and the --busy competitors.
 */
import { spawn } from 'node:child_process';
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
