/**
 * The IDX format of MNIST and Fashion-MNIST (LeCun et al., http://yann.lecun.com/exdb/mnist/), gzipped or not.
 *
 * Layout, all integers big-endian:
 * - bytes 0-1: zero; byte 2: the element type (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
 *   0x0E float64); byte 3: the number of dimensions `d`;
 * - `d` unsigned 32-bit sizes;
 * - the elements, row-major, exactly `prod(sizes)` of them.
 *
 * A file starting with the gzip magic `1f 8b` is inflated first (node:zlib). Every malformed input is a
 * {@link DataError} naming the file and the problem; nothing else is thrown (the parser is fuzzed).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type NormalizeMode, standardize } from './split.js';
import {
  checkFiniteInputs,
  DataError,
  type Dataset,
  MAX_CLASSES,
  MAX_EXAMPLE_SIZE,
  type Split,
  shapeSize,
} from './types.js';

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

/** A parsed IDX file: its element type, its sizes and its elements (host byte order). */
export interface IdxArray {
  dtype: IdxDtype;
  dims: number[];
  data: IdxData;
}

const DTYPES: Record<number, { dtype: IdxDtype; bytes: number }> = {
  8: { dtype: 'uint8', bytes: 1 },
  9: { dtype: 'int8', bytes: 1 },
  11: { dtype: 'int16', bytes: 2 },
  12: { dtype: 'int32', bytes: 4 },
  13: { dtype: 'float32', bytes: 4 },
  14: { dtype: 'float64', bytes: 8 },
};

const hex = (b: number) => `0x${b.toString(16).padStart(2, '0')}`;

/**
 * Parses IDX bytes (already inflated).
 * @param file the name to put in error messages.
 * @throws DataError `format` (bad magic, unknown type, no dimensions), `truncated` (header or data cut short),
 *   `size-mismatch` (bytes left over after the data).
 */
