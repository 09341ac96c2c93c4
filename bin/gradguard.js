#!/usr/bin/env node
// The `gradguard` command. The TypeScript sources are compiled to dist/ by `npm ci` (the package's prepare script).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    'gradguard: dist/ is missing; run `npm ci` (or `npm run build`) in the gradguard directory first\n',
  );
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
