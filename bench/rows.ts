/**
 * The rows of `npm run bench`: what users train, with the sizes both sides build (bench/ours-worker.ts here,
 * bench/torch_worker.py for PyTorch). Every row trains on one fixed random batch with Adam 1e-3 after global-norm
 * clipping at 1.0 (the CLI's defaults).
 */
export interface RowSpec {
  /** Short name used on the command line (`--rows=mlp,cnn`) and between the processes. */
  id: 'mlp' | 'cnn' | 'resnet20' | 'lstm' | 'gru';
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
  /** Multiply-adds ×2 of one step's products (forward and backward), where worked out; see docs/benchmarks.md. */
  flops?: number;
}

/** The MLP step's products: x·W1ᵀ, dW1 = dhᵀ·x (the input needs no gradient), and the small second layer's three. */
const MLP_FLOPS = 2 * (2 * 128 * 784 * 256) + 3 * (2 * 128 * 256 * 10);

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
  { id: 'cnn', label: 'CLI CNN (nn.cnn()), b64', batch: 64, steps: 6, quickSteps: 3, warm: 3 },
  {
    id: 'resnet20',
    label: 'ResNet-20 + BN, 3×32×32, b64',
    batch: 64,
    channels: 3,
    size: 32,
    steps: 2,
    quickSteps: 1,
    warm: 2,
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
  },
];
