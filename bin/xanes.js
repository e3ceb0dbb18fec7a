#!/usr/bin/env node
// The `xanes` command: runs the bundle built by `npm install` (scripts/build.mjs).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
const bundle = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
if (!existsSync(bundle)) {
  console.error('xanes: the bundle dist/cli.js is missing; run `npm run build` in the project folder');
  process.exit(2);
}
const { main } = await import(bundle);
process.exit(await main(process.argv.slice(2)));
