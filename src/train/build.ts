/**
 * Turns a validated config into the pieces of an experiment: the dataset, the model (with the config's
 * initialisation applied), the parameters by path, and the optimizer chain (clipping first, as listed).
 */
import { GradguardError } from '../base/errors.js';
import type { Dataset } from '../data/types.js';
import type { Nonlinearity } from '../init/initializers.js';
import * as init from '../init/initializers.js';
import { ACTIVATIONS } from '../nn/activation-names.js';
import { Linear } from '../nn/linear.js';
import { lstmForgetGateBias, lsuv } from '../nn/lsuv.js';
import { cnn, mlp, resnet } from '../nn/models.js';
import { type AnyModule, Module } from '../nn/module.js';
import { Residual, ResidualMLPBlock } from '../nn/residual.js';
import { GRU, LSTM, RNN } from '../nn/rnn.js';
import { ArgumentError } from '../tensor/errors.js';
import { reshape, slice } from '../tensor/ops/shape.js';
import { Rng } from '../tensor/rng.js';
import { dispose, noGrad, type Tensor, tensor } from '../tensor/tensor.js';
import { type Config, ConfigError } from './config.js';
import { totalMemoryBytes } from './memory.js';

/** A recurrent layer with a linear head: on the last step (one target per sequence) or on every step. */
export class SequenceModel extends Module {
  readonly rnn: RNN | LSTM | GRU;
  readonly head: Linear;
  constructor(
    rnn: RNN | LSTM | GRU,
    head: Linear,
    readonly perStep: boolean,
  ) {
    super();
    this.rnn = this.registerModule('rnn', rnn);
    this.head = this.registerModule('head', head);
  }
  forward(x: Tensor): Tensor {
    const { output } = this.rnn.call(x);
    const [b, t, h] = output.shape as [number, number, number];
    if (this.perStep) return this.head.call(reshape(output, [b * t, h]));
    return this.head.call(reshape(slice(output, 1, t - 1, t), [b, h]));
  }
}

/** Reshapes the flat rows the data loader gives into the model's input shape. */
export class InputShape extends Module {
  constructor(readonly shape: readonly number[]) {
    super();
  }
  forward(x: Tensor): Tensor {
    return reshape(x, [x.size / this.shape.reduce((p, d) => p * d, 1), ...this.shape]);
  }
}

/** The most elements one tensor may hold (float32: 8 GiB; typed arrays and the wasm heap stop near here). */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;

/** The memory a run may plan for: half of this machine's RAM (the rest for the data, the runtime and the system). */
export function memoryBudgetBytes(): number {
  return Math.floor(totalMemoryBytes() / 2);
}

const fmtCount = (n: number) => (n < 1e15 ? Math.round(n).toLocaleString('en-US') : n.toExponential(2));
const fmtBytes = (b: number) =>
  b >= 2 ** 40
    ? `${(b / 2 ** 40).toFixed(1)} TiB`
    : b >= 2 ** 30
      ? `${(b / 2 ** 30).toFixed(1)} GiB`
      : `${(b / 2 ** 20).toFixed(1)} MiB`;

/**
 * An estimate of a model's size from the config and the data's shapes, computed without building anything: the
 * largest weight matrix (elements), the parameters, and the floats of one batch's activations.
 */
