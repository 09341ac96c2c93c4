/**
 * Two builds of the native addon against each other on one row's training step, in one process:
 *   npm run bench:ab -- --a=/tmp/before.node [--b=build/Release/gradguard.node] [--row=mlp] [--blocks=40] [--monitor]
 *
 * A change to a kernel that is a few percent of a step (Adam, a pack, a reduction) moves the step by 1% or less, and
 * this VM's speed drifts by more than that between two processes started a minute apart (and by tens of percent over
 * minutes). So both builds load into one process, each behind its own NativeBackend; one model (bench/steps.ts: the
 * bench's step, clip and Adam) trains with blocks of steps alternating between them (200 steps a block for the MLP,
 * 10 for the others; the tensors are plain Float32Arrays that either backend takes), after 10 blocks of warm-up. The
 * result is the median of the per-pair ratios B/A (each block against its neighbour), with their range, beside each
 * build's median step. Run it on one thread (GRADGUARD_THREADS=1 OPENBLAS_NUM_THREADS=1) and with nothing else
 * running, and both ways round: one build against itself came out 0.9995 (0.992-1.053) and 1.0028 (0.998-1.064) on
 * the MLP (20 blocks, Zen 5, eighteenth session), 0.9807 on the LSTM (5 blocks), so differences under ~0.5% on the
 * MLP, ~2% on the recurrent rows, are noise. But the two builds are two instances of the addon, and an instance's
 * place in memory can move its step by up to 3%: a build against a copy of itself at another path came out 1.025 in
 * one run of three on the MLP (nineteenth session), so take a difference of a few per cent only where it holds both
 * ways round (the same file given twice is one instance: Node loads an addon once per path). A change that an
 * environment variable can switch inside one build compares without that effect. Build B by copying
 * build/Release/gradguard.node aside as A first, then changing the C and rebuilding (`npm run build:native`).
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { installBackend } from '../src/backend/index.js';
import type { NativeAddon } from '../src/backend/lower.js';
import { NativeBackend } from '../src/backend/native.js';
import { median } from './common.js';
import { ROWS } from './rows.js';
import { stepper } from './steps.js';

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

/** One line on stderr and status 2: what was wrong with the command line. */
function fail(why: string): never {
  process.stderr.write(`bench:ab: ${why}\n`);
  process.exit(2);
}

const pathA = arg('a') ?? fail('give the build to compare against, --a=path/to/gradguard.node');
const pathB = arg('b') ?? 'build/Release/gradguard.node';
const spec = ROWS.find((r) => r.id === (arg('row') ?? 'mlp'));
if (!spec) fail(`no row '${arg('row')}'; one of ${ROWS.map((r) => r.id).join(', ')}`);
const blocks = Number(arg('blocks') ?? 40);
if (!Number.isInteger(blocks) || blocks < 2)
  fail(`--blocks=${arg('blocks')}: use a whole number of blocks, at least 2`);
const require = createRequire(import.meta.url);
const builds = [pathA, pathB].map((p) => {
  try {
    return new NativeBackend(require(resolve(p)) as NativeAddon);
  } catch (e) {
    return fail(`cannot load '${p}' as the native addon: ${(e as Error).message.split('\n')[0]}`);
  }
});
installBackend(builds[0]!);
const step = stepper(spec, process.argv.includes('--monitor'));
const per = spec.id === 'mlp' ? 200 : 10;
for (let i = 0; i < per * 10; i++) {
  installBackend(builds[Math.floor(i / per) % 2]!);
  step();
}
const medians: [number[], number[]] = [[], []];
for (let b = 0; b < 2 * Math.ceil(blocks / 2); b++) {
  installBackend(builds[b % 2]!);
  const times: number[] = [];
  for (let i = 0; i < per; i++) {
    const t0 = performance.now();
    step();
    times.push(performance.now() - t0);
  }
  medians[b % 2]!.push(median(times));
}
const ratios = medians[1].map((v, i) => v / medians[0][i]!);
process.stdout.write(
  `${spec.label}, ${medians[0].length} blocks of ${per} steps each: A ${median(medians[0]).toFixed(4)} ms (${pathA}), ` +
    `B ${median(medians[1]).toFixed(4)} ms (${pathB}); B/A ${median(ratios).toFixed(4)} ` +
    `(${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)})\n`,
);
