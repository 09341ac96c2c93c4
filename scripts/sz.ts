/**
 * Size check: no source file over FILE_LIMIT lines and no function over FUNCTION_LIMIT lines, so files and closures
 * are split at their seams before they grow past them. What was already over a limit when the check arrived is listed
 * in scripts/sz-baseline.json and only reported (it may shrink, not grow); anything new over a limit fails.
 *
 *   node --import tsx scripts/sz.ts            check (exit 1 on a new or grown oversize file or function)
 *   node --import tsx scripts/sz.ts --update   rewrite the baseline from the tree as it is (after a split)
 *
 * Functions are measured with the TypeScript parser: every function declaration, method, arrow function and function
 * expression, from its first line to its last (nested functions count inside their parent too). Tests, generated
 * files and the browser bundle's vendored code are not measured. The C under native/ is measured too: its files, and
 * its functions as the house style writes them (a definition starts at column 0, its body ends at a `}` alone on a
 * line); macros and declarations are not functions.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

export const FILE_LIMIT = 600;
export const FUNCTION_LIMIT = 120;

const ROOT = resolve(import.meta.dirname, '..');
const BASELINE = join(ROOT, 'scripts/sz-baseline.json');
const DIRS = ['src', 'bench', 'scripts', 'native'];

export interface Oversize {
  /** `path` for a file, `path#name@line` for a function (the line where it starts, for people; not part of the key). */
  where: string;
  key: string;
  lines: number;
  limit: number;
}

function files(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'node_modules' || name === 'dist') continue;
    if (statSync(p).isDirectory()) files(p, out);
    else if (/\.(ts|mts|c|h)$/.test(name) && !/\.(test|d)\.ts$/.test(name)) out.push(p);
  }
  return out;
}

function functionName(node: ts.Node, sf: ts.SourceFile): string {
  const named = node as { name?: ts.Node };
  if (named.name) return named.name.getText(sf);
  const parent = node.parent;
  if (parent && ts.isVariableDeclaration(parent)) return parent.name.getText(sf);
  if (parent && ts.isPropertyAssignment(parent)) return parent.name.getText(sf);
  if (parent && ts.isCallExpression(parent)) return `${parent.expression.getText(sf).slice(0, 40)}(callback)`;
  return '(anonymous)';
}

/** Every file and function of one source text over its limit. */
export function measure(path: string, text: string): Oversize[] {
  const out: Oversize[] = [];
  const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  if (lines > FILE_LIMIT) out.push({ where: path, key: path, lines, limit: FILE_LIMIT });
  if (/\.[ch]$/.test(path)) return [...out, ...measureC(path, text)];
  const sf = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true);
  const seen = new Map<string, number>();
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && (node as { body?: ts.Node }).body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
      const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line + 1;
      const n = end - start + 1;
      if (n > FUNCTION_LIMIT) {
        const name = functionName(node, sf);
        const k = `${path}#${name}`;
        const i = seen.get(k) ?? 0;
        seen.set(k, i + 1);
        out.push({ where: `${path}#${name}@${start}`, key: i ? `${k}~${i}` : k, lines: n, limit: FUNCTION_LIMIT });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/**
 * The C functions of one source over FUNCTION_LIMIT: a definition is a line at column 0 that is not a directive,
 * comment, brace or type declaration and whose statement ends in `{` with a `(` in it (the signature may wrap); it
 * ends at the next line that is `}` alone. Structs, enums and macros are skipped.
 */
function measureC(path: string, text: string): Oversize[] {
  const out: Oversize[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^[A-Za-z_]/.test(lines[i]!) || /^(typedef|enum|struct|union)\b/.test(lines[i]!)) continue;
    let j = i;
    while (j < lines.length - 1 && j - i < 6 && !/[;{]\s*$/.test(lines[j]!)) j++;
    const head = lines
      .slice(i, j + 1)
      .join(' ')
      .replace(/__attribute__\s*\(\(.*?\)\)/g, '');
    if (!/\{\s*$/.test(lines[j]!) || !head.includes('(')) continue;
    let end = j + 1;
    while (end < lines.length && lines[end] !== '}') end++;
    const n = end - i + 1;
    if (n > FUNCTION_LIMIT) {
      const name = /([A-Za-z_]\w*)\s*\(/.exec(head)?.[1] ?? '(anonymous)';
      out.push({ where: `${path}#${name}@${i + 1}`, key: `${path}#${name}`, lines: n, limit: FUNCTION_LIMIT });
    }
    i = end;
  }
  return out;
}

/** Compares what is oversize now with the baseline: new entries and grown ones fail; the rest is reported. */
export function judge(
  now: readonly Oversize[],
  baseline: Readonly<Record<string, number>>,
): { failures: string[]; reported: string[] } {
  const failures: string[] = [];
  const reported: string[] = [];
  for (const o of now) {
    const before = baseline[o.key];
    const what = `${o.where}: ${o.lines} lines (limit ${o.limit})`;
    if (before === undefined) failures.push(`${what}: new; split it at its seams`);
    else if (o.lines > before) failures.push(`${what}: grew from ${before}; split it instead of growing it`);
    else reported.push(`${what}${o.lines < before ? ` (down from ${before})` : ''}`);
  }
  return { failures, reported };
}

function main(): number {
  const all = DIRS.flatMap((d) => files(join(ROOT, d))).flatMap((f) =>
    measure(relative(ROOT, f), readFileSync(f, 'utf8')),
  );
  if (process.argv.includes('--update')) {
    const base = Object.fromEntries(all.map((o) => [o.key, o.lines]).sort());
    writeFileSync(BASELINE, `${JSON.stringify(base, null, 2)}\n`);
    console.log(`sz: baseline written with ${all.length} oversize files and functions`);
    return 0;
  }
  const baseline = JSON.parse(readFileSync(BASELINE, 'utf8')) as Record<string, number>;
  const { failures, reported } = judge(all, baseline);
  if (reported.length) {
    console.log(`sz: ${reported.length} files and functions over the limits from before the check (report only):`);
    for (const r of reported) console.log(`  ${r}`);
  }
  for (const f of failures) console.error(`sz: ${f}`);
  if (failures.length) return 1;
  console.log(`sz: no new file over ${FILE_LIMIT} lines or function over ${FUNCTION_LIMIT}`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) process.exitCode = main();
