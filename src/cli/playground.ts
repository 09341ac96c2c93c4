/**
 * `gradguard playground [--port N] [--json]`: serves the playground (playground/, built by `npm run build` into
 * dist/playground) on 127.0.0.1 only, with the headers that make the page cross-origin isolated (COOP/COEP), which
 * is what lets the wasm backend run its matrix products on several threads. The same files work from any static
 * host (without those headers the page runs on one thread).
 *
 * User mistakes (bad or taken port) print one line on stderr and return 2; never a stack trace.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { isLoopback } from '../dashboard/server.js';
import { stringifyJson } from '../track/export.js';
import { type CliIO, processIO } from './io.js';

export const PLAYGROUND_PORT = 6008;
const HOST = '127.0.0.1';

/** The built playground: dist/playground beside these sources (src/cli or dist/cli). */
export function defaultPlaygroundDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [resolve(here, '..', 'playground'), resolve(here, '..', '..', 'dist', 'playground')];
  for (const dir of candidates) {
    try {
      if (statSync(join(dir, 'index.html')).isFile()) return dir;
    } catch {
      // not this one
    }
  }
  return candidates[candidates.length - 1]!;
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  wasm: 'application/wasm',
  svg: 'image/svg+xml',
  png: 'image/png',
  json: 'application/json',
};

/**
 * Cross-origin isolation (SharedArrayBuffer, so the threaded wasm module) and a strict policy: scripts and wasm
 * from this origin only, the wasm threads' workers from blob: URLs, no network anywhere else.
 */
export const PLAYGROUND_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; " +
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
};

/** Every servable file under `dir`, by URL path (read once: the build is a few files). */
function loadFiles(dir: string): Map<string, { body: Uint8Array; type: string }> {
  const files = new Map<string, { body: Uint8Array; type: string }>();
  const walk = (d: string, depth: number) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.isDirectory() && depth < 3) walk(p, depth + 1);
      else if (e.isFile()) {
        const type = TYPES[e.name.slice(e.name.lastIndexOf('.') + 1).toLowerCase()];
        if (type) files.set(`/${relative(dir, p).split(sep).join('/')}`, { body: readFileSync(p), type });
      }
    }
  };
  walk(dir, 0);
  return files;
}

/** The playground as a hono app serving `dir`: GET/HEAD only, loopback Host names only (DNS rebinding). */
export function createPlaygroundApp(dir: string): Hono {
  const files = loadFiles(dir);
  const app = new Hono();
  app.use('*', async (c, next) => {
    const host = (c.req.header('host') ?? new URL(c.req.url).host).replace(/:\d+$/, '').toLowerCase();
    if (!isLoopback(host) && host !== '[::1]') return c.text(`requests for host '${host}' are refused`, 403);
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') return c.text('only GET and HEAD are served', 405);
    await next();
    for (const [k, v] of Object.entries(PLAYGROUND_HEADERS)) c.header(k, v);
  });
  app.get('*', (c) => {
    const path = c.req.path === '/' ? '/index.html' : c.req.path;
    const f = files.get(path);
    if (!f) {
      return files.size
        ? c.text('not found', 404)
        : c.html(
            '<!doctype html><meta charset="utf-8"><title>gradguard playground</title><p>The playground is not built: run <code>npm run build</code> in the gradguard package, then <code>gradguard playground</code> again.</p>',
            503,
          );
    }
    c.header('Content-Type', f.type);
    c.header('Cache-Control', path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    return c.body(f.body as Uint8Array<ArrayBuffer>);
  });
  return app;
}

export interface RunningPlayground {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves `dir` on 127.0.0.1:`port` (0 picks a free port). Rejects with `userError` when the port is taken. */
export async function startPlayground(opts: { port?: number; dir?: string } = {}): Promise<RunningPlayground> {
  const port = opts.port ?? PLAYGROUND_PORT;
  const app = createPlaygroundApp(opts.dir ?? defaultPlaygroundDir());
  const server = createAdaptorServer({ fetch: app.fetch }) as import('node:http').Server;
  await new Promise<void>((res, rej) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      const err = new Error(
        e.code === 'EADDRINUSE'
          ? `port ${port} on ${HOST} is in use; pass another --port (0 picks a free one)`
          : `cannot listen on ${HOST}:${port}: ${e.message}`,
      );
      (err as { userError?: boolean }).userError = true;
      rej(err);
    });
    server.listen(port, HOST, () => res());
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://${HOST}:${a.port}/`,
    port: a.port,
    close: () =>
      new Promise<void>((res) => {
        server.closeAllConnections?.();
        server.close(() => res());
      }),
  };
}

export interface PlaygroundCommandOptions {
  port?: number | string | undefined;
  json?: boolean | undefined;
  /** The built playground to serve (default dist/playground). */
  dir?: string | undefined;
  /** Stops the server (tests); otherwise it runs until SIGINT or SIGTERM. */
  signal?: AbortSignal | undefined;
}

/** `gradguard playground`: serves until interrupted; 0 when stopped, 2 for a bad or taken port. */
export async function playgroundCommand(opts: PlaygroundCommandOptions = {}, io: CliIO = processIO): Promise<number> {
  let running: RunningPlayground;
  try {
    const text = String(opts.port ?? PLAYGROUND_PORT).trim();
    if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
      throw Object.assign(new Error(`--port must be a whole number from 0 to 65535 (got '${opts.port}')`), {
        userError: true,
      });
    }
    const dir = opts.dir ?? defaultPlaygroundDir();
    running = await startPlayground({ port: Number(text), dir });
    io.stderr(`gradguard playground: ${running.url}  (127.0.0.1 only; press Ctrl+C to stop)\n`);
    try {
      statSync(join(dir, 'index.html'));
    } catch {
      io.stderr(`  warning: ${dir} holds no build; run \`npm run build\` first\n`);
    }
    if (opts.json) io.stdout(`${stringifyJson({ url: running.url, port: running.port, dir: resolve(dir) })}\n`);
  } catch (e) {
    const user = (e as { userError?: boolean }).userError === true;
    io.stderr(`gradguard playground: ${e instanceof Error ? e.message : String(e)}\n`);
    return user ? 2 : 1;
  }
  await new Promise<void>((res) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      res();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    if (opts.signal?.aborted) stop();
    else opts.signal?.addEventListener('abort', stop, { once: true });
  });
  await running.close();
  return 0;
}
