/**
 * STXM stacks (.hdr + .xim) on real data: a 48 x 48 crop of the Fe L2,3-edge stack
 * 71214098 in test/fixtures/stxm-fe-l3 (MIT licence, see its README). Optical density
 * from an empty region and from the beamline I0 file, a two-reference fit with references
 * taken from two regions of the stack, and the bad inputs of a .hdr stack.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { decode } from 'fast-png';
import { StxmStack, readStxmHeader, ximPath } from '../../src/io/stxm.js';
import { MemoryStack, openStack } from '../../src/stack/source.js';
import { OpticalDensityStack, opticalDensity, parseI0Options, resolveI0 } from '../../src/stack/od.js';
import { parseRegion, regionSpectra } from '../../src/stack/regions.js';
import { loadReferences, parseRefSpec } from '../../src/io/references.js';
import { lcfStep } from '../../src/pipeline/lcf-step.js';
import { renderRgbComposite } from '../../src/plot/maps.js';
import { rgbComposite } from '../../src/plot/rgb.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { gpuBackend } from '../helpers/backends.js';
import { expectInputError, tempDir } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/stxm-fe-l3/71214098.hdr', import.meta.url));
/** Where the fixture was cut from the 150 x 150 original (see the fixture README). */
const CROP = { y0: 50, x0: 0, size: 48 };

const dir = tempDir('stxm');

function nearest(E: Float64Array, e: number): number {
  let k = 0;
  for (let i = 0; i < E.length; i++) if (Math.abs(E[i] - e) < Math.abs(E[k] - e)) k = i;
  return k;
}

function pearson(x: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) { mx += x[i] / n; my += y[i] / n; }
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

