/**
 * The dashboard's server: a read-only JSON API over the run store, server-sent events that follow a running run,
 * and the built front end (`dist/dashboard/web`, bundled by vite: no CDN, works offline).
 *
 * - `createDashboardApp({ storeDir })` is a hono app: test it with `app.request('/api/runs')`, no socket needed.
 * - `startDashboard({ storeDir, port, host })` serves it with @hono/node-server, on 127.0.0.1 unless told otherwise.
 *
 * Safety: the store is opened read-only (SQLite `readonly`; the dashboard never writes, never marks runs); only GET
 * and HEAD are served; run ids and query parameters are checked before any lookup (a malformed id is a 400, an
 * unknown one a 404); static files come from a list made at start-up, so no request path reaches the file system;
 * errors are one JSON line `{"error": {"code", "message"}}`, never a stack trace. Bound to a loopback address, it
 * also refuses requests whose Host header is not a loopback name (DNS rebinding).
 *
 * Routes (all GET):
 * - `/api/health` → `{ ok, store, readonly }`
 * - `/api/runs[?status=running,finished&name=TEXT&limit=N]` → {@link RunsResponse}, newest first
 * - `/api/runs/:id` → {@link RunResponse} (`:id` is a run id, a unique prefix of one, or a run name)
 * - `/api/runs/:id/metrics[?from=STEP&keys=loss,lr]` → {@link MetricsResponse}
 * - `/api/runs/:id/layers[?fields=gradNorm,updateRatio&from=STEP&encoding=json|f32]` → {@link LayersResponse}
 * - `/api/runs/:id/findings` → {@link FindingsResponse}
 * - `/api/runs/:id/time-flow` → the gradient norms through time (time-flow-api.ts)
 * - `/api/compare?ids=A,B[,C...]&keys=loss,test_accuracy` → {@link CompareResponse}
 * - `/api/runs/:id/events[?from=STEP&fields=...&findings=N]` → `text/event-stream`: `steps` ({@link StepsEvent}, the
 *   steps >= from; merge them by step), `findings` (the findings after the first N), `status` ({@link StatusEvent},
 *   on connect and on every change), `end` (the run is no longer running; the stream closes), `error`.
 *   A reconnecting EventSource sends `Last-Event-ID` (the last step it got), which replaces `from`.
 */
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { GradguardError } from '../base/errors.js';
import { stringifyJson } from '../track/export.js';
import { isPostgresUrl, RunStore, storeLabel } from '../track/store.js';
import { type RunStatus, TrackError } from '../track/types.js';
import type { CompareResponse, FindingsResponse, RunResponse, RunsResponse, StepsEvent } from './api-types.js';
import {
  configTable,
  DASHBOARD_LAYER_FIELDS,
  findingsJson,
  histogramsJson,
  metricsJson,
  runListItem,
  timeFlowJson,
} from './data.js';
import { lastLayers, layersPayload } from './layers.js';
import {
  ApiError,
  checkId,
  hostName,
  json,
  parseFields,
  parseIntParam,
  parseList,
  parseStatuses,
  runId,
  toApiError,
} from './params.js';
import { CSP, defaultStaticDir, loadStatic, NOT_BUILT_PAGE } from './static.js';

export { layersPayload } from './layers.js';
export { defaultStaticDir } from './static.js';

export interface DashboardOptions {
  /** The run store directory (the one that holds runs.db). */
  storeDir: string;
  /** The built front end; default `dist/dashboard/web` of this package. */
  staticDir?: string | undefined;
  /** How often an event stream polls the database for new steps, in ms (default 500). */
  pollMs?: number | undefined;
  /** Accepted Host header names (without port); every host when omitted. */
  allowedHosts?: readonly string[] | undefined;
}

/**
 * A hono app with the store it reads; `close()` closes the store and ends the event streams; `warm()` opens the
 * store and runs each read path once on the newest run's last step (so the first page a user opens is not the one
 * that pays for opening the database and compiling the code), and says nothing when there is no store yet;
 * `streams()` counts the open event streams.
 */
export type DashboardApp = Hono & { close(): void; warm(): void; streams(): number; readonly storeDir: string };

/** Run ids are `20261126-114512-a3f9`; prefixes and run names are accepted too, within this alphabet. */
/** At most this many runs in one compare. */
const MAX_COMPARE = 16;
const HEARTBEAT_MS = 15_000;
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]', '::1'];

