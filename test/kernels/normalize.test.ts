/**
 * normalize: GPU vs CPU twin vs known truth. Spectra are built from exactly known
 * pre-edge lines and post-edge quadratics (so the fits have an exact answer), plus seeded
 * noise, NaN points, and hostile pixels.
 */
import { describe, expect, test } from 'vitest';
import { makeRng } from '../../src/synth/random.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS } from '../../src/pipeline/edge-plan.js';
import { normalizeCpu, normalizeOne } from '../../src/cpu/normalize.js';
import { derivativeMaxEnergy } from '../../src/pipeline/edge-plan.js';
import { niMixtureSpectrum, niTxmEnergies } from '../../src/synth/ni-txm.js';
import { preEdge } from '../helpers/larch-preedge.js';
import { fixturePath, readXdiMu } from '../helpers/cluster.js';
import { edgeTileGpu, maxEdgeTilePixels } from '../../src/pipeline/edge-tile.js';
import { EdgeStatus, NormRow } from '../../src/kernels/layout.js';
import { gpuBackend } from '../helpers/backends.js';

const SEED = 7001;
/** Energies like a TXM Ni K scan: 10 eV steps before, 1 eV across, 15 eV after the edge. */
function txmGrid(): Float64Array {
  const e: number[] = [];
  for (let x = 8200; x < 8320; x += 10) e.push(x);
  for (let x = 8320; x < 8380; x += 1) e.push(x);
  for (let x = 8380; x <= 8800; x += 15) e.push(x);
  return Float64Array.from(e);
}
const E0 = 8343;

/**
 * Tolerances. f32 sums of ~12-30 terms of order-one values lose ~1e-6 relative; the
 * step is a difference of two extrapolated fits, so allow 1e-4 relative to the spectrum
 * scale. The noise is a square root of a sum of squared small residuals, each of which
 * suffers the cancellation of y - fit: 2e-3 relative.
 */
const STEP_TOL_REL = 1e-4;
const NOISE_TOL_REL = 2e-3;
/** The CPU twin sees float32 inputs: ~6e-8 relative rounding per value. */
const CPU_STEP_TOL_REL = 1e-6;
/**
 * One float64 spectrum against the float64 larch reference: both solve the same least
 * squares (in different bases), so they agree to rounding of sums of ~100 terms.
 */
const ONE_SPECTRUM_TOL = 1e-9;

interface Case { cube: Float32Array; P: number; truth: { step: Float64Array; sigma: Float64Array; c1: Float64Array; c2: Float64Array; e0: Float64Array } }

function makeCases(P: number, noiseFrac: number): Case {
  const E = txmGrid();
  const nE = E.length;
  const rng = makeRng(SEED);
  const cube = new Float32Array(nE * P);
  const step = new Float64Array(P);
  const sigma = new Float64Array(P);
  const c1s = new Float64Array(P), c2s = new Float64Array(P), e0s = new Float64Array(P);
  for (let p = 0; p < P; p++) {
    const a = rng.uniform() * 2 - 0.5, b = (rng.uniform() - 0.5) * 1e-3;
    const jump = 0.05 + 2 * rng.uniform();
    const c1 = (rng.uniform() - 0.5) * 2e-4, c2 = (rng.uniform() - 0.5) * 1e-7;
    const e0p = E0 + (rng.uniform() - 0.5) * 4;
    step[p] = jump;
    sigma[p] = noiseFrac * jump;
    c1s[p] = c1; c2s[p] = c2; e0s[p] = e0p - E0;
    for (let i = 0; i < nE; i++) {
      const x = E[i] - E0;
      // post - pre at e0 (x = 0) is exactly `jump`; between the windows an edge-like rise.
      const pre = a + b * x;
      const post = a + jump + (b + c1) * x + c2 * x * x;
      const w = 0.5 * (1 + Math.tanh((E[i] - e0p) / 1.5));
      const clean = x < -30 ? pre : x >= 50 ? post : pre + w * (post - pre);
      cube[i * P + p] = clean + sigma[p] * rng.normal();
    }
  }
  return { cube, P, truth: { step, sigma, c1: c1s, c2: c2s, e0: e0s } };
}

