/**
 * One schema for every option (src/options/schema.ts): the command line and recipes are
 * checked by the same rules and give one line naming the option or key; unknown keys and
 * options name the nearest valid one; summary.json records the names a recipe accepts;
 * recipe paths are relative to the recipe; stack patterns are bounded.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { writeNpy } from '../../src/io/npy.js';
import { SECTIONS, COMMANDS, RUN_CLI_SKIP, commandOptions } from '../../src/options/schema.js';
import { nearest } from '../../src/options/parse.js';
import { expandFields, MAX_GLOB_MATCHES } from '../../src/pipeline/run-recipe.js';

let dir: string;
const W = 8, H = 6;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-options-'));
  const s = makeNiTxmStack({ width: W, height: H, seed: 4, noise: true });
  const a = new Float32Array(s.sample.length);
  for (let i = 0; i < a.length; i++) a[i] = -Math.log((s.sample[i] - s.dark[i]) / (s.flat[i] - s.dark[i]));
  writeNpy(path.join(dir, 'fov.npy'), a, [s.energies.length, H, W]);
  fs.writeFileSync(path.join(dir, 'energies.txt'), Array.from(s.energies).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'ref_a.txt'), Array.from(s.energies).map((e, i) => `${e} ${i / s.energies.length}`).join('\n') + '\n');
});

const base = { stacks: ['fov.npy'], energies: 'energies.txt', steps: ['edge'], e0: 8343, backend: 'cpu', threads: 1 };

async function runRecipe(name: string, recipe: Record<string, unknown>) {
  const file = path.join(dir, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ out: `out-${name}`, ...recipe }));
  const r = await runCli(['run', file]);
  return { ...r, file, out: path.join(dir, `out-${name}`) };
}

function expectOneLine(r: { code: number; err: string; out: string }, re: RegExp): void {
  expect(r.code, r.out + r.err).toBe(2);
  const lines = r.err.trim().split('\n');
  expect(lines, r.err).toHaveLength(1);
  expect(lines[0]).toMatch(/^xanes: error: /);
  expect(lines[0]).toMatch(re);
}

describe('recipes are checked by the schema', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['unknown top-level key', { ...base, memroy: 256 }, /unknown key "memroy"; did you mean "memory"\?/],
    ['misspelt steps', { ...base, steps: undefined, stepz: ['edge'] }, /unknown key "stepz"; did you mean "steps"\?/],
    ['snake_case in a section', { ...base, edge: { mask_sigma: 5 } }, /unknown key in "edge": "mask_sigma"; did you mean "maskSigma"\?/],
    ['a step option at the top level', { ...base, maskSigma: 5 }, /"maskSigma" belongs in the "edge" object/],
    ['e0 inside a section', { ...base, edge: { e0: 8343 } }, /"e0" belongs at the top level/],
    ['nnorm 7', { ...base, edge: { nnorm: 7 } }, /"edge.nnorm": expected one of 0, 1, 2, auto, got 7$/],
    ['maskSigma text', { ...base, edge: { maskSigma: 'abc' } }, /"edge.maskSigma": expected a number >= 0, got "abc"$/],
    ['maskSigma negative', { ...base, edge: { maskSigma: -5 } }, /"edge.maskSigma": expected a number >= 0, got -5$/],
    ['threads -3', { ...base, threads: -3 }, /"threads": expected a whole number from 1 to 1024, got -3$/],
    ['steps as one text', { ...base, steps: 'edge' }, /"steps": expected a list of steps, e.g. \["a", "b"\], got "edge"$/],
    ['an unknown step', { ...base, steps: ['edge', 'magic'] }, /"steps": expected one of edge, fit, lcf, cluster, got "magic"$/],
    ['energies a number', { ...base, energies: 8333 }, /"energies": expected an energies file name, got 8333$/],
    ['refs (old name)', { ...base, steps: ['lcf'], lcf: { refs: 'A=f.txt' } }, /unknown key in "lcf": "refs"; did you mean "ref"\?/],
    ['ref as one text', { ...base, steps: ['lcf'], lcf: { ref: 'A=f.txt' } }, /"lcf.ref": expected a list of references NAME=SOURCE, e.g. \["a", "b"\], got "A=f.txt"$/],
    ['ref without NAME=', { ...base, steps: ['lcf'], lcf: { ref: ['f.txt'] } }, /"lcf.ref": expected NAME=SOURCE, got "f.txt"$/],
    ['maxIter text', { ...base, steps: ['fit'], fit: { model: 'erf-lorentz', maxIter: '50' } }, /"fit.maxIter": expected a whole number from 1 to 10000, got "50"$/],
    ['bounds of the wrong shape', { ...base, steps: ['fit'], fit: { model: 'erf-lorentz', bounds: { b3: [1] } } }, /"fit.bounds": 'b3': expected \[lower, upper\] \(null for an open side\), got \[1\]$/],
    ['init with text', { ...base, steps: ['fit'], fit: { model: 'erf-lorentz', init: { b3: '2' } } }, /"fit.init": 'b3': expected a finite number/],
    ['a section that is not an object', { ...base, edge: [1, 2] }, /"edge": expected an object of edge options, got \[1,2\]$/],
    ['post with a bad end', { ...base, edge: { post: [150, 'last'] } }, /"edge.post": expected \[a, b\] with a < b \(b may be "end"\)/],
    ['pre reversed', { ...base, edge: { pre: [-30, -150] } }, /"edge.pre": expected \[a, b\] with a < b/],
    ['memory zero', { ...base, memory: 0 }, /"memory": expected a number > 0, got 0$/],
    ['backend typo', { ...base, backend: 'gpu' }, /"backend": expected one of auto, webgpu, cpu, got "gpu"$/],
    ['unbounded glob', { ...base, stacks: ['/**/*.xyz'] }, /'\*\*' \(any depth\) is not allowed/],
  ];
  for (const [name, recipe, re] of cases) {
    test(name, async () => {
      const r = await runRecipe(name.replace(/\W+/g, '_'), recipe);
      expectOneLine(r, re);
      expect(fs.existsSync(r.out)).toBe(false);
      expect(fs.readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
    });
  }

  test('a recipe that is not a JSON object', async () => {
    const file = path.join(dir, 'list.json');
    fs.writeFileSync(file, '[1, 2]');
    expectOneLine(await runCli(['run', file]), /list.json: a recipe is a JSON object/);
    fs.writeFileSync(file, '{"stacks": ');
    expectOneLine(await runCli(['run', file]), /list.json: cannot read the recipe: /);
  });

  test('paths are relative to the recipe; summary.json "options" is itself a valid recipe with the same result', async () => {
    const r = await runRecipe('good', { ...base, edge: { maskSigma: 2, post: [60, 'end'] } });
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(fs.readFileSync(path.join(r.out, 'summary.json'), 'utf8'));
    expect(s.options.edge).toEqual({ maskSigma: 2, post: [60, 'end'] });
    expect(s.parameters.edge.maskSigma).toBe(2);
    // The recorded options, fed back as a recipe (absolute paths now), run the same.
    const again = await runRecipe('again', { ...s.options, out: 'out-again' });
    expect(again.code, again.err).toBe(0);
    expect(fs.readFileSync(path.join(again.out, 'fov', 'edge', 'e0_half.npy')).equals(fs.readFileSync(path.join(r.out, 'fov', 'edge', 'e0_half.npy')))).toBe(true);
  });

  test('a field named "combined" does not collide with the combined/ folder', async () => {
    fs.copyFileSync(path.join(dir, 'fov.npy'), path.join(dir, 'combined.npy'));
    const r = await runRecipe('combined', { ...base, stacks: ['combined.npy', 'fov.npy'] });
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(fs.readFileSync(path.join(r.out, 'summary.json'), 'utf8'));
    expect(s.fields.map((f: { field: string }) => f.field)).toEqual(['combined_field', 'fov']);
    expect(fs.existsSync(path.join(r.out, 'combined_field', 'edge', 'e0_half.npy'))).toBe(true);
    expect(fs.existsSync(path.join(r.out, 'combined', 'e0_hist.csv'))).toBe(true);
  });

  test('a pattern matching too many files is one clear error', () => {
    const many = path.join(dir, 'many');
    fs.mkdirSync(many);
    for (let i = 0; i <= MAX_GLOB_MATCHES; i++) fs.writeFileSync(path.join(many, `f${i}.npy`), '');
    expect(() => expandFields([path.join(many, '*.npy')])).toThrow(new RegExp(`matches ${MAX_GLOB_MATCHES + 1} files, more than ${MAX_GLOB_MATCHES}`));
    fs.rmSync(many, { recursive: true });
  });
});

