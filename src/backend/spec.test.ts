/**
 * The kernel spec (spec.ts) against the C side, read from the sources and the committed modules rather than trusted:
 * native/addon.c's GG_KERNELS table (name, C function, result, arity, argument kinds), native/kernels.h's GG_API
 * declarations (parameter types), and both wasm modules' exports with their parameter and result types, parsed
 * from the binaries, and that both builds compile every kernel family (native/kernels/*.c). Adding a kernel to one
 * side and not the other, or with other arguments, fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ADDON_EXTRAS, type ArgKind, KERNELS, type KernelSpec, type RetKind, WASM_EXTRAS } from './spec.js';

const root = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8');

type Spec = Record<string, KernelSpec>;

/** The addon.c X-macro kinds a Backend argument list lowers to (a run of dims: the count, then one packed array). */
function nativeKinds(args: KernelSpec['args']): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const k = args[i]![1];
    if (k === 'dims') {
      out.push('IN', 'IA');
      while (args[i + 1]?.[1] === 'dims') i++;
    } else out.push(NATIVE_KIND[k]);
  }
  return out;
}
const NATIVE_KIND: Record<Exclude<ArgKind, 'dims'>, string> = {
  buf: 'FA',
  f64: 'DB',
  int: 'IX',
  i32: 'IN',
  bool: 'IN',
  unary: 'IN',
  binary: 'IN',
  conv: 'IA',
  pool: 'IA',
  f64s: 'DA',
  'f64s?': 'DA',
};

/** The C parameter types (kernels.h) an argument list lowers to: a run of dims is `int nd` and one pointer each. */
function cTypes(args: KernelSpec['args']): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const k = args[i]![1];
    if (k === 'dims') {
      if (args[i - 1]?.[1] !== 'dims') out.push('int');
      out.push('int32_t*');
    } else out.push(C_TYPE[k]);
  }
  return out;
}
const C_TYPE: Record<Exclude<ArgKind, 'dims'>, string> = {
  buf: 'float*',
  f64: 'double',
  int: 'gg_i',
  i32: 'int',
  bool: 'int',
  unary: 'int',
  binary: 'int',
  conv: 'int32_t*',
  pool: 'int32_t*',
  f64s: 'double*',
  'f64s?': 'double*',
};

const cRet = (s: KernelSpec): RetKind => s.cRet ?? s.ret ?? 'void';

interface XEntry {
  js: string;
  fn: string;
  ret: string;
  arity: number;
  kinds: string[];
}

/** The entries of addon.c's `#define GG_KERNELS(X)` table. */
function parseAddonTable(src: string): XEntry[] {
  const start = src.indexOf('#define GG_KERNELS(X)');
  if (start < 0) throw new Error('addon.c: no GG_KERNELS table');
  const lines: string[] = [];
  for (const line of src.slice(start).split('\n').slice(1)) {
    lines.push(line);
    if (!line.trimEnd().endsWith('\\')) break;
  }
  return [...lines.join('\n').matchAll(/X\(([^)]*)\)/g)].map((m) => {
    const parts = m[1]!.split(',').map((p) => p.trim());
    const [js, fn, ret, n, ...kinds] = parts as [string, string, string, string, ...string[]];
    return { js, fn, ret, arity: Number(n), kinds };
  });
}

