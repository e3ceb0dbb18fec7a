/**
 * Regions (rect, circle, mask), their validation, streamed mean / std spectra against a
 * direct computation, and the region-spectra outputs (CSV, PNG, --compare differences).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { decode } from 'fast-png';
import { parseRegion, regionSpectra } from '../../src/stack/regions.js';
import { MemoryStack } from '../../src/stack/source.js';
import { writeNpy } from '../../src/io/npy.js';
import { writeTiffFloat32, writeTiffStack } from '../../src/io/tiff.js';
import { parseRoiArg, writeRegionSpectra } from '../../src/pipeline/spectra.js';
import { makeRng } from '../../src/synth/random.js';
import { expectInputError, tempDir } from '../io/helpers.js';

const dir = tempDir('regions');
const W = 23, H = 17, nE = 9;
const SEED = 5150;

function cubeOf(seed: number): Float32Array {
  const rng = makeRng(seed);
  // Large mean, small spread: the case where a naive sum-of-squares variance loses digits.
  return Float32Array.from({ length: nE * H * W }, () => 3000 + 5 * rng.normal());
}

/** Mean and sample std over the region's finite values, directly, per energy. */
function direct(cube: Float32Array, inside: (x: number, y: number) => boolean): { mean: number[]; std: number[]; n: number[] } {
  const out = { mean: [] as number[], std: [] as number[], n: [] as number[] };
  for (let e = 0; e < nE; e++) {
    const v: number[] = [];
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if (inside(x, y) && Number.isFinite(cube[e * H * W + y * W + x])) v.push(cube[e * H * W + y * W + x]);
    const m = v.reduce((s, a) => s + a, 0) / v.length;
    out.mean.push(m);
    out.std.push(Math.sqrt(v.reduce((s, a) => s + (a - m) ** 2, 0) / (v.length - 1)));
    out.n.push(v.length);
  }
  return out;
}

