#!/usr/bin/env node
/**
 * Builds the native backend (build/Release/gradguard.node: native/*.c + OpenBLAS through N-API) with node-gyp.
 *
 * This is the package's `install` script, so it runs on every `npm ci` / `npm install`, on machines we do not know.
 * Installing must never fail because of it: without a C compiler, OpenBLAS or node's headers it prints one line and
 * exits 0, and gradguard uses the committed wasm backend instead. `--force` (npm run build:native) fails loudly,
 * with the compiler's output, for someone who wants the native backend and needs to know why it did not build.
 *
 * node-gyp is npm's bundled copy (nothing is downloaded). It needs node's headers: npm passes its `nodedir` setting
 * to scripts as npm_config_nodedir; run by hand, we point it at the headers installed next to this node binary
 * (Debian's /usr/include/node, or include/node in an official tarball), so it never tries to download them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { invalidateNative, nativeUpToDate, writeNativeStamp } from './prepare.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');

// NOTE: npx runs this again where `npx gradguard` runs inside this directory (scripts/prepare.mjs): an addon built
// from these sources for this machine is kept (node-gyp's rebuild took ~25 s of a new user's first training run)
if (!force && nativeUpToDate(root)) {
  console.log('gradguard: native backend up to date (build/.native-stamp); not rebuilt');
  process.exit(0);
}

/** Gives up: one plain line (and exit 0) on install; the reason and details (and exit 1) with --force. */
function skip(reason, details = '') {
  if (force) {
    if (details) process.stderr.write(`${details.trimEnd()}\n`);
    process.stderr.write(`gradguard: native backend not built (${reason})\n`);
    process.exit(1);
  }
  console.log(`gradguard: native backend not built (${reason}); using wasm`);
  process.exit(0);
}

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { encoding: 'utf8', cwd: root, ...opts });
}

/** The C compiler node-gyp's Makefile will use (CC, else cc). */
function findCompiler() {
  const cc = process.env.CC || 'cc';
  const r = run(cc, ['--version']);
  return r.status === 0 ? cc : null;
}

/** Compiles and links a two-line program against cblas.h and -lopenblas: the clearest test that OpenBLAS is usable. */
function checkOpenBlas(cc) {
  const dir = mkdtempSync(join(tmpdir(), 'gradguard-blas-'));
  try {
    const src = join(dir, 't.c');
    writeFileSync(src, '#include <cblas.h>\nint main(void) { return openblas_get_num_threads() > 0 ? 0 : 1; }\n');
    // /usr/include/openblas: where Fedora and RHEL put cblas.h (binding.gyp searches it too)
    const r = run(cc, [src, '-I/usr/include/openblas', '-o', join(dir, 't'), '-lopenblas']);
    return r.status === 0 ? null : `${r.stderr}${r.stdout}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** npm's own node-gyp: npm tells scripts where it is; otherwise look in npm's install directory. */
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  const candidates = [
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm'),
    join(dirname(process.execPath), 'node_modules', 'npm'),
  ];
  const npmCli = process.env.npm_execpath;
  if (npmCli) candidates.unshift(resolve(dirname(npmCli), '..'));
  for (const npmDir of candidates) {
    try {
      const req = createRequire(join(npmDir, 'package.json'));
      return [process.execPath, req.resolve('node-gyp/bin/node-gyp.js')];
    } catch {
      // not this one
    }
  }
  return ['npx', '--no-install', 'node-gyp'];
}

/** --nodedir for node-gyp when npm did not pass one: the headers that ship with this node, if present. */
function nodedirArgs() {
  if (process.env.npm_config_nodedir) return [];
  const prefix = resolve(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

const cc = findCompiler();
if (!cc) skip('no C compiler found; install build-essential or set CC');
const blasError = checkOpenBlas(cc);
if (blasError) skip('OpenBLAS not found; install libopenblas-dev', blasError);

const [cmd, ...gypArgs] = findNodeGyp();
invalidateNative(root);
const r = run(cmd, [...gypArgs, 'rebuild', ...nodedirArgs()], { stdio: force ? 'inherit' : 'pipe' });
if (r.error) skip(`could not run node-gyp: ${r.error.message}`);
if (r.status !== 0) {
  const lines = `${r.stderr ?? ''}`.split('\n').filter((l) => /error/i.test(l));
  skip(`node-gyp failed${lines.length ? `: ${lines[0].trim()}` : ''}`, `${r.stdout ?? ''}${r.stderr ?? ''}`);
}
if (!existsSync(join(root, 'build', 'Release', 'gradguard.node'))) skip('node-gyp produced no gradguard.node');
writeNativeStamp(root);
if (force) console.log('gradguard: native backend built (build/Release/gradguard.node)');
