/**
 * scripts/prepare.mjs (the package's `prepare`): dist/ is rebuilt unless its stamp records exactly the sources there
 * now, so that `npx gradguard` in the directory (which runs `prepare` and `install` again) does not rebuild what
 * `npm ci` built; the native addon likewise (scripts/build-native.mjs).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  invalidate,
  invalidateNative,
  nativeHash,
  nativeUpToDate,
  sourcesHash,
  upToDate,
  writeNativeStamp,
  writeStamp,
} from '../scripts/prepare.mjs';

/** A temporary package root, and a writer of files under it. */
function tempRoot() {
  const root = mkdtempSync(join(tmpdir(), 'gg-prepare-'));
  const put = (rel: string, text: string) => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  };
  return { root, put };
}

describe('prepare: dist/ rebuilt only where the sources changed', () => {
  it('is up to date after a stamp, and not after any input changes or the entry point goes', () => {
    const { root, put } = tempRoot();
    try {
      put('package.json', '{"name":"x"}');
      put('src/a.ts', 'export const a = 1;');
      put('playground/main.ts', 'x');
      put('dist/cli/main.js', 'built');
      expect(upToDate(root)).toBe(false); // never stamped: a fresh clone builds
      writeStamp(root);
      expect(upToDate(root)).toBe(true);
      const h = sourcesHash(root);
      put('dist/other.js', 'outputs do not count');
      put('coverage/x.json', 'nor do files outside the inputs');
      expect(sourcesHash(root)).toBe(h);
      put('src/a.ts', 'export const a = 2;'); // an edited source
      expect(upToDate(root)).toBe(false);
      writeStamp(root);
      put('src/sub/b.ts', ''); // a new one, even empty
      expect(upToDate(root)).toBe(false);
      writeStamp(root);
      put('tsconfig.build.json', '{}'); // a config the build reads
      expect(upToDate(root)).toBe(false);
      writeStamp(root);
      expect(upToDate(root)).toBe(true);
      rmSync(join(root, 'dist/cli/main.js')); // dist/ itself damaged
      expect(upToDate(root)).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('the native build: rebuilt only where its stamp differs', () => {
  it('is up to date after a stamp, and not after a native source, binding.gyp or the addon changes', () => {
    const { root, put } = tempRoot();
    try {
      put('native/a.c', 'int a;');
      put('binding.gyp', '{}');
      put('build/Release/gradguard.node', 'addon');
      expect(nativeUpToDate(root)).toBe(false); // never stamped
      writeNativeStamp(root);
      expect(nativeUpToDate(root)).toBe(true);
      put('src/a.ts', 'the TypeScript does not count');
      expect(nativeUpToDate(root)).toBe(true);
      put('native/kernels/b.c', 'int b;');
      expect(nativeUpToDate(root)).toBe(false);
      writeNativeStamp(root);
      put('binding.gyp', '{"targets":[]}');
      expect(nativeUpToDate(root)).toBe(false);
      writeNativeStamp(root);
      const h = nativeHash(root);
      const cc = process.env.CC;
      process.env.CC = 'another-cc'; // another compiler: another build
      try {
        expect(nativeHash(root)).not.toBe(h);
      } finally {
        if (cc === undefined) delete process.env.CC;
        else process.env.CC = cc;
      }
      rmSync(join(root, 'build/Release/gradguard.node'));
      expect(nativeUpToDate(root)).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('the stamps against a build stopped halfway and a looping link', () => {
  it('drops a stamp before a build writes (so a stopped build is redone), and reads a looping link once', () => {
    const { root, put } = tempRoot();
    try {
      put('src/a.ts', 'export const a = 1;');
      put('dist/cli/main.js', 'built');
      put('native/a.c', 'int a;');
      put('build/Release/gradguard.node', 'addon');
      writeStamp(root);
      writeNativeStamp(root);
      invalidate(root); // `npm run build`'s prebuild: until the build finishes, dist/ is not taken as built
      expect(upToDate(root)).toBe(false);
      expect(nativeUpToDate(root)).toBe(true);
      invalidateNative(root); // before node-gyp's rebuild
      expect(nativeUpToDate(root)).toBe(false);
      invalidate(root); // nothing to remove: no error
      const h = sourcesHash(root);
      symlinkSync(join(root, 'src'), join(root, 'src', 'loop')); // src/loop -> src
      expect(sourcesHash(root)).toBe(h);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