describe('normalize', () => {
  const E = txmGrid();
  const plan = makeEdgePlan(E, E0, DEFAULT_EDGE_OPTIONS);

  test('noiseless: the step is exact on the CPU and the GPU', async () => {
    const { cube, P, truth } = makeCases(1000 + 37, 0);
    const cpu = normalizeCpu(plan, cube, P);
    const gpu = await edgeTileGpu((await gpuBackend()).gpu!, plan, cube, P);
    for (let p = 0; p < P; p++) {
      // Pre line a + b x; post a + jump + (b + c1) x + c2 x^2: post - pre = jump + c1 x + c2 x^2,
      // evaluated at the pixel's own e0 (the grid energy nearest its derivative maximum,
      // which must be within a grid step of the true edge centre).
      for (const [name, rows] of [['cpu', cpu], ['webgpu', gpu.norm]] as const) {
        expect(rows[NormRow.STATUS * P + p], `${name} pixel ${p}`).toBe(EdgeStatus.OK);
        const x0 = rows[NormRow.E0_OWN * P + p];
        expect(Math.abs(x0 - truth.e0[p]), `${name} pixel ${p}`).toBeLessThanOrEqual(1);
        const want = truth.step[p] + truth.c1[p] * x0 + truth.c2[p] * x0 * x0;
        const scale = 1 + Math.abs(cpu[NormRow.PRE_A * P + p]) + truth.step[p];
        const tol = (name === 'cpu' ? CPU_STEP_TOL_REL : STEP_TOL_REL) * scale;
        expect(Math.abs(rows[NormRow.STEP * P + p] - want), `${name} pixel ${p}`).toBeLessThan(tol);
      }
    }
  });

  test('a tile larger than the device allows runs in pieces with the same bytes (200 energies on llvmpipe exceeded 128 MiB)', async () => {
    const { cube, P } = makeCases(1000 + 37, 0.01);
    const ctx = (await gpuBackend()).gpu!;
    const whole = await edgeTileGpu(ctx, plan, cube, P);
    const pieces = await edgeTileGpu(ctx, plan, cube, P, 300);
    expect(Buffer.from(pieces.norm.buffer, pieces.norm.byteOffset, pieces.norm.byteLength).equals(Buffer.from(whole.norm.buffer, whole.norm.byteOffset, whole.norm.byteLength))).toBe(true);
    expect(Buffer.from(pieces.edge.buffer, pieces.edge.byteOffset, pieces.edge.byteLength).equals(Buffer.from(whole.edge.buffer, whole.edge.byteOffset, whole.edge.byteLength))).toBe(true);
    // The default limit: 4 bytes x energies per pixel within the binding size.
    expect(maxEdgeTilePixels(ctx, plan) * 4 * plan.nE).toBeLessThanOrEqual(ctx.limits.maxStorageBufferBindingSize);
  });

  test('noisy: GPU equals CPU; the noise estimate recovers the true sigma', async () => {
    const { cube, P, truth } = makeCases(2000 + 13, 0.01);
    const cpu = normalizeCpu(plan, cube, P);
    const gpu = (await edgeTileGpu((await gpuBackend()).gpu!, plan, cube, P)).norm;
    const ratios: number[] = [];
    for (let p = 0; p < P; p++) {
      const s = NormRow.STATUS * P + p;
      expect(gpu[s], `pixel ${p}, seed ${SEED}`).toBe(cpu[s]);
      const scale = 1 + Math.abs(cpu[NormRow.PRE_A * P + p]) + truth.step[p];
      expect(Math.abs(gpu[NormRow.STEP * P + p] - cpu[NormRow.STEP * P + p])).toBeLessThan(STEP_TOL_REL * scale);
      expect(Math.abs(gpu[NormRow.NOISE * P + p] - cpu[NormRow.NOISE * P + p])).toBeLessThan(NOISE_TOL_REL * cpu[NormRow.NOISE * P + p] + 1e-6 * scale);
      ratios.push(cpu[NormRow.NOISE * P + p] / truth.sigma[p]);
    }
    ratios.sort((a, b) => a - b);
    // The median of a chi-distributed estimate with ~10 degrees of freedom is ~0.97 sigma.
    expect(ratios[ratios.length >> 1]).toBeGreaterThan(0.9);
    expect(ratios[ratios.length >> 1]).toBeLessThan(1.05);
  });

  test('hostile pixels get a status and do not disturb their neighbours', async () => {
    const { cube, P } = makeCases(300, 0.01);
    const nE = E.length;
    const orig = cube.slice();
    const set = (p: number, f: (i: number) => number) => { for (let i = 0; i < nE; i++) cube[i * P + p] = f(i); };
    set(10, () => NaN); // all NaN
    set(11, () => 0.7); // flat
    set(12, (i) => -orig[i * P + 12]); // inverted edge
    set(13, (i) => (i < plan.pre.i0 + 2 || i >= plan.pre.i1 ? orig[i * P + 13] : NaN)); // 2 pre-edge points left
    set(14, (i) => (i % 3 === 0 ? NaN : orig[i * P + 14])); // a third of the points masked: still fits
    set(15, () => 3e38); // enormous values overflow the sums
    const cpu = normalizeCpu(plan, cube, P);
    const gpu = (await edgeTileGpu((await gpuBackend()).gpu!, plan, cube, P)).norm;
    const st = (a: ArrayLike<number>, p: number) => a[NormRow.STATUS * P + p];
    for (const arr of [cpu, gpu]) {
      expect(st(arr, 10)).toBe(EdgeStatus.NO_DATA);
      expect(st(arr, 11)).toBe(EdgeStatus.LOW_STEP);
      expect(st(arr, 12)).toBe(EdgeStatus.LOW_STEP);
      expect(st(arr, 13)).toBe(EdgeStatus.NO_DATA);
      expect(st(arr, 14)).toBe(EdgeStatus.OK);
      expect(st(arr, 15)).not.toBe(EdgeStatus.OK);
      expect(st(arr, 9)).toBe(EdgeStatus.OK);
      expect(st(arr, 16)).toBe(EdgeStatus.OK);
    }
    const clean = normalizeCpu(plan, orig, P);
    for (const p of [9, 16]) expect(cpu[NormRow.STEP * P + p]).toBe(clean[NormRow.STEP * P + p]);
  });
});

