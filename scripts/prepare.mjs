#!/usr/bin/env node
/**
 * The package's `prepare` script: builds dist/ (`npm run build`: the TypeScript, the dashboard's and the playground's
 * pages) unless dist/ was built from exactly these sources, as dist/.build-stamp records (a SHA-256 of every file the
 * build reads, written after a build that succeeded).
 *
 * npm runs `prepare` on `npm ci` and `npm install`, and also where `npx gradguard` runs inside this directory: npx
 * installs the directory itself into its cache (a link to it) and runs its `prepare` there. Without the stamp, the
 * README's `npm ci && npx gradguard train` built everything twice, and a new user's first training run spent ~40 s
 * rebuilding dist/ before its 2 s of training (twentieth session, this machine). The native backend's build (the
 * `install` script, scripts/build-native.mjs, which npx runs there too) keeps a stamp of its own the same way.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { arch, cpus } from 'node:os';
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

/** What the native backend's build reads (scripts/build-native.mjs: node-gyp on binding.gyp). */
export const NATIVE_INPUTS = ['native', 'binding.gyp', 'scripts/build-native.mjs'];

/** SHA-256 over `inputs` under root (each file's path and contents, in a fixed order), then `extra`. */
export function hashInputs(root, inputs, extra = '') {
  const h = createHash('sha256');
  for (const input of inputs) {
    const p = join(root, input);
    if (!existsSync(p)) continue;
    for (const f of filesUnder(p)) {
      h.update(`${relative(root, f)}\0`);
      h.update(readFileSync(f));
      h.update('\0');
    }
  }
  h.update(extra);
  return h.digest('hex');
}

/** SHA-256 over the build's inputs under root. */
export const sourcesHash = (root) => hashInputs(root, BUILD_INPUTS);

/** Whether `output` exists and the file `stamp` records `hash`. */
function stampMatches(output, stamp, hash) {
  return existsSync(output) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === hash;
}

const stampOf = (root) => join(root, 'dist', '.build-stamp');

/** Whether dist/ under root was built from the sources there now (its stamp matches, and its entry point exists). */
export const upToDate = (root) => stampMatches(join(root, 'dist', 'cli', 'main.js'), stampOf(root), sourcesHash(root));

/** Records that dist/ under root was built from the sources there now. */
export const writeStamp = (root) => writeFileSync(stampOf(root), `${sourcesHash(root)}\n`);

/**
 * The native backend's stamp: its sources, and what the addon was compiled for (-march=native: the CPU's flags; the
 * architecture, N-API version and compiler), so that a build/ carried to another machine is rebuilt.
 */
export function nativeHash(root) {
  let flags = '';
  try {
    flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '';
  } catch {
    flags = cpus()[0]?.model ?? '';
  }
  const target = [arch(), process.versions.napi, process.env.CC ?? 'cc', flags].join('\0');
  return hashInputs(root, NATIVE_INPUTS, target);
}

const nativeStampOf = (root) => join(root, 'build', '.native-stamp');

/** Whether build/Release/gradguard.node under root was built from the native sources there now, for this machine. */
export const nativeUpToDate = (root) =>
  stampMatches(join(root, 'build', 'Release', 'gradguard.node'), nativeStampOf(root), nativeHash(root));

/** Records that the native addon under root was built from the sources there now, for this machine. */
export const writeNativeStamp = (root) => writeFileSync(nativeStampOf(root), `${nativeHash(root)}\n`);

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
