import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadFiles, loadMnistDownload, MNIST_FILES, type RemoteFile } from './download.js';
import { encodeIdx } from './idx.js';
import { DataError } from './types.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A tiny MNIST in the four standard gzipped files: 20 training and 10 test images of 28 × 28. */
const content = new Map<string, Uint8Array>();
{
  const img = (n: number) =>
    gzipSync(
      encodeIdx({ dtype: 'uint8', dims: [n, 28, 28], data: Array.from({ length: n * 784 }, (_, i) => (i * 7) % 256) }),
    );
  const lab = (n: number) =>
    gzipSync(encodeIdx({ dtype: 'uint8', dims: [n], data: Array.from({ length: n }, (_, i) => i % 10) }));
  content.set('train-images-idx3-ubyte.gz', img(20));
  content.set('train-labels-idx1-ubyte.gz', lab(20));
  content.set('t10k-images-idx3-ubyte.gz', img(10));
  content.set('t10k-labels-idx1-ubyte.gz', lab(10));
}
const checksums = Object.fromEntries([...content].map(([k, v]) => [k, sha(v)]));
const files: RemoteFile[] = [...content].map(([name, v]) => ({ name, sha256: sha(v), bytes: v.length }));

let server: Server;
let base = '';
const hits: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '';
    hits.push(url);
    const [, mode, name] = url.split('/');
    const body = content.get(name ?? '');
    if (!body || mode === 'missing') {
      res.writeHead(404).end('not here');
      return;
    }
    if (mode === 'good') res.writeHead(200, { 'content-length': body.length }).end(body);
    else if (mode === 'bad') {
      const wrong = Uint8Array.from(body);
      wrong[wrong.length - 1]! ^= 1;
      res.writeHead(200, { 'content-length': wrong.length }).end(wrong);
    } else if (mode === 'trunc') {
      // announces the full length, sends half, then drops the connection
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => res.destroy());
    } else if (mode === 'short') {
      // no length announced (chunked), ends cleanly after half: only the size or the checksum can tell
      res.writeHead(200);
      res.end(body.subarray(0, body.length >> 1));
    } else if (mode === 'long') {
      res.writeHead(200);
      res.end(Buffer.concat([body, Buffer.from('extra')]));
    } else res.writeHead(500).end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
});

const dirs: string[] = [];
const freshDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'gradguard-dl-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function dataError(p: Promise<unknown>): Promise<DataError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return e as DataError;
  }
  throw new Error('expected a DataError, but the download succeeded');
}