export function parseIdx(bytes: Uint8Array, file = 'IDX data'): IdxArray {
  if (bytes.length < 4) {
    throw new DataError(
      'truncated',
      `${file}: truncated IDX file: ${bytes.length} bytes, shorter than the 4-byte magic number; download it again`,
      file,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DataError(
      'format',
      `${file}: not an IDX file: magic number starts ${hex(bytes[0]!)} ${hex(bytes[1]!)}, expected 0x00 0x00 (is it another format, or a gzip file that was cut at the start?)`,
      file,
    );
  }
  const type = DTYPES[bytes[2]!];
  if (!type) {
    throw new DataError(
      'format',
      `${file}: unknown IDX element type ${hex(bytes[2]!)} in the magic number; expected one of 0x08 (uint8), 0x09 (int8), 0x0b (int16), 0x0c (int32), 0x0d (float32), 0x0e (float64)`,
      file,
    );
  }
  const rank = bytes[3]!;
  if (rank === 0) throw new DataError('format', `${file}: IDX file declares 0 dimensions; expected at least 1`, file);
  const header = 4 + 4 * rank;
  if (bytes.length < header) {
    throw new DataError(
      'truncated',
      `${file}: truncated IDX header: ${rank} dimensions need ${header} bytes, the file has ${bytes.length}; download it again`,
      file,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const need = count * type.bytes;
  const have = bytes.length - header;
  if (have < need) {
    throw new DataError(
      'truncated',
      `${file}: truncated IDX data: sizes [${dims.join(', ')}] of ${type.dtype} need ${need} bytes after the header, the file has ${have}; download it again`,
      file,
    );
  }
  if (have > need) {
    throw new DataError(
      'size-mismatch',
      `${file}: IDX size mismatch: sizes [${dims.join(', ')}] of ${type.dtype} need ${need} bytes after the header, the file has ${have} (${have - need} extra); the header or the file is wrong`,
      file,
    );
  }
  return { dtype: type.dtype, dims, data: decode(view, header, count, type.dtype) };
}

function decode(view: DataView, off: number, count: number, dtype: IdxDtype): IdxData {
  switch (dtype) {
    case 'uint8':
      return new Uint8Array(view.buffer, view.byteOffset + off, count).slice();
    case 'int8':
      return new Int8Array(view.buffer, view.byteOffset + off, count).slice();
    case 'int16': {
      const a = new Int16Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getInt16(off + 2 * i, false);
      return a;
    }
    case 'int32': {
      const a = new Int32Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getInt32(off + 4 * i, false);
      return a;
    }
    case 'float32': {
      const a = new Float32Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getFloat32(off + 4 * i, false);
      return a;
    }
    case 'float64': {
      const a = new Float64Array(count);
      for (let i = 0; i < count; i++) a[i] = view.getFloat64(off + 8 * i, false);
      return a;
    }
  }
}

const CODES: Record<IdxDtype, number> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

/** Writes an IDX file (not gzipped): the inverse of {@link parseIdx}. */
export function encodeIdx(arr: { dtype: IdxDtype; dims: readonly number[]; data: ArrayLike<number> }): Uint8Array {
  const { dtype, dims, data } = arr;
  const count = dims.reduce((a, b) => a * b, 1);
  if (dims.length < 1 || dims.length > 255 || count !== data.length) {
    throw new DataError('size-mismatch', `encodeIdx: ${data.length} values do not fill sizes [${dims.join(', ')}]`);
  }
  const size = DTYPES[CODES[dtype]]!.bytes;
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + count * size);
  const v = new DataView(out.buffer);
  out[2] = CODES[dtype];
  out[3] = dims.length;
  for (let i = 0; i < dims.length; i++) v.setUint32(4 + 4 * i, dims[i]!, false);
  for (let i = 0; i < count; i++) {
    const o = header + i * size;
    const x = data[i]!;
    if (dtype === 'uint8') v.setUint8(o, x);
    else if (dtype === 'int8') v.setInt8(o, x);
    else if (dtype === 'int16') v.setInt16(o, x, false);
    else if (dtype === 'int32') v.setInt32(o, x, false);
    else if (dtype === 'float32') v.setFloat32(o, x, false);
    else v.setFloat64(o, x, false);
  }
  return out;
}

/** True when `bytes` start with the gzip magic number `1f 8b`. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Parses IDX bytes that may be gzipped (detected by the magic `1f 8b`, not by the file name). */
export function decodeIdx(bytes: Uint8Array, file = 'IDX data'): IdxArray {
  if (!isGzip(bytes)) return parseIdx(bytes, file);
  let raw: Uint8Array;
  try {
    raw = gunzipSync(bytes);
  } catch (e) {
    const code = (e as { code?: string }).code;
    const truncated = code === 'Z_BUF_ERROR';
    throw new DataError(
      truncated ? 'truncated' : 'format',
      `${file}: ${truncated ? 'truncated gzip stream (unexpected end of file)' : `corrupt gzip data (${(e as Error).message})`}; download the file again`,
      file,
      { cause: e },
    );
  }
  return parseIdx(raw, file);
}

/** Reads and parses one IDX file, gzipped or not. */
export function readIdxFile(path: string): IdxArray {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DataError('not-found', `${path}: cannot read IDX file (${(e as Error).message})`, path, { cause: e });
  }
  return decodeIdx(bytes, path);
}

/** The four files of an MNIST-style directory. */
export interface IdxFiles {
  trainImages: string;
  trainLabels: string;
  testImages: string;
  testLabels: string;
}

/**
 * The standard names, tried in this order in the directory, each plain and then with `.gz`: MNIST's own hyphenated
 * names (`train-images-idx3-ubyte`, as Debian's dataset-fashion-mnist ships them, gzipped) and the dotted variant
 * some mirrors use (`train-images.idx3-ubyte`).
 */
export const IDX_STANDARD_NAMES: Record<keyof IdxFiles, string[]> = {
  trainImages: ['train-images-idx3-ubyte', 'train-images.idx3-ubyte'],
  trainLabels: ['train-labels-idx1-ubyte', 'train-labels.idx1-ubyte'],
  testImages: ['t10k-images-idx3-ubyte', 't10k-images.idx3-ubyte'],
  testLabels: ['t10k-labels-idx1-ubyte', 't10k-labels.idx1-ubyte'],
};

/**
 * Finds the four standard IDX files in `dir`.
 * @throws DataError `not-found` naming every name it looked for and `hint` (how to get the files).
 */
export function findIdxFiles(dir: string, hint: string): IdxFiles {
  const out: Partial<IdxFiles> = {};
  const missing: string[] = [];
  for (const key of Object.keys(IDX_STANDARD_NAMES) as (keyof IdxFiles)[]) {
    const tried = IDX_STANDARD_NAMES[key].flatMap((b) => [b, `${b}.gz`]);
    const found = tried.find((f) => existsSync(join(dir, f)));
    if (found) out[key] = join(dir, found);
    else missing.push(tried[0]!);
  }
  if (missing.length > 0) {
    throw new DataError(
      'not-found',
      `${dir}: missing IDX file${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (with or without .gz); ${hint}`,
      dir,
    );
  }
  return out as IdxFiles;
}

export interface IdxSplitOptions {
  /** Labels must lie in `[0, numClasses)`. */
  numClasses: number;
  /** Divide uint8 inputs by 255 so pixels lie in [0, 1] (default true); other types are kept as they are. */
  scaleBytes?: boolean;
}

/**
 * Pairs an images array `[n, ...]` with a labels array `[n]` into a split. Inputs become float32 (uint8 scaled to
 * [0, 1]); labels must be integers in `[0, numClasses)`.
 * @throws DataError `label-count` when the counts differ, `label-range` for a label outside the range, `format` for
 *   labels that are not a 1-D integer array.
 */
export function idxToSplit(
  images: IdxArray,
  labels: IdxArray,
  files: { images: string; labels: string },
  opts: IdxSplitOptions,
): Split {
  const n = images.dims[0]!;
  if (labels.dims.length !== 1 || labels.dtype === 'float32' || labels.dtype === 'float64') {
    throw new DataError(
      'format',
      `${files.labels}: labels must be a 1-D integer IDX array, got ${labels.dtype} with sizes [${labels.dims.join(', ')}]; is this the images file?`,
      files.labels,
    );
  }
  if (labels.dims[0] !== n) {
    throw new DataError(
      'label-count',
      `${files.labels}: ${labels.dims[0]} labels for the ${n} images in ${files.images}; the two files must come from the same set (train or t10k)`,
      files.labels,
    );
  }
  if (n === 0)
    throw new DataError(
      'format',
      `${files.images}: the IDX file holds no images (sizes [${images.dims.join(', ')}])`,
      files.images,
    );
  const size = shapeSize(images.dims.slice(1));
  if (size > MAX_EXAMPLE_SIZE)
    throw new DataError(
      'format',
      `${files.images}: each image holds ${size.toLocaleString('en-US')} values (sizes [${images.dims.join(', ')}]), over the limit of ${MAX_EXAMPLE_SIZE.toLocaleString('en-US')}; the header is wrong`,
      files.images,
    );
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = labels.data[i]!;
    if (v < 0 || v >= opts.numClasses) {
      throw new DataError(
        'label-range',
        `${files.labels}: label ${v} at index ${i} is outside [0, ${opts.numClasses}); the file is corrupt or the data set has more classes (set numClasses)`,
        files.labels,
      );
    }
    y[i] = v;
  }
  const src = images.data;
  const x = new Float32Array(src.length);
  if (images.dtype === 'uint8' && (opts.scaleBytes ?? true)) {
    // NOTE: a lookup table turns 47M divisions into loads and gives exactly v / 255 rounded to float32
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = v / 255;
    for (let i = 0; i < src.length; i++) x[i] = lut[src[i]!]!;
  } else {
    x.set(src);
    // float images: NaN and Inf (and float64 values beyond float32) are refused, naming the image
    if (images.dtype === 'float32' || images.dtype === 'float64')
      checkFiniteInputs(src, size, files.images, files.images);
  }
  return { x, y, n };
}

