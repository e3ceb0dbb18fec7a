// Bundles the CLI (and the benchmark runner) into dist/ with esbuild; WGSL is embedded as text.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';

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
