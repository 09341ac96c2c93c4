/**
 * One training run of the playground: the library's own experiment and training loop (the code `gradguard train`
 * runs), driven a few steps at a time, with the gradient monitor on every step and the diagnosis the CLI prints.
 * It also keeps what the views draw: the loss per step, per-layer gradient norms per step (the heatmap), and
 * activation histograms taken by forward hooks on the steps the page asks for.
 */
import {
  type Config,
  data,
  type Experiment,
  loadConfig,
  lossFor,
  monitor,
  nn,
  noGrad,
  type StepInfo,
  setupExperiment,
  type Tensor,
  tensor,
  tidy,
  trainingLoop,
} from '../../src/browser.js';

type Diagnosis = ReturnType<typeof monitor.diagnose>;

/** Bins of an activation histogram. */
export const HIST_BINS = 24;

export interface Histogram {
  layer: string;
  lo: number;
  hi: number;
  counts: Uint32Array;
}

const ACTIVATIONS = [nn.ReLU, nn.LeakyReLU, nn.ELU, nn.SELU, nn.GELU, nn.Sigmoid, nn.Tanh];

export class Session {
  readonly config: Config;
  readonly dataset: data.Dataset;
  readonly exp: Experiment;
  readonly monitor: monitor.Monitor;
  readonly baseline: number;
  readonly totalSteps: number;
  /** Loss of every step so far. */
  readonly losses: number[] = [];
  /** Per step, each layer's gradient norm (forward order), for the heatmap. */
  readonly gradHistory: Float64Array[] = [];
  /** Layer names in forward order (known after the first step). */
  layerNames: string[] = [];
  step = 0;
  done = false;
  diagnosis: Diagnosis | null = null;
  histograms: Histogram[] = [];
  /** Set to take histograms on the next step's forward pass. */
  wantHistograms = true;
  /** Mean milliseconds per step over the last chunk. */
  msPerStep = Number.NaN;
  readonly #loop: Generator<void, unknown, void>;
  #pending: Histogram[] = [];
  #lastDiagnosed = -1;