export function estimateModelSize(
  config: Config,
  ds: Dataset,
): { largest: number; params: number; activations: number } {
  const m = config.model;
  const outputs = ds.task === 'classification' ? (ds.numClasses ?? 2) : ds.targetShape.reduce((p, d) => p * d, 1) || 1;
  const batch = config.train.batchSize;
  const input = ds.inputSize;
  const dense = (a: number, b: number) => a * b + b;
  if (m.type === 'mlp') {
    // hidden: the list as given; depth × width: `depth` hidden layers of `width`
    const widths = m.hidden ?? (m.depth || m.width ? null : [256]);
    const depth = widths ? widths.length : (m.depth ?? 2);
    const width = m.width ?? 256;
    if (widths) {
      let prev = input;
      let params = 0;
      let largest = 0;
      let acts = 0;
      for (const w of [...widths, outputs]) {
        params += dense(prev, w);
        largest = Math.max(largest, prev * w);
        acts += w;
        prev = w;
      }
      return { largest, params, activations: batch * acts * 3 };
    }
    const params = dense(input, width) + Math.max(0, depth - 1) * dense(width, width) + dense(width, outputs);
    return {
      largest: Math.max(input * width, width * width, width * outputs),
      params,
      activations: batch * (depth * width + outputs) * 3,
    };
  }
  if (m.type === 'rnn' || m.type === 'lstm' || m.type === 'gru') {
    const gates = m.type === 'lstm' ? 4 : m.type === 'gru' ? 3 : 1;
    const h = m.hiddenSize ?? m.width ?? 128;
    const layers = m.layers ?? 1;
    const [len = 1, feat = input] = ds.inputShape;
    const params = gates * (feat * h + h * h + 2 * h) + (layers - 1) * gates * (2 * h * h + 2 * h) + dense(h, outputs);
    return {
      largest: Math.max(gates * h * Math.max(feat, h), h * outputs),
      params,
      activations: batch * len * layers * gates * h * 3,
    };
  }
  if (m.type === 'cnn' && ds.inputShape.length === 3) return estimateCnnSize(m, ds.inputShape, outputs, batch);
  // resnet: fixed channel counts; the image size and the classes scale them
  return { largest: 64 * outputs, params: 64 * outputs, activations: batch * input * 64 * 3 };
}

/** `estimateModelSize` for a CNN: every stage's convolutions at its resolution, then the two dense layers. */
function estimateCnnSize(m: Config['model'], shape: readonly number[], outputs: number, batch: number) {
  const channels = m.channels ?? (m.width !== undefined ? [m.width, 2 * m.width] : [32, 64]);
  const perStage = Math.ceil(Math.max(0, (m.depth ?? channels.length) - channels.length) / channels.length) + 1;
  let [c, h, w] = shape as [number, number, number];
  let params = 0;
  let largest = 0;
  let acts = 0;
  for (const out of channels) {
    params += 9 * c * out + perStage * 9 * out * out;
    largest = Math.max(largest, 9 * c * out, 9 * out * out);
    acts += perStage * out * h * w;
    [c, h, w] = [out, Math.max(1, Math.floor(h / 2)), Math.max(1, Math.floor(w / 2))];
  }
  params += c * h * w * 128 + 128 * outputs;
  return { largest: Math.max(largest, c * h * w * 128), params, activations: batch * acts * 3 };
}

/**
 * Refuses a model that cannot fit before anything is allocated: a weight matrix over MAX_TENSOR_ELEMENTS, or
 * parameters (with their gradients and two optimizer moments) plus a batch's activations over the memory budget. The
 * message names the size, the limit and the keys that set them.
 */
export function checkModelSize(config: Config, ds: Dataset, budget = memoryBudgetBytes()): void {
  const e = estimateModelSize(config, ds);
  const outputs = ds.task === 'classification' ? (ds.numClasses ?? 2) : 0;
  const why = `(model ${config.model.type}, ${ds.inputSize} inputs${outputs ? `, ${outputs} classes` : ''}: check model.hidden, model.depth, model.width, model.hiddenSize, model.layers${outputs ? ' and the data labels' : ''})`;
  if (e.largest > MAX_TENSOR_ELEMENTS)
    throw new BuildError(
      `the model would need a weight matrix of ${fmtCount(e.largest)} elements, over the limit of ${fmtCount(MAX_TENSOR_ELEMENTS)} per tensor ${why}`,
    );
  const bytes = (e.params * 4 + e.activations) * 4;
  if (bytes > budget)
    throw new BuildError(
      `the model would need about ${fmtBytes(bytes)} (${fmtCount(e.params)} parameters with gradients and optimizer state, and a batch of ${config.train.batchSize}'s activations), over the limit of ${fmtBytes(budget)} (half of this machine's memory) ${why}`,
    );
}

/**
 * Refuses batch norm on batches of one example (training cannot normalize one value per channel): `train.batchSize=1`,
 * a training split of one, or a last batch of an epoch left with one example.
 */
