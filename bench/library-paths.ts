/**
 * The two library paths this project's users write beside the trainer, against PyTorch at its best, one thread:
 * `npm run bench:library [-- --rounds=5] [--steps=1000]`.
 *
 * - readme: the README's library loop (`optim.Optimizer` with `clip.byGlobalNorm(1.0)` and Adam, the step inside
 *   `tidy()`, `opt.zeroGrad()`), against the same loop in PyTorch (bench/torch_library.py; `zero_grad(set_to_none=True)`,
 *   `clip_grad_norm_`, `torch.optim.Adam`), the MLP 784-256-10 on a batch of 128;
 * - matmulT: a linear layer written by hand, `relu(x.matmul(w.transpose(0, 1)).add(b)).sum()` and its backward,
 *   against `relu(x @ w.t() + b).sum()` (PyTorch's transpose is a view); x [128, 784], w [256, 784].
 *
 * Each round runs one process of ours and one of PyTorch per configuration (OpenBLAS's own CPU detection and, on an
 * AVX-512 CPU, `OPENBLAS_CORETYPE=SkylakeX`), every one pinned to the same CPU (the next one the next round) with the
 * bench's environment (bench/processes.ts: threads, glibc malloc tuning); a round's ratio is ours over the fastest
 * PyTorch configuration of that round. Prints the medians and ranges over the rounds. Not a test: nothing is asserted.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { machine, PYTHON } from './machine.js';
import { envFor, torchConfigs } from './processes.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const arg = (name: string, dflt: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
type Times = { readme: number; matmulT: number };
const PATHS = ['readme', 'matmulT'] as const;

async function ours(steps: number): Promise<Times> {
  const clip = await import('../src/clip/index.js');
  const { crossEntropy } = await import('../src/nn/functional.js');
  const { mlp } = await import('../src/nn/models.js');
  const optim = await import('../src/optim/index.js');
  const { rand, randint, randn } = await import('../src/tensor/random.js');
  const { keep, tidy } = await import('../src/tensor/tensor.js');
  const { matmul } = await import('../src/tensor/ops/matmul.js');
  const { transpose } = await import('../src/tensor/ops/shape.js');
  await import('../src/tensor/methods.js');
  const median = (step: () => unknown) => {
    for (let i = 0; i < 200; i++) step();
    const ts: number[] = [];
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      step();
      ts.push(performance.now() - t0);
    }
    return ts.sort((a, b) => a - b)[ts.length >> 1]!;
  };
  const x = keep(rand([128, 784], { seed: 1 }));
  const y = keep(randint(0, 10, [128], { seed: 2 }));
  const model = mlp({ inputSize: 784, hidden: [256], outputSize: 10, seed: 0 });
  const opt = new optim.Optimizer(model, optim.chain(clip.byGlobalNorm(1.0), optim.adam({ lr: 1e-3 })));
  const readme = () => {
    const loss = tidy(() => {
      const l = crossEntropy(model.call(x), y);
      l.backward();
      return l.item();
    });
    opt.step();
    opt.zeroGrad();
    return loss;
  };
  const w = keep(randn([256, 784], { seed: 3 }));
  const b = keep(randn([256], { seed: 4 }));
  w.requiresGrad = true;
  b.requiresGrad = true;
  const matmulT = () => {
    w.grad = null;
    b.grad = null;
    tidy(() =>
      matmul(x, transpose(w, 0, 1))
        .add(b)
        .relu()
        .sum()
        .backward(),
    );
  };
  return { readme: median(readme), matmulT: median(matmulT) };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, cpu: number): Times {
  const r = spawnSync('taskset', ['-c', String(cpu), cmd, ...args], { env, cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench:library: ${cmd} failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Times;
}

if (process.argv.includes('--ours')) {
  console.log(JSON.stringify(await ours(Number(arg('steps', '1000')))));
} else {
  const rounds = Number(arg('rounds', '5'));
  const steps = arg('steps', '1000');
  const configs = torchConfigs(1);
  const seen: { ours: Times[]; torch: Record<string, Times[]>; ratio: Record<string, number[]> } = {
    ours: [],
    torch: Object.fromEntries(configs.map(([n]) => [n, []])),
    ratio: { readme: [], matmulT: [] },
  };
  for (let r = 0; r < rounds; r++) {
    const cpu = r % machine.cores;
    const o = run(
      process.execPath,
      ['--import', 'tsx', join(here, 'library-paths.ts'), '--ours', `--steps=${steps}`],
      envFor(1, 'native'),
      cpu,
    );
    seen.ours.push(o);
    const best: Times = { readme: Infinity, matmulT: Infinity };
    for (const [name, extra] of configs) {
      const t = run(PYTHON, [join(here, 'torch_library.py'), steps], envFor(1, 'native', extra), cpu);
      seen.torch[name]!.push(t);
      for (const p of PATHS) best[p] = Math.min(best[p], t[p]);
    }
    for (const p of PATHS) seen.ratio[p]!.push(o[p] / best[p]);
  }
  const med = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
  const range = (a: number[], d: number) => `${Math.min(...a).toFixed(d)}-${Math.max(...a).toFixed(d)}`;
  console.log(
    `bench:library: ${machine.cpu} (family ${machine.family}, model ${machine.model}), 1 thread, ${rounds} rounds pinned to CPUs in turn, ${new Date().toISOString().slice(0, 16)} UTC`,
  );
  for (const p of PATHS) {
    const torch = configs.map(([n]) => `PyTorch ${n} ${med(seen.torch[n]!.map((t) => t[p])).toFixed(3)} ms`).join(', ');
    const o = seen.ours.map((t) => t[p]);
    console.log(
      `  ${p}: ours ${med(o).toFixed(3)} ms (${range(o, 3)}), ${torch}; ours / fastest PyTorch ${med(seen.ratio[p]!).toFixed(2)}x (${range(seen.ratio[p]!, 2)})`,
    );
  }
}
