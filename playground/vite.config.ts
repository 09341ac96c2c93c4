/**
 * Builds the playground into dist/playground: plain static files (relative URLs, the wasm modules as assets), for
 * `gradguard playground` or any static host. `vite build --config playground/vite.config.ts`.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: './',
  logLevel: 'warn',
  publicDir: false,
  build: {
    outDir: fileURLToPath(new URL('../dist/playground', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
    // the wasm modules stay files of their own (fetched and compiled asynchronously), never inlined
    assetsInlineLimit: 0,
  },
});
