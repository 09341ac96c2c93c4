/**
 * `npm run bench`: ms per training step of the MLP 784-256-10 (ReLU, Adam, batch 128, global-norm clip) and the small
 * CNN of bench/torch_bench.py on each of our backends, side by side with the PyTorch reference in the same command.
 *
 * Both sides run in child processes with the same environment: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (so
 * OpenBLAS picks this CPU's kernels for both), the same thread count, and glibc's allocator tuned as DESIGN.md
 * describes (PyTorch at its best here). Prints a table and, with `--write`, records it in docs/benchmarks.md.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PairedResult } from './wasm-vs-native.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const args = process.argv.slice(2);
const threads = Number(args.find((a) => a.startsWith('--threads='))?.split('=')[1] ?? 2);
const write = args.includes('--write');
const only = args
  .find((a) => a.startsWith('--only='))
  ?.split('=')[1]
  ?.split(',');

const env: NodeJS.ProcessEnv = { ...process.env };
delete env.OPENBLAS_CORETYPE;
delete env.OPENBLAS_L2_SIZE;
env.OPENBLAS_NUM_THREADS = String(threads);
env.GRADGUARD_THREADS = String(threads);
env.OMP_NUM_THREADS = String(threads);
env.MALLOC_MMAP_THRESHOLD_ = '4000000000';
env.MALLOC_TRIM_THRESHOLD_ = '4000000000';
env.MALLOC_TOP_PAD_ = '268435456';

interface StepResult {
  backend: string;
  threads: number;
  gemm?: string;
  blasCore?: string;
  mlp_step_ms: number;
  mlp_monitored_step_ms?: number;
  cnn_step_ms: number;
  cnn_monitored_step_ms?: number;
  lstm_step_ms?: number;
  freshAllocsPerStep?: number;
}

function runOurs(backend: string): StepResult | { backend: string; error: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'steps.ts'), backend], {
    env: { ...env, GRADGUARD_BACKEND: backend },
    encoding: 'utf8',
    cwd: root,
    maxBuffer: 1 << 24,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as StepResult;
  } catch {
    return { backend, error: (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' ') };
  }
}

interface TorchResult {
  torch: string;
  threads: number;
  gemm?: string;
  blasCore?: string;
  mlp_step_ms: number;
  cnn_step_ms: number;
  lstm_step_ms?: number;
}

function runTorch(): TorchResult | null {
  if (!existsSync('/usr/bin/python3')) return null;
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return null;
  const r = spawnSync('/usr/bin/python3', [join(here, 'torch_bench.py'), String(threads)], { env, encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`PyTorch reference failed: ${r.stderr.slice(-500)}\n`);
    return null;
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchResult;
}

const backends = (only ?? ['native', 'wasm', 'js']).filter((b) => b !== 'torch');
process.stderr.write(
  `bench: ${threads} threads, backends ${backends.join(', ')}${only?.includes('torch') === false ? '' : ' + PyTorch'}\n`,
);
const torch = only && !only.includes('torch') ? null : runTorch();
const ours = backends.map((b) => {
  process.stderr.write(`  running ${b}...\n`);
  return runOurs(b);
});

interface OverheadResult {
  backend: string;
  model: string;
  overheadPct: number;
  cpuOverheadPct: number;
}

/** The monitor's cost, measured as bench/monitor-overhead.ts does: alternating plain and monitored steps, paired. */
function runOverhead(backends: string[]): OverheadResult[] {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(here, 'monitor-overhead.ts'), `--backends=${backends.join(',')}`, '--json'],
    {
      env,
      encoding: 'utf8',
      cwd: root,
      maxBuffer: 1 << 24,
    },
  );
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]') as OverheadResult[];
  } catch {
    return [];
  }
}
/** The wasm step against the native one in one process (bench/wasm-vs-native.ts): drift hits both alike. */
function runPaired(): PairedResult | null {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(here, 'wasm-vs-native.ts'), `--threads=${threads}`, '--json'],
    { env, encoding: 'utf8', cwd: root, maxBuffer: 1 << 24 },
  );
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as PairedResult;
  } catch {
    process.stderr.write(`wasm-vs-native failed: ${(r.stderr || r.stdout).slice(-300)}\n`);
    return null;
  }
}
let paired: PairedResult | null = null;
if (backends.includes('wasm') && ours.some((r) => !('error' in r) && r.backend === 'native')) {
  process.stderr.write('  pairing wasm with native...\n');
  paired = runPaired();
}