describe('downloadFiles', () => {
  it('fetches, verifies and caches; a second call downloads nothing', async () => {
    const dir = freshDir();
    const r = await downloadFiles({ cacheDir: dir, mirrors: [`${base}/good/`], files });
    expect(r.downloaded).toEqual([...content.keys()]);
    for (const [name, body] of content) expect(sha(readFileSync(join(dir, name)))).toBe(sha(body));
    expect(readdirSync(dir).sort()).toEqual([...content.keys()].sort());
    const before = hits.length;
    const again = await downloadFiles({ cacheDir: dir, mirrors: [`${base}/good`], files });
    expect(again.cached).toHaveLength(4);
    expect(hits.length).toBe(before);
  });

  it('a wrong checksum is an error and leaves nothing in the cache', async () => {
    const dir = freshDir();
    const e = await dataError(downloadFiles({ cacheDir: dir, mirrors: [`${base}/bad/`], files }));
    expect(e.code).toBe('checksum');
    expect(e.message).toContain(`expected ${files[0]!.sha256}`);
    expect(e.message).toMatch(/Nothing was saved/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a connection dropped mid-body is an error and leaves no half-file', async () => {
    const dir = freshDir();
    const e = await dataError(downloadFiles({ cacheDir: dir, mirrors: [`${base}/trunc/`], files }));
    expect(e.code).toBe('download');
    expect(e.message).toMatch(/connection lost after \d+ of \d+ bytes/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a body shorter than the known size is refused, and without a known size the checksum catches it', async () => {
    const dir = freshDir();
    const e = await dataError(downloadFiles({ cacheDir: dir, mirrors: [`${base}/short/`], files }));
    expect(e.message).toMatch(/truncated: received \d+ of the expected \d+ bytes/);
    const unsized = files.map(({ name, sha256 }) => ({ name, sha256 }));
    const e2 = await dataError(downloadFiles({ cacheDir: dir, mirrors: [`${base}/short/`], files: unsized }));
    expect(e2.code).toBe('checksum');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a body longer than the known size is refused', async () => {
    const dir = freshDir();
    const e = await dataError(downloadFiles({ cacheDir: dir, mirrors: [`${base}/long/`], files }));
    expect(e.message).toMatch(/longer than the expected/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('a 404 names the URL and status; the next mirror is tried', async () => {
    const dir = freshDir();
    const e = await dataError(downloadFiles({ cacheDir: dir, mirrors: [`${base}/missing/`], files }));
    expect(e.code).toBe('download');
    expect(e.message).toContain(`${base}/missing/train-images-idx3-ubyte.gz: HTTP 404`);
    const r = await downloadFiles({
      cacheDir: dir,
      mirrors: [`${base}/missing/`, `${base}/bad/`, `${base}/good/`],
      files,
    });
    expect(r.downloaded).toHaveLength(4);
  });

  it('replaces a cached file whose checksum does not match', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), 'stale');
    const r = await downloadFiles({ cacheDir: dir, mirrors: [`${base}/good/`], files });
    expect(r.downloaded).toContain('train-labels-idx1-ubyte.gz');
    expect(sha(readFileSync(join(dir, 'train-labels-idx1-ubyte.gz')))).toBe(checksums['train-labels-idx1-ubyte.gz']);
  });

  it('a closed port is a download error that says what to do', async () => {
    const probe = createServer();
    await new Promise<void>((ok) => probe.listen(0, '127.0.0.1', ok));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((ok) => probe.close(ok));
    const e = await dataError(downloadFiles({ cacheDir: freshDir(), mirrors: [`http://127.0.0.1:${port}/`], files }));
    expect(e.code).toBe('download');
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect(e.message).toMatch(/download train-images-idx3-ubyte\.gz by hand into/);
  });

  it('rejects a malformed checksum before any request', async () => {
    const before = hits.length;
    const e = await dataError(
      downloadFiles({ cacheDir: freshDir(), mirrors: [`${base}/good/`], files: [{ name: 'x', sha256: 'abc' }] }),
    );
    expect(e.code).toBe('config');
    expect(hits.length).toBe(before);
  });
});

describe('loadMnistDownload', () => {
  it('downloads into the cache directory and loads the IDX files', async () => {
    const dir = freshDir();
    const ds = await loadMnistDownload({ cacheDir: dir, mirrors: [`${base}/good/`], checksums });
    expect(ds.train.n).toBe(20);
    expect(ds.test.n).toBe(10);
    expect(ds.inputShape).toEqual([1, 28, 28]);
    expect(ds.source).toContain(dir);
  });

  it('checks against the published MNIST checksums unless told otherwise', async () => {
    const e = await dataError(loadMnistDownload({ cacheDir: freshDir(), mirrors: [`${base}/good/`] }));
    expect(e.code).toBe('checksum'); // our tiny files are not the real ones: their size is refused
    expect(MNIST_FILES.map((f) => f.sha256.slice(0, 8))).toEqual(['440fcabf', '3552534a', '8d422c7b', 'f7ae60f9']);
    const e2 = await dataError(
      loadMnistDownload({
        cacheDir: freshDir(),
        mirrors: [`${base}/good/`],
        checksums: { 'train.gz': 'a'.repeat(64) },
      }),
    );
    expect(e2.message).toMatch(/unknown file "train\.gz"/);
  });
});