/** Disagreements between the spec and addon.c's table (empty when they agree). */
function checkAddon(src: string, kernels: Spec, extras: Spec): string[] {
  const table = new Map(parseAddonTable(src).map((e) => [e.js, e]));
  const problems: string[] = [];
  const want = { ...Object.fromEntries(Object.entries(kernels).filter(([, s]) => s.c !== null)), ...extras };
  for (const [name, spec] of Object.entries(want)) {
    const e = table.get(name);
    if (!e) {
      problems.push(`${name}: in the spec but not in addon.c's GG_KERNELS`);
      continue;
    }
    const kinds = nativeKinds(spec.args);
    const packed = spec.args.some(([, k]) => k === 'dims');
    if (e.fn !== spec.c && !(packed && e.fn === `${spec.c}_packed`))
      problems.push(`${name}: addon.c calls ${e.fn}, the spec says ${spec.c}`);
    if (e.ret !== cRet(spec)) problems.push(`${name}: addon.c returns ${e.ret}, the spec ${cRet(spec)}`);
    if (e.arity !== kinds.length || e.kinds.length !== kinds.length)
      problems.push(`${name}: addon.c takes ${e.arity} arguments (${e.kinds.length} kinds), the spec ${kinds.length}`);
    if (e.kinds.join() !== kinds.join())
      problems.push(`${name}: addon.c's kinds ${e.kinds.join(' ')}, the spec's ${kinds.join(' ')}`);
  }
  for (const js of table.keys()) if (!(js in want)) problems.push(`${js}: in addon.c's GG_KERNELS but not in the spec`);
  return problems;
}

/** GG_API declarations of kernels.h: name, result type and parameter types (qualifiers and names dropped). */
function parseHeader(src: string): Map<string, { ret: string; params: string[] }> {
  const out = new Map<string, { ret: string; params: string[] }>();
  const flat = src.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\s+/g, ' ');
  for (const m of flat.matchAll(/GG_API (\w+) (\w+)\(([^)]*)\);/g)) {
    const params = m[3]!
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p && p !== 'void')
      .map((p) => {
        const t = p
          .replace(/\bconst\b/g, '')
          .replace(/\*/g, ' * ')
          .trim()
          .split(/\s+/);
        t.pop(); // the parameter's name
        return t.join('');
      });
    out.set(m[2]!, { ret: m[1]!, params });
  }
  return out;
}

function checkHeader(src: string, kernels: Spec): string[] {
  const decls = parseHeader(src);
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(kernels)) {
    if (spec.c === null) continue;
    const d = decls.get(spec.c);
    if (!d) {
      problems.push(`${name}: ${spec.c} is not declared GG_API in native/kernels.h`);
      continue;
    }
    const want = cTypes(spec.args);
    if (d.params.join() !== want.join())
      problems.push(`${name}: kernels.h declares ${spec.c}(${d.params.join(', ')}), the spec (${want.join(', ')})`);
    const r = cRet(spec);
    if ((r === 'void') !== (d.ret === 'void')) problems.push(`${name}: kernels.h returns ${d.ret}, the spec ${r}`);
  }
  return problems;
}

const VALTYPE: Record<number, string> = { 127: 'i32', 126: 'i64', 125: 'f32', 124: 'f64', 123: 'v128' };

/** The exported functions of a wasm binary with their parameter and result types (a small reader of the format). */
function wasmFunctionExports(bytes: Uint8Array): Map<string, { params: string[]; results: string[] }> {
  let p = 8; // magic and version
  const u32 = (): number => {
    let r = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[p++]!;
      r += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return r;
      shift += 7;
    }
  };
  const name = (): string => {
    const n = u32();
    const s = new TextDecoder().decode(bytes.subarray(p, p + n));
    p += n;
    return s;
  };
  const limits = (): void => {
    const flag = u32();
    u32();
    if (flag & 1) u32();
  };
  const types: { params: string[]; results: string[] }[] = [];
  const funcTypes: number[] = [];
  const exports = new Map<string, { params: string[]; results: string[] }>();
  const exported: [string, number][] = [];
  while (p < bytes.length) {
    const id = bytes[p++]!;
    const size = u32();
    const end = p + size;
    if (id === 1) {
      for (let i = u32(); i > 0; i--) {
        if (bytes[p++] !== 0x60) throw new Error('wasm: not a function type');
        const params = Array.from({ length: u32() }, () => VALTYPE[bytes[p++]!]!);
        const results = Array.from({ length: u32() }, () => VALTYPE[bytes[p++]!]!);
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let i = u32(); i > 0; i--) {
        name();
        name();
        const kind = bytes[p++]!;
        if (kind === 0) funcTypes.push(u32());
        else if (kind === 1) {
          p++;
          limits();
        } else if (kind === 2) limits();
        else p += 2; // global: valtype, mutability
      }
    } else if (id === 3) {
      for (let i = u32(); i > 0; i--) funcTypes.push(u32());
    } else if (id === 7) {
      for (let i = u32(); i > 0; i--) {
        const n = name();
        const kind = bytes[p++]!;
        const idx = u32();
        if (kind === 0) exported.push([n, idx]);
      }
    }
    p = end;
  }
  for (const [n, idx] of exported) exports.set(n, types[funcTypes[idx]!]!);
  return exports;
}