process.stderr.write('  measuring the monitor overhead...\n');
const overhead = runOverhead(backends.filter((b) => b !== 'js'));
const overheadOf = (backend: string, model: string) => {
  const o = overhead.find((x) => x.backend === backend && x.model.toLowerCase().includes(model));
  return o ? `${o.overheadPct >= 0 ? '+' : ''}${o.overheadPct.toFixed(1)}%` : '-';
};

const fmt = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(2));
const ratio = (x: number | undefined, ref: number | undefined) =>
  x === undefined || !ref ? '-' : `${(x / ref).toFixed(2)}x`;
const rows: string[] = [];
rows.push(
  '| engine | MLP step (ms) | vs PyTorch | CNN step (ms) | vs PyTorch | LSTM step (ms) | vs PyTorch | monitor overhead MLP / CNN |',
);
rows.push('|---|---|---|---|---|---|---|---|');
if (torch) {
  rows.push(
    `| PyTorch ${torch.torch} | ${fmt(torch.mlp_step_ms)} | 1.00x | ${fmt(torch.cnn_step_ms)} | 1.00x | ${fmt(torch.lstm_step_ms)} | ${torch.lstm_step_ms ? '1.00x' : '-'} | - |`,
  );
}
for (const r of ours) {
  if ('error' in r) {
    rows.push(`| gradguard ${r.backend} | not available: ${r.error.replace(/\|/g, '/')} | | | | | | |`);
    continue;
  }
  const ovM = overheadOf(r.backend, 'mlp');
  const ovC = overheadOf(r.backend, 'cnn');
  rows.push(
    `| gradguard ${r.backend} | ${fmt(r.mlp_step_ms)} | ${ratio(r.mlp_step_ms, torch?.mlp_step_ms)} | ${fmt(r.cnn_step_ms)} | ${ratio(r.cnn_step_ms, torch?.cnn_step_ms)} | ${fmt(r.lstm_step_ms)} | ${ratio(r.lstm_step_ms, torch?.lstm_step_ms)} | ${ovM} / ${ovC} |`,
  );
}
const cpu = cpus()[0]?.model ?? 'unknown CPU';
let blas = '';
try {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template
  blas = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'libopenblas0-pthread'], { encoding: 'utf8' });
} catch {}
const nat = ours.find((r): r is StepResult => !('error' in r) && r.gemm !== undefined);
const gemmNote = nat ? ` native sgemm: ${nat.gemm} (OpenBLAS kernels: ${nat.blasCore ?? '?'}).` : '';
const header = `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} x ${cpu}, Node ${process.version}, OpenBLAS ${blas || '?'}; ${threads} threads each; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset and glibc malloc tuned for both sides.${gemmNote}`;
const pairedNote = paired
  ? `\nwasm against native on the MLP step, side by side in one process (bench/wasm-vs-native.ts, blocks of steps alternating; ${paired.threads} threads each): native ${paired.nativeMs} ms, wasm ${paired.wasmMs} ms, wasm/native ${paired.ratio}x (median of ${paired.ratios.length} paired blocks, ${Math.min(...paired.ratios)}x to ${Math.max(...paired.ratios)}x; target at most 3x).\n`
  : '';
const table = `${header}\n\n${rows.join('\n')}\n${pairedNote}`;
process.stdout.write(`${table}\n`);
process.stdout.write(`${JSON.stringify({ torch, ours, paired, overhead })}\n`);

if (write) {
  const path = join(root, 'docs', 'benchmarks.md');
  const begin = '<!-- bench:begin -->';
  const end = '<!-- bench:end -->';
  const doc = existsSync(path) ? readFileSync(path, 'utf8') : `# Benchmarks\n\n${begin}\n${end}\n`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  const next =
    i >= 0 && j > i
      ? `${doc.slice(0, i + begin.length)}\n${table}${doc.slice(j)}`
      : `${doc}\n${begin}\n${table}${end}\n`;
  writeFileSync(path, next);
  process.stderr.write(`wrote ${path}\n`);
}
