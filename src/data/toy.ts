/**
 * Three more seeded 2-D classification sets, the other classics of TensorFlow Playground beside spirals: two
 * concentric circles, XOR (four quadrants) and Gaussian blobs. Like synthetic.ts, each draws the training set and
 * then the test set from one `new Rng(seed)`, so a seed fixes both; example i has class i mod K.
 */
import { Rng } from '../tensor/rng.js';
import { withBaseline } from './baseline.js';
import { DataError, type Dataset, type Split } from './types.js';

export interface ToyOptions {
  /** Examples per split (defaults 1,000 and 500). */
  trainSize?: number;
  testSize?: number;
  /** Standard deviation of the Gaussian noise added to each coordinate (defaults: circles 0.05, xor 0.05, gaussians 0.15). */
  noise?: number;
  /** gaussians only: blobs, one per class (default 2). */
  classes?: number;
  seed?: number;
}

function checkSizes(o: ToyOptions, defNoise: number): { trainSize: number; testSize: number; noise: number } {
  const trainSize = o.trainSize ?? 1000;
  const testSize = o.testSize ?? 500;
  const noise = o.noise ?? defNoise;
  for (const [name, v] of [
    ['trainSize', trainSize],
    ['testSize', testSize],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new DataError('config', `data.${name} must be an integer >= 1, got ${v}`);
  }
  if (!(noise >= 0) || !Number.isFinite(noise)) throw new DataError('config', `data.noise must be >= 0, got ${noise}`);
  return { trainSize, testSize, noise };
}

function toyDataset(
  name: string,
  K: number,
  o: ToyOptions,
  defNoise: number,
  point: (k: number, rng: Rng, out: Float32Array, i: number) => void,
): Dataset {
  const { trainSize, testSize, noise } = checkSizes(o, defNoise);
  const rng = new Rng(o.seed ?? 0);
  const make = (n: number): Split => {
    const x = new Float32Array(n * 2);
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const k = i % K;
      point(k, rng, x, i);
      x[2 * i] = x[2 * i]! + noise * rng.normal();
      x[2 * i + 1] = x[2 * i + 1]! + noise * rng.normal();
      y[i] = k;
    }
    return { x, y, n };
  };
  const train = make(trainSize);
  const test = make(testSize);
  return withBaseline({
    name,
    task: 'classification',
    inputShape: [2],
    inputSize: 2,
    targetShape: [],
    numClasses: K,
    train,
    test,
    source: `synthetic ${name} (noise ${noise}, seed ${o.seed ?? 0})`,
  });
}

/**
 * Two concentric circles: class 0 uniform in the disk of radius 0.5, class 1 on the ring between radii 0.7 and 1
 * (angle `U[0, 2π)`). Not linearly separable; one hidden layer solves it.
 */
export function circles(opts: ToyOptions = {}): Dataset {
  return toyDataset('circles', 2, opts, 0.05, (k, rng, x, i) => {
    const r = k === 0 ? 0.5 * Math.sqrt(rng.uniform()) : 0.7 + 0.3 * rng.uniform();
    const th = 2 * Math.PI * rng.uniform();
    x[2 * i] = r * Math.cos(th);
    x[2 * i + 1] = r * Math.sin(th);
  });
}

/**
 * XOR: a point uniform in one of the four quadrants of `[-1, 1]²` (kept 0.05 away from the axes); class 0 where
 * both coordinates have the same sign, class 1 where they differ.
 */
export function xor(opts: ToyOptions = {}): Dataset {
  return toyDataset('xor', 2, opts, 0.05, (k, rng, x, i) => {
    const sx = rng.uniform() < 0.5 ? -1 : 1;
    const sy = k === 0 ? sx : -sx;
    x[2 * i] = sx * (0.05 + 0.95 * rng.uniform());
    x[2 * i + 1] = sy * (0.05 + 0.95 * rng.uniform());
  });
}

/** K Gaussian blobs (default 2) with centres evenly spaced on the circle of radius 0.6; class k is blob k. */
export function gaussians(opts: ToyOptions = {}): Dataset {
  const K = opts.classes ?? 2;
  if (!Number.isInteger(K) || K < 2) throw new DataError('config', `data.classes must be an integer >= 2, got ${K}`);
  return toyDataset('gaussians', K, opts, 0.15, (k, _rng, x, i) => {
    const th = (2 * Math.PI * k) / K;
    x[2 * i] = 0.6 * Math.cos(th);
    x[2 * i + 1] = 0.6 * Math.sin(th);
  });
}
