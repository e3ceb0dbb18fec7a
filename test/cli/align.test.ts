/**
 * `xanes align` and `--align` through the CLI entry point, in process: outputs, the sign
 * convention of shifts.csv, crop, TIFF, --shifts round trip, and bad inputs (one error line,
 * exit code 2, nothing left behind).
 */
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli.js';
import { writeNpy, readNpy } from '../../src/io/npy.js';
import { makeRng } from '../../src/synth/random.js';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { h5wasm } from '../../src/io/hdf5.js';
import { openStack } from '../../src/stack/source.js';

let dir: string;
const H = 32, W = 32, nE = 4;
/** Content displacement of each image (px): positive dy = moved down. */
const SHIFTS = [[0, 0], [2, -3], [-1, 4], [2, 1]];
let base: Float32Array;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-align-cli-'));
  const rng = makeRng(31);
  // A smooth random image (sum of a few Gaussians) so Fourier and bicubic shifts are accurate.
  base = new Float32Array(H * W);
  for (let k = 0; k < 12; k++) {
    const cy = rng.uniform() * H, cx = rng.uniform() * W, s = 2 + 3 * rng.uniform(), a = rng.normal();
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) base[y * W + x] += a * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s));
  }
  const cube = new Float32Array(nE * H * W);
  SHIFTS.forEach(([dy, dx], e) => {
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) cube[e * H * W + ((y + dy + H) % H) * W + ((x + dx + W) % W)] = base[y * W + x];
  });
  writeNpy(path.join(dir, 'stack.npy'), cube, [nE, H, W]);
  writeNpy(path.join(dir, 'one.npy'), base, [1, H, W]);
  fs.writeFileSync(path.join(dir, 'e.txt'), '8330\n8340\n8350\n8360\n');
  fs.writeFileSync(path.join(dir, 'e1.txt'), '8330\n');
});

afterEach(() => {
  for (const f of fs.readdirSync(dir)) if (f.startsWith('out')) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
});

const args = (...extra: string[]) => ['align', path.join(dir, 'stack.npy'), '--energies', path.join(dir, 'e.txt'), '--backend', 'cpu', ...extra];

