/** The size check (scripts/sz.ts) itself: what it measures, and that only new or grown oversize code fails. */
import { describe, expect, it } from 'vitest';
import { FILE_LIMIT, FUNCTION_LIMIT, judge, measure } from '../scripts/sz.js';

const body = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i};`).join('\n');

describe('size check', () => {
  it('measures files and functions (declarations, methods, arrows) by their lines', () => {
    const fn = `function big(x: number) {\n${body(FUNCTION_LIMIT)}\n  return x;\n}\n`;
    const arrow = `const small = (x: number) => {\n${body(3)}\n  return x;\n};\n`;
    const method = `class A {\n  m(x: number) {\n${body(FUNCTION_LIMIT + 5)}\n    return x;\n  }\n}\n`;
    const got = measure('a.ts', fn + arrow + method);
    expect(got.map((o) => [o.key, o.lines])).toEqual([
      ['a.ts#big', FUNCTION_LIMIT + 3],
      ['a.ts#m', FUNCTION_LIMIT + 8],
    ]);
    const file = `${Array.from({ length: FILE_LIMIT + 1 }, (_, i) => `export const v${i} = ${i};`).join('\n')}\n`;
    expect(measure('b.ts', file)).toEqual([{ where: 'b.ts', key: 'b.ts', lines: FILE_LIMIT + 1, limit: FILE_LIMIT }]);
    expect(measure('c.ts', `${'const a = 1;\n'.repeat(FILE_LIMIT)}`)).toEqual([]);
  });

  it('measures C files and functions, wrapped signatures and attributes included, macros and structs not', () => {
    const cbody = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i};`).join('\n');
    const big = `static void big_range(int tid, gg_i lo, gg_i hi,\n                      const void *p) {\n${cbody(FUNCTION_LIMIT)}\n}\n`;
    const attr = `static inline __attribute__((always_inline)) void kern(int r) {\n${cbody(FUNCTION_LIMIT - 1)}\n}\n`;
    const small = `GG_API void gg_small(float *x) {\n${cbody(3)}\n}\n`;
    const macro = `#define GG_ROW(NAME) \\\n${'  x += 1; \\\n'.repeat(FUNCTION_LIMIT + 5)}  x += 2;\n`;
    const struct = `typedef struct {\n${'  int a;\n'.repeat(FUNCTION_LIMIT + 5)}} s;\n`;
    const got = measure('native/k.c', big + attr + small + macro + struct);
    expect(got.map((o) => [o.where, o.lines])).toEqual([
      ['native/k.c#big_range@1', FUNCTION_LIMIT + 3],
      ['native/k.c#kern@124', FUNCTION_LIMIT + 1],
    ]);
    const file = `${'int a;\n'.repeat(FILE_LIMIT + 1)}`;
    expect(measure('native/k.h', file).map((o) => o.key)).toEqual(['native/k.h']);
  });

  it('fails on new and grown oversize code, reports what was there before', () => {
    const now = [
      { where: 'old.ts', key: 'old.ts', lines: 700, limit: FILE_LIMIT },
      { where: 'shrunk.ts', key: 'shrunk.ts', lines: 650, limit: FILE_LIMIT },
      { where: 'grown.ts', key: 'grown.ts', lines: 800, limit: FILE_LIMIT },
      { where: 'new.ts#f@3', key: 'new.ts#f', lines: 200, limit: FUNCTION_LIMIT },
    ];
    const { failures, reported } = judge(now, { 'old.ts': 700, 'shrunk.ts': 660, 'grown.ts': 790 });
    expect(failures).toEqual([
      'grown.ts: 800 lines (limit 600): grew from 790; split it instead of growing it',
      'new.ts#f@3: 200 lines (limit 120): new; split it at its seams',
    ]);
    expect(reported).toEqual(['old.ts: 700 lines (limit 600)', 'shrunk.ts: 650 lines (limit 600) (down from 660)']);
  });
});
