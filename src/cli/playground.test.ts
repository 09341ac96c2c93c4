import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../test/cli-io.js';
import { createPlaygroundApp, PLAYGROUND_HEADERS, playgroundCommand, startPlayground } from './playground.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-pg-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>pg</title>');
  writeFileSync(join(dir, 'assets', 'a.wasm'), new Uint8Array([0, 97, 115, 109]));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('gradguard playground server', () => {
  it('serves the build with the cross-origin isolation headers', async () => {
    const app = createPlaygroundApp(dir);
    const res = await app.request('http://127.0.0.1/');
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>pg</title>');
    for (const [k, v] of Object.entries(PLAYGROUND_HEADERS)) expect(res.headers.get(k)).toBe(v);
    expect(res.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    const wasm = await app.request('http://localhost/assets/a.wasm');
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    expect(wasm.headers.get('cache-control')).toContain('immutable');
    expect((await app.request('http://127.0.0.1/nope.js')).status).toBe(404);
  });

  it('refuses other Host names (DNS rebinding) and methods other than GET and HEAD', async () => {
    const app = createPlaygroundApp(dir);
    expect((await app.request('http://evil.example/')).status).toBe(403);
    expect((await app.request('http://127.0.0.1/', { method: 'POST' })).status).toBe(405);
  });

  it('says how to build when there is no build', async () => {
    const res = await createPlaygroundApp(join(dir, 'missing')).request('http://127.0.0.1/');
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('npm run build');
  });

  it('listens on 127.0.0.1 only; a bad or taken port is one line and exit status 2', async () => {
    const pg = await startPlayground({ port: 0, dir });
    try {
      expect(pg.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect((await fetch(pg.url)).headers.get('cross-origin-opener-policy')).toBe('same-origin');
      const taken = captureIO();
      expect(await playgroundCommand({ port: pg.port, dir }, taken)).toBe(2);
      expect(taken.err).toBe(
        `gradguard playground: port ${pg.port} on 127.0.0.1 is in use; pass another --port (0 picks a free one)\n`,
      );
    } finally {
      await pg.close();
    }
    const bad = captureIO();
    expect(await playgroundCommand({ port: 'x1', dir }, bad)).toBe(2);
    expect(bad.err).toBe("gradguard playground: --port must be a whole number from 0 to 65535 (got 'x1')\n");
  });

  it('runs until its signal aborts, printing the URL as JSON', async () => {
    const ac = new AbortController();
    const c = captureIO();
    const done = playgroundCommand({ port: 0, dir, json: true, signal: ac.signal }, c);
    for (let i = 0; i < 200 && !c.out; i++) await new Promise((r) => setTimeout(r, 10));
    const { url } = JSON.parse(c.out) as { url: string };
    expect((await fetch(url)).status).toBe(200);
    ac.abort();
    expect(await done).toBe(0);
  });
});
