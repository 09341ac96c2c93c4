/**
 * The browser build bundles for browsers with no Node built-in: src/browser.ts through esbuild for platform
 * 'browser' (which honours package.json's `browser` field, as Vite and webpack do), checked on the bundle's inputs
 * and imports. The Node entry bundled the same way must fail, which shows the check can fail.
 */
import { builtinModules } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

/** Bundles `entry` for browsers; returns the build's errors (as text) and, when it succeeded, its inputs and imports. */
async function bundle(entry: string): Promise<{ errors: string[]; inputs: string[]; imports: string[]; text: string }> {
  try {
    const r = await esbuild.build({
      absWorkingDir: ROOT,
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      outfile: 'out.js',
    });
    const out = Object.values(r.metafile.outputs)[0]!;
    return {
      errors: [],
      inputs: Object.keys(r.metafile.inputs),
      imports: out.imports.map((i) => i.path),
      text: r.outputFiles[0]!.text,
    };
  } catch (e) {
    const errors = (e as esbuild.BuildFailure).errors ?? [];
    return { errors: errors.map((x) => `${x.location?.file ?? '?'}: ${x.text}`), inputs: [], imports: [], text: '' };
  }
}

describe('browser build', () => {
  it('bundles src/browser.ts for platform browser with no Node built-in', async () => {
    const b = await bundle('src/browser.ts');
    expect(b.errors).toEqual([]);
    expect(b.inputs.filter((i) => BUILTINS.has(i) || i.startsWith('node:'))).toEqual([]);
    expect(b.imports).toEqual([]);
    // the browser versions were swapped in, and the Node ones left out
    for (const f of ['native', 'threads', 'wasm-threads', 'wasm-bytes']) {
      expect(b.inputs).toContain(`src/backend/${f}.browser.ts`);
      expect(b.inputs).not.toContain(`src/backend/${f}.ts`);
    }
    expect(b.inputs).toContain('src/backend/wasm.ts');
    expect(b.inputs).toContain('src/train/checkpoint.browser.ts');
    expect(b.inputs).toContain('src/io/text.browser.ts');
    expect(b.inputs).toContain('src/train/memory.browser.ts');
    // nothing reaches for a built-in by a computed require either
    expect(b.text).not.toMatch(/\brequire\(\s*["'](node:)?(fs|os|path|module|worker_threads|v8|crypto)["']\s*\)/);
  });

  it('the Node entry does not bundle for browsers (so the check above can fail)', async () => {
    const b = await bundle('src/index.ts');
    expect(b.errors.length).toBeGreaterThan(0);
    expect(b.errors.join('\n')).toMatch(/node:(fs|os|path|module|worker_threads)/);
  });
});