/** The wasm types an argument list lowers to: f64 for doubles, i32 for everything else (wasm32 pointers, gg_i). */
function wasmParams(args: KernelSpec['args']): string[] {
  return cTypes(args).map((t) => (t === 'double' ? 'f64' : 'i32'));
}

function checkWasm(bytes: Uint8Array, kernels: Spec, extras: Spec, threaded: boolean): string[] {
  const exps = wasmFunctionExports(bytes);
  const problems: string[] = [];
  const header = parseHeader(read('native/kernels.h'));
  const want: [string, KernelSpec][] = [
    ...Object.values(kernels)
      .filter((s) => s.c !== null && s.wasm !== false)
      .map((s): [string, KernelSpec] => [s.c!, s]),
    ...Object.entries(extras).filter(([, s]) => threaded || !(s as { threadedOnly?: boolean }).threadedOnly),
  ];
  for (const [exp, spec] of want) {
    const f = exps.get(exp);
    if (!f) {
      problems.push(`${exp}: in the spec but not exported by the module`);
      continue;
    }
    const params = wasmParams(spec.args);
    if (f.params.join() !== params.join())
      problems.push(`${exp}: the module takes (${f.params.join(', ')}), the spec (${params.join(', ')})`);
    const r = cRet(spec);
    const ret = header.get(exp)?.ret;
    const results = r === 'void' ? [] : ret === 'double' ? ['f64'] : ['i32'];
    if (f.results.join() !== results.join())
      problems.push(`${exp}: the module returns (${f.results.join(', ')}), the spec (${results.join(', ')})`);
  }
  const names = new Set(want.map(([e]) => e));
  for (const e of exps.keys()) if (!names.has(e)) problems.push(`${e}: exported by the module but not in the spec`);
  return problems;
}

const kernels = KERNELS as unknown as Spec;

/**
 * The kernel families (native/kernels/*.c) that a build list leaves out or names without their being there: both
 * builds (binding.gyp's sources, native/build-wasm.sh's `kernels` list) must compile every family, or a kernel
 * declared in kernels.h links in one backend and not the other.
 */
function missingFamilies(families: string[], gyp: string, wasmScript: string): string[] {
  const sources = (JSON.parse(gyp) as { targets: { sources: string[] }[] }).targets[0]!.sources;
  const wasmList = /^kernels=\(([^)]*)\)/m.exec(wasmScript)?.[1]?.split(/\s+/).filter(Boolean) ?? [];
  const problems: string[] = [];
  for (const [build, list] of [
    ['binding.gyp', sources.filter((s) => s.startsWith('native/kernels/'))],
    ['native/build-wasm.sh', wasmList],
  ] as const) {
    for (const f of families) if (!list.includes(f)) problems.push(`${build} does not compile ${f}`);
    for (const f of list) if (!families.includes(f)) problems.push(`${build} compiles ${f}, which does not exist`);
  }
  return problems;
}