describe('normalize: one spectrum, larch norm and flat', () => {
  test('measured V and Ni spectra: norm, flat, e0 and step equal the larch reference', () => {
    const cases: [string, Float64Array, Float64Array][] = [];
    for (const [name, f] of [['NiO', 0], ['LiNiO2', 1], ['mix', 0.4]] as const) {
      const E = niTxmEnergies().map((e) => e + 0.3);
      cases.push([name, E, niMixtureSpectrum(f, E).map((v, i) => 0.3 + 2e-5 * (E[i] - 8300) + 1.2 * v)]);
    }
    for (const file of ['V2O3.xdi', 'V2O5.xdi']) {
      const s = readXdiMu(fixturePath(`v-k/${file}`));
      cases.push([file, s.energy, s.mu]);
    }
    for (const [name, E, mu] of cases) {
      for (const nnorm of ['auto', 0, 1, 2] as const) {
        const o = { ...DEFAULT_EDGE_OPTIONS, nnorm };
        const plan = makeEdgePlan(E, derivativeMaxEnergy(E, mu, 1), o);
        const got = normalizeOne(plan, mu)!;
        const want = preEdge(E, mu, { pre1: o.pre1, pre2: o.pre2, norm1: o.norm1, norm2: o.norm2, nnorm: nnorm === 'auto' ? undefined : nnorm, e0: got.e0 });
        const where = `${name}, nnorm ${nnorm}`;
        expect(got.degree, where).toBe(want.nnorm);
        expect(got.e0, where).toBe(want.e0);
        expect(Math.abs(got.step / want.step - 1), where).toBeLessThan(ONE_SPECTRUM_TOL);
        for (let i = 0; i < E.length; i++) {
          expect(Math.abs(got.norm[i] - want.norm[i]), `${where}, norm at ${E[i]}`).toBeLessThan(ONE_SPECTRUM_TOL);
          expect(Math.abs(got.flat[i] - want.flat[i]), `${where}, flat at ${E[i]}`).toBeLessThan(ONE_SPECTRUM_TOL);
        }
      }
    }
  });
});
