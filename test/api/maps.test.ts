/**
 * The in-memory library API (src/api): maps of small synthetic cubes against their known
 * truth, and against the files the CLI writes for the same data and options (byte-equal:
 * both run the same step through the same tiled runner, so the same float32 values). The
 * calls must write nothing and install no signal handler.
 */
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { edgeMaps, fitMaps, lcfMaps, kmeans, pca } from '../../src/index.js';
import { InputError } from '../../src/io/errors.js';
import { makeNiTxmStack, loadNiReferences } from '../../src/synth/ni-txm.js';
import { syntheticPresetSpectra, vkGrid } from '../../src/models/synthetic.js';
import { DEFAULT_EDGE_OPTIONS } from '../../src/pipeline/edge-plan.js';
import { EdgeStatus } from '../../src/kernels/layout.js';
import { makeRng } from '../../src/synth/random.js';
import { readNpy, writeNpy } from '../../src/io/npy.js';
import { e0HalfTruthMap } from '../helpers/edge-truth.js';
import { runCli } from '../helpers/cli.js';

/** Noiseless e0_half recovery bound (the edge kernels' own test holds the same). */
const NOISELESS_E0_TOL_EV = 0.05;
/**
 * Noiseless lcf with the exact references and a linear background (the synthetic model is
 * exactly that): fractions equal the true state of charge up to float32 rounding of the
 * cube and of the outputs.
 */
const LCF_FRACTION_TOL = 1e-4;
/**
 * Noiseless fits of the preset on a dense grid: parameters recovered far below any noise a
 * measurement has; 1 meV on the edge energy bounds float32 rounding of the data.
 */
const FIT_E0_TOL_EV = 1e-3;
/**
 * The synthetic Ni cube is rank 2 after centring (thickness x (NiO + matrix) and thickness
 * x soc x (LiNiO2 - NiO), a constant film): two components explain all but float32 rounding.
 */
const PCA_RANK2_RESIDUAL = 1e-6;

const W = 24, H = 24;
let dir: string;
let ni: ReturnType<typeof makeNiTxmStack>;
let stackFile: string, energiesFile: string;
let sigint: number;

/** Calls that create or write files or folders while `fn` runs (stdout and stderr excepted). */
async function noWrites<T>(fn: () => Promise<T>): Promise<{ value: T; writes: string[] }> {
  const names = ['writeFileSync', 'mkdirSync', 'mkdtempSync', 'renameSync', 'appendFileSync', 'writeSync', 'createWriteStream', 'openSync'] as const;
  const spies = names.map((name) => [name, vi.spyOn(fs, name as 'openSync')] as const);
  try {
    const value = await fn();
    const writes: string[] = [];
    for (const [name, spy] of spies) {
      for (const call of spy.mock.calls as unknown[][]) {
        if (name === 'writeSync' && (call[0] === 1 || call[0] === 2)) continue;
        if (name === 'openSync' && (call[1] === undefined || call[1] === 'r')) continue;
        writes.push(`${name} ${String(call[0])}`);
      }
    }
    return { value, writes };
  } finally {
    spies.forEach(([, s]) => s.mockRestore());
  }
}

