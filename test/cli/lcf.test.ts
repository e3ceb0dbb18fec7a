/**
 * `xanes lcf` and `xanes spectra` through the CLI on the real STXM Fe L-edge fixture
 * (48 x 48 crop) and on the synthetic Ni stack with file references; bad inputs.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../helpers/cli.js';
import { readNpy, writeNpy } from '../../src/io/npy.js';
import { exampleDataPath } from '../../src/synth/paths.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = path.join(here, '..', 'fixtures', 'stxm-fe-l3');
const hdr = path.join(fixture, '71214098.hdr');
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-lcf-'));
});

describe('xanes lcf', () => {
  test('two region references on the real STXM stack, both backends agree; RGB legend in the summary', async () => {
    const total: Record<string, Float32Array> = {};
    for (const backend of ['webgpu', 'cpu']) {
      const out = path.join(dir, `lcf-${backend}`);
      const r = await runCli(['lcf', hdr, '--i0-region', 'auto', '--ref', 'peak710=rect:18,28,26,34', '--ref', 'peak708=rect:32,0,42,6', '--mode', 'nnls', '--background', 'const', '--backend', backend, '--out', out]);
      expect(r.code, r.err).toBe(0);
      const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
      expect(s.finished).toBe(true);
      expect(s.backend.name).toBe(backend);
      expect(s.rgb_legend.channels.map((c: { channel: string; reference: string }) => `${c.channel}:${c.reference}`)).toEqual(['red:peak710', 'green:peak708']);
      for (const f of ['weight_peak710.npy', 'fraction_peak708.tif', 'total.npy', 'bg_const.npy', 'residual_rms.npy', 'rfactor.npy', 'rgb.png']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
      total[backend] = readNpy(path.join(out, 'total.npy')).data as Float32Array;
    }
    // Same tolerance idea as test/kernels/lcf.test.ts: float32 against float64, relative to the scale.
    let scale = 0;
    for (const v of total.cpu) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
    for (let p = 0; p < total.cpu.length; p++) {
      if (!Number.isFinite(total.cpu[p])) continue;
      expect(Math.abs(total.webgpu[p] - total.cpu[p])).toBeLessThan(1e-3 * scale);
    }
  });

  test('file references on the synthetic Ni stack (sum-to-one)', async () => {
    const r0 = await runCli(['demo', '--dir', path.join(dir, 'demo'), '--size', '32']);
    expect(r0.code, r0.err).toBe(0);
    const d = path.join(dir, 'demo', 'data');
    const out = path.join(dir, 'lcf-ni');
    const r = await runCli(['lcf', path.join(d, 'sample.tif'), '--energies', path.join(d, 'energies.txt'), '--flat', path.join(d, 'flat.tif'), '--dark', path.join(d, 'dark.tif'),
      '--ref', `NiO=${exampleDataPath('ni-k/ref_NiO.txt')}`, '--ref', `LiNiO2=${exampleDataPath('ni-k/ref_LiNiO2.txt')}`, '--mode', 'nnls-sum1', '--normalize', '--backend', 'cpu', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const f = readNpy(path.join(out, 'fraction_LiNiO2.npy')).data as Float32Array;
    const soc = readNpy(path.join(d, 'truth_soc.npy')).data as Float32Array;
    const thick = readNpy(path.join(d, 'truth_thickness.npy')).data as Float32Array;
    // Fraction of LiNiO2 = the state of charge, on pixels with a real edge (jump >= 0.5).
    const err: number[] = [];
    for (let p = 0; p < f.length; p++) if (thick[p] * 0.115 >= 0.5) err.push(Math.abs(f[p] - soc[p]));
    err.sort((a, b) => a - b);
    expect(err.length).toBeGreaterThan(50);
    expect(err[err.length >> 1]).toBeLessThan(0.05);
  });

  const bad: [string, () => string[], RegExp][] = [
    ['a reference that does not cover the energy range', () => {
      const f = path.join(dir, 'short-ref.txt');
      fs.writeFileSync(f, '705 1\n710 2\n715 1\n');
      return ['--ref', `short=${f}`, '--ref', 'p=rect:18,28,26,34'];
    }, /short: reference .*covers 705\.00\.\.715\.00 eV, which does not include the fit range/],
    ['linearly dependent references', () => ['--ref', 'a=rect:18,28,26,34', '--ref', 'b=rect:18,28,26,34'], /--ref: a, b .*linearly dependent/],
    ['a region outside the image', () => ['--ref', 'a=rect:40,40,60,60', '--ref', 'b=rect:18,28,26,34'], /--ref a: .*outside/],
    ['a mask of the wrong shape', () => {
      const m = path.join(dir, 'mask-small.npy');
      writeNpy(m, new Uint8Array(9).fill(1), [3, 3]);
      return ['--ref', `a=mask:${m}`, '--ref', 'b=rect:18,28,26,34'];
    }, /mask-small\.npy: .*3 x 3|mask-small\.npy: .*shape/],
    ['an unknown mode', () => ['--ref', 'a=rect:18,28,26,34', '--mode', 'best'], /--mode: expected one of ls, nnls, sum1, nnls-sum1, got "best"/],
  ];
  for (const [name, args, msg] of bad) {
    test(`bad input: ${name}`, async () => {
      const out = path.join(dir, 'lcf-bad');
      const r = await runCli(['lcf', hdr, '--i0-region', 'auto', ...args(), '--backend', 'cpu', '--out', out]);
      expect(r.code, r.out).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(msg);
      expect(fs.existsSync(out)).toBe(false);
    });
  }

  test('bad input: a .hdr whose .xim files are missing', async () => {
    const broken = path.join(dir, 'broken');
    fs.mkdirSync(broken);
    for (const f of fs.readdirSync(fixture)) if (!f.endsWith('_a050.xim')) fs.copyFileSync(path.join(fixture, f), path.join(broken, f));
    const out = path.join(dir, 'lcf-bad2');
    const r = await runCli(['lcf', path.join(broken, '71214098.hdr'), '--i0-region', 'auto', '--ref', 'a=rect:18,28,26,34', '--backend', 'cpu', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/71214098_a050\.xim/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('xanes spectra', () => {
  test('region spectra and a comparison against a second stack', async () => {
    const out = path.join(dir, 'spectra');
    const r = await runCli(['spectra', hdr, '--i0-region', 'auto', '--roi', 'big=rect:18,28,26,34', '--roi', 'thin=circle:37,3,3', '--compare', hdr, '--out', out]);
    expect(r.code, r.err).toBe(0);
    for (const f of ['spectra.csv', 'spectra.png', 'compare.csv', 'difference.png', 'summary.json']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    // The same stack against itself: the difference is exactly zero.
    for (const roi of s.compare.rois) expect(roi.maxAbsDiff).toBe(0);
  });
});
