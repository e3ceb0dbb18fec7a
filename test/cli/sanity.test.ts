/**
 * Physical sanity checks through the CLI: blank and constant stacks, flat and dark fields
 * swapped or a dark field brighter than the flat, a flat field that is the sample itself, and
 * energies in keV without --energy-unit, each one error line (exit 2) naming the real culprit,
 * and no output folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { writeNpy } from '../../src/io/npy.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-sanity-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const W = 16, H = 12;
const s = makeNiTxmStack({ width: W, height: H, seed: 3, noise: true });
const nE = s.energies.length;
const file = (name: string, data: Float32Array) => {
  const p = path.join(dir, name);
  writeNpy(p, data, [nE, H, W]);
  return p;
};
const sample = file('sample.npy', s.sample);
const flat = file('flat.npy', s.flat);
const dark = file('dark.npy', s.dark);
const energies = path.join(dir, 'energies.txt');
fs.writeFileSync(energies, Array.from(s.energies).join('\n') + '\n');
const energiesKeV = path.join(dir, 'energies-keV.txt');
fs.writeFileSync(energiesKeV, Array.from(s.energies, (e) => (e / 1000).toFixed(6)).join('\n') + '\n');

async function expectOneError(args: string[], pattern: RegExp): Promise<void> {
  const out = path.join(dir, 'out');
  const r = await runCli([...args, '--out', out, '--backend', 'cpu']);
  expect(r.code, r.err).toBe(2);
  const lines = r.err.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(fs.existsSync(out)).toBe(false);
  expect(fs.readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
}
const esc = (p: string) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('stacks with nothing to measure name the stack', () => {
  test('all zero', async () => {
    const zero = file('zero.npy', new Float32Array(nE * H * W));
    await expectOneError(['edge', zero, '--energies', energies], new RegExp(`^xanes: error: ${esc(zero)}: every value in 12 rows sampled across the image is 0 \\(an empty or blank stack\\): there is no spectrum to measure$`));
  });

  test('constant', async () => {
    const c = file('const.npy', new Float32Array(nE * H * W).fill(0.5));
    await expectOneError(['edge', c, '--energies', energies], new RegExp(`^xanes: error: ${esc(c)}: every value .* is 0\\.5 \\(a constant stack\\)`));
    await expectOneError(['cluster', c, '--energies', energies, '--k', '2'], new RegExp(`^xanes: error: ${esc(c)}: every value .* is 0\\.5`));
  });
});

describe('flat and dark fields', () => {
  test('the same stack runs with the fields the right way round', async () => {
    const out = path.join(dir, 'ok');
    const r = await runCli(['edge', sample, '--energies', energies, '--flat', flat, '--dark', dark, '--backend', 'cpu', '--out', out]);
    expect(r.code, r.err).toBe(0);
    fs.rmSync(out, { recursive: true, force: true });
  });

  test('swapped: the dark field is named, with the likely cause', async () => {
    await expectOneError(['edge', sample, '--energies', energies, '--flat', dark, '--dark', flat], new RegExp(`^xanes: error: ${esc(flat)}: the dark field is at least as bright as the flat field ${esc(dark)} at 100 % of the points sampled: are --flat and --dark swapped\\?$`));
  });

  test('a dark field brighter than the flat over most of the image', async () => {
    const bright = file('bright-dark.npy', s.flat.map((v, i) => (i % 5 === 0 ? 0.5 * v : 1.5 * v)));
    await expectOneError(['edge', sample, '--energies', energies, '--flat', flat, '--dark', bright], new RegExp(`^xanes: error: ${esc(bright)}: the dark field is at least as bright as the flat field ${esc(flat)} at 80 % of the points`));
  });

  test('the flat field is the sample: the flat field is named', async () => {
    await expectOneError(['edge', sample, '--energies', energies, '--flat', sample], new RegExp(`^xanes: error: ${esc(sample)}: the flat field equals the sample ${esc(sample)} at 100 % of the points sampled: the absorbance would be zero everywhere`));
    const copy = file('flat-copy.npy', s.sample);
    await expectOneError(['edge', sample, '--energies', energies, '--flat', copy, '--dark', dark], new RegExp(`^xanes: error: ${esc(copy)}: the flat field equals the sample`));
  });
});

describe('energies in keV need --energy-unit in every command', () => {
  const keV = new RegExp(`^xanes: error: ${esc(energiesKeV)}: every energy is below 100 eV \\(the last is 8\\.\\d+\\): keV\\? Pass --energy-unit keV`);

  test('edge, fit, cluster, lcf, spectra and info refuse them; edge with --energy-unit keV runs', async () => {
    await expectOneError(['edge', sample, '--energies', energiesKeV, '--flat', flat, '--dark', dark], keV);
    await expectOneError(['fit', sample, '--energies', energiesKeV, '--flat', flat, '--model', 'erf-2lorentz'], keV);
    await expectOneError(['cluster', sample, '--energies', energiesKeV, '--flat', flat, '--k', '2'], keV);
    await expectOneError(['lcf', sample, '--energies', energiesKeV, '--flat', flat, '--ref', 'A=rect:0,0,4,4', '--ref', 'B=rect:8,8,12,12'], keV);
    await expectOneError(['spectra', sample, '--energies', energiesKeV, '--flat', flat, '--roi', 'a=rect:0,0,4,4'], keV);
    const r = await runCli(['info', sample, '--energies', energiesKeV]);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toMatch(keV);
    const out = path.join(dir, 'kev-ok');
    const ok = await runCli(['edge', sample, '--energies', energiesKeV, '--energy-unit', 'keV', '--flat', flat, '--dark', dark, '--backend', 'cpu', '--out', out]);
    expect(ok.code, ok.err).toBe(0);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.inputs.energy_range_eV[0]).toBeCloseTo(s.energies[0], 2);
  });
});