/** The store as the page may show it: a directory's absolute path, a PostgreSQL URL without its password. */
function storeName(spec: string): string {
  return isPostgresUrl(spec) ? storeLabel(spec) : resolve(spec);
}

/**
 * The dashboard as a hono app. The store is opened read-only on the first request that needs it (so the dashboard
 * can start before the first run is trained).
 */
export function createDashboardApp(options: DashboardOptions): DashboardApp {
  const storeDir = options.storeDir;
  const pollMs = Math.max(20, options.pollMs ?? 500);
  const allowedHosts = options.allowedHosts ? new Set(options.allowedHosts.map((h) => h.toLowerCase())) : null;
  const staticFiles = loadStatic(options.staticDir ?? defaultStaticDir());
  let store: RunStore | null = null;
  let closed = false;
  const streams = new Set<() => void>();

  const getStore = (): RunStore => {
    if (closed) throw new ApiError(503, 'CLOSED', 'the dashboard is shutting down');
    if (store === null) store = RunStore.open(storeDir, { readonly: true });
    return store;
  };

  const app = new Hono();

  app.use('*', async (c, next) => {
    if (allowedHosts !== null) {
      // node-server builds the URL from the Host header; a Request made in-process has only the URL.
      const host = hostName(c.req.header('host') ?? new URL(c.req.url).host);
      if (!allowedHosts.has(host)) {
        throw new ApiError(
          403,
          'BAD_HOST',
          `requests for host '${host}' are refused; open the dashboard by its address`,
        );
      }
    }
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      c.header('Allow', 'GET, HEAD');
      throw new ApiError(405, 'READ_ONLY', 'the dashboard is read-only: only GET and HEAD requests are served');
    }
    await next();
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Frame-Options', 'DENY');
  });

  app.get('/api/health', (c) => json(c, { ok: true, store: storeName(storeDir), readonly: true }));

  app.get('/api/runs', (c) => {
    const status = parseStatuses(c.req.query('status'));
    const name = c.req.query('name');
    const limit = parseIntParam(c.req.query('limit'), 'limit', 1);
    let s: RunStore;
    try {
      s = getStore();
    } catch (e) {
      // A store that does not exist yet is an empty list: the dashboard may be started before the first run.
      if (e instanceof TrackError && e.code === 'NO_STORE') {
        return json(c, { store: storeName(storeDir), runs: [] } satisfies RunsResponse);
      }
      throw e;
    }
    const now = Date.now();
    const runs = s.listRuns({ status, name, limit }).map((r) => runListItem(r, now));
    return json(c, { store: storeName(storeDir), runs } satisfies RunsResponse);
  });

  app.get('/api/runs/:id', (c) => {
    const s = getStore();
    const run = s.getRun(runId(c));
    const last = lastLayers(s, run.id);
    const body: RunResponse = {
      run: { ...runListItem(run), config: run.config, summary: run.summary, pid: run.pid, host: run.host },
      layers: last?.layers.map((l) => l.name) ?? [],
      lastLayers: last,
      layerFields: [...DASHBOARD_LAYER_FIELDS],
    };
    return json(c, body);
  });

  app.get('/api/runs/:id/metrics', (c) => {
    const from = parseIntParam(c.req.query('from'), 'from', 0) ?? 0;
    const keys = parseList(c.req.query('keys'), 'keys', 64);
    const s = getStore();
    const id = s.getRun(runId(c)).id;
    const m = metricsJson(s.getMetrics(id, { fromStep: from }));
    if (keys !== undefined) {
      m.keys = m.keys.filter((k) => keys.includes(k));
      m.series = Object.fromEntries(m.keys.map((k) => [k, m.series[k]!]));
    }
    return json(c, m);
  });

  app.get('/api/runs/:id/layers', (c) => {
    const from = parseIntParam(c.req.query('from'), 'from', 0) ?? 0;
    const fields = parseFields(c.req.query('fields'));
    const encoding = c.req.query('encoding') ?? 'json';
    if (encoding !== 'json' && encoding !== 'f32') {
      throw new ApiError(400, 'BAD_PARAM', 'encoding must be json or f32');
    }
    const s = getStore();
    const id = s.getRun(runId(c)).id;
    return json(c, layersPayload(s, id, fields, from, encoding));
  });
  app.get('/api/runs/:id/histograms', (c) => json(c, histogramsJson(getStore(), runId(c))));
  app.get('/api/runs/:id/time-flow', (c) => json(c, timeFlowJson(getStore(), runId(c))));
  app.get('/api/runs/:id/findings', (c) => json(c, findingsJson(getStore(), runId(c))));

  app.get('/api/compare', (c) => {
    const ids = parseList(c.req.query('ids'), 'ids', MAX_COMPARE);
    if (ids === undefined || ids.length === 0) {
      throw new ApiError(400, 'BAD_PARAM', 'ids is required: /api/compare?ids=RUN,RUN');
    }
    for (const id of ids) checkId(id);
    const keys = parseList(c.req.query('keys'), 'keys', 64);
    const s = getStore();
    const runs = ids.map((id) => s.getRun(id));
    const now = Date.now();
    const body: CompareResponse = {
      runs: runs.map((r) => ({ ...runListItem(r, now), config: r.config })),
      metrics: runs.map((r) => {
        const m = metricsJson(s.getMetrics(r.id));
        if (keys === undefined) return m;
        const kept = m.keys.filter((k) => keys.includes(k));
        return { ...m, keys: kept, series: Object.fromEntries(kept.map((k) => [k, m.series[k]!])) };
      }),
      config: configTable(runs.map((r) => r.config)),
    };
    return json(c, body);
  });

  app.get('/api/runs/:id/events', (c) => {
    const fields = parseFields(c.req.query('fields'));
    const lastEventId = c.req.header('last-event-id');
    const fromParam =
      lastEventId !== undefined && /^\d{1,15}$/.test(lastEventId)
        ? Number(lastEventId)
        : parseIntParam(c.req.query('from'), 'from', 0);
    const findingsParam = parseIntParam(c.req.query('findings'), 'findings', 0);
    const s = getStore();
    const run = s.getRun(runId(c));
    let from = fromParam ?? (run.lastStep === null ? 0 : run.lastStep + 1);
    let findingsSent = findingsParam ?? s.getFindings(run.id).length;
    const id = run.id;
    const enc = new TextEncoder();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    let lastUpdated = Number.NaN;
    let lastStatus: RunStatus | null = null;
    let lastSentAt = Date.now();
    let stop = () => {};
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const write = (text: string) => {
          try {
            controller.enqueue(enc.encode(text));
            lastSentAt = Date.now();
          } catch {
            // The client went away between two polls: stop polling.
            stop();
          }
        };
        const send = (event: string, data: unknown, eventId?: number) => {
          const idLine = eventId === undefined ? '' : `id: ${eventId}\n`;
          write(`event: ${event}\n${idLine}data: ${stringifyJson(data)}\n\n`);
        };
        stop = () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          streams.delete(stop);
          try {
            controller.close();
          } catch {
            // already closed by the client
          }
        };
        streams.add(stop);
        const sendSteps = () => {
          const ev: StepsEvent = {
            from,
            lastStep: null,
            metrics: metricsJson(s.getMetrics(id, { fromStep: from })),
            layers: layersPayload(s, id, fields, from, 'f32'),
            lastLayers: null,
          };
          const last = Math.max(ev.metrics.steps.at(-1) ?? -1, ev.layers.steps.at(-1) ?? -1);
          if (last < 0) return;
          ev.lastStep = last;
          if (ev.layers.steps.length > 0) ev.lastLayers = lastLayers(s, id);
          send('steps', ev, last);
          // The last step is sent again with the next batch: evaluation metrics may join it after this read.
          from = Math.max(from, last);
        };
        const tick = () => {
          if (done) return;
          try {
            const info = s.getRun(id);
            const changed = info.updatedAt !== lastUpdated || info.status !== lastStatus;
            if (changed) {
              if (info.lastStep !== null && info.lastStep >= from) sendSteps();
              const findings = s.getFindings(id);
              if (findings.length > findingsSent) {
                send('findings', { findings: findings.slice(findingsSent) } satisfies FindingsResponse);
                findingsSent = findings.length;
              }
              lastUpdated = info.updatedAt;
            }
            if (changed) {
              lastStatus = info.status;
              send('status', { run: runListItem(info) });
            }
            if (info.status !== 'running') {
              send('end', { status: info.status });
              stop();
              return;
            }
            if (Date.now() - lastSentAt >= HEARTBEAT_MS) write(': ping\n\n');
          } catch (e) {
            const err = toApiError(e);
            send('error', { error: { code: err.code, message: err.message } });
            stop();
            return;
          }
          if (!done) timer = setTimeout(tick, pollMs);
        };
        tick();
      },
      cancel() {
        stop();
      },
    });
    c.req.raw.signal?.addEventListener('abort', () => stop(), { once: true });
    return new Response(body, {
      headers: {
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-cache, no-store',
        Connection: 'keep-alive',
        'X-Accel-Buffering': 'no',
        'X-Content-Type-Options': 'nosniff',
      },
    });
  });

  app.all('/api/*', () => {
    throw new ApiError(404, 'NOT_FOUND', 'no such API route');
  });

  app.get('*', (c) => {
    const path = c.req.path === '/' ? '/index.html' : c.req.path;
    const file = staticFiles.get(path);
    if (file === undefined) {
      if (path === '/index.html') return c.html(NOT_BUILT_PAGE, 503);
      return c.text('not found', 404);
    }
    c.header('Content-Type', file.type);
    c.header('Cache-Control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    if (file.type.startsWith('text/html')) c.header('Content-Security-Policy', CSP);
    return c.body(file.body as Uint8Array<ArrayBuffer>);
  });

  app.onError((e, c) => {
    const err = toApiError(e);
    return c.json({ error: { code: err.code, message: err.message } }, err.status);
  });

  const close = () => {
    closed = true;
    for (const stop of [...streams]) stop();
    store?.close();
    store = null;
  };
  const warm = () => {
    try {
      const s = getStore();
      const newest = s.listRuns({ limit: 1 })[0];
      if (newest === undefined || newest.lastStep === null) return;
      s.getMetrics(newest.id, { fromStep: newest.lastStep });
      layersPayload(s, newest.id, DASHBOARD_LAYER_FIELDS.slice(0, 3), newest.lastStep, 'f32');
      lastLayers(s, newest.id);
    } catch {
      // No store yet, or a bad one: the first request reports it.
    }
  };
  return Object.assign(app, { close, warm, streams: () => streams.size, storeDir });
}