describe('STXM reader', () => {
  test('the fixture: energies from the .hdr equal the beamline list, pixel size, values as in the .xim text', async () => {
    const fx = StxmStack.open(FIXTURE);
    expect([fx.nE, fx.height, fx.width]).toEqual([123, 48, 48]);
    expect(fx.energies[0]).toBe(700);
    expect(fx.energies[122]).toBe(730.353);
    expect(fx.pixelSizeUm.x).toBeCloseTo(0.08, 9);
    expect(fx.pixelSizeUm.y).toBeCloseTo(0.08, 9);
    // Same energies as the beamline's Energy.txt.
    const txt = fs.readFileSync(path.join(path.dirname(FIXTURE), 'Energy.txt'), 'utf8').trim().split(/\s+/).map(Number);
    expect([...fx.energies]).toEqual(txt);
    // Values read back equal the tokens of the .xim text, parsed independently here.
    const b = new Float32Array(123 * 48 * 48);
    await fx.readRows(0, 48, b);
    for (const e of [0, 61, 122]) {
      const rows = fs.readFileSync(ximPath(FIXTURE, e, 'a'), 'utf8').trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
      expect(rows.length).toBe(48);
      for (const [y, x] of [[0, 0], [17, 33], [47, 47]]) expect(b[e * 48 * 48 + y * 48 + x]).toBe(Math.fround(rows[y][x]));
    }
  });

  test('tiled reads equal a whole read; the header parser reports axes and channels', async () => {
    const s = StxmStack.open(FIXTURE);
    const whole = new Float32Array(s.nE * 48 * 48);
    await s.readRows(0, 48, whole);
    for (const [y0, rows] of [[0, 1], [5, 7], [47, 1], [20, 28]]) {
      const part = new Float32Array(s.nE * rows * 48);
      await s.readRows(y0, rows, part);
      for (const e of [0, 61, 122]) {
        expect(part.subarray(e * rows * 48, (e + 1) * rows * 48)).toEqual(whole.subarray(e * 48 * 48 + y0 * 48, e * 48 * 48 + (y0 + rows) * 48));
      }
    }
    const h = readStxmHeader(FIXTURE);
    expect(h.x[0]).toBe(-4713.153);
    expect(h.y[0]).toBe(-594.572);
    expect(h.channels).toEqual(['counter1']);
    expect(h.scanType).toBe('NEXAFS Image Scan');
  });

  test('bad .hdr stacks: missing and ragged .xim files, no energy axis, non-numeric values', async () => {
    const mk = (name: string) => {
      const d = fs.mkdtempSync(path.join(dir, `${name}-`));
      const hdr = path.join(d, '71214098.hdr');
      fs.copyFileSync(FIXTURE, hdr);
      for (let i = 0; i < 123; i++) fs.copyFileSync(ximPath(FIXTURE, i), ximPath(hdr, i));
      return hdr;
    };
    const missing = mk('missing');
    fs.rmSync(ximPath(missing, 57));
    await expectInputError(() => openStack(missing), ximPath(missing, 57), 'missing: ');
    await expectInputError(() => StxmStack.open(missing), ximPath(missing, 57), 'lists 123 energies, so one image per energy is expected (71214098_a000.xim .. 71214098_a122.xim)');

    const ragged = mk('ragged');
    const lines = fs.readFileSync(ximPath(ragged, 3), 'utf8').split('\n');
    lines[9] = lines[9].split('\t').slice(1).join('\t');
    fs.writeFileSync(ximPath(ragged, 3), lines.join('\n'));
    await expectInputError(() => openStack(ragged), ximPath(ragged, 3), 'ragged image: line 10 has 47 values, expected 48');

    const short = mk('short');
    fs.writeFileSync(ximPath(short, 100), fs.readFileSync(ximPath(short, 100), 'utf8').split('\n').slice(0, 40).join('\n'));
    await expectInputError(() => openStack(short), ximPath(short, 100), 'ragged image: 40 rows, expected 48');

    const long = mk('long');
    fs.appendFileSync(ximPath(long, 0), fs.readFileSync(ximPath(long, 0), 'utf8').split('\n')[0] + '\n');
    await expectInputError(() => openStack(long), ximPath(long, 0), 'more than 48 image rows');

    const text = mk('text');
    fs.writeFileSync(ximPath(text, 7), fs.readFileSync(ximPath(text, 7), 'utf8').replace(/^[^\t]+/, 'abc'));
    await expectInputError(() => openStack(text), ximPath(text, 7), "line 1: 'abc' is not a number");

    const noAxis = mk('noaxis');
    fs.writeFileSync(noAxis, fs.readFileSync(noAxis, 'latin1').replace(/StackAxis\s*=/, 'OtherAxis ='), 'latin1');
    await expectInputError(() => openStack(noAxis), noAxis, 'no energy axis');

    const miscount = mk('miscount');
    fs.writeFileSync(miscount, fs.readFileSync(miscount, 'latin1').replace('Points = (123,', 'Points = (124,'), 'latin1');
    await expectInputError(() => openStack(miscount), miscount, 'StackAxis Points: the count says 124 but 123 values follow');

    const notHdr = path.join(dir, 'x.hdr');
    fs.writeFileSync(notHdr, 'hello');
    await expectInputError(() => openStack(notHdr), notHdr, 'not an STXM scan definition');
  });
});

