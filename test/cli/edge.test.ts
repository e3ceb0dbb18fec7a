/**
 * `xanes edge`, `xanes info` and `xanes demo` through the CLI entry point, in process:
 * good inputs on both backends, and every bad input the issue lists (one clear error
 * line naming the file and the problem, exit code 2, nothing left in --out).
 */
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { adjustedRandIndex } from '../helpers/cluster.js';

/** The demo's three V domains overlap at disc edges and carry noise: ARI 0.9 still needs them separated. */
const DEMO_DOMAIN_ARI = 0.9;
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { writeNpy, readNpy } from '../../src/io/npy.js';

let dir: string;
let stackPath: string;
let energiesPath: string;
const W = 24, H = 20;

const run = runCli;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-cli-'));
  const s = makeNiTxmStack({ width: W, height: H, seed: 5, noise: true });
  const nE = s.energies.length;
  const a = new Float32Array(nE * W * H);
  for (let i = 0; i < a.length; i++) a[i] = -Math.log((s.sample[i] - s.dark[i]) / (s.flat[i] - s.dark[i]));
  // Pixel 0: all NaN; pixel 1: constant. Masked and counted, not an error.
  for (let e = 0; e < nE; e++) { a[e * W * H] = NaN; a[e * W * H + 1] = 0.5; }
  stackPath = path.join(dir, 'stack.npy');
  writeNpy(stackPath, a, [nE, H, W]);
  energiesPath = path.join(dir, 'energies.txt');
  fs.writeFileSync(energiesPath, Array.from(s.energies).join('\n') + '\n');
});

afterEach(() => {
  for (const f of fs.readdirSync(dir)) if (f.startsWith('out')) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
});

describe('xanes edge', () => {
  test('runs on both backends; outputs agree; summary records backend, adapter and counts', async () => {
    const maps: Record<string, Float32Array> = {};
    for (const backend of ['webgpu', 'cpu']) {
      const out = path.join(dir, `out-${backend}`);
      const r = await run(['edge', stackPath, '--energies', energiesPath, '--backend', backend, '--out', out]);
      expect(r.code, r.err).toBe(0);
      for (const f of ['e0_half', 'e0_deriv', 'edge_step', 'noise', 'mask', 'whiteline_energy', 'whiteline_height']) {
        expect(fs.existsSync(path.join(out, `${f}.npy`)), f).toBe(true);
        expect(fs.existsSync(path.join(out, `${f}.tif`)), f).toBe(true);
      }
      for (const f of ['e0_hist.csv', 'e0_half_range.png', 'e0_half_peak.png', 'summary.json', 'status.npy']) expect(fs.existsSync(path.join(out, f)), f).toBe(true);
      const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
      expect(summary.finished).toBe(true);
      expect(summary.backend.name).toBe(backend);
      expect(summary.backend.adapter.length).toBeGreaterThan(3);
      expect(summary.counts.status.no_data).toBeGreaterThanOrEqual(1); // the all-NaN pixel
      expect(summary.counts.pixels).toBe(W * H);
      const e0 = readNpy(path.join(out, 'e0_half.npy'));
      expect(e0.shape).toEqual([H, W]);
      expect(Number.isNaN((e0.data as Float32Array)[0])).toBe(true);
      expect(Number.isNaN((e0.data as Float32Array)[1])).toBe(true);
      maps[backend] = e0.data as Float32Array;
      expect(fs.readFileSync(path.join(out, 'e0_hist.csv'), 'utf8').split('\n')[0]).toBe('bin_start,bin_end,count');
    }
    let compared = 0;
    for (let p = 0; p < W * H; p++) {
      const a = maps.webgpu[p], b = maps.cpu[p];
      if (Number.isNaN(a) || Number.isNaN(b)) { expect(Number.isNaN(a)).toBe(Number.isNaN(b)); continue; }
      // Same tolerance as test/kernels/edge.test.ts (float32 ulp at 8.3 keV plus arithmetic).
      expect(Math.abs(a - b)).toBeLessThan(3e-3);
      compared++;
    }
    expect(compared).toBeGreaterThan(50);
  });

  const bad: [string, (d: string) => string[], RegExp][] = [
    ['energies not strictly increasing', (d) => {
      const f = path.join(d, 'energies-bad-order.txt');
      const e = fs.readFileSync(energiesPath, 'utf8').trim().split('\n');
      [e[10], e[11]] = [e[11], e[10]];
      fs.writeFileSync(f, e.join('\n'));
      return ['edge', stackPath, '--energies', f];
    }, /energies-bad-order\.txt: .*not strictly increasing/],
    ['energy count differs from the stack depth', (d) => {
      const f = path.join(d, 'energies-short.txt');
      fs.writeFileSync(f, fs.readFileSync(energiesPath, 'utf8').trim().split('\n').slice(0, 50).join('\n'));
      return ['edge', stackPath, '--energies', f];
    }, /energies-short\.txt: energy count 50 != stack depth \d+/],
    ['non-numeric energy', (d) => {
      const f = path.join(d, 'energies-text.txt');
      const e = fs.readFileSync(energiesPath, 'utf8').trim().split('\n');
      e[5] = 'abc';
      fs.writeFileSync(f, e.join('\n'));
      return ['edge', stackPath, '--energies', f];
    }, /energies-text\.txt: line 6: 'abc' is not a number/],
    ['truncated .npy', (d) => {
      const f = path.join(d, 'truncated.npy');
      const b = fs.readFileSync(stackPath);
      fs.writeFileSync(f, b.subarray(0, b.length - 1000));
      return ['edge', f, '--energies', energiesPath];
    }, /truncated\.npy: truncated \.npy/],
    ['unsupported dtype', (d) => {
      const f = path.join(d, 'complex.npy');
      const hdr = "{'descr': '<c8', 'fortran_order': False, 'shape': (2, 2, 2), }";
      const pad = 64 - ((10 + hdr.length + 1) % 64);
      const h = Buffer.from(hdr + ' '.repeat(pad % 64) + '\n');
      const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 255, h.length >> 8]);
      fs.writeFileSync(f, Buffer.concat([pre, h, Buffer.alloc(64)]));
      return ['edge', f, '--energies', energiesPath];
    }, /complex\.npy: unsupported dtype '<c8'/],
    ['missing stack file', (d) => ['edge', path.join(d, 'nope.npy'), '--energies', energiesPath], /nope\.npy: /],
    ['dark without flat', () => ['edge', stackPath, '--energies', energiesPath, '--dark', stackPath], /--dark: needs --flat/],
    ['flat of another shape', (d) => {
      const f = path.join(d, 'flat-small.npy');
      writeNpy(f, new Float32Array(101 * 4 * 4).fill(1000), [101, 4, 4]);
      return ['edge', stackPath, '--energies', energiesPath, '--flat', f];
    }, /flat-small\.npy: flat images are 4x4, the stack's 20x24/],
    ['bad --memory', () => ['edge', stackPath, '--energies', energiesPath, '--memory', 'lots'], /--memory: expected a number, got 'lots'/],
    ['memory budget too small', () => ['edge', stackPath, '--energies', energiesPath, '--memory', '1'], /--memory: .*needs at least/],
  ];
  for (const [name, args, message] of bad) {
    test(`bad input: ${name}`, async () => {
      const out = path.join(dir, 'out-bad');
      const r = await run([...args(dir), '--out', out, '--backend', 'cpu']);
      expect(r.code, r.out + r.err).toBe(2);
      const lines = r.err.trim().split('\n');
      expect(lines.length, r.err).toBe(1);
      expect(lines[0]).toMatch(/^xanes: error: /);
      expect(lines[0]).toMatch(message);
      expect(fs.existsSync(out)).toBe(false);
      expect(fs.readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
    });
  }

  test('refuses to overwrite a folder that is not an earlier output', async () => {
    const out = path.join(dir, 'out-precious');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'thesis.tex'), 'x');
    const r = await run(['edge', stackPath, '--energies', energiesPath, '--out', out, '--backend', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/out-precious: exists and was not written by xanes/);
    expect(fs.readFileSync(path.join(out, 'thesis.tex'), 'utf8')).toBe('x');
  });
});