const npyBytes = (file: string) => fs.readFileSync(file).subarray(fs.readFileSync(file).length - 4 * W * H);
const mapBytes = (m: Float32Array) => Buffer.from(m.buffer, m.byteOffset, m.byteLength);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-api-'));
  ni = makeNiTxmStack({ width: W, height: H, seed: 7, noise: false });
  stackFile = path.join(dir, 'ni.npy');
  energiesFile = path.join(dir, 'ni-energies.txt');
  writeNpy(stackFile, ni.absorbance, [ni.energies.length, H, W]);
  fs.writeFileSync(energiesFile, Array.from(ni.energies, String).join('\n') + '\n');
  sigint = process.listenerCount('SIGINT');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('library API, in memory', () => {
  test('edgeMaps: e0_half within 0.05 eV of the truth; no file written, no signal handler', async () => {
    const { value: r, writes } = await noWrites(() => edgeMaps(ni.absorbance, ni.energies, { height: H, width: W, backend: 'cpu', threads: 1 }));
    expect(writes).toEqual([]);
    expect(process.listenerCount('SIGINT')).toBe(sigint);
    expect(process.listenerCount('SIGTERM')).toBe(0);
    expect(r.backend.name).toBe('cpu');
    expect(r.mapNames).toEqual(['e0_half', 'e0_deriv', 'edge_step', 'noise', 'mask', 'whiteline_energy', 'whiteline_height']);
    expect(r.units.e0_half).toBe('eV');
    const truth = e0HalfTruthMap(ni.truth.soc, ni.energies, DEFAULT_EDGE_OPTIONS);
    let n = 0, worst = 0;
    for (let p = 0; p < W * H; p++) {
      if (!(ni.truth.thickness[p] > 0)) continue;
      expect(r.status[p], `pixel ${p}`).toBe(EdgeStatus.OK);
      worst = Math.max(worst, Math.abs(r.maps.e0_half[p] - truth[p]));
      n++;
    }
    expect(n).toBeGreaterThan(100);
    expect(worst).toBeLessThan(NOISELESS_E0_TOL_EV);
    expect(r.statusCounts.ok).toBe(r.status.filter((s) => s === 0).length);
  });

  test('edgeMaps equals `xanes edge` byte for byte, on the CPU and on WebGPU', async () => {
    for (const backend of ['cpu', 'webgpu'] as const) {
      const out = path.join(dir, `edge-${backend}`);
      const cli = await runCli(['edge', stackFile, '--energies', energiesFile, '--out', out, '--backend', backend, '--threads', '1', '--pre', '-150,-40', '--mask-sigma', '2']);
      expect(cli.code, cli.err).toBe(0);
      const r = await edgeMaps(ni.absorbance, ni.energies, { height: H, width: W, backend, threads: 1, pre: [-150, -40], maskSigma: 2 });
      expect(r.backend.name).toBe(backend);
      const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
      expect(r.e0).toBe(summary.parameters.e0_eV);
      for (const name of r.mapNames) expect(mapBytes(r.maps[name]).equals(npyBytes(path.join(out, `${name}.npy`))), `${backend} ${name}`).toBe(true);
      expect(Buffer.from(r.status).equals(fs.readFileSync(path.join(out, 'status.npy')).subarray(-W * H)), `${backend} status`).toBe(true);
    }
    expect(process.listenerCount('SIGINT')).toBe(sigint + 1); // the CLI's own handler (the API added none)
  });

  test('lcfMaps: fractions equal the true state of charge; equal to `xanes lcf` byte for byte', async () => {
    const { nio, linio2 } = loadNiReferences();
    const refs = [{ name: 'NiO', energies: nio.energy, mu: nio.mu }, { name: 'LiNiO2', energies: linio2.energy, mu: linio2.mu }];
    const { value: r, writes } = await noWrites(() => lcfMaps(ni.absorbance, ni.energies, { height: H, width: W, references: refs, background: 'linear', refNorm: 'none', backend: 'cpu', threads: 1 }));
    expect(writes).toEqual([]);
    let n = 0;
    for (let p = 0; p < W * H; p++) {
      if (!(ni.truth.thickness[p] > 1)) continue;
      expect(Math.abs(r.maps.fraction_LiNiO2[p] - ni.truth.soc[p]), `pixel ${p}`).toBeLessThan(LCF_FRACTION_TOL);
      n++;
    }
    expect(n).toBeGreaterThan(100);
    expect(r.info.references).toEqual(['NiO', 'LiNiO2']);
    expect(r.references.map((x) => x.format)).toEqual(['array', 'array']);

    // The same references as files, through the CLI.
    const args = ['lcf', stackFile, '--energies', energiesFile, '--background', 'linear', '--ref-norm', 'none', '--backend', 'cpu', '--threads', '1'];
    for (const x of refs) {
      const f = path.join(dir, `${x.name}.txt`);
      fs.writeFileSync(f, Array.from(x.energies, (e, i) => `${e} ${x.mu[i]}`).join('\n') + '\n');
      args.push('--ref', `${x.name}=${f}`);
    }
    const out = path.join(dir, 'lcf');
    const cli = await runCli([...args, '--out', out]);
    expect(cli.code, cli.err).toBe(0);
    for (const name of r.mapNames) expect(mapBytes(r.maps[name]).equals(npyBytes(path.join(out, `${name}.npy`))), name).toBe(true);
  });

  test('fitMaps: noiseless preset spectra recovered; equal to `xanes fit` byte for byte', async () => {
    const FW = 8, FH = 6;
    const data = syntheticPresetSpectra(vkGrid(120), FW * FH, 11, [0]);
    const { value: r, writes } = await noWrites(() => fitMaps(data.cube, data.energies, { height: FH, width: FW, model: 'erf-2lorentz', backend: 'cpu', threads: 1 }));
    expect(writes).toEqual([]);
    expect(r.parameters).toEqual(data.model.paramNames);
    const b2 = data.model.paramNames.indexOf('b2');
    for (let p = 0; p < FW * FH; p++) {
      expect(r.status[p], `pixel ${p}`).toBe(0);
      expect(Math.abs(r.maps.b2[p] - data.truth[b2][p]), `pixel ${p}`).toBeLessThan(FIT_E0_TOL_EV);
    }
    const stack = path.join(dir, 'vk.npy'), energies = path.join(dir, 'vk-energies.txt'), out = path.join(dir, 'fit');
    writeNpy(stack, data.cube, [data.energies.length, FH, FW]);
    fs.writeFileSync(energies, Array.from(data.energies, String).join('\n') + '\n');
    const cli = await runCli(['fit', stack, '--energies', energies, '--model', 'erf-2lorentz', '--backend', 'cpu', '--threads', '1', '--out', out]);
    expect(cli.code, cli.err).toBe(0);
    for (const name of r.mapNames) {
      const file = fs.readFileSync(path.join(out, `${name}.npy`));
      expect(mapBytes(r.maps[name]).equals(file.subarray(file.length - 4 * FW * FH)), name).toBe(true);
    }
  });

  test('kmeans: three known groups found and numbered as `xanes cluster` numbers them', async () => {
    const n = W * H, rng = makeRng(5);
    const centres = [[0, 0], [5, 10], [10, 0]];
    const truth = Int32Array.from({ length: n }, (_, p) => p % 3);
    const a = new Float32Array(n), b = new Float32Array(n);
    for (let p = 0; p < n; p++) {
      a[p] = centres[truth[p]][0] + 0.5 * (rng.uniform() - 0.5);
      b[p] = centres[truth[p]][1] + 0.5 * (rng.uniform() - 0.5);
    }
    a[5] = NaN; // left out: label -1
    const mask = new Float32Array(n).fill(1);
    mask[7] = 0;
    const { value: r, writes } = await noWrites(() => kmeans({ a, b }, { k: 3, mask, backend: 'cpu', threads: 1 }));
    expect(writes).toEqual([]);
    expect(r.maskedPixels).toBe(1);
    // Clusters are numbered by their centres, first feature first: (0,0), (5,10), (10,0).
    for (let p = 0; p < n; p++) expect(r.labels[p], `pixel ${p}`).toBe(p === 5 || p === 7 ? -1 : truth[p]);
    expect(r.names).toEqual(['a', 'b']);

    const fa = path.join(dir, 'a.npy'), fb = path.join(dir, 'b.npy'), fm = path.join(dir, 'm.npy'), out = path.join(dir, 'cluster');
    writeNpy(fa, a, [H, W]);
    writeNpy(fb, b, [H, W]);
    writeNpy(fm, mask, [H, W]);
    const cli = await runCli(['cluster', '--features', `${fa},${fb}`, '--mask', fm, '--k', '3', '--backend', 'cpu', '--threads', '1', '--out', out]);
    expect(cli.code, cli.err).toBe(0);
    expect(Array.from(readNpy(path.join(out, 'labels.npy')).data as Int16Array)).toEqual(Array.from(r.labels));
  });

  test('pca: two components explain the rank-2 cube; scores equal `xanes pca` byte for byte', async () => {
    const { value: r, writes } = await noWrites(() => pca(ni.absorbance, ni.energies, { height: H, width: W, components: 2, backend: 'cpu', threads: 1 }));
    expect(writes).toEqual([]);
    expect(1 - r.model.explained[0].ratio - r.model.explained[1].ratio).toBeLessThan(PCA_RANK2_RESIDUAL);
    expect(r.scores.length).toBe(2);
    const out = path.join(dir, 'pca');
    const cli = await runCli(['pca', stackFile, '--energies', energiesFile, '--components', '2', '--backend', 'cpu', '--threads', '1', '--out', out]);
    expect(cli.code, cli.err).toBe(0);
    for (let k = 0; k < 2; k++) expect(mapBytes(r.scores[k]).equals(npyBytes(path.join(out, `score_${k + 1}.npy`))), `score_${k + 1}`).toBe(true);
  });

  test('options pass the CLI schema: a bad value or unknown key is one InputError naming it', async () => {
    const call = (o: Record<string, unknown>) => edgeMaps(ni.absorbance, ni.energies, { height: H, width: W, backend: 'cpu', ...o } as never);
    await expect(call({ maskSigma: -1 })).rejects.toThrow(new InputError('edgeMaps: maskSigma', 'expected a number >= 0, got -1'));
    await expect(call({ derivSmooth: 2 })).rejects.toThrow(/edgeMaps: derivSmooth: expected one of 1, 3, 5, 7, got 2/);
    await expect(call({ mask_sigma: 2 })).rejects.toThrow(/unknown option "mask_sigma"; did you mean "maskSigma"\?/);
    await expect(call({ backend: 'gpu' })).rejects.toThrow(/edgeMaps: backend: expected one of auto, webgpu, cpu/);
    await expect(call({ width: W + 1 })).rejects.toThrow(/cube: 58176 values is not 101 energies x 24 x 25 pixels/);
    await expect(edgeMaps(ni.absorbance, Array.from(ni.energies, (e) => e / 1000), { height: H, width: W })).rejects.toThrow(/keV\?/);
    await expect(edgeMaps(new Float32Array(ni.absorbance.length).fill(1), ni.energies, { height: H, width: W })).rejects.toThrow(/a constant stack/);
    await expect(fitMaps(ni.absorbance, ni.energies, { height: H, width: W, model: 'erf', fix: ['nope'] })).rejects.toThrow(/unknown parameter 'nope'/);
    await expect(kmeans([new Float32Array(4)], { k: 0 } as never)).rejects.toThrow(/kmeans: k: expected a whole number >= 1, got 0/);
    await expect(lcfMaps(ni.absorbance, ni.energies, { height: H, width: W, references: ['bad'] })).rejects.toThrow(/lcfMaps: ref: expected NAME=SOURCE/);
    expect(process.listenerCount('SIGINT')).toBe(sigint + 1);
  });
});