export function checkBatchNorm(config: Config, ds: Dataset): void {
  if (config.model.norm !== 'batch' || (config.model.type !== 'mlp' && config.model.type !== 'cnn')) return;
  const b = config.train.batchSize;
  const n = ds.train.n;
  if (b === 1 || n === 1)
    throw new BuildError(
      `model.norm=batch needs at least 2 examples per batch (train.batchSize=${b}, ${n} training examples); raise train.batchSize, or use model.norm=layer`,
    );
  if (n > b && n % b === 1)
    throw new BuildError(
      `model.norm=batch: train.batchSize=${b} leaves the last batch of each epoch with 1 example (${n} training examples), which batch norm cannot normalize; pick another train.batchSize, or use model.norm=layer`,
    );
}

/** The model for `config.model` and the dataset's shapes, before initialisation. */
export function buildModel(config: Config, ds: Dataset): AnyModule {
  const m = config.model;
  if (
    ds.targetShape.length > 0 &&
    ds.task === 'classification' &&
    m.type !== 'rnn' &&
    m.type !== 'lstm' &&
    m.type !== 'gru'
  )
    throw new BuildError(
      `data '${ds.name}' has a class per time step (targets of shape [${ds.targetShape}]); model.type=${m.type} predicts one per example: use model.type=rnn, lstm or gru`,
    );
  checkModelSize(config, ds);
  checkBatchNorm(config, ds);
  try {
    return buildModelUnchecked(config, ds);
  } catch (e) {
    // the layers' own argument checks (nn.mlp(): a residual MLP needs an even depth, ...) are config mistakes here
    if ((e instanceof TypeError || e instanceof RangeError || e instanceof ArgumentError) && /^nn\./.test(e.message))
      throw new BuildError(`model: ${e.message}`);
    throw e;
  }
}

function buildModelUnchecked(config: Config, ds: Dataset): AnyModule {
  const m = config.model;
  const rng = new Rng(config.seed);
  const outputs = ds.task === 'classification' ? (ds.numClasses ?? 2) : ds.targetShape.reduce((p, d) => p * d, 1) || 1;
  switch (m.type) {
    case 'mlp': {
      const sizes = m.hidden
        ? { hidden: m.hidden }
        : m.depth || m.width
          ? { depth: m.depth ?? 2, width: m.width ?? 256 }
          : { hidden: [256] };
      return mlp({
        inputSize: ds.inputSize,
        outputSize: outputs,
        ...sizes,
        activation: m.activation,
        residual: m.residual,
        norm: m.norm,
        dropout: m.dropout,
        zeroInitResidual: m.zeroInitResidual,
        rezero: m.rezero,
        rng,
      });
    }
    case 'cnn':
    case 'resnet': {
      if (ds.inputShape.length !== 3) {
        throw new BuildError(
          `model.type=${m.type} needs image data ([channels, height, width]); data '${ds.name}' has inputs of shape [${ds.inputShape}]`,
        );
      }
      const [c, h, w] = ds.inputShape as [number, number, number];
      const net =
        m.type === 'cnn'
          ? cnn({
              inChannels: c,
              imageSize: [h, w],
              numClasses: outputs,
              ...cnnChannels(m),
              ...(m.depth !== undefined ? { depth: m.depth } : {}),
              residual: m.residual,
              rezero: m.rezero,
              activation: m.activation,
              norm: m.norm === 'batch' ? 'batch' : 'none',
              dropout: m.dropout,
              rng,
            })
          : resnet({
              depth: m.resnetDepth ?? 8,
              inChannels: c,
              numClasses: outputs,
              ...(m.width !== undefined ? { width: m.width } : {}),
              zeroInitResidual: m.zeroInitResidual,
              rezero: m.rezero,
              rng,
            });
      return new ShapedModel(new InputShape([c, h, w]), net);
    }
    case 'rnn':
    case 'lstm':
    case 'gru': {
      if (ds.inputShape.length !== 2) {
        throw new BuildError(
          `model.type=${m.type} needs sequence data ([length, features]); data '${ds.name}' has inputs of shape [${ds.inputShape}]`,
        );
      }
      const [, feat] = ds.inputShape as [number, number];
      const hidden = m.hiddenSize ?? m.width ?? 128;
      const opts = { numLayers: m.layers ?? 1, batchFirst: true, rng };
      const rnn =
        m.type === 'lstm'
          ? new LSTM(feat, hidden, opts)
          : m.type === 'gru'
            ? new GRU(feat, hidden, opts)
            : new RNN(feat, hidden, { ...opts, nonlinearity: m.activation === 'relu' ? 'relu' : 'tanh' });
      const perStep = ds.targetShape.length > 0 && ds.task === 'classification';
      return new ShapedModel(
        new InputShape(ds.inputShape),
        new SequenceModel(rnn, new Linear(hidden, outputs, { rng }), perStep),
      );
    }
  }
}

