// Locates the bundled example data (examples/data/) at run time. The same module runs from
// two places: src/synth/*.ts under vitest (two levels below the package root) and the
// esbuild bundle dist/cli.js (one level below), so both relative locations are tried.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Absolute file path of `examples/data/<name>` (e.g. `ni-k/ref_NiO.txt`); throws if absent. */
export function exampleDataPath(name: string): string {
  const candidates = [
    new URL(`../../examples/data/${name}`, import.meta.url),
    new URL(`../examples/data/${name}`, import.meta.url),
  ].map((u) => fileURLToPath(u));
  for (const p of candidates) if (existsSync(p)) return p;
  throw new Error(
    `example data file '${name}' not found; looked in:\n  ${candidates.join('\n  ')}\n` +
      `(examples/data/ must ship beside src/ or dist/ in the package)`,
  );
}