describe('optical density', () => {
  test('auto I0 finds an empty area; OD is near 0 off the particles; the beamline I0 gives a near-constant offset', async () => {
    const src = await openStack(FIXTURE);
    const E = src.energies!;
    const od = await opticalDensity(src, E, parseI0Options(undefined, 'auto')!);
    const s = od.i0.source;
    expect(s.kind).toBe('auto');
    // The empty strip is the left edge of the crop (x < 8): the chosen block lies there.
    const r = await parseRegion(s.kind === 'auto' ? s.spec : '', 48, 48, 'i0');
    expect(r.x1).toBeLessThanOrEqual(10);
    expect(od.i0.nonPositiveEnergies).toEqual([]);
    expect(od.i0.values[0]).toBeGreaterThan(280); // ~300 counts in the open beam

    // Two empty areas apart from the I0 block, and one particle.
    const regions = await Promise.all(['rect:0,0,6,20', 'rect:0,20,6,36', 'rect:18,28,26,34'].map((spec, k) => parseRegion(spec, 48, 48, `r${k}`).then((region) => ({ name: `r${k}`, region }))));
    const [e1, e2, particle] = await regionSpectra(od, regions);
    // Empty: |mean OD| < 0.04 at every energy. The pixels' own OD scatter is ~0.02 (counting
    // noise of ~300 counts, smoothed by the alignment), and the open-beam intensity varies by
    // ~2 % along the strip; the particle's OD reaches ~2 at the L3 peak.
    for (const st of [e1, e2]) for (let e = 0; e < E.length; e++) expect(Math.abs(st.mean[e]), `empty region at ${E[e]} eV`).toBeLessThan(0.04);
    expect(particle.mean[nearest(E, 709.87)]).toBeGreaterThan(1.5);
    expect(od.maskedPoints).toBe(0);

    // i0.xsp was recorded apart and is ~690 counts against ~310 in the images (data README):
    // OD is offset by ln(310/690) ~ -0.8, nearly the same at every energy.
    const odFile = await opticalDensity(src, E, parseI0Options(path.join(path.dirname(FIXTURE), 'i0.xsp'))!);
    const [f1] = await regionSpectra(odFile, [{ name: 'e', region: regions[0].region }]);
    const offsets = f1.mean.map((v, e) => v - e1.mean[e]);
    const lo = Math.min(...offsets), hi = Math.max(...offsets);
    expect(lo).toBeGreaterThan(0.75);
    expect(hi).toBeLessThan(0.88);
    expect(hi - lo).toBeLessThan(0.05);
  });

  test('non-positive I or I0 give NaN and are counted; I0 options are checked', async () => {
    const E = Float64Array.from([700, 701, 702]);
    const cube = Float32Array.from([100, 0, 50, 25, /* e1 */ 100, 100, -3, 100, /* e2 */ 10, 20, 40, 80]);
    const src = new MemoryStack(cube, 3, 2, 2);
    const i0File = path.join(dir, 'i0.txt');
    fs.writeFileSync(i0File, '699 100\n703 100\n');
    const od = new OpticalDensityStack(src, await resolveI0(src, E, { kind: 'file', path: i0File }));
    const out = new Float32Array(12);
    await od.readRows(0, 2, out);
    expect(out[0]).toBeCloseTo(0, 6);
    expect(out[1]).toBeNaN();
    expect(out[3]).toBeCloseTo(Math.log(4), 6);
    expect(out[6]).toBeNaN();
    expect(out[11]).toBeCloseTo(-Math.log(0.8), 6);
    expect(od.maskedPoints).toBe(2);
    // I0 of zero at one energy: every pixel NaN there, and the energy reported.
    fs.writeFileSync(i0File, '700 100\n701 0\n702 100\n');
    const i0 = await resolveI0(src, E, { kind: 'file', path: i0File });
    expect(i0.nonPositiveEnergies).toEqual([701]);
    const od2 = new OpticalDensityStack(src, i0);
    await od2.readRows(0, 2, out);
    expect([...out.subarray(4, 8)].every(Number.isNaN)).toBe(true);
    expect(od2.maskedPoints).toBe(5);

    fs.writeFileSync(i0File, '700.5 100\n702 100\n');
    await expectInputError(() => resolveI0(src, E, { kind: 'file', path: i0File }), i0File, 'I0 covers 700.500..702.000 eV but the stack spans 700.000..702.000 eV');
    await expectInputError(() => resolveI0(src, E, { kind: 'region', spec: 'rect:0,0,3,1' }), '--i0-region', 'outside the image');
    await expectInputError(() => parseI0Options('a.txt', 'auto'), '--i0', 'not both');
    await expectInputError(() => parseI0Options(undefined, 'circle:1,1,1'), '--i0-region', 'rect:x0,y0,x1,y1 or auto');
    expect(parseI0Options()).toBeNull();
  });
});