/** A CNN's stage channels: `model.channels` as given, or `model.width` w as [w, 2w]; neither keeps nn.cnn's. */
export function cnnChannels(m: Config['model']): { channels?: number[] } {
  if (m.channels !== undefined && m.width !== undefined)
    throw new BuildError('model: give either model.channels (one per stage) or model.width, not both');
  if (m.channels !== undefined) return { channels: m.channels };
  return m.width !== undefined ? { channels: [m.width, 2 * m.width] } : {};
}

/** Reshape then model, as one module whose parameters keep the inner model's names under `net.`. */
export class ShapedModel extends Module {
  readonly reshape: InputShape;
  readonly net: AnyModule;
  constructor(reshape: InputShape, net: AnyModule) {
    super();
    this.reshape = this.registerModule('reshape', reshape);
    this.net = this.registerModule('net', net);
  }
  forward(x: Tensor): Tensor {
    return this.net.call(this.reshape.call(x));
  }
}

export class BuildError extends GradguardError {
  static override readonly code = 'build.invalid';
  override readonly name = 'BuildError';
}

/** The nonlinearity the Kaiming init assumes after each config activation (from the activation table). */
const NONLINEARITY: Record<string, Nonlinearity> = Object.fromEntries(
  Object.values(ACTIVATIONS).flatMap((a) => (a.config === null ? [] : [[a.config, a.kaiming]])),
);

/**
 * Applies `config.init` to every weight matrix/kernel (parameters named `weight` or `weight_*` with 2+ dimensions)
 * and bias; normalisation weights keep their ones. `default` keeps PyTorch's per-layer defaults. A residual branch
 * that the model zero-initialises (zeroInitResidual) stays zero, recurrent weights take `recurrentGain`·orthogonal
 * when it is set, and an LSTM's forget-gate bias is `model.forgetBias` when it is set.
 */
export function applyInit(model: AnyModule, config: Config, dataset?: Dataset): void {
  const ic = config.init;
  const rng = new Rng(config.seed + 1);
  const nl = NONLINEARITY[config.model.activation] ?? 'relu';
  for (const [name, p] of model.namedParameters()) {
    const leaf = name.slice(name.lastIndexOf('.') + 1);
    const isWeight = (leaf === 'weight' || leaf.startsWith('weight_')) && p.ndim >= 2;
    const isBias = leaf === 'bias' || leaf.startsWith('bias_');
    if (isWeight) {
      if (leaf.startsWith('weight_hh') && ic.recurrentGain !== undefined) {
        init.orthogonal(p, { gain: ic.recurrentGain, rng });
        continue;
      }
      initWeight(p, ic.weight, {
        rng,
        nl,
        ...(ic.std !== undefined ? { std: ic.std } : {}),
        ...(ic.a !== undefined ? { a: ic.a } : {}),
        ...(ic.gain !== undefined ? { gain: ic.gain } : {}),
      });
    } else if (isBias && ic.bias !== 'default') {
      init.constant(p, ic.bias === 'zeros' ? 0 : ic.bias);
    }
  }
  if (ic.weight === 'lsuv') {
    if (!dataset) throw new BuildError('init.weight=lsuv fits the weights to data: applyInit needs the dataset');
    // the first training examples (at most 256), in eval mode so that dropout does not blur the variances
    const n = Math.min(256, dataset.train.n);
    const batch = tensor(dataset.train.x.subarray(0, n * dataset.inputSize), [n, dataset.inputSize]);
    const wasTraining = model.training;
    model.eval();
    noGrad(() => lsuv(model, batch, { rng }));
    if (wasTraining) model.train();
    dispose(batch);
  }
  const forgetBias = config.model.forgetBias;
  if (forgetBias !== undefined) {
    for (const [, m] of model.namedModules()) if (m instanceof LSTM) lstmForgetGateBias(m, forgetBias);
  }
  if (config.model.zeroInitResidual) {
    for (const [, m] of model.namedModules()) {
      if (m instanceof ResidualMLPBlock) for (const [, t] of (m.norm2 ?? m.fc2).namedParameters()) t.data.fill(0);
      // a residual CNN's block: the branch's last layer with parameters (its last convolution or batch norm)
      if (m instanceof Residual) {
        const last = [...m.branch.children()].reverse().find((c) => c.numParameters() > 0);
        for (const [, t] of last?.namedParameters() ?? []) t.data.fill(0);
      }
    }
  }
  checkInitFinite(model, ic);
}