  /** Builds the run from `--set` assignments (validated as the CLI does: a ConfigError names the bad key). */
  constructor(sets: readonly string[]) {
    this.config = loadConfig(undefined, sets).config;
    this.dataset = data.loadWebDataset(this.config.data as Parameters<typeof data.loadWebDataset>[0]);
    this.exp = setupExperiment(this.config, this.dataset);
    this.baseline = this.dataset.baseline?.loss ?? Number.NaN;
    this.totalSteps = this.config.train.maxSteps ?? this.exp.loader.batchesPerEpoch * this.config.train.epochs;
    this.monitor = new monitor.Monitor(this.exp.model, { every: 1, params: false, maxHistory: 200 });
    this.monitor.attach();
    this.#hookActivations();
    this.#loop = trainingLoop(this.exp, {
      observers: [this.monitor],
      onStep: (s: StepInfo) => this.#onStep(s),
    });
  }

  /**
   * Activation histograms: a forward hook on every activation module (or, with none, on every module that owns
   * parameters itself; outputs that are not tensors, such as an RNN's `{ output, h }`, are skipped).
   */
  #hookActivations(): void {
    const mods = [...this.exp.model.namedModules()].filter(([, m]) => ACTIVATIONS.some((A) => m instanceof A));
    const targets = mods.length
      ? mods
      : [...this.exp.model.namedModules()].filter(([, m]) => [...m.namedParameters()].some(([p]) => !p.includes('.')));
    for (const [name, m] of targets) {
      m.registerForwardHook((_mod: unknown, _x: unknown, y: unknown) => {
        if (this.wantHistograms && y instanceof Object && 'data' in (y as object)) {
          this.#pending.push(histogram(name, (y as Tensor).data));
        }
      });
    }
  }

  #onStep(s: StepInfo): void {
    this.step = s.step + 1;
    this.losses.push(s.loss);
    const rec = this.monitor.latest();
    if (rec && rec.step === s.step) {
      if (!this.layerNames.length) this.layerNames = rec.layers.map((l) => l.name);
      this.gradHistory.push(Float64Array.from(rec.layers, (l) => l.gradNorm));
    }
    if (this.#pending.length) {
      this.histograms = this.#pending;
      this.#pending = [];
      this.wantHistograms = false;
    }
  }

  /** Runs steps until `budgetMs` has passed or the run ends; returns how many ran. */
  run(budgetMs: number, maxSteps = Number.POSITIVE_INFINITY): number {
    if (this.done) return 0;
    const t0 = performance.now();
    let n = 0;
    while (n < maxSteps) {
      const r = this.#loop.next();
      if (r.done) {
        this.done = true;
        break;
      }
      n++;
      if (performance.now() - t0 >= budgetMs) break;
    }
    if (n) this.msPerStep = (performance.now() - t0) / n;
    if (this.done || this.step - this.#lastDiagnosed >= 25) this.diagnose();
    return n;
  }

  /** The diagnosis of the last 50 steps against the data set's baseline, as `gradguard train` prints at the end. */
  diagnose(): Diagnosis {
    this.#lastDiagnosed = this.step;
    this.diagnosis = monitor.diagnose(this.monitor.history.slice(-50), {
      config: this.config,
      layers: this.monitor.layerInfo(),
      losses: this.monitor.losses,
      ...(this.dataset.baseline ? { baseline: this.dataset.baseline } : {}),
    });
    return this.diagnosis;
  }

  /**
   * The model's predicted class on a `n` x `n` grid over [lo, hi]² of the (normalized) input plane, for the
   * decision boundary; null for data sets that are not 2-D classification. Draws no random numbers.
   */
  grid(n: number, lo: number, hi: number): Uint8Array | null {
    const ds = this.dataset;
    if (ds.inputSize !== 2 || ds.task !== 'classification') return null;
    const xs = new Float32Array(n * n * 2);
    for (let r = 0; r < n; r++)
      for (let c = 0; c < n; c++) {
        const i = r * n + c;
        xs[2 * i] = lo + ((hi - lo) * (c + 0.5)) / n;
        xs[2 * i + 1] = hi - ((hi - lo) * (r + 0.5)) / n;
      }
    const out = new Uint8Array(n * n);
    const model = this.exp.model;
    const wasTraining = model.training;
    const wanted = this.wantHistograms;
    this.wantHistograms = false; // the grid's activations are not the training batch's
    model.eval();
    noGrad(() =>
      tidy(() => {
        const y = model.call(tensor(xs, [n * n, 2])) as Tensor;
        const d = y.data;
        const k = y.shape[1]!;
        for (let i = 0; i < n * n; i++) {
          let best = 0;
          for (let j = 1; j < k; j++) if (d[i * k + j]! > d[i * k + best]!) best = j;
          out[i] = best;
        }
      }),
    );
    if (wasTraining) model.train();
    this.wantHistograms = wanted;
    return out;
  }

  /**
   * For sequence data: the norm of the loss's gradient with respect to each time step's input, ‖∂L/∂x_t‖, on the
   * first 32 training sequences: how much of the error signal reaches step t (it dies out towards t = 0 when a
   * recurrent net forgets). A separate forward and backward pass between training steps; the parameters' gradients
   * it leaves are cleared, as the trainer leaves them, so the run's numbers do not change. Null for other data.
   */
  timeGrads(): Float64Array | null {
    const ds = this.dataset;
    if (ds.inputShape.length !== 2) return null;
    const [T, F] = ds.inputShape as [number, number];
    const n = Math.min(32, ds.train.n);
    const tSize = ds.targetShape.reduce((p, d) => p * d, 1);
    const out = new Float64Array(T);
    const wanted = this.wantHistograms;
    this.wantHistograms = false;
    tidy(() => {
      const x = tensor(ds.train.x.subarray(0, n * T * F), [n, T * F], { requiresGrad: true });
      const y = tensor(ds.train.y.subarray(0, n * tSize), [n * tSize]);
      lossFor(ds, this.exp.model.call(x) as Tensor, y).backward();
      const g = x.grad!.data;
      for (let i = 0; i < n; i++)
        for (let t = 0; t < T; t++)
          for (let f = 0; f < F; f++) {
            const v = g[(i * T + t) * F + f]!;
            out[t] = out[t]! + v * v;
          }
    });
    this.exp.optimizer.zeroGrad();
    this.wantHistograms = wanted;
    for (let t = 0; t < T; t++) out[t] = Math.sqrt(out[t]!);
    return out;
  }

  /** Stops watching the model. */
  close(): void {
    this.monitor.detach();
    this.done = true;
  }
}

/** A histogram of `v` over its range (or [0, 1] / [-1, 1] when the values fit there, so bounded activations line up). */
export function histogram(layer: string, v: Float32Array): Histogram {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  if (lo >= 0 && hi <= 1) [lo, hi] = [0, 1];
  else if (lo >= -1 && hi <= 1) [lo, hi] = [-1, 1];
  if (!(hi > lo)) hi = lo + 1;
  const counts = new Uint32Array(HIST_BINS);
  const scale = HIST_BINS / (hi - lo);
  for (let i = 0; i < v.length; i++) {
    const b = Math.min(HIST_BINS - 1, Math.max(0, Math.floor((v[i]! - lo) * scale)));
    counts[b]!++;
  }
  return { layer, lo, hi, counts };
}