describe('region specs', () => {
  test('rect is half-open, circle takes pixel centres within r, mask takes non-zero finite pixels', async () => {
    const r = await parseRegion('rect:2,3,5,7', W, H, '--roi a');
    expect([r.kind, r.x0, r.y0, r.x1, r.y1, r.pixels]).toEqual(['rect', 2, 3, 5, 7, 12]);
    expect([r.contains(2, 3), r.contains(4, 6), r.contains(5, 6), r.contains(4, 7)]).toEqual([true, true, false, false]);
    const whole = await parseRegion('rect:0,0,23,17', W, H, '--roi a');
    expect(whole.pixels).toBe(W * H);

    const c = await parseRegion('circle:10,8,2.5', W, H, '--roi c');
    let n = 0;
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) if ((x - 10) ** 2 + (y - 8) ** 2 <= 6.25) n++;
    expect(c.pixels).toBe(n);
    expect(n).toBe(21);
    expect([c.contains(10, 8), c.contains(12, 9), c.contains(12, 10)]).toEqual([true, true, false]);

    const m = new Uint8Array(W * H);
    m[3 * W + 4] = 1;
    m[10 * W + 20] = 7;
    writeNpy(path.join(dir, 'mask.npy'), m, [H, W]);
    const mf = new Float32Array(W * H);
    mf[3 * W + 4] = 0.5;
    mf[5 * W + 5] = NaN; // not finite: out
    writeTiffFloat32(path.join(dir, 'mask.tif'), mf, W, H);
    const rm = await parseRegion(`mask:${path.join(dir, 'mask.npy')}`, W, H, '--roi m');
    expect([rm.pixels, rm.x0, rm.y0, rm.x1, rm.y1, rm.contains(4, 3), rm.contains(20, 10), rm.contains(5, 5)]).toEqual([2, 4, 3, 21, 11, true, true, false]);
    const rt = await parseRegion(`mask:${path.join(dir, 'mask.tif')}`, W, H, '--roi m');
    expect([rt.pixels, rt.contains(4, 3), rt.contains(5, 5)]).toEqual([1, true, false]);
  });

  test('regions outside the image, wrong masks and bad syntax are InputErrors', async () => {
    await expectInputError(() => parseRegion('rect:0,0,24,5', W, H, '--roi big'), '--roi big', /lies outside the image: the image is 23 x 17 pixels/);
    await expectInputError(() => parseRegion('rect:-1,0,3,5', W, H, '--roi a'), '--roi a', 'outside the image');
    await expectInputError(() => parseRegion('rect:30,30,40,40', W, H, '--roi a'), '--roi a', 'outside the image');
    await expectInputError(() => parseRegion('rect:5,0,5,5', W, H, '--roi a'), '--roi a', 'x0 < x1');
    await expectInputError(() => parseRegion('rect:1,2,3', W, H, '--roi a'), '--roi a', 'expected rect:x0,y0,x1,y1');
    await expectInputError(() => parseRegion('rect:1.5,2,3,4', W, H, '--roi a'), '--roi a', 'integers');
    await expectInputError(() => parseRegion('circle:1,8,2', W, H, '--ref c'), '--ref c', 'outside the image');
    await expectInputError(() => parseRegion('circle:10,15.5,2', W, H, '--ref c'), '--ref c', 'outside the image');
    await expectInputError(() => parseRegion('circle:10,8,0', W, H, '--ref c'), '--ref c', 'radius must be positive');
    await expectInputError(() => parseRegion('circle:10.5,8.5,0.4', W, H, '--ref c'), '--ref c', 'no pixel centre');
    await expectInputError(() => parseRegion('box:1,2,3,4', W, H, '--roi a'), '--roi a', 'not a region');
    await expectInputError(() => parseRegion('1,2,3,4', W, H, '--roi a'), '--roi a', 'not a region');

    writeNpy(path.join(dir, 'small.npy'), new Uint8Array(W * (H - 1)).fill(1), [H - 1, W]);
    await expectInputError(() => parseRegion(`mask:${path.join(dir, 'small.npy')}`, W, H, '--roi m'), path.join(dir, 'small.npy'), 'mask is 23 x 16 pixels (W x H), the stack is 23 x 17');
    writeNpy(path.join(dir, 'transposed.npy'), new Uint8Array(W * H).fill(1), [W, H]);
    await expectInputError(() => parseRegion(`mask:${path.join(dir, 'transposed.npy')}`, W, H, '--roi m'), path.join(dir, 'transposed.npy'), 'mask is 17 x 23 pixels');
    writeNpy(path.join(dir, 'cube.npy'), new Uint8Array(2 * W * H), [2, H, W]);
    await expectInputError(() => parseRegion(`mask:${path.join(dir, 'cube.npy')}`, W, H, '--roi m'), path.join(dir, 'cube.npy'), 'must be a 2-D array');
    writeTiffFloat32(path.join(dir, 'small.tif'), new Float32Array(5 * 4).fill(1), 5, 4);
    await expectInputError(() => parseRegion(`mask:${path.join(dir, 'small.tif')}`, W, H, '--roi m'), path.join(dir, 'small.tif'), 'mask is 5 x 4 pixels');
    writeTiffStack(path.join(dir, 'pages.tif'), new Float32Array(2 * W * H).fill(1), W, H, 2);
    await expectInputError(() => parseRegion(`mask:${path.join(dir, 'pages.tif')}`, W, H, '--roi m'), path.join(dir, 'pages.tif'), 'single image');
    writeNpy(path.join(dir, 'zeros.npy'), new Float32Array(W * H), [H, W]);
    await expectInputError(() => parseRegion(`mask:${path.join(dir, 'zeros.npy')}`, W, H, '--roi m'), path.join(dir, 'zeros.npy'), 'selects no pixel');
    await expectInputError(() => parseRegion(`mask:${path.join(dir, 'none.npy')}`, W, H, '--roi m'), path.join(dir, 'none.npy'), 'no such file');
    fs.writeFileSync(path.join(dir, 'mask.png'), 'x');
    await expectInputError(() => parseRegion(`mask:${path.join(dir, 'mask.png')}`, W, H, '--roi m'), path.join(dir, 'mask.png'), 'unknown mask format');
  });
});

