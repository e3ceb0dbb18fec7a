/**
 * The package's type declarations (package.json "types", built into dist/types by
 * scripts/build.mjs, which `npm test` runs first) and the TypeScript example that imports
 * the package by its public name: the example type-checks against them as a user's project
 * would (tsc, Node's module resolution through package.json "exports"), the declarations
 * are consistent in themselves, a misuse of the API or of a summary is a type error, and the example runs.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsc = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
const declarations = path.join(root, 'dist', 'types', 'index.d.ts');

function runTsc(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [tsc, ...args], { cwd: root, encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  if (!fs.existsSync(declarations)) throw new Error(`${declarations} is missing: run \`npm run build\` (npm test and npm install run it)`);
});

describe('typed library API', () => {
  test('package.json points "types" and the "." export at the declarations', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    expect(pkg.types).toBe('dist/types/index.d.ts');
    expect(pkg.exports['.']).toEqual({ types: './dist/types/index.d.ts', import: './dist/index.js' });
    const dts = fs.readFileSync(declarations, 'utf8');
    for (const name of ['edgeMaps', 'fitMaps', 'lcfMaps', 'kmeans', 'pca', 'runEdge']) expect(dts).toMatch(new RegExp(`\\b${name}\\b`));
  });

  test('examples/api type-checks against the shipped declarations', () => {
    const r = runTsc(['-p', 'examples/api/tsconfig.json', '--listFiles']);
    const files = r.out.split('\n');
    expect(files.filter((l) => /error TS/.test(l))).toEqual([]);
    expect(r.code).toBe(0);
    // The example really was checked against dist/types (not the source, not `any`).
    expect(files.some((f) => f.endsWith(path.join('dist', 'types', 'api', 'maps.d.ts')))).toBe(true);
    expect(files.some((f) => f.includes(`${path.sep}src${path.sep}`))).toBe(false);
  });

  test('the declarations are consistent in themselves (skipLibCheck off: errors only in third-party typings)', () => {
    // @webgpu/types and vega's typings need the DOM library, which a Node project lacks:
    // their errors are theirs. Not one may be in dist/types or the example.
    const r = runTsc(['-p', 'examples/api/tsconfig.json', '--skipLibCheck', 'false']);
    const ours = r.out.split('\n').filter((l) => /error TS/.test(l) && !l.startsWith('node_modules/'));
    expect(ours).toEqual([]);
  });

  test('a misuse of the API or of a summary is a type error', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-types-'));
    try {
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'ESNext', moduleResolution: 'Bundler', lib: ['ES2022'], types: [], typeRoots: [path.join(root, 'node_modules', '@types')], strict: true, noEmit: true, skipLibCheck: true, paths: { 'xanes-engine': [declarations] } },
        files: ['misuse.ts'],
      }));
      fs.writeFileSync(path.join(dir, 'misuse.ts'), [
        "import { edgeMaps, kmeans, runEdge, runRecipe } from 'xanes-engine';",
        'const cube = new Float32Array(8);',
        "const r = await edgeMaps(cube, [1, 2], { height: 2, width: 2, backend: 'gpu' });", // not a backend
        'const x: string = r.maps.e0_half;', // a Float32Array
        'r.maps.e0_halff;', // no such map
        "await edgeMaps(cube, [1, 2], { height: 2, width: 2, maskSigma: '2' });", // a number
        "await kmeans([cube], { k: 3, kRange: 'x', standardise: true });", // kRange is checked text or a list; no key 'standardise'
        "const { summary } = await runEdge({ stack: 's.npy', out: 'o', edge: {}, backend: 'cpu', budgetBytes: 1 });",
        'const used: number = summary.counts.used + summary.parameters.e0_eV;',
        'summary.counts.usedd;', // no such count
        "const run = await runRecipe({ stacks: [], steps: ['edge'], out: 'o', backend: 'cpu', budgetBytes: 1 });",
        "const name: string = run.fields[0].field + run.backend.adapter + (run.options?.edge?.maskSigma ?? 0);",
        'const wrong: string = run.timings_s.total;', // a number
        'export { x, used, name, wrong };',
      ].join('\n'));
      const r = runTsc(['-p', path.join(dir, 'tsconfig.json')]);
      expect(r.code).not.toBe(0);
      const lines = r.out.split('\n').filter((l) => /misuse\.ts\(\d+,\d+\): error TS/.test(l)).map((l) => Number(/\((\d+),/.exec(l)![1]));
      expect([...new Set(lines)].sort((a, b) => a - b)).toEqual([3, 4, 5, 6, 7, 10, 13]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the example runs through the package entry and maps the synthetic field', async () => {
    const sigint = process.listenerCount('SIGINT');
    const { main } = await import('../../examples/api/edge-maps.js');
    const { edge, clusters } = await main('cpu');
    expect(edge.backend.name).toBe('cpu');
    // The core of the core-shell particle (state of charge 0.15) maps to an edge near 8343 eV.
    expect(edge.maps.e0_half[15 * 48 + 14]).toBeGreaterThan(8340);
    expect(edge.maps.e0_half[15 * 48 + 14]).toBeLessThan(8346);
    expect(clusters.k).toBe(3);
    expect(clusters.nIncluded + clusters.nExcluded).toBe(48 * 48);
    expect(process.listenerCount('SIGINT')).toBe(sigint);
  });
});