export interface StartOptions extends Omit<DashboardOptions, 'allowedHosts'> {
  /** TCP port; 0 picks a free one (default 6007). */
  port?: number | undefined;
  /** Address to bind (default 127.0.0.1: this machine only). */
  host?: string | undefined;
}

export interface RunningDashboard {
  /** `http://127.0.0.1:6007/` */
  url: string;
  host: string;
  port: number;
  /** Whether it listens on a loopback address only. */
  loopbackOnly: boolean;
  app: DashboardApp;
  close(): Promise<void>;
}

export const DEFAULT_PORT = 6007;
export const DEFAULT_HOST = '127.0.0.1';

/** Whether `host` is a loopback address or name. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return LOOPBACK_NAMES.includes(h) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Serves the dashboard on `host:port` (127.0.0.1:6007 by default).
 * @throws GradguardError (a user's mistake, code 'dashboard.listen') when the port is taken or the address cannot be bound
 */
export async function startDashboard(options: StartOptions): Promise<RunningDashboard> {
  const host = options.host ?? DEFAULT_HOST;
  const port = options.port ?? DEFAULT_PORT;
  const loopbackOnly = isLoopback(host);
  const app = createDashboardApp({
    storeDir: options.storeDir,
    staticDir: options.staticDir,
    pollMs: options.pollMs,
    allowedHosts: loopbackOnly ? [...LOOPBACK_NAMES, host.toLowerCase()] : undefined,
  });
  const server = createAdaptorServer({ fetch: app.fetch });
  await new Promise<void>((res, rej) => {
    const onError = (e: NodeJS.ErrnoException) => {
      app.close();
      const message =
        e.code === 'EADDRINUSE'
          ? `port ${port} on ${host} is in use; pass another --port (0 picks a free one)`
          : e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND'
            ? `cannot listen on ${host}: no such address on this machine`
            : e.code === 'EACCES'
              ? `not allowed to listen on port ${port}; use a port above 1023`
              : `cannot listen on ${host}:${port}: ${e.message}`;
      rej(new GradguardError(message, { code: 'dashboard.listen' }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      res();
    });
  });
  app.warm();
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}/`,
    host: address.address,
    port: address.port,
    loopbackOnly,
    app,
    close: () =>
      new Promise<void>((res) => {
        app.close();
        const s = server as import('node:http').Server;
        s.closeAllConnections?.();
        s.close(() => res());
      }),
  };
}