describe('xanes align', () => {
  test('writes aligned.npy, shifts.csv (index,energy_eV,dy_px,dx_px; +dy = content moved down), shifts.png and summary.json', async () => {
    const out = path.join(dir, 'out1');
    const r = await runCli(args('--ref-energy', '8330', '--out', out));
    expect(r.code).toBe(0);
    // Image 2 moved by (-3, +7) px from image 1: more than the default --max-jump of 5 px.
    expect(r.err.trim().split('\n')).toEqual(['xanes: image 2 (8350 eV) jumped by (-3.00, 7.00) px from its neighbour, more than --max-jump 5 px']);
    const csv = fs.readFileSync(path.join(out, 'shifts.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('index,energy_eV,dy_px,dx_px');
    expect(csv[1]).toBe('0,8330,0,0');
    csv.slice(1).forEach((line, e) => {
      const [i, en, dy, dx] = line.split(',').map(Number);
      expect([i, en]).toEqual([e, 8330 + 10 * e]);
      expect(dy).toBeCloseTo(SHIFTS[e][0], 3);
      expect(dx).toBeCloseTo(SHIFTS[e][1], 3);
    });
    const a = readNpy(path.join(out, 'aligned.npy'));
    expect(a.shape).toEqual([nE, H, W]);
    expect(a.dtype).toBe('float32');
    // Every aligned image is the base image, NaN where its content had left the frame.
    const used = csv.slice(1).map((l) => l.split(',').slice(2).map(Number));
    for (let e = 0; e < nE; e++) {
      let nan = 0;
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        const v = a.data[e * H * W + y * W + x];
        const [dy, dx] = used[e];
        const outside = y + dy < 0 || y + dy > H - 1 || x + dx < 0 || x + dx > W - 1;
        if (outside) { expect(v).toBeNaN(); nan++; } else expect(v).toBeCloseTo(base[y * W + x], 4);
      }
      if (e > 0) expect(nan).toBeGreaterThan(0);
    }
    expect(fs.existsSync(path.join(out, 'shifts.png'))).toBe(true);
    const s = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(s.finished).toBe(true);
    expect(s.alignment.strategy).toBe('reference');
    expect(s.alignment.applied_with).toBe('fourier');
    expect(s.backend.name).toBe('cpu');
  });

  test('--crop common cuts to the area valid at every energy; --interp bicubic --tiff; --shifts applies a shifts.csv again', async () => {
    const out = path.join(dir, 'out2');
    expect((await runCli(args('--crop', 'common', '--interp', 'bicubic', '--tiff', '--out', out))).code).toBe(0);
    const a = readNpy(path.join(out, 'aligned.npy'));
    // Chained from the middle image (index 2): displacements relative to it span dy -3..1, dx -7..0.
    const dys = SHIFTS.map((s) => s[0] - SHIFTS[2][0]), dxs = SHIFTS.map((s) => s[1] - SHIFTS[2][1]);
    const h = H - (Math.max(...dys) - Math.min(...dys)), w = W - (Math.max(...dxs) - Math.min(...dxs));
    expect(a.shape).toEqual([nE, h, w]);
    expect([...a.data].every(Number.isFinite)).toBe(true);
    expect(fs.statSync(path.join(out, 'aligned.tif')).size).toBeGreaterThan(4 * nE * h * w);
    const again = path.join(dir, 'out3');
    expect((await runCli(args('--shifts', path.join(out, 'shifts.csv'), '--crop', 'common', '--interp', 'bicubic', '--out', again))).code).toBe(0);
    expect(Buffer.compare(fs.readFileSync(path.join(again, 'aligned.npy')), fs.readFileSync(path.join(out, 'aligned.npy')))).toBe(0);
  });

  test('an HDF5 stack gives an HDF5 (NeXus) aligned stack, equal to the .npy path\'s', async () => {
    const h5 = await h5wasm();
    const file = path.join(dir, 'stack.h5');
    const f = new h5.File(file, 'w');
    f.create_dataset({ name: 'stack', data: readNpy(path.join(dir, 'stack.npy')).data as Float32Array, shape: [nE, H, W], dtype: '<f4' });
    f.close();
    const outH = path.join(dir, 'out-h5'), outN = path.join(dir, 'out-npy');
    expect((await runCli(['align', `${file}#/stack`, '--energies', path.join(dir, 'e.txt'), '--backend', 'cpu', '--out', outH])).code).toBe(0);
    expect((await runCli(args('--out', outN))).code).toBe(0);
    expect(fs.existsSync(path.join(outH, 'aligned.npy'))).toBe(false);
    const a = await openStack(`${path.join(outH, 'aligned.h5')}#/entry/data/data`);
    expect([a.nE, a.height, a.width]).toEqual([nE, H, W]);
    const got = new Float32Array(nE * H * W);
    await a.readRows(0, H, got);
    a.close();
    const want = readNpy(path.join(outN, 'aligned.npy')).data as Float32Array;
    for (let i = 0; i < got.length; i++) expect(Object.is(got[i], want[i]) || got[i] === want[i]).toBe(true);
  });

  test('bad inputs: one error line, exit code 2, no output folder', async () => {
    const cases: [string[], RegExp][] = [
      [['align', path.join(dir, 'one.npy'), '--energies', path.join(dir, 'e1.txt')], /at least two images/],
      [args("--on", "edges"), /--on: expected one of intensity, gradient, got "edges"/],
      [args('--ref-energy', '9000'), /--ref-energy: 9000 eV is outside/],
      [args('--roi', 'rect:0,0,40,40'), /--roi: 'rect:0,0,40,40' lies outside the image/],
      [args('--shifts', path.join(dir, 'e.txt')), /no 'index' column/],
      [args("--max-jump", "-1"), /--max-jump: expected a number > 0/],
    ];
    for (const [a, re] of cases) {
      const out = path.join(dir, 'out-bad');
      const r = await runCli([...a, '--out', out]);
      expect(r.code, a.join(' ')).toBe(2);
      expect(r.err).toMatch(re);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(fs.existsSync(out)).toBe(false);
      expect(fs.readdirSync(dir).some((f) => f.includes('.partial-'))).toBe(false);
    }
  });
});

describe('--align on other commands', () => {
  test('xanes edge --align records the alignment and writes its shifts; --shifts alone applies them', async () => {
    const s = makeNiTxmStack({ width: 32, height: 32, seed: 3, noise: false });
    const n = s.energies.length;
    const A = new Float32Array(n * 32 * 32);
    // The absorbance, each image rolled down by one more pixel every 20 energies.
    for (let e = 0; e < n; e++) {
      const d = Math.floor(e / 20);
      for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) A[e * 1024 + ((y + d) % 32) * 32 + x] = s.absorbance[e * 1024 + y * 32 + x];
    }
    writeNpy(path.join(dir, 'ni.npy'), A, [n, 32, 32]);
    fs.writeFileSync(path.join(dir, 'ni.txt'), Array.from(s.energies).join('\n'));
    const out = path.join(dir, 'out-edge');
    const r = await runCli(['edge', path.join(dir, 'ni.npy'), '--energies', path.join(dir, 'ni.txt'), '--align', '--ref-energy', String(s.energies[0]), '--backend', 'cpu', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const sum = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(sum.alignment.strategy).toBe('reference');
    expect(sum.alignment.dy_px.map((v: number) => Math.round(v * 10) / 10 + 0)).toEqual(Array.from({ length: n }, (_, e) => Math.floor(e / 20)));
    expect(fs.readFileSync(path.join(out, 'shifts.csv'), 'utf8').split('\n')[0]).toBe('index,energy_eV,dy_px,dx_px');
    const out2 = path.join(dir, 'out-edge2');
    const r2 = await runCli(['edge', path.join(dir, 'ni.npy'), '--energies', path.join(dir, 'ni.txt'), '--shifts', path.join(out, 'shifts.csv'), '--backend', 'cpu', '--out', out2]);
    expect(r2.code, r2.err).toBe(0);
    expect(Buffer.compare(fs.readFileSync(path.join(out2, 'e0_half.npy')), fs.readFileSync(path.join(out, 'e0_half.npy')))).toBe(0);
  });
});