/** The shape of one example of an images array `[n, ...rest]`: `[1, h, w]` for `[n, h, w]`, else `rest`. */
export function exampleShape(dims: readonly number[]): number[] {
  const rest = dims.slice(1);
  return rest.length === 2 ? [1, ...rest] : rest.length === 0 ? [1] : rest;
}

export interface IdxDirectoryOptions {
  /** The dataset name to report (`mnist`, `fashion-mnist`, `idx`). */
  name: string;
  /** Labels lie in `[0, numClasses)`; default: the largest label in either split plus one. */
  numClasses?: number;
  classNames?: string[];
  normalize?: NormalizeMode;
  /** Explicit file names (relative to the directory) instead of the standard ones. */
  files?: Partial<IdxFiles>;
  /** What to tell the user when files are missing. */
  hint?: string;
}

/** Loads an MNIST-style directory of four IDX files into a classification dataset. */
export function loadIdxDirectory(dir: string, opts: IdxDirectoryOptions): Dataset {
  const hint =
    opts.hint ??
    'put the four files there (names as on http://yann.lecun.com/exdb/mnist/), or name them with data.files';
  const std = opts.files && Object.keys(opts.files).length === 4 ? undefined : findIdxFiles(dir, hint);
  const path = (k: keyof IdxFiles) => {
    const f = opts.files?.[k];
    return f !== undefined ? join(dir, f) : std![k];
  };
  const files = {
    trainImages: path('trainImages'),
    trainLabels: path('trainLabels'),
    testImages: path('testImages'),
    testLabels: path('testLabels'),
  };
  const arr = {
    trainImages: readIdxFile(files.trainImages),
    trainLabels: readIdxFile(files.trainLabels),
    testImages: readIdxFile(files.testImages),
    testLabels: readIdxFile(files.testLabels),
  };
  const inputShape = exampleShape(arr.trainImages.dims);
  const testShape = exampleShape(arr.testImages.dims);
  if (inputShape.join() !== testShape.join()) {
    throw new DataError(
      'size-mismatch',
      `${files.testImages}: test images have shape [${testShape.join(', ')}], training images [${inputShape.join(', ')}]; both must come from the same data set`,
      files.testImages,
    );
  }
  let numClasses = opts.numClasses;
  if (numClasses === undefined) {
    let max = -1;
    for (const a of [arr.trainLabels, arr.testLabels]) for (const v of a.data) if (v > max) max = v;
    if (max >= MAX_CLASSES) {
      for (const [a, file] of [
        [arr.trainLabels, files.trainLabels],
        [arr.testLabels, files.testLabels],
      ] as const) {
        const i = Array.prototype.indexOf.call(a.data, max);
        if (i >= 0)
          throw new DataError(
            'label-range',
            `${file}: label ${max} at index ${i} is over the limit of ${MAX_CLASSES - 1} (at most ${MAX_CLASSES.toLocaleString('en-US')} classes); the file is corrupt or not a labels file`,
            file,
          );
      }
    }
    numClasses = Math.max(1, max + 1);
  }
  const train = idxToSplit(
    arr.trainImages,
    arr.trainLabels,
    { images: files.trainImages, labels: files.trainLabels },
    { numClasses },
  );
  const test = idxToSplit(
    arr.testImages,
    arr.testLabels,
    { images: files.testImages, labels: files.testLabels },
    { numClasses },
  );
  const inputSize = shapeSize(inputShape);
  const normalization = standardize(train, test, inputSize, opts.normalize ?? 'none');
  return {
    name: opts.name,
    task: 'classification',
    inputShape,
    inputSize,
    targetShape: [],
    numClasses,
    ...(opts.classNames ? { classNames: opts.classNames } : {}),
    train,
    test,
    ...(normalization ? { normalization } : {}),
    source: dir,
  };
}
