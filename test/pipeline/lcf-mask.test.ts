/**
 * Masks that follow the element, in lcf: a sample with empty regions (only a support film and
 * noise there). The RGB composite (rgbComposite, from which rgb.png is drawn, with the
 * brightness map the run names in summary.json) must be black where the sample is empty, in
 * each mode: nnls with a background (brightness = total weight), least squares (`ls`:
 * fractions NaN where the total is not significantly above zero, never +-10^4), and
 * --normalize with sum-to-one (brightness = edge step; empty pixels masked by the step).
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runLcf } from '../../src/pipeline/lcf-run.js';
import { rgbComposite } from '../../src/plot/rgb.js';
import { niMixtureSpectrum, niTxmEnergies } from '../../src/synth/ni-txm.js';
import { exampleDataPath } from '../../src/synth/paths.js';
import { makeRng } from '../../src/synth/random.js';
import { writeNpy, readNpy } from '../../src/io/npy.js';
import { LcfStatus } from '../../src/cpu/lcf.js';

const SEED = 120301;
const W = 24, H = 24;
const SIGMA = 0.005;
/** Sample pixels: the right half; the left half holds only the film and noise. */
const isSample = (p: number) => p % W >= W / 2;
/** An empty pixel may be at most this bright in any channel (of 255): visibly black. */
const EMPTY_MAX_CHANNEL = 8;

let dir: string;
const E = niTxmEnergies();
const nE = E.length;
const P = W * H;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-lcf-mask-'));
  const rng = makeRng(SEED);
  const cube = new Float32Array(nE * P);
  for (let p = 0; p < P; p++) {
    const mix = isSample(p) ? niMixtureSpectrum(rng.uniform(), E) : null;
    const t = 0.5 + rng.uniform();
    for (let i = 0; i < nE; i++) cube[i * P + p] = 0.02 + (mix ? t * mix[i] : 0) + SIGMA * rng.normal();
  }
  writeNpy(path.join(dir, 'stack.npy'), cube, [nE, H, W]);
  fs.writeFileSync(path.join(dir, 'energies.txt'), Array.from(E).join('\n') + '\n');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function run(name: string, mode: string, background: string, normalize: boolean) {
  const out = path.join(dir, name);
  const summary: any = await runLcf({
    stack: path.join(dir, 'stack.npy'), energies: path.join(dir, 'energies.txt'), out,
    refs: [`NiO=${exampleDataPath('ni-k/ref_NiO.txt')}`, `LiNiO2=${exampleDataPath('ni-k/ref_LiNiO2.txt')}`],
    mode, background, normalize, backend: 'cpu', threads: 1, budgetBytes: 2048 * 2 ** 20, notice: () => {},
  });
  const map = (n: string) => readNpy(path.join(out, `${n}.npy`)).data as Float32Array;
  const names = ['NiO', 'LiNiO2'];
  const intensity = map(summary.rgb_legend.intensity.map);
  const { rgba } = rgbComposite(names.map((n) => map(`fraction_${n}`)), W, H, { names, intensity });
  const status = readNpy(path.join(out, 'status.npy')).data as Uint8Array;
  return { summary, map, rgba, status };
}

function checkBlack(rgba: Uint8ClampedArray, where: string) {
  let black = 0, empty = 0, bright = 0;
  for (let p = 0; p < P; p++) {
    const c = Math.max(rgba[4 * p], rgba[4 * p + 1], rgba[4 * p + 2]);
    if (isSample(p)) {
      if (c >= 64) bright++;
      continue;
    }
    empty++;
    expect(c, `${where}: empty pixel ${p}`).toBeLessThanOrEqual(EMPTY_MAX_CHANNEL);
    if (c === 0) black++;
  }
  expect(black / empty, `${where}: exactly black`).toBeGreaterThanOrEqual(0.97);
  expect(bright / (P - empty), `${where}: sample pixels visible`).toBeGreaterThanOrEqual(0.9);
}

describe('lcf masks and the RGB composite on a sample with empty regions', () => {
  test('nnls + constant background: brightness = total; empty pixels black, status low_total or no_total', async () => {
    const r = await run('nnls', 'nnls', 'const', false);
    expect(r.summary.rgb_legend.intensity.map).toBe('total');
    checkBlack(r.rgba, 'nnls');
    let low = 0;
    for (let p = 0; p < P; p++) if (!isSample(p) && (r.status[p] === LcfStatus.LOW_TOTAL || r.status[p] === LcfStatus.NO_TOTAL)) low++;
    expect(low / (P / 2)).toBeGreaterThanOrEqual(0.97);
  });

  test('ls: fractions NaN where the total is not significant, never huge', async () => {
    const r = await run('ls', 'ls', 'const', false);
    const f = r.map('fraction_LiNiO2');
    let nan = 0;
    for (let p = 0; p < P; p++) {
      if (Number.isFinite(f[p])) expect(Math.abs(f[p]), `pixel ${p}`).toBeLessThan(10);
      else if (!isSample(p)) nan++;
      if (isSample(p)) expect(Number.isFinite(f[p]), `sample pixel ${p}`).toBe(true);
    }
    expect(nan / (P / 2)).toBeGreaterThanOrEqual(0.97);
    checkBlack(r.rgba, 'ls');
  });

  test('--normalize nnls-sum1: brightness = edge step; empty pixels masked and black', async () => {
    const r = await run('norm', 'nnls-sum1', 'none', true);
    expect(r.summary.rgb_legend.intensity.map).toBe('edge_step');
    checkBlack(r.rgba, '--normalize');
  });
});

