// Bundles the CLI (and the benchmark runner) into dist/ with esbuild; WGSL is embedded as text.
// Then the library's type declarations (package.json "types") into dist/types with tsc.
import { build } from 'esbuild';
import { existsSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';

const entries = { cli: 'src/cli/main.ts', index: 'src/index.ts', 'cpu-worker': 'src/pipeline/cpu-worker.ts', 'kernel-worker': 'src/cpu/kernel-worker.ts' };
if (existsSync('bench/main.ts')) entries.bench = 'bench/main.ts';
await build({
  entryPoints: entries,
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  loader: { '.wgsl': 'text' },
  // Dawn's and resvg's addons are native modules, h5wasm loads its own wasm; ESM bundles need a require() shim for CJS dependencies.
  external: ['webgpu', '@resvg/resvg-js', 'h5wasm', 'playwright-core'],
  banner: { js: "import { createRequire as __xanesCreateRequire } from 'node:module'; const require = __xanesCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

// The report page's script: the browser bundle (Vega, the colour maps, the plot specs and
// the kernels' TypeScript twins for the inspector) that src/report/html.ts inlines.
await build({
  entryPoints: { 'report-page': 'src/report/page/main.ts' },
  outdir: 'dist',
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
});

// The declarations of src/index.ts and what it reaches (tsconfig.types.json), so a
// TypeScript program that imports 'xanes-engine' is type-checked against the library.
// Emitted afresh: a declaration of a removed module must not linger.
rmSync('dist/types', { recursive: true, force: true });
const tsc = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.types.json'], { stdio: 'inherit' });