describe('the command line uses the same schema', () => {
  const stack = () => path.join(dir, 'fov.npy');
  const energies = () => path.join(dir, 'energies.txt');
  const cases: [string, () => string[], RegExp][] = [
    ['an unknown option names it and the nearest, nothing else', () => ['edge', stack(), '--energies', energies(), '--mask-sigm', '5', '--out', 'x'], /unknown option '--mask-sigm' \(Did you mean --mask-sigma\?\)$/],
    ['a missing required option', () => ['edge', stack(), '--energies', energies()], /--out: is required \(--out <dir>\)$/],
    ['--mask-sigma -5 (same check as the recipe)', () => ['edge', stack(), '--energies', energies(), '--mask-sigma', '-5', '--out', 'x'], /--mask-sigma: expected a number >= 0, got -5$/],
    ['--nnorm 7', () => ['edge', stack(), '--energies', energies(), '--nnorm', '7', '--out', 'x'], /--nnorm: expected one of 0, 1, 2, auto, got 7$/],
    ['--threads -3', () => ['edge', stack(), '--energies', energies(), '--threads', '-3', '--out', 'x'], /--threads: expected a whole number from 1 to 1024, got -3$/],
    ['--max-iter 2.5', () => ['fit', stack(), '--energies', energies(), '--model', 'erf-lorentz', '--max-iter', '2.5', '--out', 'x'], /--max-iter: expected a whole number from 1 to 10000, got 2.5$/],
    ['--init not an object', () => ['fit', stack(), '--energies', energies(), '--model', 'erf-lorentz', '--init', '[1,2]', '--out', 'x'], /--init: expected a JSON object/],
    ['--bounds not JSON', () => ['fit', stack(), '--energies', energies(), '--model', 'erf-lorentz', '--bounds', '{b3: 1}', '--out', 'x'], /--bounds: not valid JSON/],
    ['--k-range backwards', () => ['cluster', '--features', 'a.npy', '--k-range', '5:2', '--out', 'x'], /--k-range: expected a:b with a <= b/],
    ['--pre with one number', () => ['edge', stack(), '--energies', energies(), '--pre', '-150', '--out', 'x'], /--pre: expected two numbers 'a,b', got '-150'$/],
    ['--backend typo', () => ['edge', stack(), '--energies', energies(), '--backend', 'gpu', '--out', 'x'], /--backend: expected one of auto, webgpu, cpu, got "gpu"$/],
    ['an unknown command', () => ['edgee', stack()], /unknown command 'edgee' \(Did you mean edge\?\)$/],
  ];
  for (const [name, args, re] of cases) {
    test(name, async () => {
      const r = await runCli(args());
      expectOneLine(r, re);
      expect(fs.existsSync('x')).toBe(false);
    });
  }

  test('every option is declared once and every command lists only declared options', () => {
    for (const [command] of Object.entries(COMMANDS)) {
      const flags = commandOptions(command).filter((o) => !(command === 'run' && RUN_CLI_SKIP.has(`${o.section}.${o.name}`))).map((o) => o.flag);
      expect(new Set(flags).size, command).toBe(flags.length);
    }
    for (const [section, opts] of Object.entries(SECTIONS)) {
      for (const [name, def] of Object.entries(opts)) expect(def.help.length, `${section}.${name}`).toBeGreaterThan(5);
    }
  });

  test('nearest names: case, _ and - ignored; nothing near gives none', () => {
    expect(nearest('mask_sigma', ['maskSigma', 'nnorm'])).toBe('maskSigma');
    expect(nearest('memroy', ['memory', 'e0'])).toBe('memory');
    expect(nearest('zzzzzz', ['memory', 'e0'])).toBe(null);
  });
});
