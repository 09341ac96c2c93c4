import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { canRun } from '../../test/suites.js';
import { decodeIdx, encodeIdx, type IdxDtype, loadIdxDirectory, parseIdx, readIdxFile } from './idx.js';
import { FASHION_MNIST_DIR, loadFashionMnist, loadMnistIdx } from './mnist.js';
import { DataError } from './types.js';

const tmp = mkdtempSync(join(tmpdir(), 'gradguard-idx-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Expects `fn` to throw a DataError with `code` whose message matches `re`. */
function expectDataError(fn: () => unknown, code: string, re: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DataError);
  expect((err as DataError).code).toBe(code);
  expect((err as DataError).message).toMatch(re);
}

describe('parseIdx', () => {
  it('reads the MNIST header: magic 0x00000803, sizes big-endian, uint8 pixels', () => {
    const bytes = Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 7, 255, 0, 128]);
    const a = parseIdx(bytes);
    expect(a.dtype).toBe('uint8');
    expect(a.dims).toEqual([2, 1, 2]);
    expect([...a.data]).toEqual([7, 255, 0, 128]);
  });

  it('decodes every element type big-endian (byte-level check for int16 and float32)', () => {
    const i16 = parseIdx(Uint8Array.from([0, 0, 0x0b, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe]));
    expect([...i16.data]).toEqual([0x0102, -2]);
    const f32 = parseIdx(Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0x3f, 0xc0, 0, 0]));
    expect([...f32.data]).toEqual([1.5]);
    const cases: [IdxDtype, number[]][] = [
      ['uint8', [0, 1, 255]],
      ['int8', [-128, 0, 127]],
      ['int16', [-32768, 1, 32767]],
      ['int32', [-2147483648, 7, 2147483647]],
      ['float32', [-1.5, 0.25, Math.fround(3e38)]],
      ['float64', [-1e300, Math.PI, 5e-324]],
    ];
    for (const [dtype, data] of cases) {
      const a = parseIdx(encodeIdx({ dtype, dims: [3], data }));
      expect(a.dtype).toBe(dtype);
      expect([...a.data]).toEqual(data);
    }
  });

  it('refuses a wrong magic number, an unknown type and zero dimensions', () => {
    expectDataError(
      () => parseIdx(Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]), 'f.idx'),
      'format',
      /f\.idx: not an IDX file/,
    );
    expectDataError(
      () => parseIdx(Uint8Array.from([0, 0, 0x0a, 1, 0, 0, 0, 0])),
      'format',
      /unknown IDX element type 0x0a/,
    );
    expectDataError(() => parseIdx(Uint8Array.from([0, 0, 8, 0])), 'format', /0 dimensions/);
  });

  it('refuses truncated files and trailing bytes, naming the sizes', () => {
    const good = encodeIdx({ dtype: 'int32', dims: [2, 2], data: [1, 2, 3, 4] });
    expectDataError(() => parseIdx(good.subarray(0, 3), 'x'), 'truncated', /x: truncated IDX file: 3 bytes/);
    expectDataError(
      () => parseIdx(good.subarray(0, 9), 'x'),
      'truncated',
      /truncated IDX header: 2 dimensions need 12 bytes/,
    );
    expectDataError(
      () => parseIdx(good.subarray(0, good.length - 1), 'x'),
      'truncated',
      /sizes \[2, 2\] of int32 need 16 bytes after the header, the file has 15/,
    );
    const long = new Uint8Array(good.length + 2);
    long.set(good);
    expectDataError(() => parseIdx(long, 'x'), 'size-mismatch', /2 extra/);
  });

  it('never allocates for sizes the file cannot hold', () => {
    const huge = Uint8Array.from([0, 0, 0x0e, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1, 2]);
    expectDataError(() => parseIdx(huge), 'truncated', /need .* bytes/);
  });
});

