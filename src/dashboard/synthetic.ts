/**
 * A deterministic synthetic run written into a run store, shaped like `gradguard train`'s records (metrics per
 * step, per-layer statistics per logged step, evaluations at epoch ends, findings): for dashboard benchmarks and
 * tests that need a long run without training one.
 */
import type { RunStore } from '../track/store.js';
import type { LayerStat } from '../track/types.js';

export interface SyntheticRunOptions {
  name?: string;
  steps: number;
  layers: number;
  /** Steps per epoch (evaluation metrics are logged at each epoch's last step); default steps / 10. */
  stepsPerEpoch?: number;
  /** Layer statistics every this many steps (default 1). */
  every?: number;
  /** Seed of the noise (default 0). */
  seed?: number;
  /** Leave the run `running` (default: finish it). */
  running?: boolean;
  config?: unknown;
}

/** A small deterministic noise source (mulberry32), in [0, 1). */
function noise(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Writes the run; returns its id. Gradients fade with depth (a mild vanishing picture) and a few steps are skipped. */
export function writeSyntheticRun(store: RunStore, opts: SyntheticRunOptions): string {
  const rnd = noise(opts.seed ?? 0);
  const L = opts.layers;
  const every = opts.every ?? 1;
  const perEpoch = opts.stepsPerEpoch ?? Math.max(1, Math.floor(opts.steps / 10));
  const config = opts.config ?? {
    seed: opts.seed ?? 0,
    data: { name: 'mnist' },
    model: { type: 'mlp', depth: L, width: 256, activation: 'relu' },
    init: { weight: 'xavier-normal' },
    optim: { name: 'adam', lr: 0.001 },
    clip: [{ type: 'global-norm', max: 1 }],
    train: { epochs: Math.ceil(opts.steps / perEpoch), batchSize: 128 },
  };
  const id = store.createRun({ name: opts.name, config, backend: 'js' });
  const names = Array.from({ length: L }, (_, l) => `layers.${l}`);
  let clippedSteps = 0;
  let skippedSteps = 0;
  for (let s = 0; s < opts.steps; s++) {
    const t = s / opts.steps;
    const loss = 2.3 * Math.exp(-4 * t) + 0.05 + 0.05 * rnd();
    const skipped = s > 0 && s % 997 === 0;
    const gradNorm = skipped ? Number.POSITIVE_INFINITY : (0.5 + 2.5 * Math.exp(-3 * t)) * (0.8 + 0.4 * rnd());
    const clipped = !skipped && gradNorm > 1;
    if (clipped) clippedSteps++;
    if (skipped) skippedSteps++;
    const metrics: Record<string, number> = {
      loss,
      lr: 1e-3 * Math.min(1, (s + 1) / 100),
      skipped: skipped ? 1 : 0,
      grad_norm: gradNorm,
      grad_norm_clipped: skipped ? Number.NaN : Math.min(1, gradNorm),
      clipped: clipped ? 1 : 0,
    };
    let layers: LayerStat[] | undefined;
    if (s % every === 0) {
      layers = names.map((name, l) => ({
        name,
        gradNorm: skipped ? Number.POSITIVE_INFINITY : gradNorm * 10 ** (-(L - 1 - l) * 0.15) * (0.7 + 0.6 * rnd()),
        gradMaxAbs: 0.01 * (1 + rnd()),
        weightNorm: 10 + l * 0.1 + t,
        updateRatio: 1e-3 * (0.5 + rnd()) * 10 ** (-l * 0.05),
        actMean: 0.1 * (rnd() - 0.5),
        actStd: 1 / (1 + 0.1 * l) + 0.1 * rnd(),
        deadFrac: 0.02 * l * rnd(),
        nonFinite: 0,
      }));
    }
    store.logStep(id, s, metrics, layers);
    if ((s + 1) % perEpoch === 0 || s + 1 === opts.steps) {
      store.logStep(id, s, { test_loss: loss * 1.1, test_accuracy: 0.1 + 0.85 * (1 - Math.exp(-5 * t)) });
    }
    if (s === Math.floor(opts.steps / 3)) {
      store.logFinding(id, s, {
        kind: 'vanishing-gradient',
        layers: names.slice(0, Math.max(1, Math.floor(L / 4))),
        evidence: 'the first layers get under 1e-3 of the largest layer gradient norm',
        suggestion:
          'kaiming-normal init: --set init.weight=kaiming-normal; or residual connections: --set model.residual=true',
        severity: 'warning',
      });
    }
  }
  if (!opts.running) {
    store.finishRun(id, 'finished', {
      test: { loss: 0.1, accuracy: 0.95 },
      finalLoss: 0.06,
      steps: opts.steps,
      skippedSteps,
      clippedSteps,
      seconds: opts.steps * 0.004,
      verdict: 'vanishing-gradient',
    });
  }
  return id;
}