describe('region spectra', () => {
  test('streamed mean and std equal a direct computation, at any read size, skipping NaN', async () => {
    const cube = cubeOf(SEED);
    cube[2 * H * W + 4 * W + 3] = NaN;
    cube[5 * H * W + 6 * W + 4] = Infinity;
    const stack = new MemoryStack(cube, nE, H, W);
    const regions = [
      { name: 'r', region: await parseRegion('rect:1,2,9,12', W, H, 'r') },
      { name: 'c', region: await parseRegion('circle:15,9,4', W, H, 'c') },
      { name: 'all', region: await parseRegion(`rect:0,0,${W},${H}`, W, H, 'all') },
    ];
    const big = await regionSpectra(stack, regions);
    const small = await regionSpectra(stack, regions, 4 * nE * W); // one row per read
    for (let k = 0; k < regions.length; k++) {
      const d = direct(cube, regions[k].region.contains);
      for (let e = 0; e < nE; e++) {
        for (const s of [big[k], small[k]]) {
          expect(s.count[e]).toBe(d.n[e]);
          // float64 accumulation of float32 values: relative error ~1e-15 of the mean.
          expect(Math.abs(s.mean[e] - d.mean[e])).toBeLessThan(1e-12 * d.mean[e]);
          expect(Math.abs(s.std[e] - d.std[e])).toBeLessThan(1e-9 * d.std[e]);
        }
      }
    }
    expect([big[0].skipped, big[1].skipped]).toEqual([2, 0]);
    expect(big[2].skipped).toBe(2);
    expect(big[2].count[2]).toBe(W * H - 1);
  });

  test('spectra files: CSV, plots, and --compare differences with their standard errors', async () => {
    const a = cubeOf(SEED + 1);
    const b = Float32Array.from(a, (v, i) => v + 10 * Math.floor(i / (H * W))); // B = A + 10 e at energy e
    const E = Float64Array.from({ length: nE }, (_, i) => 700 + i);
    const out = fs.mkdtempSync(path.join(dir, 'spectra-'));
    const rois = ['core=rect:2,2,8,8', 'edge=circle:15,9,3'].map(parseRoiArg);
    const summary = await writeRegionSpectra({
      stack: new MemoryStack(a, nE, H, W, 'a.npy'), energies: E, rois, outDir: out,
      compare: { stack: new MemoryStack(b, nE, H, W, 'b.npy'), energies: E }, labels: { a: 'initial', b: 'charged' },
    });
    expect(summary.rois.map((r) => [r.name, r.pixels])).toEqual([['core', 36], ['edge', 29]]);
    expect(summary.compare?.energyGrid).toBe('same');
    expect(summary.files.sort()).toEqual(['compare.csv', 'compare_core.png', 'compare_edge.png', 'difference.png', 'roi_core.png', 'roi_edge.png', 'spectra.csv', 'spectra.png']);
    const csv = fs.readFileSync(path.join(out, 'spectra.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('energy_eV,core_mean,core_std,core_n,edge_mean,edge_std,edge_n');
    expect(csv).toHaveLength(nE + 1);
    const d = direct(a, (x, y) => x >= 2 && x < 8 && y >= 2 && y < 8);
    const row3 = csv[4].split(',').map(Number);
    expect(row3[0]).toBe(703);
    expect(row3[1]).toBeCloseTo(d.mean[3], 9);
    expect(row3[2]).toBeCloseTo(d.std[3], 9);
    expect(row3[3]).toBe(36);
    const cmp = fs.readFileSync(path.join(out, 'compare.csv'), 'utf8').trim().split('\n');
    expect(cmp[0]).toBe('energy_eV,core_initial,core_charged,core_diff,core_diff_se,edge_initial,edge_charged,edge_diff,edge_diff_se');
    for (let e = 0; e < nE; e++) {
      const v = cmp[e + 1].split(',').map(Number);
      expect(v[3]).toBeCloseTo(10 * e, 9); // B - A
      expect(v[4]).toBeCloseTo(Math.sqrt(2 * d.std[e] ** 2 / 36), 9); // same spread in both
    }
    for (const f of summary.files.filter((n) => n.endsWith('.png'))) {
      const png = decode(fs.readFileSync(path.join(out, f)));
      expect(png.width).toBeGreaterThan(100);
    }
    // A different (coarser) grid for B is interpolated onto A's energies.
    const E2 = Float64Array.from({ length: nE }, (_, i) => 700.5 + i);
    const out2 = fs.mkdtempSync(path.join(dir, 'spectra-'));
    const s2 = await writeRegionSpectra({ stack: new MemoryStack(a, nE, H, W), energies: E, rois, outDir: out2, compare: { stack: new MemoryStack(b, nE, H, W), energies: E2 } });
    expect(s2.compare?.energyGrid).toBe('interpolated');
    const first = fs.readFileSync(path.join(out2, 'compare.csv'), 'utf8').split('\n')[1].split(',');
    expect(first[2]).toBe('nan'); // 700 eV lies below B's grid

    await expectInputError(() => parseRoiArg('rect:1,2,3,4'), '--roi', 'expected NAME=');
    await expectInputError(() => parseRoiArg('a/b=rect:1,2,3,4'), '--roi a/b', 'name');
    await expectInputError(() => writeRegionSpectra({ stack: new MemoryStack(a, nE, H, W), energies: E, rois: [{ name: 'x', spec: 'rect:0,0,40,3' }], outDir: out2 }), '--roi x', 'outside the image');
    await expectInputError(
      () => writeRegionSpectra({ stack: new MemoryStack(a, nE, H, W), energies: E, rois: [{ name: 'x', spec: 'rect:0,0,3,3' }, { name: 'x', spec: 'rect:0,0,2,2' }], outDir: out2 }),
      '--roi x', 'used twice',
    );
    // The comparison stack is checked with its own size.
    await expectInputError(
      () => writeRegionSpectra({ stack: new MemoryStack(a, nE, H, W), energies: E, rois: [{ name: 'x', spec: 'rect:0,0,20,3' }], outDir: out2, compare: { stack: new MemoryStack(new Float32Array(nE * H * 10), nE, H, 10), energies: E } }),
      '--roi x (B)', 'outside the image',
    );
  });
});