/**
 * Refuses initialised weights that hold NaN or Inf (`init.gain: 1e300`, `init.bias: 1e300`: float32 holds at most
 * 3.4e38), naming the config key and the layer, so that nothing non-finite ever reaches the weights.
 * @throws ConfigError `init.gain=1e+300: the initialised weights of '0.weight' hold 200704 NaN/Inf values ...`
 */
function checkInitFinite(model: AnyModule, ic: Config['init']): void {
  for (const [name, p] of model.namedParameters()) {
    const bad = p.storage.backend.countNonFinite(p.buf, p.size);
    if (bad === 0) continue;
    const key = initKeyOf(name, p, ic);
    const value =
      key === 'init.weight' ? ic.weight : ic[key.slice(5) as 'bias' | 'std' | 'a' | 'gain' | 'recurrentGain'];
    throw new ConfigError(
      `${key}=${String(value)}: the initialised '${name}' holds ${bad} NaN/Inf value${bad === 1 ? '' : 's'} (float32 holds at most 3.4e38); choose a smaller ${key}`,
    );
  }
}

/** The config key that set parameter `name`'s initial values (as `applyInit` chose them). */
function initKeyOf(name: string, p: Tensor, ic: Config['init']): string {
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  if ((leaf === 'bias' || leaf.startsWith('bias_')) && typeof ic.bias === 'number') return 'init.bias';
  const isWeight = (leaf === 'weight' || leaf.startsWith('weight_')) && p.ndim >= 2;
  if (!isWeight) return 'init.weight';
  if (leaf.startsWith('weight_hh') && ic.recurrentGain !== undefined) return 'init.recurrentGain';
  switch (ic.weight) {
    case 'normal':
      return ic.std !== undefined ? 'init.std' : 'init.weight';
    case 'uniform':
      return ic.a !== undefined ? 'init.a' : 'init.weight';
    case 'xavier-normal':
    case 'xavier-uniform':
    case 'orthogonal':
      return ic.gain !== undefined ? 'init.gain' : 'init.weight';
    default:
      return 'init.weight';
  }
}

function initWeight(
  p: Tensor,
  kind: Config['init']['weight'],
  o: { rng: Rng; nl: Nonlinearity; std?: number; a?: number; gain?: number },
): void {
  const gain = o.gain;
  switch (kind) {
    case 'default':
    case 'lsuv': // LSUV draws its own orthonormal start and fits it to data: see applyInit
      return;
    case 'zeros':
      init.zeros(p);
      return;
    case 'ones':
      init.ones(p);
      return;
    case 'normal':
      init.normal(p, { mean: 0, std: o.std ?? 0.01, rng: o.rng });
      return;
    case 'uniform':
      init.uniform(p, { low: -(o.a ?? 0.05), high: o.a ?? 0.05, rng: o.rng });
      return;
    case 'xavier-normal':
      init.xavierNormal(p, { rng: o.rng, ...(gain !== undefined ? { gain } : {}) });
      return;
    case 'xavier-uniform':
      init.xavierUniform(p, { rng: o.rng, ...(gain !== undefined ? { gain } : {}) });
      return;
    case 'kaiming-normal':
      init.kaimingNormal(p, { mode: 'fanIn', nonlinearity: o.nl, rng: o.rng });
      return;
    case 'kaiming-uniform':
      init.kaimingUniform(p, { mode: 'fanIn', nonlinearity: o.nl, rng: o.rng });
      return;
    case 'lecun-normal':
      init.lecunNormal(p, { rng: o.rng });
      return;
    case 'lecun-uniform':
      init.lecunUniform(p, { rng: o.rng });
      return;
    case 'standard-uniform':
      init.standardUniform(p, { rng: o.rng });
      return;
    case 'orthogonal':
      init.orthogonal(p, { rng: o.rng, ...(gain !== undefined ? { gain } : {}) });
      return;
  }
}
