/**
 * docs/library.md's examples run and print what the page says: each runnable ```ts block is run against the public
 * surface (src/index.ts), and its console lines are compared with the output block that follows it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const page = readFileSync(join(root, 'docs', 'library.md'), 'utf8');
const blocks = [...page.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1], code: m[2]! }));
const dir = mkdtempSync(join(tmpdir(), 'gg-docs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Numbers in a line, and the line with each number replaced by '#'. */
function parse(line: string): { shape: string; nums: number[] } {
  const nums = (line.match(/-?\d+(\.\d+)?/g) ?? []).map(Number);
  return { shape: line.replace(/-?\d+(\.\d+)?/g, '#'), nums };
}

/** The index of the ```ts block whose code contains `marker`; it must be followed by its output block. */
function exampleAt(marker: string): number {
  const i = blocks.findIndex((b) => b.lang === 'ts' && b.code.includes(marker));
  expect(i, `no ts block with '${marker}'`).toBeGreaterThanOrEqual(0);
  expect(blocks[i + 1]?.lang, 'the example is followed by its output block').toBe('');
  return i;
}

describe('docs/library.md', () => {
  it.each([
    ['the residual MLP example', 'ResidualMLPBlock'],
    ['the monitor example (optim.Optimizer reporting to a Monitor, an iterable DataLoader)', 'new monitor.Monitor'],
  ])('%s runs and prints the documented output', async (_what, marker) => {
    const i = exampleAt(marker);
    const code = blocks[i]!.code.replace("from 'gradguard'", `from ${JSON.stringify(join(root, 'src', 'index.ts'))}`);
    const expected = blocks[i + 1]!.code.trim().split('\n');
    const file = join(dir, `example-${i}.ts`);
    writeFileSync(file, code);
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => {
      lines.push(a.join(' '));
    });
    try {
      await import(/* @vite-ignore */ file);
    } finally {
      spy.mockRestore();
    }
    expect(lines.length).toBe(expected.length);
    for (const [k, line] of lines.entries()) {
      const got = parse(line);
      const want = parse(expected[k]!);
      expect(got.shape, line).toBe(want.shape);
      // float32 sums may differ between backends in the last digits; the documented values hold to 1%
      for (const [j, v] of want.nums.entries())
        expect(Math.abs(got.nums[j]! - v), line).toBeLessThanOrEqual(0.01 * Math.abs(v) + 0.002);
    }
  });
});
