/**
 * The layering the README's architecture section draws, checked: every import between the source folders points
 * down the layer order below, and no module of the library is part of an import cycle. Tests are exempt (they may
 * reach anything). Type-only imports count for the folder order (a type is a dependency too) but not for cycles
 * (they vanish at run time).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../src');

/**
 * Folders from the top down. A folder may import its own files and any folder of a lower rank; folders of one rank
 * are peers and may not import each other. The files directly in src/ (index.ts) and src/api/ assemble the public
 * surface and sit on top.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['.'],
  ['api'],
  ['cli'],
  ['experiment'],
  ['dashboard'],
  ['train'],
  ['track'],
  ['monitor'],
  ['clip'],
  ['nn', 'optim'],
  ['init', 'data', 'io'],
  ['tensor'],
  ['backend'],
  ['base'],
];

const RANK = new Map<string, number>(LAYERS.flatMap((folders, i) => folders.map((f) => [f, LAYERS.length - i])));

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'web') sourceFiles(p, out); // dashboard/web is the browser bundle, built separately by vite
    } else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Relative imports and re-exports of one file, resolved to paths under src/ (`.js` specifiers name `.ts` files). */
function importsOf(file: string, text: string): Edge[] {
  const edges: Edge[] = [];
  const re = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"](\.{1,2}\/[^'"]+)['"]/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const spec = m[4] as string;
    const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
    // `import { type A, type B } from` is type-only too
    const names = m[3] ?? '';
    const allTypes =
      /^\{[^}]*\}$/.test(names.trim()) &&
      names
        .replace(/[{}\s]/g, '')
        .split(',')
        .filter(Boolean)
        .every((n) => n.startsWith('type'));
    edges.push({ from: relative(SRC, file), to: relative(SRC, target), typeOnly: Boolean(m[2]) || allTypes });
  }
  return edges;
}

function folderOf(path: string): string {
  const parts = path.split('/');
  return parts.length === 1 ? '.' : (parts[0] as string);
}

/** The cycles of a directed graph (one per strongly connected component with more than one node, or a self-loop). */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, idx.get(w) as number));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

const files = sourceFiles(SRC);
const edges = files.flatMap((f) => importsOf(f, readFileSync(f, 'utf8')));

describe('layering', () => {
  it('knows every source folder', () => {
    const unknown = [...new Set(files.map((f) => folderOf(relative(SRC, f))))].filter((f) => !RANK.has(f));
    expect(unknown, 'add new folders to LAYERS (and to the README architecture section)').toEqual([]);
  });

  it('imports only downward: a folder imports its own files and lower layers', () => {
    const bad = edges
      .filter((e) => {
        const a = folderOf(e.from);
        const b = folderOf(e.to);
        return a !== b && (RANK.get(a) ?? 0) <= (RANK.get(b) ?? 0);
      })
      .map((e) => `${e.from} -> ${e.to}`);
    expect(bad).toEqual([]);
  });

  it('has no import cycle between modules', () => {
    const graph = new Map<string, string[]>();
    for (const f of files) graph.set(relative(SRC, f), []);
    for (const e of edges) if (!e.typeOnly) graph.get(e.from)?.push(e.to);
    expect(cycles(graph)).toEqual([]);
  });

  it('sees imports, re-exports and type-only imports, and finds cycles (the checker itself)', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b/b.js';",
      "import { type C, type D } from './c.js';",
      "export * from './e.js';",
      "export { f } from '../f/index.js';",
    ].join('\n');
    const got = importsOf(join(SRC, 'x/file.ts'), text);
    expect(got.map((e) => [e.to, e.typeOnly])).toEqual([
      ['x/a.ts', false],
      ['b/b.ts', true],
      ['x/c.ts', true],
      ['x/e.ts', false],
      ['f/index.ts', false],
    ]);
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c']]);
    expect(
      cycles(
        new Map([
          ['a', ['b']],
          ['b', []],
        ]),
      ),
    ).toEqual([]);
  });
});
