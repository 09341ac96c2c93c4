/**
 * Downloads files into a cache directory and checks their SHA-256 before they count as cached.
 *
 * Each file is streamed to a temporary file beside its final name while it is hashed; only when the byte count and the
 * checksum match is it fsynced and renamed into place (a rename within one directory is atomic). A 404, a dropped
 * connection, a short body or a wrong checksum is an error that deletes the temporary file, so the cache never holds
 * half a file, and a cached file whose checksum no longer matches is downloaded again.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { loadMnistIdx } from './mnist.js';
import type { NormalizeMode } from './split.js';
import { DataError, type Dataset } from './types.js';

/** A file to fetch: its name (appended to a mirror's base URL and used in the cache), checksum and size. */
export interface RemoteFile {
  name: string;
  /** Lower-case hex SHA-256 of the file as served (for MNIST: of the .gz file). */
  sha256: string;
  /** Size in bytes, when known: a body of another size is refused before hashing. */
  bytes?: number;
}

/**
 * The four MNIST files as published by LeCun, Cortes and Burges, gzipped. The SHA-256 sums and sizes are the ones
 * torchvision, TensorFlow Datasets and other projects pin for these exact files (their MD5s are torchvision's
 * f68b3c2d..., d53e105e..., 9fb629c4..., ec29112d...). Override them with `checksums` only to use a different copy on
 * purpose.
 */
export const MNIST_FILES: readonly RemoteFile[] = [
  {
    name: 'train-images-idx3-ubyte.gz',
    sha256: '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609',
    bytes: 9_912_422,
  },
  {
    name: 'train-labels-idx1-ubyte.gz',
    sha256: '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c',
    bytes: 28_881,
  },
  {
    name: 't10k-images-idx3-ubyte.gz',
    sha256: '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6',
    bytes: 1_648_877,
  },
  {
    name: 't10k-labels-idx1-ubyte.gz',
    sha256: 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6',
    bytes: 4_542,
  },
];

/**
 * Mirrors tried in order (http://yann.lecun.com/exdb/mnist/ no longer serves the files without a login): PyTorch's
 * (torchvision's first choice) and Google's (TensorFlow's).
 */
export const MNIST_MIRRORS: readonly string[] = [
  'https://ossci-datasets.s3.amazonaws.com/mnist/',
  'https://storage.googleapis.com/cvdf-datasets/mnist/',
];

/** `~/.cache/gradguard/mnist`. */
export const MNIST_CACHE_DIR = join(homedir(), '.cache', 'gradguard', 'mnist');

export interface DownloadOptions {
  /** Where the files end up (created if missing). */
  cacheDir: string;
  /** Base URLs tried in order for each file; the file name is appended (a `/` is added if missing). */
  mirrors: readonly string[];
  files: readonly RemoteFile[];
  /** Give up on one file from one mirror after this long (default 300,000 ms). */
  timeoutMs?: number;
  /** Called as bytes arrive (for a progress line on stderr); `total` is undefined when the size is unknown. */
  onProgress?: (file: string, received: number, total: number | undefined) => void;
}

export interface DownloadResult {
  /** Full paths, in the order of `files`. */
  paths: string[];
  /** Names fetched now, and names found in the cache with the right checksum. */
  downloaded: string[];
  cached: string[];
}

let tmpCounter = 0;

