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
 * `install` script, scripts/build-native.mjs, which npx runs there too) keeps a stamp of its own the same way. Each
 * stamp is removed before its build writes anything (`prebuild`, `prebuild:web`, `prebuild:playground`, and
 * build-native.mjs before node-gyp), so that a build stopped halfway never leaves a stamp that vouches for it.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/** The files under p, in a fixed order; a directory reached again through a link (a loop) is read once. */
function* filesUnder(p, seen = new Set()) {
  if (!statSync(p).isDirectory()) {
    yield p;
    return;
  }
  const real = realpathSync(p);
  if (seen.has(real)) return;
  seen.add(real);
  for (const e of readdirSync(p).sort()) yield* filesUnder(join(p, e), seen);
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
 * Removes dist/'s stamp before anything writes dist/ (the `prebuild` scripts): a build stopped halfway then leaves no
 * stamp, and the next `npm ci` builds again instead of keeping a half-written dist/.
 */
export const invalidate = (root) => rmSync(stampOf(root), { force: true });

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

/** Removes the native stamp before node-gyp writes build/ (a rebuild stopped halfway is redone). */
export const invalidateNative = (root) => rmSync(nativeStampOf(root), { force: true });

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  if (process.argv.includes('--invalidate')) {
    invalidate(root);
    process.exit(0);
  }
  if (upToDate(root)) {
    console.log('gradguard: dist/ is up to date with the sources (dist/.build-stamp); not rebuilt');
    process.exit(0);
  }
  const r = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) process.exit(r.status ?? 1);
  writeStamp(root);
}