describe('the kernel spec agrees with the C side', () => {
  it("native/addon.c's GG_KERNELS table", () => {
    const src = read('native/addon.c');
    expect(parseAddonTable(src).length).toBe(
      Object.values(kernels).filter((s) => s.c !== null).length + Object.keys(ADDON_EXTRAS).length,
    );
    expect(checkAddon(src, kernels, ADDON_EXTRAS)).toEqual([]);
  });

  it('every kernel family in native/kernels/ is compiled by both builds', () => {
    const families = readdirSync(new URL('native/kernels/', root))
      .filter((f) => f.endsWith('.c'))
      .map((f) => `native/kernels/${f}`);
    expect(families.length).toBeGreaterThan(5);
    const gyp = read('binding.gyp');
    const script = read('native/build-wasm.sh');
    expect(missingFamilies(families, gyp, script)).toEqual([]);
    // one family dropped from each build, one listed that is not there
    expect(missingFamilies([...families, 'native/kernels/new.c'], gyp, script)).toEqual([
      'binding.gyp does not compile native/kernels/new.c',
      'native/build-wasm.sh does not compile native/kernels/new.c',
    ]);
    expect(missingFamilies(families.slice(1), gyp, script)).toEqual([
      `binding.gyp compiles ${families[0]}, which does not exist`,
      `native/build-wasm.sh compiles ${families[0]}, which does not exist`,
    ]);
  });

  it("native/kernels.h's declarations", () => {
    expect(checkHeader(read('native/kernels.h'), kernels)).toEqual([]);
  });

  for (const [file, threaded] of [
    ['wasm/gradguard.wasm', false],
    ['wasm/gradguard-mt.wasm', true],
  ] as const) {
    it(`${file}'s exports and their types`, () => {
      const bytes = new Uint8Array(readFileSync(new URL(file, root)));
      expect(wasmFunctionExports(bytes).get('gg_fill')).toEqual({ params: ['i32', 'f64', 'i32'], results: [] });
      expect(checkWasm(bytes, kernels, WASM_EXTRAS, threaded)).toEqual([]);
    });
  }

  it('fails where the two sides disagree', () => {
    const src = read('native/addon.c');
    // a kernel's kinds changed in C, a kernel removed from C, one added to C only
    const changed = src.replace(
      'X(layerNorm, gg_layer_norm, void, 9, FA, FA, FA, FA, FA, FA, IX, IX, DB)',
      'X(layerNorm, gg_layer_norm, void, 9, FA, FA, FA, FA, FA, FA, IX, IX, IX)',
    );
    expect(changed).not.toBe(src);
    expect(checkAddon(changed, kernels, ADDON_EXTRAS)).toEqual([
      "layerNorm: addon.c's kinds FA FA FA FA FA FA IX IX IX, the spec's FA FA FA FA FA FA IX IX DB",
    ]);
    const removed = src.replace(/ {2}X\(sumSquares, [^\n]*\n/, '');
    expect(checkAddon(removed, kernels, ADDON_EXTRAS)).toEqual([
      "sumSquares: in the spec but not in addon.c's GG_KERNELS",
    ]);
    const extra = { ...kernels, rowSum: { args: [['x', 'buf']], c: 'gg_row_sum' } } as Spec;
    expect(checkAddon(src, extra, ADDON_EXTRAS)).toEqual(["rowSum: in the spec but not in addon.c's GG_KERNELS"]);
    expect(checkHeader(read('native/kernels.h'), extra)).toEqual([
      'rowSum: gg_row_sum is not declared GG_API in native/kernels.h',
    ]);
    const bytes = new Uint8Array(readFileSync(new URL('wasm/gradguard.wasm', root)));
    expect(checkWasm(bytes, extra, WASM_EXTRAS, false)).toEqual([
      'gg_row_sum: in the spec but not exported by the module',
    ]);
    // an argument kind changed in the spec only: the table, the header and the module all disagree
    const retyped = {
      ...kernels,
      fill: {
        ...kernels.fill!,
        args: [
          ['out', 'buf'],
          ['value', 'int'],
          ['n', 'int'],
        ],
      },
    } as Spec;
    expect(checkAddon(src, retyped, ADDON_EXTRAS)).toEqual(["fill: addon.c's kinds FA DB IX, the spec's FA IX IX"]);
    expect(checkHeader(read('native/kernels.h'), retyped)).toEqual([
      'fill: kernels.h declares gg_fill(float*, double, gg_i), the spec (float*, gg_i, gg_i)',
    ]);
    expect(checkWasm(bytes, retyped, WASM_EXTRAS, false)).toEqual([
      'gg_fill: the module takes (i32, f64, i32), the spec (i32, i32, i32)',
    ]);
  });
});
