import { defineConfig } from 'vitest/config';

// WGSL files are imported as strings, as esbuild's text loader does in the build.
const wgslAsText = {
  name: 'wgsl-as-text',
  transform(code: string, id: string) {
    if (id.endsWith('.wgsl')) return { code: `export default ${JSON.stringify(code)};`, map: null };
    return undefined;
  },
};

export default defineConfig({
  plugins: [wgslAsText],
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // One GPU device per worker process; the software adapter is slow to start, so few workers.
    pool: 'forks',
    maxWorkers: 2,
    // The built bundle (dist/, imported by the examples through the package's own name) is
    // plain Node ESM: loaded by Node as a user would load it, not re-transformed (seconds).
    server: { deps: { external: [/\/node_modules\//, /\/dist\//] } },
  },
});