describe('--mask travels: an earlier edge mask makes every map NaN and the picture black there', () => {
  test('edge mask.npy into lcf and fit-like maps', async () => {
    const mask = new Float32Array(P);
    for (let p = 0; p < P; p++) mask[p] = isSample(p) && p % 7 !== 0 ? 1 : 0;
    const mdir = path.join(dir, 'edge-like');
    fs.mkdirSync(mdir);
    writeNpy(path.join(mdir, 'mask.npy'), mask, [H, W]);
    const out = path.join(dir, 'masked');
    const s: any = await runLcf({
      stack: path.join(dir, 'stack.npy'), energies: path.join(dir, 'energies.txt'), out, mask: mdir,
      refs: [`NiO=${exampleDataPath('ni-k/ref_NiO.txt')}`, `LiNiO2=${exampleDataPath('ni-k/ref_LiNiO2.txt')}`],
      mode: 'nnls', background: 'const', backend: 'cpu', threads: 1, budgetBytes: 2048 * 2 ** 20, notice: () => {},
    });
    expect(s.counts.masked_by_mask).toBe(mask.filter((v) => v === 0).length);
    const status = readNpy(path.join(out, 'status.npy')).data as Uint8Array;
    for (const name of ['weight_NiO', 'fraction_LiNiO2', 'total', 'residual_rms']) {
      const m = readNpy(path.join(out, `${name}.npy`)).data as Float32Array;
      for (let p = 0; p < P; p++) if (!mask[p]) expect(Number.isNaN(m[p]), `${name} at ${p}`).toBe(true);
    }
    for (let p = 0; p < P; p++) if (!mask[p]) expect(status[p]).toBe(LcfStatus.NO_DATA);
  });
});

describe('one NaN policy in lcf: a non-finite point is dropped for that pixel only', () => {
  test('pixels with missing points are fitted on the rest, the same on both backends', async () => {
    const stack = readNpy(path.join(dir, 'stack.npy')).data as Float32Array;
    const holed = Float32Array.from(stack);
    const rng = makeRng(SEED + 7);
    for (let p = 0; p < P; p++) if (isSample(p)) for (let i = 0; i < nE; i++) if (rng.uniform() < 0.08) holed[i * P + p] = NaN;
    writeNpy(path.join(dir, 'holed.npy'), holed, [nE, H, W]);
    const fit = async (stackFile: string, backend: 'cpu' | 'webgpu', name: string) => {
      const out = path.join(dir, name);
      await runLcf({
        stack: path.join(dir, stackFile), energies: path.join(dir, 'energies.txt'), out,
        refs: [`NiO=${exampleDataPath('ni-k/ref_NiO.txt')}`, `LiNiO2=${exampleDataPath('ni-k/ref_LiNiO2.txt')}`],
        mode: 'nnls', background: 'const', backend, threads: 1, budgetBytes: 2048 * 2 ** 20, notice: () => {},
      });
      return { f: readNpy(path.join(out, 'fraction_LiNiO2.npy')).data as Float32Array, status: readNpy(path.join(out, 'status.npy')).data as Uint8Array };
    };
    const full = await fit('stack.npy', 'cpu', 'nan-full');
    const cpu = await fit('holed.npy', 'cpu', 'nan-cpu');
    const gpu = await fit('holed.npy', 'webgpu', 'nan-gpu');
    let n = 0;
    const diffs: number[] = [];
    for (let p = 0; p < P; p++) {
      if (!isSample(p)) continue;
      expect(cpu.status[p], `pixel ${p}`).toBe(LcfStatus.OK);
      expect(gpu.status[p], `pixel ${p}`).toBe(LcfStatus.OK);
      // Both backends solve the holed pixels on the host (float64): the same fractions up to
      // the float32 kernels' rounding of the complete pixels.
      expect(Math.abs(cpu.f[p] - gpu.f[p]), `pixel ${p}`).toBeLessThan(1e-3);
      diffs.push(Math.abs(cpu.f[p] - full.f[p]));
      n++;
    }
    diffs.sort((a, b) => a - b);
    // 8 % fewer points: the fraction moves by about its own noise (~0.01), never far.
    expect(diffs[diffs.length >> 1]).toBeLessThan(0.02);
    expect(n).toBe(P / 2);
  });
});
