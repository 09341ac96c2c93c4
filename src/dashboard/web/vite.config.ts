/**
 * Builds the dashboard's front end into dist/dashboard/web (relative asset URLs, everything bundled: the dashboard
 * works offline). `npm run build` runs it after tsc; `vite build --config src/dashboard/web/vite.config.ts`.
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
    outDir: fileURLToPath(new URL('../../../dist/dashboard/web', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
  },
});
