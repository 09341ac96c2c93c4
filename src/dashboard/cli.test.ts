import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureIO } from '../../test/cli-io.js';
import { dashboardCommand } from '../cli/dashboard.js';
import { RunStore } from '../track/store.js';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'gg-dash-cli-'));
  const store = RunStore.open(join(dir, 'store'));
  const id = store.createRun({ config: {}, backend: 'js' });
  store.finishRun(id, 'finished');
  store.close();
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Waits until `f()` is true (polling), at most `ms`. */
async function until(f: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!f() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

describe('gradguard dashboard', () => {
  it('serves on 127.0.0.1 by default, says so, prints one JSON object, and stops on its signal', async () => {
    const t = captureIO();
    const stop = new AbortController();
    const done = dashboardCommand({ store: join(dir, 'store'), port: '0', json: true, signal: stop.signal }, t);
    await until(() => t.out.length > 0);
    const info = JSON.parse(t.out);
    expect(info.host).toBe('127.0.0.1');
    expect(info.loopbackOnly).toBe(true);
    expect(t.err).toContain('listening on 127.0.0.1 only');
    const res = await fetch(new URL('/api/runs', info.url));
    expect(res.status).toBe(200);
    expect((await res.json()).runs).toHaveLength(1);
    // A foreign Host header is refused (DNS rebinding guard on a loopback address).
    const rebinding = await new Promise<number>((res, rej) => {
      const u = new URL('/api/health', info.url);
      const req = request(
        { host: u.hostname, port: u.port, path: u.pathname, headers: { Host: 'evil.example' } },
        (r) => {
          r.resume();
          res(r.statusCode ?? 0);
        },
      );
      req.on('error', rej);
      req.end();
    });
    expect(rebinding).toBe(403);
    stop.abort();
    expect(await done).toBe(0);
    await expect(fetch(new URL('/api/health', info.url))).rejects.toThrow();
  });

  it('warns when it listens beyond this machine', async () => {
    const t = captureIO();
    const stop = new AbortController();
    const done = dashboardCommand({ store: join(dir, 'store'), port: 0, host: '0.0.0.0', signal: stop.signal }, t);
    await until(() => t.err.includes('press Ctrl+C'));
    expect(t.err).toMatch(/warning: listening on 0\.0\.0\.0: anyone who can reach this machine/);
    stop.abort();
    expect(await done).toBe(0);
  });

  it('refuses a bad port and a taken port with one line and status 2', async () => {
    for (const port of ['70000', 'abc', '-1']) {
      const t = captureIO();
      expect(await dashboardCommand({ store: join(dir, 'store'), port }, t)).toBe(2);
      expect(t.err).toMatch(/^gradguard: --port must be a whole number/);
    }
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const t = captureIO();
      expect(await dashboardCommand({ store: join(dir, 'store'), port }, t)).toBe(2);
      expect(t.err).toBe(`gradguard: port ${port} on 127.0.0.1 is in use; pass another --port (0 picks a free one)\n`);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });
});
