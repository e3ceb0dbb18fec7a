/**
 * `xanes run`: several steps in one pass per field, several fields, products across
 * fields, a recipe file, bad recipes, and an interrupted run leaving nothing that looks
 * complete.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { writeNpy, readNpy } from '../../src/io/npy.js';
import { exampleDataPath } from '../../src/synth/paths.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let dir: string;
let energies: string;
const fieldsOf = (d: string) => [path.join(d, 'fov_a.npy'), path.join(d, 'fov_b.npy')];
const refs = () => ['--ref', `NiO=${exampleDataPath('ni-k/ref_NiO.txt')}`, '--ref', `LiNiO2=${exampleDataPath('ni-k/ref_LiNiO2.txt')}`];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-run-'));
  // Two fields of view of different sizes, absorbance .npy stacks.
  [[20, 24, 1], [16, 30, 2]].forEach(([h, w, seed], i) => {
    const s = makeNiTxmStack({ width: w, height: h, seed, noise: true });
    const a = new Float32Array(s.sample.length);
    for (let j = 0; j < a.length; j++) a[j] = -Math.log((s.sample[j] - s.dark[j]) / (s.flat[j] - s.dark[j]));
    writeNpy(fieldsOf(dir)[i], a, [s.energies.length, h, w]);
    if (i === 0) {
      energies = path.join(dir, 'energies.txt');
      fs.writeFileSync(energies, Array.from(s.energies).join('\n'));
    }
  });
});

describe('xanes run', () => {
  test('edge + lcf + cluster over two fields equals the single commands, per field', async () => {
    const out = path.join(dir, 'out-run');
    const r = await runCli(['run', path.join(dir, 'fov_*.npy'), '--energies', energies, '--steps', 'edge,lcf,cluster', '--e0', '8343', ...refs(),
      '--mode', 'nnls-sum1', '--background', 'linear', '--features', 'edge:e0_half,lcf:fraction_LiNiO2', '--k', '2', '--weight', 'edge:edge_step', '--backend', 'cpu', '--threads', '1', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(s.finished).toBe(true);
    expect(s.fields.map((f: { field: string }) => f.field)).toEqual(['fov_a', 'fov_b']);
    expect(s.spectra).toBe(20 * 24 + 16 * 30);
    // The run's per-field maps are the bytes the single commands write.
    for (const field of ['fov_a', 'fov_b']) {
      const single = path.join(dir, `out-edge-${field}`);
      const e = await runCli(['edge', path.join(dir, `${field}.npy`), '--energies', energies, '--e0', '8343', '--backend', 'cpu', '--threads', '1', '--out', single]);
      expect(e.code, e.err).toBe(0);
      for (const m of ['e0_half', 'edge_step', 'whiteline_energy']) {
        expect(fs.readFileSync(path.join(out, field, 'edge', `${m}.npy`)).equals(fs.readFileSync(path.join(single, `${m}.npy`))), `${field} ${m}`).toBe(true);
      }
      const l = await runCli(['lcf', path.join(dir, `${field}.npy`), '--energies', energies, ...refs(), '--mode', 'nnls-sum1', '--background', 'linear', '--backend', 'cpu', '--threads', '1', '--out', `${single}-lcf`]);
      expect(l.code, l.err).toBe(0);
      expect(fs.readFileSync(path.join(out, field, 'lcf', 'fraction_LiNiO2.npy')).equals(fs.readFileSync(path.join(`${single}-lcf`, 'fraction_LiNiO2.npy')))).toBe(true);
      const labels = readNpy(path.join(out, field, 'cluster', 'labels.npy'));
      expect(labels.dtype).toBe('int16');
    }
    // One histogram over both fields: its counts are the used pixels of both.
    const hist = fs.readFileSync(path.join(out, 'combined', 'e0_hist.csv'), 'utf8').trim().split('\n').slice(1);
    const counted = hist.reduce((acc, line) => acc + Number(line.split(',')[2]), 0);
    const used = s.fields.reduce((acc: number, f: { steps: { edge: { status: { ok: number } } } }) => acc + f.steps.edge.status.ok, 0);
    expect(counted).toBe(used);
    expect(fs.existsSync(path.join(out, 'combined', 'cluster', 'centres.csv'))).toBe(true);
  });

  test('a recipe file gives the same result as the command line', async () => {
    const recipe = path.join(dir, 'recipe.json');
    fs.writeFileSync(recipe, JSON.stringify({ stacks: ['fov_a.npy'], energies: 'energies.txt', steps: ['edge'], e0: 8343, edge: { maskSigma: 2 }, backend: 'cpu', out: 'out-recipe' }));
    const r = await runCli(['run', recipe, '--threads', '1']);
    expect(r.code, r.err).toBe(0);
    const cli = await runCli(['run', fieldsOf(dir)[0], '--energies', energies, '--steps', 'edge', '--e0', '8343', '--mask-sigma', '2', '--backend', 'cpu', '--threads', '1', '--out', path.join(dir, 'out-cli')]);
    expect(cli.code, cli.err).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'out-recipe', 'fov_a', 'edge', 'mask.npy')).equals(fs.readFileSync(path.join(dir, 'out-cli', 'fov_a', 'edge', 'mask.npy')))).toBe(true);
  });

  test('--mask: NaN in every step\'s maps and the no-data status where the mask is 0; the same as edge --mask', async () => {
    const mask = new Float32Array(20 * 24);
    for (let p = 0; p < mask.length; p++) mask[p] = (p % 24) < 12 ? 1 : 0;
    const mfile = path.join(dir, 'run-mask.npy');
    writeNpy(mfile, mask, [20, 24]);
    const out = path.join(dir, 'out-run-mask');
    const r = await runCli(['run', fieldsOf(dir)[0], '--energies', energies, '--steps', 'edge,lcf', '--e0', '8343', ...refs(), '--mask', mfile, '--backend', 'cpu', '--threads', '1', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const single = path.join(dir, 'out-edge-mask');
    const e = await runCli(['edge', fieldsOf(dir)[0], '--energies', energies, '--e0', '8343', '--mask', mfile, '--backend', 'cpu', '--threads', '1', '--out', single]);
    expect(e.code, e.err).toBe(0);
    expect(fs.readFileSync(path.join(out, 'fov_a', 'edge', 'e0_half.npy')).equals(fs.readFileSync(path.join(single, 'e0_half.npy')))).toBe(true);
    for (const m of ['edge/e0_half', 'edge/edge_step', 'lcf/weight_NiO', 'lcf/total']) {
      const a = readNpy(path.join(out, 'fov_a', `${m}.npy`)).data as Float32Array;
      for (let p = 0; p < a.length; p++) if (!mask[p]) expect(Number.isNaN(a[p]), `${m} at ${p}`).toBe(true);
      expect(a.some((v, p) => mask[p] === 1 && Number.isFinite(v)), m).toBe(true);
    }
    // A mask of another size is one line, exit 2.
    const bad = await runCli(['run', fieldsOf(dir)[1], '--energies', energies, '--steps', 'edge', '--e0', '8343', '--mask', mfile, '--backend', 'cpu', '--out', path.join(dir, 'out-run-mask-bad')]);
    expect(bad.code).toBe(2);
    expect(bad.err.trim()).toMatch(/--mask: .*shape \[20, 24\], the stack's images are \[16, 30\]$/);
  });

  const bad: [string, string[], RegExp][] = [
    ['an unknown step', ['--steps', 'edge,magic'], /--steps: expected one of edge, fit, lcf, cluster, got "magic"/],
    ['a cluster feature of a step not run', ['--steps', 'edge,cluster', '--features', 'lcf:fraction_NiO', '--k', '2'], /--features: 'lcf:fraction_NiO': name a map of a step in this run/],
    ['a glob matching nothing', ['--steps', 'edge'], /nothing_\*\.npy: the pattern matches no file/],
  ];
  for (const [name, args, msg] of bad) {
    test(`bad input: ${name}`, async () => {
      const out = path.join(dir, 'out-bad');
      const stacks = name === 'a glob matching nothing' ? [path.join(dir, 'nothing_*.npy')] : fieldsOf(dir);
      const r = await runCli(['run', ...stacks, '--energies', energies, ...args, '--backend', 'cpu', '--out', out]);
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(msg);
      expect(fs.existsSync(out)).toBe(false);
    });
  }

  test('lcf --normalize in a run masks as `xanes lcf` does (its --mask-sigma, default 3), byte for byte', async () => {
    for (const sigma of [[], ['--mask-sigma', '5']]) {
      const tag = sigma.length ? 's5' : 'default';
      const out = path.join(dir, `out-run-norm-${tag}`), single = path.join(dir, `out-lcf-norm-${tag}`);
      const common = [...refs(), '--normalize', '--mode', 'nnls', ...sigma, '--backend', 'cpu', '--threads', '1'];
      const r = await runCli(['run', fieldsOf(dir)[0], '--energies', energies, '--steps', 'lcf', ...common, '--out', out]);
      expect(r.code, r.err).toBe(0);
      const l = await runCli(['lcf', fieldsOf(dir)[0], '--energies', energies, ...common, '--out', single]);
      expect(l.code, l.err).toBe(0);
      for (const m of ['status', 'fraction_LiNiO2', 'edge_step']) {
        expect(fs.readFileSync(path.join(out, 'fov_a', 'lcf', `${m}.npy`)).equals(fs.readFileSync(path.join(single, `${m}.npy`))), `${tag} ${m}`).toBe(true);
      }
    }
  });

  test('SIGINT in the middle of a run leaves no output folder and no temporary folder', async () => {
    const out = path.join(dir, 'out-interrupted');
    const child = spawn(process.execPath, [path.join(repo, 'bin', 'xanes.js'), 'run', 'synthetic:3000x2000', '--steps', 'edge', '--e0', '8343', '--backend', 'cpu', '--threads', '1', '--out', out], { stdio: 'ignore' });
    child.on('error', (e) => { throw e; });
    // Interrupt once the temporary folder exists (the run has started writing).
    const started = Date.now();
    while (!fs.readdirSync(dir).some((f) => f.startsWith('out-interrupted.partial-')) && Date.now() - started < 60_000) await new Promise((r) => setTimeout(r, 50));
    expect(fs.readdirSync(dir).some((f) => f.startsWith('out-interrupted.partial-'))).toBe(true);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    expect(code).toBe(130);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('out-interrupted'))).toEqual([]);
  });
});
