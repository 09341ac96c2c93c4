/**
 * For the tests: the native addon built for another x86-64 level than this machine's, so that the code paths a user
 * with that CPU runs are checked here too. The install builds with -march=native, which on this AVX-512 machine
 * compiles the AVX-512 sgemm and kernels only; `nativeVariant('haswell')` compiles the same sources for AVX2 + FMA
 * (the own sgemm's 6x16 kernel, and the kernels' plain loops instead of their AVX-512 blocks).
 *
 * The build calls the C compiler directly (cc, or CC) with binding.gyp's sources and flags but -march=<level>, into
 * node_modules/.cache/gradguard-native/, named by a hash of the sources and flags: it compiles once (about 5 s) and
 * is reused until a source changes. Several test workers may ask at once: each compiles to a file of its own and
 * renames it into place. Returns null, with the reason in `skipReason`, where it cannot be built or run: not x86-64
 * Linux, this CPU lacks the level's instructions, the default addon was not built (no compiler or OpenBLAS), or
 * Node's headers are missing.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNativeBackend, type NativeBackend } from '../src/backend/native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The instructions (as /proc/cpuinfo names them) each level needs. */
const LEVEL_FLAGS: Record<string, string[]> = { haswell: ['avx2', 'fma', 'bmi2', 'f16c', 'movbe'] };

export interface NativeVariant {
  backend: NativeBackend | null;
  skipReason: string;
}

function nodeHeaders(): string | null {
  const fromNpm = process.env.npm_config_nodedir;
  const prefix = fromNpm ?? join(dirname(process.execPath), '..');
  const dir = join(prefix, 'include', 'node');
  return existsSync(join(dir, 'node_api.h')) ? dir : null;
}

export function nativeVariant(level: keyof typeof LEVEL_FLAGS): NativeVariant {
  const none = (skipReason: string): NativeVariant => ({ backend: null, skipReason });
  if (process.platform !== 'linux' || process.arch !== 'x64') return none('not x86-64 Linux');
  if (!createNativeBackend()) return none('the native addon is not built here');
  const cpu = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const flags = new Set(/^flags\s*:(.*)$/m.exec(cpu)?.[1]?.trim().split(/\s+/) ?? []);
  const missing = LEVEL_FLAGS[level]!.filter((f) => !flags.has(f));
  if (missing.length > 0) return none(`this CPU lacks ${missing.join(', ')}`);
  const headers = nodeHeaders();
  if (!headers) return none("Node's headers (include/node/node_api.h) are missing");

  // binding.gyp's sources and flags, with -march=<level> for -march=native
  const gyp = JSON.parse(readFileSync(join(root, 'binding.gyp'), 'utf8')).targets[0] as {
    sources: string[];
    include_dirs: string[];
    defines: string[];
    cflags: string[];
    libraries: string[];
    ldflags?: string[];
  };
  const cc = process.env.CC || 'cc';
  const args = [
    '-shared',
    '-fPIC',
    ...gyp.cflags.map((f) => (f === '-march=native' ? `-march=${level}` : f)),
    // the tests hold the C to no warnings at all; a user's install only shows them (a newer compiler may warn more)
    '-Werror',
    ...gyp.defines.map((d) => `-D${d}`),
    ...gyp.include_dirs.map((d) => `-I${d.startsWith('/') ? d : join(root, d)}`),
    `-I${headers}`,
    ...gyp.sources.map((f) => join(root, f)),
    ...gyp.libraries,
    ...(gyp.ldflags ?? []),
  ];
  if (!args.includes(`-march=${level}`)) throw new Error('binding.gyp no longer builds with -march=native');
  const hash = createHash('sha256');
  // every C source and header under native/ (the kernel families live in native/kernels/)
  for (const f of readdirSync(join(root, 'native'), { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.[ch]$/.test(f))
    .sort()) {
    hash.update(f);
    hash.update(readFileSync(join(root, 'native', f)));
  }
  hash.update(`${cc} ${args.join(' ')}`);
  const dir = join(root, 'node_modules', '.cache', 'gradguard-native');
  const out = join(dir, `gradguard-${level}-${hash.digest('hex').slice(0, 16)}.node`);
  if (!existsSync(out)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    const r = spawnSync(cc, [...args, '-o', tmp], { encoding: 'utf8' });
    if (r.status !== 0) {
      rmSync(tmp, { force: true });
      // the default addon built, so the compiler and OpenBLAS are here: a failure is a real error in the sources
      throw new Error(`building the ${level} addon failed (${cc} ${args.join(' ')}):\n${r.stderr}${r.stdout}`);
    }
    renameSync(tmp, out);
    // builds of older sources
    for (const f of readdirSync(dir)) {
      if (f.startsWith(`gradguard-${level}-`) && f.endsWith('.node') && join(dir, f) !== out) rmSync(join(dir, f));
    }
  }
  return { backend: createNativeBackend(out), skipReason: '' };
}