/** SHA-256 of a file on disk, or undefined when it does not exist. */
async function hashFile(path: string): Promise<string | undefined> {
  try {
    await stat(path);
  } catch {
    return undefined;
  }
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Makes sure every file of `files` is in `cacheDir` with its checksum, downloading what is missing or wrong.
 * @throws DataError `checksum` when every mirror served a file with the wrong checksum, `download` when a file
 *   could not be fetched at all (HTTP error, network error, connection closed early); the message lists what each
 *   mirror did and how to get the file by hand.
 */
export async function downloadFiles(opts: DownloadOptions): Promise<DownloadResult> {
  const { cacheDir, files } = opts;
  if (opts.mirrors.length === 0) throw new DataError('config', 'download: no mirrors given; set data.mirrors');
  try {
    await mkdir(cacheDir, { recursive: true });
  } catch (e) {
    throw new DataError(
      'download',
      `${cacheDir}: cannot create the cache directory (${(e as Error).message}); set data.cacheDir to a writable directory`,
      cacheDir,
      { cause: e },
    );
  }
  const result: DownloadResult = { paths: [], downloaded: [], cached: [] };
  for (const f of files) {
    if (!/^[0-9a-f]{64}$/.test(f.sha256)) {
      throw new DataError(
        'config',
        `download: checksum for ${f.name} must be 64 lower-case hex digits (SHA-256), got ${JSON.stringify(f.sha256)}`,
      );
    }
    const dest = join(cacheDir, f.name);
    result.paths.push(dest);
    if ((await hashFile(dest)) === f.sha256) {
      result.cached.push(f.name);
      continue;
    }
    const failures: string[] = [];
    let badChecksum = false;
    let done = false;
    for (const mirror of opts.mirrors) {
      const url = `${mirror.endsWith('/') ? mirror : `${mirror}/`}${f.name}`;
      const tmp = join(cacheDir, `.${f.name}.${process.pid}.${tmpCounter++}.part`);
      try {
        const got = await fetchToFile(url, tmp, f, opts);
        if (got !== f.sha256) {
          badChecksum = true;
          failures.push(`${url}: SHA-256 ${got}, expected ${f.sha256}`);
          continue;
        }
        await rename(tmp, dest);
        done = true;
        break;
      } catch (e) {
        if (e instanceof DataError && e.code === 'checksum') badChecksum = true;
        failures.push(`${url}: ${(e as Error).message}`);
      } finally {
        await rm(tmp, { force: true });
      }
    }
    if (!done) {
      throw new DataError(
        badChecksum ? 'checksum' : 'download',
        `${dest}: could not download ${f.name} with the expected SHA-256 ${f.sha256}:\n  ${failures.join('\n  ')}\n` +
          `Nothing was saved. Check the network (or a proxy), or download ${f.name} by hand into ${cacheDir}` +
          ' and run again (it is verified the same way), or use data.source: embedded.',
        dest,
      );
    }
    result.downloaded.push(f.name);
  }
  return result;
}

/** Streams `url` into `tmp` (fsynced), returning the SHA-256 of the bytes received. */
async function fetchToFile(
  url: string,
  tmp: string,
  f: RemoteFile,
  opts: Pick<DownloadOptions, 'timeoutMs' | 'onProgress'>,
): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 300_000), redirect: 'follow' });
  } catch (e) {
    throw new Error(describeFetchError(e));
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
  }
  const header = res.headers.get('content-length');
  const declared = header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
  if (f.bytes !== undefined && declared !== undefined && declared !== f.bytes) {
    await res.body.cancel();
    throw new DataError('checksum', `the server announces ${declared} bytes, expected ${f.bytes}`);
  }
  const total = declared ?? f.bytes;
  const h = createHash('sha256');
  const fh = await open(tmp, 'w');
  let received = 0;
  try {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        received += chunk.length;
        if (f.bytes !== undefined && received > f.bytes) {
          throw new DataError('checksum', `the body is longer than the expected ${f.bytes} bytes`);
        }
        h.update(chunk);
        await fh.write(chunk);
        opts.onProgress?.(f.name, received, total);
      }
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new Error(
        `connection lost after ${received}${total !== undefined ? ` of ${total}` : ''} bytes (${describeFetchError(e)})`,
      );
    }
    if (declared !== undefined && received !== declared) {
      throw new Error(`truncated: received ${received} of the ${declared} bytes announced`);
    }
    if (f.bytes !== undefined && received !== f.bytes) {
      throw new Error(`truncated: received ${received} of the expected ${f.bytes} bytes`);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

function describeFetchError(e: unknown): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError') return 'timed out';
  const cause = err.cause?.code ?? err.cause?.message;
  return cause ? `${err.message ?? 'fetch failed'} (${cause})` : (err.message ?? String(e));
}

export interface MnistDownloadOptions {
  /** Default {@link MNIST_CACHE_DIR}. */
  cacheDir?: string;
  /** Default {@link MNIST_MIRRORS}. */
  mirrors?: readonly string[];
  /** Replace the pinned SHA-256 of some files (by name); the pinned sizes are then not enforced for those files. */
  checksums?: Record<string, string>;
  normalize?: NormalizeMode;
  timeoutMs?: number;
  onProgress?: DownloadOptions['onProgress'];
}

/** Full MNIST: the four files fetched into the cache (once, checked by SHA-256), then read as IDX. */
export async function loadMnistDownload(opts: MnistDownloadOptions = {}): Promise<Dataset> {
  const cacheDir = opts.cacheDir ?? MNIST_CACHE_DIR;
  const sums = opts.checksums ?? {};
  for (const name of Object.keys(sums)) {
    if (!MNIST_FILES.some((f) => f.name === name)) {
      throw new DataError(
        'config',
        `data.checksums: unknown file ${JSON.stringify(name)}; the MNIST files are ${MNIST_FILES.map((f) => f.name).join(', ')}`,
      );
    }
  }
  const files = MNIST_FILES.map((f) => {
    const sha = sums[f.name];
    return sha === undefined ? f : { name: f.name, sha256: sha.toLowerCase() };
  });
  await downloadFiles({
    cacheDir,
    mirrors: opts.mirrors ?? MNIST_MIRRORS,
    files,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  const ds = loadMnistIdx(cacheDir, { normalize: opts.normalize ?? 'none' });
  return { ...ds, source: `${cacheDir} (downloaded, SHA-256 checked)` };
}