describe('xanes info and demo', () => {
  test('info prints shape, energies, values and memory', async () => {
    const r = await run(['info', stackPath, '--energies', energiesPath]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/shape \[E,H,W\] = \[101, 20, 24\]/);
    expect(r.out).toMatch(/energies 8212\.\d+ \.\. 8777\.\d+ eV/);
    expect(r.out).toMatch(/non-finite/);
    expect(r.out).toMatch(/needs at least \d+ MiB/);
  });

  test('demo writes the example data and the edge maps', async () => {
    const demoDir = path.join(dir, 'out-demo');
    const r = await run(['demo', '--dir', demoDir, '--size', '40']);
    expect(r.code, r.err).toBe(0);
    for (const f of ['data/sample.tif', 'data/flat.tif', 'data/dark.tif', 'data/energies.txt', 'data/ni_txm_fxi.h5', 'data/truth_soc.npy', 'edge/e0_half.npy', 'edge/summary.json', 'edge/results.h5']) {
      expect(fs.existsSync(path.join(demoDir, f)), f).toBe(true);
    }
    // The demo's edge step reads the FXI-layout HDF5 file: flat, dark and energies from it.
    const s = JSON.parse(fs.readFileSync(path.join(demoDir, 'edge', 'summary.json'), 'utf8'));
    expect(s.inputs.read.layout.name).toBe('fxi');
    expect(s.inputs.read.flat_from).toContain('/img_bkg');
    expect(s.inputs.read.pixel_size_um.x).toBeCloseTo(30 / 40, 6);
    expect(r.out).toMatch(/edge maps: /);
    // Seed 002: composition maps beside the fit, and k-means on b2, Re_Ne_over_N_V and
    // PE_over_b1 weighted by N_V; the three synthetic domains come back at the elbow.
    for (const f of ['fit/N_V.npy', 'fit/Re_Ne.npy', 'fit/Re_Ne_over_N_V.npy', 'cluster_composition/labels.npy', 'cluster_composition/summary.json']) {
      expect(fs.existsSync(path.join(demoDir, f)), f).toBe(true);
    }
    const cc = JSON.parse(fs.readFileSync(path.join(demoDir, 'cluster_composition', 'summary.json'), 'utf8'));
    expect(cc.features).toEqual(['b2', 'Re_Ne_over_N_V', 'PE_over_b1']);
    expect(cc.inputs.weight).toBe('N_V');
    expect(cc.k).toBe(3);
    const labels = readNpy(path.join(demoDir, 'cluster_composition', 'labels.npy')).data as Int16Array;
    const truth = readNpy(path.join(demoDir, 'data', 'truth_vk_domain.npy')).data as Int16Array;
    const both = Array.from(labels.keys()).filter((p) => labels[p] >= 0 && truth[p] >= 0);
    const ari = adjustedRandIndex(both.map((p) => truth[p]), both.map((p) => labels[p]));
    console.log(`demo seed-002 clustering: k ${cc.k}, ${both.length} pixels, ARI ${ari.toFixed(3)} against the domains`);
    expect(ari).toBeGreaterThan(DEMO_DOMAIN_ARI);
    expect(r.out).toMatch(/composition clusters: /);
  });
});