describe('two-reference fit on the real stack', () => {
  test('references from two regions: weight maps follow the particles, on both backends', async () => {
    const src = await openStack(FIXTURE);
    const E = src.energies!;
    const od = await opticalDensity(src, E, { kind: 'auto' });
    const W = od.width, H = od.height, N = W * H;
    const cube = new Float32Array(od.nE * N);
    await od.readRows(0, H, cube);
    // peak710: inside the large particle, whose L3 peak is at 709.9 eV (Fe3+-like);
    // peak708: the thinner material at the top right, whose 708.0 eV peak is the stronger.
    const refs = await loadReferences(['peak710=rect:18,28,26,34', 'peak708=rect:32,0,42,6'].map(parseRefSpec), od, E);
    const step = lcfStep(refs, E, { mode: 'nnls', background: 'const' });
    const [g, c] = [await step.runTile(await gpuBackend(), cube, N), await step.runTile(cpuBackend(), cube, N)];

    // Contrast measures computed from the data alone: the L3 signal (mean OD 705-715 eV above
    // the pre-edge mean) and the share of the 709.9 eV peak, B / (A + B) with A, B the
    // heights above the pre-edge at 708.0 and 709.9 eV.
    const pre = new Float64Array(N), l3 = new Float64Array(N);
    const preIdx = E.map((_, i) => i).filter((i) => E[i] < 703);
    const l3Idx = E.map((_, i) => i).filter((i) => E[i] >= 705 && E[i] <= 715);
    for (let i = 0; i < N; i++) {
      for (const e of preIdx) pre[i] += cube[e * N + i] / preIdx.length;
      for (const e of l3Idx) l3[i] += cube[e * N + i] / l3Idx.length;
      l3[i] -= pre[i];
    }
    const a = nearest(E, 708.05), b = nearest(E, 709.87);
    for (const [name, r] of [['webgpu', g], ['cpu', c]] as const) {
      expect(r.status.every((s) => s === 0 || s === 2 || s === 3), name).toBe(true); // ok, no_total, low_total (nothing there)
      // The amount of iron: total weight follows the L3 signal.
      expect(pearson(l3, r.maps.total), name).toBeGreaterThan(0.9);
      // The chemistry: where the 709.9 eV peak dominates, so does peak710.
      const share: number[] = [], frac: number[] = [];
      for (let i = 0; i < N; i++) {
        const A = cube[a * N + i] - pre[i], B = cube[b * N + i] - pre[i];
        if (B > 0.3 && r.status[i] === 0) {
          share.push(B / (A + B));
          frac.push(r.maps.fraction_peak710[i]);
        }
      }
      expect(share.length, name).toBeGreaterThan(500);
      expect(pearson(share, frac), name).toBeGreaterThan(0.8);
      // Off the particles (the empty left strip), the weights are ~0.
      let wa = 0, wb = 0;
      for (let y = 0; y < H; y++) for (let x = 0; x < 6; x++) { wa += r.maps.weight_peak710[y * W + x] / (6 * H); wb += r.maps.weight_peak708[y * W + x] / (6 * H); }
      expect(Math.abs(wa), name).toBeLessThan(0.03);
      expect(Math.abs(wb), name).toBeLessThan(0.03);
    }
    // The backends agree (well-conditioned references: rcond ~0.05).
    expect(step.plan.rcond).toBeGreaterThan(0.01);
    for (const m of ['weight_peak710', 'weight_peak708', 'bg_const']) {
      let worst = 0;
      for (let i = 0; i < N; i++) worst = Math.max(worst, Math.abs(g.maps[m][i] - c.maps[m][i]));
      expect(worst, m).toBeLessThan(1e-4);
    }
    const opts = { names: ['peak710', 'peak708'], intensity: c.maps.total, intensityLabel: 'total', title: 'Fe L3 STXM, nnls' };
    const { png, legend } = await renderRgbComposite([c.maps.fraction_peak710, c.maps.fraction_peak708], W, H, opts);
    const img = decode(png);
    expect(img.height).toBeGreaterThanOrEqual(400);
    expect(legend.channels.map((ch) => [ch.channel, ch.reference])).toEqual([['red', 'peak710'], ['green', 'peak708']]);
    // Pixel (22, 31) is inside the peak710 region: red dominates there in the composite.
    const { rgba } = rgbComposite([c.maps.fraction_peak710, c.maps.fraction_peak708], W, H, opts);
    const px = (31 * W + 22) * 4;
    expect(rgba[px]).toBeGreaterThan(2 * rgba[px + 1]);
  });
});
