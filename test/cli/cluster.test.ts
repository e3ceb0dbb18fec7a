/** `xanes pca` and `xanes cluster` through the CLI: outputs, summaries, bad inputs. */
import { beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { makeRng } from '../../src/synth/random.js';
import { writeDemoData } from '../../src/cli/demo.js';
import { readNpy, writeNpy } from '../../src/io/npy.js';

let dir: string;
let data: ReturnType<typeof writeDemoData>;
const SIZE = 40;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-cluster-'));
  data = writeDemoData(path.join(dir, 'demo'), SIZE);
  const r = await runCli(['edge', data.sample, '--energies', data.energies, '--flat', data.flat, '--dark', data.dark, '--mask-sigma', '5', '--out', path.join(dir, 'edge'), '--backend', 'cpu']);
  expect(r.code, r.err).toBe(0);
});

const stackArgs = () => [data.sample, '--energies', data.energies, '--flat', data.flat, '--dark', data.dark];

describe('xanes cluster', () => {
  test('maps of an earlier run, elbow over k, weighted fractions', async () => {
    const out = path.join(dir, 'cl1');
    const r = await runCli(['cluster', '--from', path.join(dir, 'edge'), '--features', 'e0_half,whiteline_height', '--k-range', '2:5', '--weight', 'edge_step', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(s.finished).toBe(true);
    expect(s.k).toBeGreaterThanOrEqual(2);
    expect(s.k).toBeLessThanOrEqual(5);
    expect(s.elbow.table.map((x: { k: number }) => x.k)).toEqual([2, 3, 4, 5]);
    expect(['webgpu', 'cpu']).toContain(s.backend.name);
    expect(s.weighted_fractions.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 6);
    const labels = readNpy(path.join(out, 'labels.npy'));
    expect(labels.dtype).toBe('int16');
    expect(labels.shape).toEqual([SIZE, SIZE]);
    // Masked pixels (NaN e0_half) are excluded: -1.
    const e0 = readNpy(path.join(dir, 'edge', 'e0_half.npy')).data as Float32Array;
    const l = labels.data as Int16Array;
    for (let p = 0; p < l.length; p++) expect(l[p] === -1).toBe(Number.isNaN(e0[p]));
    for (const f of ['elbow.csv', 'elbow.png', 'centres.csv', 'clusters.csv', 'labels.png', 'distance.npy']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    expect(fs.readFileSync(path.join(out, 'elbow.csv'), 'utf8').split('\n')[0]).toBe('k,wcss');
  });

  test('a stack through PCA scores, with mean spectra per cluster, on both backends', async () => {
    for (const backend of ['webgpu', 'cpu']) {
      const out = path.join(dir, `cl2-${backend}`);
      const r = await runCli(['cluster', ...stackArgs(), '--pca', '2', '--k', '3', '--backend', backend, '--out', out]);
      expect(r.code, r.err).toBe(0);
      const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
      expect(s.k).toBe(3);
      expect(s.backend.name).toBe(backend);
      expect(s.pca.components).toBe(2);
      // PCA scores are clustered in their own units by default (not z-scored).
      expect(s.parameters.standardize).toBe('none');
      expect(s.standardized).toBe(false);
      expect(s.standardization).toBe('none');
      for (const f of ['cluster_spectra.csv', 'cluster_spectra.png', 'pca/score_1.npy', 'pca/scree.csv']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
    }
  });

  const bad: [string, string[], RegExp][] = [
    ['both --k and --k-range', ['--k', '3', '--k-range', '2:4'], /--k: give exactly one of --k N and --k-range/],
    ['--from without --features', ['--k', '3', '--from', 'x'], /--from: name the maps to cluster/],
    ['a map name not in --from', ['--k', '3', '--features', 'nope'], /--features: no map 'nope' in /],
  ];
  for (const [name, args, msg] of bad) {
    test(`bad input: ${name}`, async () => {
      const out = path.join(dir, 'cl-bad');
      const extra = name === 'a map name not in --from' ? ['--from', path.join(dir, 'edge')] : [];
      const r = await runCli(['cluster', ...args, ...extra, '--out', out, '--backend', 'cpu']);
      expect(r.code).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(msg);
      expect(fs.existsSync(out)).toBe(false);
    });
  }

  test('bad input: a weight map of another shape', async () => {
    const w = path.join(dir, 'weight-small.npy');
    writeNpy(w, new Float32Array(9).fill(1), [3, 3]);
    const out = path.join(dir, 'cl-bad2');
    const r = await runCli(['cluster', '--from', path.join(dir, 'edge'), '--features', 'e0_half', '--k', '2', '--weight', w, '--out', out, '--backend', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/weight-small\.npy: weight map is 3 x 3/);
    expect(fs.existsSync(out)).toBe(false);
  });
});

describe('xanes pca', () => {
  test('scree, score maps and summary', async () => {
    const out = path.join(dir, 'pca');
    const r = await runCli(['pca', ...stackArgs(), '--components', '3', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(s.finished).toBe(true);
    const ratios = s.explained_variance.map((x: { ratio: number }) => x.ratio);
    expect(ratios[0]).toBeGreaterThan(0.5);
    expect(ratios.reduce((a: number, b: number) => a + b, 0)).toBeLessThanOrEqual(1 + 1e-9);
    for (const f of ['score_1.npy', 'score_3.tif', 'recon_error.npy', 'scree.csv', 'scree.png']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
  });

  test('--reconstruct n: the stack rebuilt from n components removes the noise of a rank-2 stack', async () => {
    // mean + a(p) v1 + b(p) v2 + noise: two components hold every signal.
    const E = 30, H = 16, W = 16, P = H * W, SIGMA = 0.01;
    const rng = makeRng(120701);
    const clean = new Float32Array(E * P), noisy = new Float32Array(E * P);
    for (let p = 0; p < P; p++) {
      const a = rng.uniform(), b = rng.uniform();
      for (let e = 0; e < E; e++) {
        const v = 0.5 + a * Math.sin(e / 5) + b * Math.exp(-(((e - 15) / 4) ** 2));
        clean[e * P + p] = v;
        noisy[e * P + p] = v + SIGMA * rng.normal();
      }
    }
    const stack = path.join(dir, 'rank2.npy');
    writeNpy(stack, noisy, [E, H, W]);
    const eFile = path.join(dir, 'rank2-e.txt');
    fs.writeFileSync(eFile, Array.from({ length: E }, (_, i) => 700 + i).join('\n') + '\n');
    const out = path.join(dir, 'pca-recon');
    const r = await runCli(['pca', stack, '--energies', eFile, '--components', '2', '--reconstruct', '2', '--backend', 'cpu', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const rec = readNpy(path.join(out, 'reconstructed.npy'));
    expect(rec.shape).toEqual([E, H, W]);
    const x = rec.data as Float32Array;
    let dClean = 0, dNoisy = 0;
    for (let i = 0; i < E * P; i++) {
      dClean += (x[i] - clean[i]) ** 2;
      dNoisy += (x[i] - noisy[i]) ** 2;
    }
    const rmsClean = Math.sqrt(dClean / (E * P)), rmsNoisy = Math.sqrt(dNoisy / (E * P));
    // The residual against the input is the noise outside two dimensions (~SIGMA); the
    // reconstruction keeps only ~2 of 30 dimensions of the noise: ~SIGMA sqrt(2/30).
    expect(rmsNoisy).toBeGreaterThan(0.8 * SIGMA);
    expect(rmsClean).toBeLessThan(0.4 * SIGMA);
  });
});
