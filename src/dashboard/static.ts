/** The dashboard's built front end: where it is, the files served from a list made at start-up, the CSP. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
/** The built front end of this package: dist/dashboard/web next to this file, or from the sources, ../../dist. */
export function defaultStaticDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'web'), resolve(here, '..', '..', 'dist', 'dashboard', 'web')];
  for (const dir of candidates) {
    try {
      if (statSync(join(dir, 'index.html')).isFile() && statSync(join(dir, 'assets')).isDirectory()) return dir;
    } catch {
      // not this one
    }
  }
  return candidates[candidates.length - 1]!;
}

export interface StaticFile {
  body: Uint8Array;
  type: string;
  immutable: boolean;
}

export const CONTENT_TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
  json: 'application/json',
  woff2: 'font/woff2',
  txt: 'text/plain; charset=utf-8',
};

/** Every file under `dir` (at most 4 levels, 2,000 files), by URL path; an empty map when there is none. */
export function loadStatic(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (d: string, depth: number) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (files.size >= 2000) return;
      const p = join(d, e.name);
      if (e.isDirectory() && depth < 4) walk(p, depth + 1);
      else if (e.isFile()) {
        const ext = e.name.slice(e.name.lastIndexOf('.') + 1).toLowerCase();
        const type = CONTENT_TYPES[ext];
        if (type === undefined) continue;
        const url = `/${relative(dir, p).split(sep).join('/')}`;
        files.set(url, { body: readFileSync(p), type, immutable: url.startsWith('/assets/') });
      }
    }
  };
  walk(dir, 0);
  return files;
}

export const NOT_BUILT_PAGE = `<!doctype html><meta charset="utf-8"><title>gradguard dashboard</title>
<body style="font-family:sans-serif;max-width:40em;margin:3em auto">
<h1>gradguard dashboard</h1><p>The dashboard's front end is not built. Run <code>npm run build</code> in the
gradguard package (it runs <code>vite build</code>), then start <code>gradguard dashboard</code> again.</p>
<p>The JSON API works meanwhile: <a href="/api/runs">/api/runs</a>.</p></body>`;

export const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
