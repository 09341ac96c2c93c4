/**
 * The rows of `npm run bench`: what users train, with the sizes both sides build (bench/ours-worker.ts here,
 * bench/torch_worker.py for PyTorch). Every row trains on one fixed batch with Adam 1e-3 after global-norm clipping at
 * 1.0 (the CLI's defaults): a random one (uniform in [0, 1)), and for `mlp-mnist` the first 128 training digits of
 * the bundled MNIST as the CLI standardizes them (bench/steps.ts, mnistBatch), so that the headline's inputs are
 * timed too: on the random batch 80 of the MLP's 256 hidden units are off for every input, on digits few are.
 */
export interface RowSpec {
  /** Short name used on the command line (`--rows=mlp,cnn`) and between the processes. */
  id: 'mlp' | 'mlp-mnist' | 'cnn' | 'resnet20' | 'lstm' | 'gru';
  /** What the table says. */
  label: string;
  batch: number;
  /** ResNet input: channels and side of the square image. */
  channels?: number;
  size?: number;
  /** Recurrent rows: sequence length, input features, hidden size. */
  seq?: number;
  features?: number;
  hidden?: number;
  /** Steps per timed block (full run, --quick) and warm-up steps before the first block. */
  steps: number;
  quickSteps: number;
  warm: number;
  /**
   * FLOPs (multiply-adds ×2) of one step's matrix products and convolutions, forward and backward, as both sides
   * compute them (the input batch needs no gradient, so the first layer has no input-gradient product). What a step
   * cannot go below at a given sgemm rate; see docs/benchmarks.md ("The products' floor").
   */
  flops: number;
}

/** Multiply-adds of a layer's forward product; its backward has one for the weight and one for the input. */
const fwdBwd = (macs: number, needsInputGrad = true) => 2 * macs * (needsInputGrad ? 3 : 2);

/** A 3×3 (or k×k) convolution's multiply-adds per image: out channels × (in channels·k²) × output positions. */
const conv = (cin: number, cout: number, k: number, outSide: number) => cout * cin * k * k * outSide * outSide;

/** The MLP step's products: x·W1ᵀ, dW1 = dhᵀ·x (the input needs no gradient), and the 256→10 layer's three. */
const MLP_FLOPS = 128 * (fwdBwd(784 * 256, false) + fwdBwd(256 * 10));

/** nn.cnn()'s defaults on 28×28 digits: conv 1→32 (28×28 out), conv 32→64 (14×14 out), linear 3136→128, 128→10. */
const CNN_FLOPS =
  64 * (fwdBwd(conv(1, 32, 3, 28), false) + fwdBwd(conv(32, 64, 3, 14)) + fwdBwd(3136 * 128) + fwdBwd(128 * 10));

/**
 * A CIFAR ResNet-20 on 3×32×32: the stem conv 3→16, three stages of three basic blocks (two 3×3 convs each) at 16, 32
 * and 64 channels on 32², 16² and 8² outputs (the first conv of stages 2 and 3 strided, beside a 1×1 projection),
 * and the 64→10 head. About 40.8 M multiply-adds forward per image.
 */
const RESNET20_FLOPS =
  64 *
  (fwdBwd(conv(3, 16, 3, 32), false) +
    6 * fwdBwd(conv(16, 16, 3, 32)) +
    fwdBwd(conv(16, 32, 3, 16)) +
    5 * fwdBwd(conv(32, 32, 3, 16)) +
    fwdBwd(conv(16, 32, 1, 16)) +
    fwdBwd(conv(32, 64, 3, 8)) +
    5 * fwdBwd(conv(64, 64, 3, 8)) +
    fwdBwd(conv(32, 64, 1, 8)) +
    fwdBwd(64 * 10));

/**
 * A recurrent row's products with `gates` gate blocks (LSTM 4, GRU 3): the input projection over the whole sequence
 * (forward and the weight gradient; the input needs none), the recurrent product per step (forward, the hidden
 * state's gradient, and the weight gradient over the sequence), and the linear head on the last step.
 */
const rnnFlops = (gates: number, T = 100, B = 64, In = 32, H = 128) =>
  T * B * (fwdBwd(gates * H * In, false) + fwdBwd(gates * H * H)) + B * fwdBwd(H * 1);

export const ROWS: readonly RowSpec[] = [
  {
    id: 'mlp',
    label: 'MLP 784-256-10, b128',
    batch: 128,
    steps: 40,
    quickSteps: 20,
    warm: 30,
    flops: MLP_FLOPS,
  },
  {
    id: 'mlp-mnist',
    label: 'MLP 784-256-10 on MNIST digits, b128',
    batch: 128,
    steps: 40,
    quickSteps: 20,
    warm: 30,
    flops: MLP_FLOPS,
  },
  { id: 'cnn', label: 'CLI CNN (nn.cnn()), b64', batch: 64, steps: 6, quickSteps: 3, warm: 3, flops: CNN_FLOPS },
  {
    id: 'resnet20',
    label: 'ResNet-20 + BN, 3×32×32, b64',
    batch: 64,
    channels: 3,
    size: 32,
    steps: 2,
    quickSteps: 1,
    warm: 2,
    flops: RESNET20_FLOPS,
  },
  {
    id: 'lstm',
    label: 'LSTM seq 100, b64, h128',
    batch: 64,
    seq: 100,
    features: 32,
    hidden: 128,
    steps: 3,
    quickSteps: 2,
    warm: 2,
    flops: rnnFlops(4),
  },
  {
    id: 'gru',
    label: 'GRU seq 100, b64, h128',
    batch: 64,
    seq: 100,
    features: 32,
    hidden: 128,
    steps: 3,
    quickSteps: 2,
    warm: 2,
    flops: rnnFlops(3),
  },
];