describe('decodeIdx (gzip)', () => {
  const raw = encodeIdx({ dtype: 'uint8', dims: [4], data: [1, 2, 3, 4] });

  it('inflates data that starts with 1f 8b, whatever the name', () => {
    expect([...decodeIdx(gzipSync(raw)).data]).toEqual([1, 2, 3, 4]);
    expect([...decodeIdx(raw).data]).toEqual([1, 2, 3, 4]);
  });

  it('reports a truncated or corrupt gzip stream as DataError', () => {
    const gz = gzipSync(raw);
    expectDataError(
      () => decodeIdx(gz.subarray(0, gz.length - 10), 'a.gz'),
      'truncated',
      /a\.gz: truncated gzip stream/,
    );
    const bad = Uint8Array.from(gz);
    bad[10] = bad[10]! ^ 0xff;
    bad[11] = bad[11]! ^ 0xff;
    expect(() => decodeIdx(bad, 'a.gz')).toThrow(DataError);
  });
});

describe('fuzzing: no input throws anything but DataError', () => {
  const check = (bytes: Uint8Array) => {
    try {
      const a = decodeIdx(bytes, 'fuzz');
      expect(a.data.length).toBe(a.dims.reduce((x, y) => x * y, 1));
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
    }
  };

  it('random bytes, with and without an IDX-like header or gzip magic', () => {
    const header = fc.tuple(
      fc.constantFrom(0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x00, 0xff),
      fc.integer({ min: 0, max: 5 }),
    );
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        header,
        fc.constantFrom('raw', 'idx', 'gzmagic'),
        (body, [t, r], k) => {
          if (k === 'raw') check(body);
          else if (k === 'idx') check(Uint8Array.from([0, 0, t, r, ...body]));
          else check(Uint8Array.from([0x1f, 0x8b, ...body]));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('valid files with one byte changed, cut short, or gzipped and then damaged', () => {
    const file = fc
      .tuple(
        fc.constantFrom<IdxDtype>('uint8', 'int8', 'int16', 'int32', 'float32', 'float64'),
        fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 }),
      )
      .map(([dtype, dims]) => {
        const n = dims.reduce((a, b) => a * b, 1);
        return encodeIdx({ dtype, dims, data: Array.from({ length: n }, (_, i) => i % 100) });
      });
    fc.assert(
      fc.property(file, fc.nat(), fc.nat(255), fc.boolean(), fc.boolean(), (bytes, pos, val, cut, gz) => {
        let b: Uint8Array = Uint8Array.from(bytes);
        if (gz) b = Uint8Array.from(gzipSync(b));
        if (cut) b = b.subarray(0, pos % (b.length + 1));
        else b[pos % b.length] = val;
        check(b);
      }),
      { numRuns: 3000 },
    );
  });
});

/** Writes an MNIST-like directory: `n` train and `m` test images of h × w, labels i mod 10. */
function writeIdxDir(
  dir: string,
  opts: { n?: number; m?: number; h?: number; w?: number; gz?: boolean; labels?: number[]; testLabels?: number } = {},
): void {
  const { n = 20, m = 10, h = 28, w = 28, gz = false } = opts;
  const put = (name: string, bytes: Uint8Array) =>
    writeFileSync(join(dir, gz ? `${name}.gz` : name), gz ? gzipSync(bytes) : bytes);
  const img = (k: number) =>
    encodeIdx({ dtype: 'uint8', dims: [k, h, w], data: Array.from({ length: k * h * w }, (_, i) => i % 256) });
  put('train-images-idx3-ubyte', img(n));
  put(
    'train-labels-idx1-ubyte',
    encodeIdx({ dtype: 'uint8', dims: [n], data: opts.labels ?? Array.from({ length: n }, (_, i) => i % 10) }),
  );
  put('t10k-images-idx3-ubyte', img(m));
  const tl = opts.testLabels ?? m;
  put(
    't10k-labels-idx1-ubyte',
    encodeIdx({ dtype: 'uint8', dims: [tl], data: Array.from({ length: tl }, (_, i) => i % 10) }),
  );
}

describe('IDX directories', () => {
  it('loads the four standard files, gzipped, into [1, 28, 28] inputs in [0, 1]', () => {
    const dir = mkdtempSync(join(tmp, 'gz-'));
    writeIdxDir(dir, { gz: true });
    const ds = loadMnistIdx(dir);
    expect(ds.train.n).toBe(20);
    expect(ds.test.n).toBe(10);
    expect(ds.inputShape).toEqual([1, 28, 28]);
    expect(ds.inputSize).toBe(784);
    expect(ds.numClasses).toBe(10);
    expect(ds.train.x[255]).toBe(1);
    expect(ds.train.x[51]).toBe(Math.fround(51 / 255));
    expect([...ds.train.y.subarray(0, 12)]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  });

  it('loads plain files and infers the class count for a generic directory', () => {
    const dir = mkdtempSync(join(tmp, 'plain-'));
    writeIdxDir(dir, { h: 3, w: 2, labels: Array.from({ length: 20 }, (_, i) => i % 4) });
    const ds = loadIdxDirectory(dir, { name: 'idx', normalize: 'standardize' });
    expect(ds.inputShape).toEqual([1, 3, 2]);
    expect(ds.numClasses).toBe(10); // the test labels go up to 9
    expect(ds.normalization?.kind).toBe('standardize');
    let mean = 0;
    for (const v of ds.train.x) mean += v;
    expect(mean / ds.train.x.length).toBeCloseTo(0, 5);
  });

  it('refuses label count ≠ image count, labels out of range, and a missing file with the fix', () => {
    const a = mkdtempSync(join(tmp, 'count-'));
    writeIdxDir(a, { testLabels: 9 });
    expectDataError(() => loadMnistIdx(a), 'label-count', /t10k-labels-idx1-ubyte: 9 labels for the 10 images/);
    const b = mkdtempSync(join(tmp, 'range-'));
    writeIdxDir(b, { labels: [...Array.from({ length: 19 }, () => 1), 10] });
    expectDataError(() => loadMnistIdx(b), 'label-range', /label 10 at index 19 is outside \[0, 10\)/);
    const c = mkdtempSync(join(tmp, 'missing-'));
    writeIdxDir(c);
    rmSync(join(c, 't10k-images-idx3-ubyte'));
    expectDataError(
      () => loadMnistIdx(c),
      'not-found',
      /missing IDX file t10k-images-idx3-ubyte \(with or without \.gz\); .*source: download/,
    );
    expectDataError(() => loadFashionMnist(c), 'not-found', /zalandoresearch/);
  });

  it('refuses images that are not 28 × 28 for mnist', () => {
    const dir = mkdtempSync(join(tmp, 'shape-'));
    writeIdxDir(dir, { h: 5, w: 5 });
    expectDataError(() => loadMnistIdx(dir), 'size-mismatch', /images are \[1, 5, 5\], expected 28 × 28/);
  });

  it('readIdxFile names the path it cannot read', () => {
    expectDataError(() => readIdxFile(join(tmp, 'nope')), 'not-found', /nope: cannot read IDX file/);
  });
});

describe.skipIf(
  !canRun(
    'fashion-mnist',
    existsSync(FASHION_MNIST_DIR),
    `no ${FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)`,
  ),
)('Fashion-MNIST from Debian dataset-fashion-mnist', () => {
  it('loads 60,000 + 10,000 images, 6,000 / 1,000 per class', () => {
    const ds = loadFashionMnist();
    expect(ds.train.n).toBe(60_000);
    expect(ds.test.n).toBe(10_000);
    expect(ds.classNames?.[9]).toBe('Ankle boot');
    const counts = new Array(10).fill(0);
    for (const v of ds.train.y) counts[v]++;
    expect(counts).toEqual(new Array(10).fill(6000));
    let max = 0;
    for (let i = 0; i < 784 * 100; i++) max = Math.max(max, ds.train.x[i]!);
    expect(max).toBe(1);
  });
});
