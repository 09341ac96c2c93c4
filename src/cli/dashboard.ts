/**
 * `gradguard dashboard [--store DIR] [--port N] [--host ADDR] [--json]` and
 * `gradguard report RUN [--store DIR] [--out report.html|report.svg|report.png] [--json]`: plain async functions
 * that take parsed options and return the exit status (main.ts registers them with commander).
 *
 * User mistakes (unknown run, bad port, taken port, unknown output type) print one line on stderr and return 2;
 * anything else is a bug (stack trace, 1): the CLI's one reporter, errors.ts.
 */
import { existsSync } from 'node:fs';
import { extname, join, relative, resolve } from 'node:path';
import { loadReportData, type ReportFormat, renderReport } from '../dashboard/report.js';
import { DEFAULT_HOST, DEFAULT_PORT, defaultStaticDir, startDashboard } from '../dashboard/server.js';
import { writeFileAtomic } from '../io/atomic.js';
import { stringifyJson } from '../track/export.js';
import { runPath } from '../track/ids.js';
import { DB_FILE, DEFAULT_STORE_DIR, isPostgresUrl, RunStore, storeLabel } from '../track/store.js';
import { reportError, UsageError } from './errors.js';
import { type CliIO, processIO } from './io.js';

export interface DashboardCommandOptions {
  /** The run store directory (default ./gradguard-runs). */
  store?: string | undefined;
  /** TCP port (default 6007; 0 picks a free one). Commander hands it over as a string. */
  port?: number | string | undefined;
  /** Address to listen on (default 127.0.0.1: this machine only). */
  host?: string | undefined;
  /** Print one JSON object (`{ url, host, port, store, loopbackOnly }`) on stdout once listening. */
  json?: boolean | undefined;
  /** Stops the server (tests); otherwise it runs until SIGINT or SIGTERM. */
  signal?: AbortSignal | undefined;
}

export interface ReportCommandOptions {
  /** The run: its id, a unique prefix of it, or its name. */
  run: string;
  store?: string | undefined;
  /** The file to write; its extension picks the format (.html, .svg, .png). Default `<run id>-report.html`. */
  out?: string | undefined;
  /** Print one JSON object (`{ run, out, format, bytes }`) on stdout. */
  json?: boolean | undefined;
}

/** `gradguard dashboard`: serves the dashboard until interrupted; 0 when stopped by a signal. */
export async function dashboardCommand(opts: DashboardCommandOptions = {}, io: CliIO = processIO): Promise<number> {
  try {
    const port = parsePort(opts.port);
    const host = (opts.host ?? DEFAULT_HOST).trim();
    if (host === '') throw new UsageError('--host must not be empty (127.0.0.1 serves this machine only)');
    const storeDir = opts.store ?? DEFAULT_STORE_DIR;
    const dashboard = await startDashboard({ storeDir, port, host });
    const where = dashboard.loopbackOnly
      ? `listening on ${dashboard.host} only: other machines cannot connect (pass --host 0.0.0.0 to share it on your network)`
      : `warning: listening on ${dashboard.host}: anyone who can reach this machine can read your runs (read-only, no password); pass --host 127.0.0.1 to keep it local`;
    const label = storeLabel(storeDir);
    io.stderr(`gradguard dashboard: ${dashboard.url}  (run store ${label}, read-only)\n`);
    io.stderr(`  ${where}\n`);
    if (!isPostgresUrl(storeDir) && !existsSync(join(storeDir, DB_FILE))) {
      io.stderr(`  no run store at ${label} yet: runs appear once \`gradguard train --store ${label}\` writes one\n`);
    }
    if (!existsSync(join(defaultStaticDir(), 'index.html'))) {
      io.stderr('  warning: the front end is not built (run `npm run build`); the JSON API under /api works\n');
    }
    io.stderr('  press Ctrl+C to stop\n');
    if (opts.json) {
      io.stdout(
        `${stringifyJson({ url: dashboard.url, host: dashboard.host, port: dashboard.port, store: isPostgresUrl(storeDir) ? label : resolve(storeDir), loopbackOnly: dashboard.loopbackOnly })}\n`,
      );
    }
    await new Promise<void>((res) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        opts.signal?.removeEventListener('abort', stop);
        res();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      if (opts.signal?.aborted) stop();
      else opts.signal?.addEventListener('abort', stop, { once: true });
    });
    await dashboard.close();
    return 0;
  } catch (e) {
    return fail(io, opts.json, e);
  }
}

const FORMATS: Record<string, ReportFormat> = { '.html': 'html', '.htm': 'html', '.svg': 'svg', '.png': 'png' };

/** `gradguard report RUN`: writes the run's figures into one HTML, SVG or PNG file. */
export async function reportCommand(opts: ReportCommandOptions, io: CliIO = processIO): Promise<number> {
  let store: RunStore | undefined;
  try {
    if (typeof opts.run !== 'string' || opts.run.trim() === '') {
      throw new UsageError('report needs a run: gradguard report RUN [--out report.html|report.svg|report.png]');
    }
    let format: ReportFormat = 'html';
    if (opts.out !== undefined) {
      const ext = extname(opts.out).toLowerCase();
      const f = FORMATS[ext];
      if (f === undefined) {
        throw new UsageError(`--out must end in .html, .svg or .png (got '${opts.out}')`);
      }
      format = f;
    }
    store = RunStore.open(opts.store ?? DEFAULT_STORE_DIR, { readonly: true });
    const data = loadReportData(store, opts.run);
    store.close();
    store = undefined;
    // the default file is named after the run: checked to stay in the working directory, whatever the store holds
    const out =
      opts.out ??
      relative(
        '.',
        runPath('.', data.run.id, `the run store ${storeLabel(opts.store ?? DEFAULT_STORE_DIR)}`, '-report.html'),
      );
    const content = await renderReport(data, format);
    writeFileAtomic(out, content);
    const bytes = typeof content === 'string' ? Buffer.byteLength(content) : content.byteLength;
    if (opts.json) io.stdout(`${stringifyJson({ run: data.run.id, out, format, bytes })}\n`);
    else io.stdout(`wrote ${out} (${format}, ${(bytes / 1024).toFixed(0)} KB) for run ${data.run.id}\n`);
    return 0;
  } catch (e) {
    return fail(io, opts.json, e);
  } finally {
    store?.close();
  }
}

function parsePort(port: number | string | undefined): number {
  if (port === undefined) return DEFAULT_PORT;
  const text = String(port).trim();
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n > 65535) {
    throw new UsageError(`--port must be a whole number from 0 to 65535 (got '${port}')`);
  }
  return n;
}

function fail(io: CliIO, json: boolean | undefined, e: unknown): number {
  return reportError(e, io, json);
}
