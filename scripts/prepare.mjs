#!/usr/bin/env node
/**
 * The package's `prepare` script: builds dist/ (`npm run build`: the TypeScript, the dashboard's and the playground's
 * pages) unless dist/ was built from exactly these sources, as dist/.build-stamp records (a SHA-256 of every file the
 * build reads, written after a build that succeeded).
 *
 * npm runs `prepare` on `npm ci` and `npm install`, and also where `npx gradguard` runs inside this directory: npx
 * installs the directory itself into its cache (a link to it) and runs its `prepare` there. Without the stamp, the
 * README's `npm ci && npx gradguard train` built everything twice, and a new user's first training run spent ~40 s
 * rebuilding dist/ before its 2 s of training (twentieth session, this machine).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What `npm run build` reads, relative to the package root (directories whole). */
export const BUILD_INPUTS = [
  'src',
  'playground',
  'wasm',
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
];

function* filesUnder(p) {
  if (statSync(p).isDirectory()) for (const e of readdirSync(p).sort()) yield* filesUnder(join(p, e));
  else yield p;
}

/** SHA-256 over the build's inputs under root: each file's path and contents, in a fixed order. */
export function sourcesHash(root) {
  const h = createHash('sha256');
  for (const input of BUILD_INPUTS) {
    const p = join(root, input);
    if (!existsSync(p)) continue;
    for (const f of filesUnder(p)) {
      h.update(`${relative(root, f)}\0`);
      h.update(readFileSync(f));
      h.update('\0');
    }
  }
  return h.digest('hex');
}

const stampOf = (root) => join(root, 'dist', '.build-stamp');

/** Whether dist/ under root was built from the sources there now (its stamp matches, and its entry point exists). */
export function upToDate(root) {
  const stamp = stampOf(root);
  return (
    existsSync(join(root, 'dist', 'cli', 'main.js')) &&
    existsSync(stamp) &&
    readFileSync(stamp, 'utf8').trim() === sourcesHash(root)
  );
}

/** Records that dist/ under root was built from the sources there now. */
export function writeStamp(root) {
  writeFileSync(stampOf(root), `${sourcesHash(root)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  if (upToDate(root)) {
    console.log('gradguard: dist/ is up to date with the sources (dist/.build-stamp); not rebuilt');
    process.exit(0);
  }
  const r = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  writeStamp(root);
}
