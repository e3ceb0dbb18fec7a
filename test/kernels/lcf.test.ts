/**
 * lcf: CPU twin vs an independent brute force over active sets (test/helpers/lcf-brute.ts),
 * GPU vs CPU, synthetic NiO/LiNiO2 mixtures with noise vs their expected standard error,
 * dependent references, and hostile pixels. Every random input comes from a printed seed.
 */
import { describe, expect, test } from 'vitest';
import { makeRng, type Rng } from '../../src/synth/random.js';
import { lcfStep, type LcfBackground, type LcfMode } from '../../src/pipeline/lcf-step.js';
import { LCF_DEPENDENT_RCOND, LcfStatus, lcfCpu, lcfRows, subsetLayout, type LcfPlan } from '../../src/cpu/lcf.js';
import { lcfFast, lcfFinishPixel, lcfProjection, lcfSearchTable } from '../../src/cpu/lcf-fast.js';
import { InputError } from '../../src/io/errors.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { runTiles, tileBudget } from '../../src/pipeline/run-tiles.js';
import { MemoryStack } from '../../src/stack/source.js';
import { interpLinear } from '../../src/synth/references.js';
import { loadNiReferences, niTxmEnergies } from '../../src/synth/ni-txm.js';
import type { TileResult } from '../../src/pipeline/step.js';
import { lcfPlanInUniform } from '../../src/kernels/lcf.js';
import { gpuBackend } from '../helpers/backends.js';
import { bruteForceLcf, numericalRank } from '../helpers/lcf-brute.js';

const SEED = 4401;
const MODES: LcfMode[] = ['ls', 'nnls', 'sum1', 'nnls-sum1'];
const BACKGROUNDS: LcfBackground[] = ['none', 'const', 'linear'];

/**
 * Tolerances, on coefficients in column-normalised units (theta_j ||X_j||), relative to
 * scale = ||y|| + sum_j |theta_j| ||X_j||: rounding is relative to the larger of the data
 * and the terms that cancel in X theta, and with nearly collinear references the weights
 * (e.g. -89 and +90) are far larger than the data they explain.
 *  - CPU vs brute force: both float64; the brute force solves normal equations, whose
 *    rounding grows with the square of the condition number: 1e-15 / rcond^2.
 *  - GPU vs CPU: float32 rotations and the float32 plan leave ~1e-7 sqrt(nW) of the scale
 *    in z; the solve amplifies that by the condition number (1 / rcond), and so does the
 *    choice of active set (the dual violations are precomputed projections, src/cpu/lcf.ts).
 *    The largest error seen over seeds 4401-4491 (nW = 84-90, rcond down to 9e-5) was
 *    4.4e-7 / rcond: 1.5e-6 / rcond leaves a margin of ~3.4.
 */
const CPU_TOL = (rcond: number) => 1e-12 + 1e-15 / rcond ** 2;
const GPU_TOL = (rcond: number) => 1.5e-6 / rcond;
/** Residual sums: the optimum's rss must not exceed the brute force's by more than rounding. */
const RSS_TOL_REL = 1e-9;
/** Orthonormality of the CPU kernel's projection table: products of Givens rotations, ~nW M eps. */
const PROJ_TOL = 1e-13;

interface Problem {
  energies: Float64Array;
  refs: { name: string; mu: Float64Array }[];
  /** Window [a, b] eV or undefined; idx = window indices. */
  window?: [number, number];
  idx: number[];
  cube: Float32Array;
  P: number;
  nE: number;
  /** Absolute-unit design matrix over the window (references, 1, E - eRef). */
  X: Float64Array;
  M: number;
  eRef: number;
}

function smoothRef(rng: Rng, energies: Float64Array): Float64Array {
  const e0 = 705 + 10 * rng.uniform();
  const peaks = [0, 1].map(() => ({ c: 702 + 24 * rng.uniform(), w: 0.7 + 2.5 * rng.uniform(), a: 0.2 + rng.uniform() }));
  return energies.map((e) => 0.5 * (1 + Math.tanh((e - e0) / (1 + rng.uniform() * 0))) + peaks.reduce((s, p) => s + p.a * Math.exp(-(((e - p.c) / p.w) ** 2)), 0));
}

/**
 * Random references (or nearly collinear ones: `collinear` = the size of each reference's
 * own part next to a shared one), random coefficients (references in [-0.3, 1.3] so that
 * sign constraints bind for some pixels; background const and slope), noise.
 */
function makeProblem(rng: Rng, o: { K: number; bg: LcfBackground; P: number; nE: number; withWindow: boolean; collinear?: number; noise: number }): Problem {
  const energies = new Float64Array(o.nE);
  let e = 700;
  for (let i = 0; i < o.nE; i++) {
    energies[i] = e;
    e += 0.3 + 0.4 * rng.uniform(); // a non-uniform grid
  }
  const shared = smoothRef(rng, energies);
  const refs = Array.from({ length: o.K }, (_, k) => {
    const own = smoothRef(rng, energies);
    const mu = o.collinear === undefined ? own : shared.map((v, i) => v + o.collinear! * own[i]);
    return { name: `r${k}`, mu };
  });
  const window: [number, number] | undefined = o.withWindow ? [energies[3] - 0.01, energies[o.nE - 4] + 0.01] : undefined;
  const idx: number[] = [];
  energies.forEach((v, i) => { if (!window || (v >= window[0] && v <= window[1])) idx.push(i); });
  const eRef = (energies[idx[0]] + energies[idx[idx.length - 1]]) / 2;
  const nb = o.bg === 'none' ? 0 : o.bg === 'const' ? 1 : 2;
  const M = o.K + nb;
  const X = new Float64Array(idx.length * M);
  idx.forEach((i, r) => {
    refs.forEach((ref, j) => (X[r * M + j] = ref.mu[i]));
    if (nb >= 1) X[r * M + o.K] = 1;
    if (nb === 2) X[r * M + o.K + 1] = energies[i] - eRef;
  });
  const cube = new Float32Array(o.nE * o.P);
  for (let p = 0; p < o.P; p++) {
    const w = refs.map(() => -0.3 + 1.6 * rng.uniform());
    const c0 = nb >= 1 ? 0.4 * (rng.uniform() - 0.5) : 0;
    const c1 = nb === 2 ? 0.02 * (rng.uniform() - 0.5) : 0;
    for (let i = 0; i < o.nE; i++) {
      let v = c0 + c1 * (energies[i] - eRef) + o.noise * rng.normal();
      refs.forEach((ref, j) => (v += w[j] * ref.mu[i]));
      cube[i * o.P + p] = v;
    }
  }
  return { energies, refs, window, idx, cube, P: o.P, nE: o.nE, X, M, eRef };
}

/** theta of pixel p from the maps, in the brute force's column order and units. */
function thetaOf(r: TileResult, names: string[], bg: LcfBackground, p: number): number[] {
  const t = names.map((n) => r.maps[`weight_${n}`][p]);
  if (bg !== 'none') t.push(r.maps.bg_const[p]);
  if (bg === 'linear') t.push(r.maps.bg_slope[p]);
  return t;
}

/**
 * The CPU twin's float64 output (the maps are float32, which would hide its exactness):
 * per pixel theta in absolute units (the slope per eV), rss, rfactor.
 */
function cpuExact(plan: LcfPlan, pb: Problem): { theta: (p: number) => number[]; rss: (p: number) => number; rfactor: (p: number) => number; status: (p: number) => number } {
  const rows = lcfRows(plan.M);
  const out = lcfCpu(plan, pb.cube.subarray(plan.i0 * pb.P, plan.i1 * pb.P), pb.P);
  const P = pb.P;
  return {
    theta: (p) => Array.from({ length: plan.M }, (_, j) => out[(rows.THETA0 + j) * P + p] / (j === plan.K + 1 ? plan.bgHalfWidth : 1)),
    rss: (p) => out[rows.RMS * P + p] ** 2 * plan.nW,
    rfactor: (p) => out[rows.RFACTOR * P + p],
    status: (p) => out[rows.STATUS * P + p],
  };
}

function errScale(y: ArrayLike<number>, theta: ArrayLike<number>, norms: number[]): number {
  let s = Math.hypot(...Array.from(y));
  for (let j = 0; j < norms.length; j++) s += Math.abs(theta[j]) * norms[j];
  return s;
}

function colNorms(X: Float64Array, nW: number, M: number): number[] {
  return Array.from({ length: M }, (_, j) => {
    let s = 0;
    for (let i = 0; i < nW; i++) s += X[i * M + j] ** 2;
    return Math.sqrt(s);
  });
}

function spectrum(pb: Problem, p: number): Float64Array {
  return Float64Array.from(pb.idx, (i) => pb.cube[i * pb.P + p]);
}

/** The configurations the GPU compiles (one pipeline each): every K, mode and background. */
function configs(): { K: number; bg: LcfBackground; mode: LcfMode }[] {
  const out: { K: number; bg: LcfBackground; mode: LcfMode }[] = [];
  let i = 0;
  for (let K = 1; K <= 6; K++) {
    for (const mode of MODES) {
      // Every (K, mode) once, backgrounds in rotation; plus K = 6 with every background.
      out.push({ K, bg: BACKGROUNDS[i++ % 3], mode });
      if (K === 6) for (const bg of BACKGROUNDS) if (bg !== out[out.length - 1].bg) out.push({ K, bg, mode });
    }
  }
  return out;
}

describe('lcf: exact constrained least squares', () => {
  test('CPU twin equals the brute force over active sets, every mode, background and K <= 6', async () => {
    const rng = makeRng(SEED);
    const cpu = cpuBackend();
    let worst = 0;
    for (const { K, bg, mode } of configs()) {
      const pb = makeProblem(rng, { K, bg, P: 24, nE: 40, withWindow: K % 2 === 0, noise: 0.02 });
      const step = lcfStep(pb.refs, pb.energies, { mode, background: bg, window: pb.window });
      const exact = cpuExact(step.plan, pb);
      const r = await step.runTile(cpu, pb.cube, pb.P);
      const nW = pb.idx.length;
      const norms = colNorms(pb.X, nW, pb.M);
      const tol = CPU_TOL(step.plan.rcond);
      const nonneg = mode.startsWith('nnls'), sum1 = mode.endsWith('sum1');
      for (let p = 0; p < pb.P; p++) {
        const y = spectrum(pb, p);
        const ref = bruteForceLcf({ X: pb.X, nW, M: pb.M, K, nonneg, sum1 }, y);
        const ynorm = Math.hypot(...y);
        const got = exact.theta(p);
        const scale = errScale(y, ref.theta, norms);
        const where = `seed ${SEED} K=${K} bg=${bg} mode=${mode} pixel ${p}`;
        expect(exact.status(p), where).toBe(LcfStatus.OK);
        for (let j = 0; j < pb.M; j++) {
          const err = (Math.abs(got[j] - ref.theta[j]) * norms[j]) / scale;
          worst = Math.max(worst, err / tol);
          expect(err, `${where} coefficient ${j}: ${got[j]} vs ${ref.theta[j]}`).toBeLessThanOrEqual(tol);
          // The step's float32 maps carry the same numbers, rounded once.
          expect(Math.abs(thetaOf(r, step.plan.names, bg, p)[j] - got[j]), where).toBeLessThanOrEqual(1.2e-7 * Math.abs(got[j]));
        }
        const rss = exact.rss(p);
        expect(rss, where).toBeLessThanOrEqual(ref.rss * (1 + RSS_TOL_REL) + 1e-12 * ynorm ** 2);
        expect(rss, where).toBeGreaterThanOrEqual(ref.rss * (1 - RSS_TOL_REL) - 1e-12 * ynorm ** 2);
        expect(Math.abs(exact.rfactor(p) - ref.rss / ynorm ** 2), where).toBeLessThanOrEqual(RSS_TOL_REL * exact.rfactor(p) + 1e-12);
      }
    }
    console.log(`lcf CPU vs brute force: worst error ${worst.toFixed(3)} of the tolerance`);
  });

  test('the CPU kernel (projection table, lcf-fast.ts) = the twin (Givens rotations per pixel): same subsets and statuses, float64 rounding apart', () => {
    const rng = makeRng(SEED + 9);
    for (const { K, bg, mode } of configs()) {
      const pb = makeProblem(rng, { K, bg, P: 150, nE: 60, withWindow: K % 2 === 1, noise: 0.02 });
      pb.cube[3] = NaN; // pixel 3 has no data
      const step = lcfStep(pb.refs, pb.energies, { mode, background: bg, window: pb.window });
      const plan = step.plan;
      const win = pb.cube.subarray(plan.i0 * pb.P, plan.i1 * pb.P);
      const twin = lcfCpu(plan, win, pb.P);
      const fast = lcfFast(plan, win, pb.P);
      const rows = lcfRows(plan.M);
      const where = `seed ${SEED + 9} K=${K} bg=${bg} mode=${mode}`;
      for (let p = 0; p < pb.P; p++) {
        expect(fast[rows.STATUS * pb.P + p], where).toBe(twin[rows.STATUS * pb.P + p]);
        // Coefficients relative to the pixel's scale; the residual to the signal's sum of
        // squares (the CPU kernel subtracts ||z||^2 from ||y||^2 in float64).
        const y = spectrum(pb, p);
        const ynorm = Math.hypot(...Array.from(y));
        for (let k = 0; k < rows.ROWS; k++) {
          const a = twin[k * pb.P + p], b = fast[k * pb.P + p];
          if (a === b) continue;
          if (Number.isNaN(a)) {
            expect(Number.isNaN(b), where).toBe(true);
            continue;
          }
          const tol = k === rows.RMS ? 1e-6 * ynorm / Math.sqrt(plan.nW) : k === rows.RFACTOR ? 1e-12 : 1e-9 * (1 + Math.abs(a)) * (1 + ynorm);
          expect(Math.abs(a - b), `${where} pixel ${p} row ${k}: ${a} vs ${b}`).toBeLessThanOrEqual(tol);
        }
      }
    }
  });

  test('the CPU kernel\'s projection table (lcfProjection) is the twin\'s rotations as a matrix: orthonormal columns, and Qt^T Xs = R', () => {
    // The table is built from the plan's Givens angles; the checks use only the column-scaled
    // design Xs and its R from the plan's QR (Xs = Q R), so they hold for any correct Q.
    const rng = makeRng(SEED + 12);
    for (const K of [1, 3, 6]) {
      for (const bg of BACKGROUNDS) {
        const pb = makeProblem(rng, { K, bg, P: 4, nE: 80, withWindow: K === 3, noise: 0.02 });
        const plan = lcfStep(pb.refs, pb.energies, { mode: 'ls', background: bg }).plan;
        const { M, nW, xs, rs } = plan;
        const qt = lcfProjection(plan);
        expect(qt.length).toBe(nW * M);
        for (let i = 0; i < M; i++) {
          for (let j = 0; j < M; j++) {
            let qq = 0, qx = 0;
            for (let e = 0; e < nW; e++) {
              qq += qt[e * M + i] * qt[e * M + j];
              qx += qt[e * M + i] * xs[e * M + j];
            }
            const where = `K=${K} bg=${bg} (${i}, ${j})`;
            expect(Math.abs(qq - (i === j ? 1 : 0)), where).toBeLessThan(PROJ_TOL);
            expect(Math.abs(qx - rs[i * M + j]), where).toBeLessThan(PROJ_TOL);
          }
        }
      }
    }
  });

  test('the CPU kernel pairs pixels: an odd tile, and no-data pixels on either side of a pair, give the twin\'s statuses and weights', () => {
    const rng = makeRng(SEED + 10);
    for (const K of [2, 5, 6]) { // 3, 6 and 8 design columns with the linear background: one and two sweeps
      const pb = makeProblem(rng, { K, bg: 'linear', P: 151, nE: 50, withWindow: false, noise: 0.02 });
      pb.cube[4] = NaN; // first of a pair
      pb.cube[2 * pb.P + 7] = Infinity; // second of a pair
      pb.cube[pb.P + 150] = -Infinity; // the odd last pixel
      const plan = lcfStep(pb.refs, pb.energies, { mode: 'nnls', background: 'linear' }).plan;
      const win = pb.cube.subarray(plan.i0 * pb.P, plan.i1 * pb.P);
      const twin = lcfCpu(plan, win, pb.P);
      const rows = lcfRows(plan.M);
      // The last pixel alone (its own 1-pixel tile) and inside the odd tile must agree too.
      pb.cube[pb.P + 150] = 0.5;
      const twin2 = lcfCpu(plan, pb.cube.subarray(plan.i0 * pb.P, plan.i1 * pb.P), pb.P);
      const fast2 = lcfFast(plan, pb.cube.subarray(plan.i0 * pb.P, plan.i1 * pb.P), pb.P);
      pb.cube[pb.P + 150] = -Infinity;
      const fast = lcfFast(plan, win, pb.P);
      for (const [t, f, tag] of [[twin, fast, 'with -inf'], [twin2, fast2, 'finite']] as const) {
        for (let p = 0; p < pb.P; p++) {
          const where = `K=${K} ${tag} pixel ${p}`;
          expect(f[rows.STATUS * pb.P + p], where).toBe(t[rows.STATUS * pb.P + p]);
          for (let k = 0; k < plan.M; k++) {
            const a = t[k * pb.P + p], b = f[k * pb.P + p];
            if (Number.isNaN(a)) expect(Number.isNaN(b), where).toBe(true);
            else expect(Math.abs(a - b), where).toBeLessThanOrEqual(1e-8 * (1 + Math.abs(a)));
          }
        }
      }
      expect(fast[rows.STATUS * pb.P + 4]).toBe(LcfStatus.NO_DATA);
      expect(fast[rows.STATUS * pb.P + 7]).toBe(LcfStatus.NO_DATA);
      expect(fast[rows.STATUS * pb.P + 150]).toBe(LcfStatus.NO_DATA);
      expect(fast2[rows.STATUS * pb.P + 150]).toBe(LcfStatus.OK);
    }
  });

  test('the CPU kernel\'s active-set search (lcfSearchPixel) ends on the twin\'s exhaustive-search subset: same bytes, nnls modes, K = 1..6', () => {
    // Both searches run from the same z (lcfFinishPixel with and without the search table), so
    // any difference is a different subset. Half the pixels are sparse mixtures (0-3 of the K
    // references present), where the twin tries most of the 2^K subsets and the search does
    // several steps; the other half makeProblem's weights in [-0.3, 1.3].
    const rng = makeRng(SEED + 11);
    let bound = 0;
    for (let K = 1; K <= 6; K++) {
      for (const mode of ['nnls', 'nnls-sum1'] as LcfMode[]) {
        for (const bg of BACKGROUNDS) {
          const pb = makeProblem(rng, { K, bg, P: 300, nE: 50, withWindow: false, noise: 0.02 });
          for (let p = 0; p < pb.P / 2; p++) {
            const w = new Array<number>(K).fill(0);
            const n = Math.floor(4 * rng.uniform());
            for (let i = 0; i < n; i++) w[Math.floor(K * rng.uniform())] += 0.2 + rng.uniform();
            for (let e = 0; e < pb.nE; e++) {
              let v = 0.05 + 0.02 * rng.normal();
              for (let k = 0; k < K; k++) v += w[k] * pb.refs[k].mu[e];
              pb.cube[e * pb.P + p] = v;
            }
          }
          const plan = lcfStep(pb.refs, pb.energies, { mode, background: bg }).plan;
          const table = lcfSearchTable(plan);
          if (plan.nSubsets === 1) {
            expect(table, `K=${K} ${mode}`).toBeNull();
            continue;
          }
          expect(table, `K=${K} ${mode}`).not.toBeNull();
          const { M, nW } = plan;
          const qt = lcfProjection(plan);
          const rows = lcfRows(M);
          const L = subsetLayout(M, K);
          const a = new Float64Array(rows.ROWS), b = new Float64Array(rows.ROWS);
          const z = new Float64Array(M), th = new Float64Array(M);
          for (let p = 0; p < pb.P; p++) {
            z.fill(0);
            let ss = 0;
            for (let e = 0; e < nW; e++) {
              const y = pb.cube[e * pb.P + p];
              ss += y * y;
              for (let j = 0; j < M; j++) z[j] += qt[e * M + j] * y;
            }
            lcfFinishPixel(plan, L, z, 0, ss, th, a, rows, 1, 0, null);
            lcfFinishPixel(plan, L, z, 0, ss, th, b, rows, 1, 0, table);
            const where = `seed ${SEED + 11} K=${K} ${mode} bg=${bg} pixel ${p}`;
            expect(a[rows.STATUS], where).toBe(LcfStatus.OK);
            for (let r = 0; r < rows.ROWS; r++) expect(Object.is(a[r], b[r]), `${where} row ${r}: ${a[r]} vs ${b[r]}`).toBe(true);
            for (let k = 0; k < K; k++) if (a[k] === 0) { bound++; break; }
          }
        }
      }
    }
    // The constraints bound for many pixels (so the search did more than its first step).
    expect(bound).toBeGreaterThan(2000);
  });

  test('ill-conditioned references (rcond 1e-4.5 .. 1e-3): CPU equals the brute force, and the plan warns', async () => {
    const rng = makeRng(SEED + 1);
    for (const [K, collinear] of [[2, 2e-3], [3, 4e-3], [4, 5e-3]] as const) {
      for (const mode of MODES) {
        const pb = makeProblem(rng, { K, bg: 'const', P: 16, nE: 60, withWindow: false, collinear, noise: 1e-3 });
        const step = lcfStep(pb.refs, pb.energies, { mode, background: 'const' });
        const rc = step.plan.rcond;
        expect(rc, `K=${K}`).toBeLessThan(1e-3);
        expect(rc, `K=${K}`).toBeGreaterThan(LCF_DEPENDENT_RCOND);
        expect(step.info.warnings.join(' ')).toMatch(/nearly dependent/);
        const exact = cpuExact(step.plan, pb);
        const nW = pb.idx.length;
        const norms = colNorms(pb.X, nW, pb.M);
        for (let p = 0; p < pb.P; p++) {
          const y = spectrum(pb, p);
          const ref = bruteForceLcf({ X: pb.X, nW, M: pb.M, K, nonneg: mode.startsWith('nnls'), sum1: mode.endsWith('sum1') }, y);
          const got = exact.theta(p);
          const ynorm = Math.hypot(...y);
          const scale = errScale(y, ref.theta, norms);
          for (let j = 0; j < pb.M; j++) {
            expect((Math.abs(got[j] - ref.theta[j]) * norms[j]) / scale, `seed ${SEED + 1} K=${K} ${mode} p=${p} j=${j}`).toBeLessThanOrEqual(CPU_TOL(rc));
          }
          expect(exact.rss(p)).toBeLessThanOrEqual(ref.rss * (1 + RSS_TOL_REL) + 1e-12 * ynorm ** 2);
        }
      }
    }
  });

  test('GPU agrees with the CPU twin on every configuration, well- and ill-conditioned', async () => {
    const gpu = await gpuBackend();
    const cpu = cpuBackend();
    const rng = makeRng(SEED + 2);
    let worst = 0;
    let minRcond = 1;
    const cases: { K: number; bg: LcfBackground; mode: LcfMode; collinear: number | undefined }[] = [
      ...configs().map((c) => ({ ...c, collinear: undefined as number | undefined })),
      { K: 3, bg: 'linear' as LcfBackground, mode: 'nnls' as LcfMode, collinear: 5e-3 },
      { K: 2, bg: 'const' as LcfBackground, mode: 'nnls-sum1' as LcfMode, collinear: 2e-3 },
      { K: 4, bg: 'linear' as LcfBackground, mode: 'nnls' as LcfMode, collinear: 2e-3 },
      { K: 3, bg: 'none' as LcfBackground, mode: 'nnls-sum1' as LcfMode, collinear: 3e-3 },
    ];
    // The plan goes into a uniform binding when it fits 64 KiB (all of these but the last),
    // else into a storage binding: 700 energies with 6 references (plan ~95 KiB).
    cases.push({ K: 6, bg: 'linear', mode: 'nnls', collinear: undefined });
    for (const [ci, { K, bg, mode, collinear }] of cases.entries()) {
      // 200 pixels: not a multiple of the workgroup size (64).
      const nE = ci === cases.length - 1 ? 700 : 90;
      const pb = makeProblem(rng, { K, bg, P: 200, nE, withWindow: K === 3, collinear, noise: 0.02 });
      const step = lcfStep(pb.refs, pb.energies, { mode, background: bg, window: pb.window });
      expect(lcfPlanInUniform(gpu.gpu!, step.plan), `case ${ci}`).toBe(ci !== cases.length - 1);
      const [g, c] = [await step.runTile(gpu, pb.cube, pb.P), await step.runTile(cpu, pb.cube, pb.P)];
      const nW = pb.idx.length;
      const norms = colNorms(pb.X, nW, pb.M);
      const tol = GPU_TOL(step.plan.rcond);
      minRcond = Math.min(minRcond, step.plan.rcond);
      for (let p = 0; p < pb.P; p++) {
        const where = `seed ${SEED + 2} K=${K} bg=${bg} mode=${mode} pixel ${p}`;
        expect(g.status[p], where).toBe(c.status[p]);
        const y = spectrum(pb, p);
        const ynorm = Math.hypot(...y);
        const tg = thetaOf(g, step.plan.names, bg, p), tc = thetaOf(c, step.plan.names, bg, p);
        const scale = errScale(y, tc, norms);
        for (let j = 0; j < pb.M; j++) {
          const err = (Math.abs(tg[j] - tc[j]) * norms[j]) / scale;
          worst = Math.max(worst, err / tol);
          expect(err, `${where} coefficient ${j}: ${tg[j]} vs ${tc[j]}`).toBeLessThanOrEqual(tol);
        }
        // Residual rms: the residual is what float32 cannot cancel, so compare on the scale of y.
        expect(Math.abs(g.maps.residual_rms[p] - c.maps.residual_rms[p]), where).toBeLessThanOrEqual((tol * scale) / Math.sqrt(nW) + 1e-6 * c.maps.residual_rms[p]);
        expect(Math.abs(g.maps.rfactor[p] - c.maps.rfactor[p]), where).toBeLessThanOrEqual(2 * tol * (scale / ynorm) ** 2 + 1e-5 * c.maps.rfactor[p]);
      }
    }
    console.log(`lcf GPU vs CPU: worst coefficient error ${worst.toFixed(3)} of the tolerance; rcond down to ${minRcond.toExponential(1)}`);
  });

  test('linearly dependent references are an InputError naming exactly the dependent ones', async () => {
    const rng = makeRng(SEED + 3);
    const energies = Float64Array.from({ length: 50 }, (_, i) => 700 + 0.5 * i);
    const [a, b, c, d] = [0, 1, 2, 3].map(() => smoothRef(rng, energies));
    const cases: { refs: Record<string, Float64Array>; bg: LcfBackground; names: string[]; absent: string[] }[] = [
      { refs: { A: a, A2: a.map((v) => 2 * v), C: c }, bg: 'none', names: ['A', 'A2'], absent: ['C'] },
      { refs: { A: a, B: b, AB: a.map((v, i) => 0.3 * v + 0.7 * b[i]), D: d }, bg: 'const', names: ['A', 'B', 'AB'], absent: ['D', 'constant'] },
      { refs: { A: a, Ashift: a.map((v) => v + 0.25), C: c }, bg: 'const', names: ['A', 'Ashift', 'the constant background'], absent: ['C'] },
      { refs: { A: a, Atilt: a.map((v, i) => v + 0.01 * (energies[i] - 700)), C: c }, bg: 'linear', names: ['A', 'Atilt', 'the constant background', 'the linear background'], absent: ['C'] },
    ];
    for (const cs of cases) {
      const refs = Object.entries(cs.refs).map(([name, mu]) => ({ name, mu }));
      // The independent check: the design matrix really is rank-deficient.
      const nb = cs.bg === 'none' ? 0 : cs.bg === 'const' ? 1 : 2;
      const M = refs.length + nb;
      const X = new Float64Array(energies.length * M);
      energies.forEach((e, i) => {
        refs.forEach((r, j) => (X[i * M + j] = r.mu[i]));
        if (nb >= 1) X[i * M + refs.length] = 1;
        if (nb === 2) X[i * M + refs.length + 1] = e - 712;
      });
      expect(numericalRank(X, energies.length, M)).toBe(M - 1);
      let err: unknown;
      try {
        lcfStep(refs, energies, { mode: 'nnls', background: cs.bg });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/^--ref: .*linearly dependent/);
      const listed = msg.slice(7, msg.indexOf(' are linearly'));
      for (const n of cs.names) expect(listed.split(', '), msg).toContain(n);
      for (const n of cs.absent) expect(listed, msg).not.toContain(n);
    }
    // Independent once the background that made them dependent is gone.
    const ok = lcfStep([{ name: 'A', mu: a }, { name: 'Ashift', mu: a.map((v) => v + 0.25) }], energies, { mode: 'ls', background: 'none' });
    expect(ok.plan.rcond).toBeGreaterThan(LCF_DEPENDENT_RCOND);
  });

  test('hostile pixels and tiles, on both backends: NaN, zeros, windows, odd tile sizes', async () => {
    const rng = makeRng(SEED + 4);
    const pb = makeProblem(rng, { K: 3, bg: 'linear', P: 131, nE: 50, withWindow: true, noise: 0.01 });
    const P = pb.P;
    const cube = Float32Array.from(pb.cube);
    const inWin = pb.idx[5], outWin = 0;
    expect(pb.idx).not.toContain(outWin);
    cube[inWin * P + 3] = NaN; // masked point inside the window: dropped for this pixel only
    cube[outWin * P + 4] = NaN; // outside the window: ignored
    for (let i = 0; i < pb.nE; i++) cube[i * P + 5] = 0; // empty pixel
    cube[pb.idx[0] * P + 6] = Infinity;
    for (const backend of [await gpuBackend(), cpuBackend()]) {
      for (const mode of ['ls', 'nnls'] as LcfMode[]) {
        const step = lcfStep(pb.refs, pb.energies, { mode, background: 'linear', window: pb.window });
        const whole = await step.runTile(backend, cube, P);
        const where = `${backend.name} ${mode}`;
        // A non-finite point in the window (NaN, Infinity) is dropped for that pixel only:
        // the pixel is fitted on its other points.
        for (const p of [3, 6]) {
          expect(whole.status[p], where).toBe(LcfStatus.OK);
          expect(Number.isFinite(whole.maps.weight_r0[p]), `${where} pixel ${p}`).toBe(true);
        }
        expect(whole.status[4], where).not.toBe(LcfStatus.NO_DATA);
        expect(Number.isFinite(whole.maps.weight_r0[4]), where).toBe(true);
        // An all-zero spectrum: zero weights, no total (fractions NaN), rfactor undefined.
        expect(whole.status[5], where).toBe(LcfStatus.NO_TOTAL);
        expect(whole.maps.weight_r0[5], where).toBe(0);
        expect(whole.maps.fraction_r0[5], where).toBeNaN();
        expect(whole.maps.rfactor[5], where).toBeNaN();
        expect(whole.maps.residual_rms[5], where).toBe(0);
        // Tiles of 1, 64 and 66 pixels give exactly the whole-tile results.
        let at = 0;
        for (const n of [1, 64, 66]) {
          const sub = new Float32Array(pb.nE * n);
          for (let i = 0; i < pb.nE; i++) sub.set(cube.subarray(i * P + at, i * P + at + n), i * n);
          const part = await step.runTile(backend, sub, n);
          for (const name of step.mapNames) {
            for (let k = 0; k < n; k++) expect(Object.is(part.maps[name][k], whole.maps[name][at + k]) || part.maps[name][k] === whole.maps[name][at + k], `${where} ${name} @${at + k}`).toBe(true);
          }
          expect([...part.status]).toEqual([...whole.status.subarray(at, at + n)]);
          at += n;
        }
      }
    }
  });

  test('on 2 and 3 CPU threads the step cuts each tile into parts for the workers (splitsTiles): the one-thread bytes, with NaN pixels refitted, whole-stack and one-row tiles', async () => {
    const rng = makeRng(SEED + 9);
    const H = 9, W = 120;
    const pb = makeProblem(rng, { K: 3, bg: 'const', P: H * W, nE: 50, withWindow: true, noise: 0.01 });
    const P = pb.P;
    const cube = Float32Array.from(pb.cube);
    cube[pb.idx[5] * P + 3] = NaN; // refitted on its other points
    for (let i = 0; i < pb.nE; i++) cube[i * P + 700] = 0;
    for (const mode of ['ls', 'nnls'] as LcfMode[]) {
      const step = lcfStep(pb.refs, pb.energies, { mode, background: 'const', window: pb.window });
      expect(step.splitsTiles).toBe(true);
      const src = new MemoryStack(cube, pb.nE, H, W);
      // Split tiles: one tile in flight as on one thread (whole tiles on workers would be one per worker).
      expect(tileBudget(src, step, cpuBackend(3), 0, 0, 0).bytesPerPixel).toBe(tileBudget(src, step, cpuBackend(1), 0, 0, 0).bytesPerPixel);
      const one = await runTiles(src, step, cpuBackend(1), { budgetBytes: 1e12, baselineBytes: 0, tileTargetSeconds: Infinity });
      expect(one.status[3]).toBe(LcfStatus.OK);
      for (const threads of [2, 3]) {
        for (const tileTargetSeconds of [Infinity, 1e-9]) {
          const r = await runTiles(src, step, cpuBackend(threads), { budgetBytes: 1e12, baselineBytes: 0, tileTargetSeconds });
          const where = `${mode}, ${threads} threads, target ${tileTargetSeconds} s`;
          if (tileTargetSeconds !== Infinity) expect(r.tilesRun, where).toBeGreaterThan(H / 2);
          for (const name of step.mapNames) expect(Buffer.from(r.maps[name].buffer).equals(Buffer.from(one.maps[name].buffer)), `${name}, ${where}`).toBe(true);
          expect(Buffer.from(r.status).equals(Buffer.from(one.status)), where).toBe(true);
        }
      }
    }
  });

  test('maps, fractions and memory terms', () => {
    const rng = makeRng(SEED + 5);
    const pb = makeProblem(rng, { K: 2, bg: 'linear', P: 4, nE: 30, withWindow: true, noise: 0 });
    const step = lcfStep(pb.refs, pb.energies, { mode: 'sum1', background: 'linear', window: pb.window });
    expect(step.mapNames).toEqual(['weight_r0', 'weight_r1', 'fraction_r0', 'fraction_r1', 'total', 'bg_const', 'bg_slope', 'residual_rms', 'rfactor']);
    expect(step.statusNames).toEqual(['ok', 'no_data', 'no_total', 'low_total']);
    expect(step.info.window.energies).toBe(pb.idx.length);
    expect(step.info.bgRefEnergy).toBeCloseTo(pb.eRef, 9);
    // 2 references + 2 background terms: M = 4 rows of coefficients + 3.
    const rows = 7;
    expect(step.bytesPerPixel(pb.nE)).toBe(Math.max(12 * rows, 8 * 6 + 1 + 8 * rows) + 4 * 9 + 1);
    // The whole tile is bound (the kernel reads its window from the tile uploaded once for
    // every step), so the largest binding is the tile's spectra or the output rows.
    expect(step.gpuBindingBytesPerPixel(pb.nE)).toBe(4 * Math.max(pb.nE, rows));
    expect(() => step.bytesPerPixel(pb.nE + 1)).toThrow(RangeError);
    expect(() => lcfStep(pb.refs, pb.energies, { mode: 'ls', background: 'linear', window: [pb.energies[0], pb.energies[3]] })).toThrow(/--window: .* 4 energies; a fit of 4 terms needs at least 5/);
    const tooMany = Array.from({ length: 7 }, (_, k) => ({ name: `x${k}`, mu: smoothRef(rng, pb.energies) }));
    expect(() => lcfStep(tooMany, pb.energies, { mode: 'nnls', background: 'none' })).toThrow(/at most 6/);
    expect(() => lcfStep([pb.refs[0], { ...pb.refs[1], name: 'r0' }], pb.energies, { mode: 'ls', background: 'none' })).toThrow(/used twice/);
    const holed = { name: 'holed', mu: Float64Array.from(pb.refs[1].mu) };
    holed.mu[pb.idx[2]] = NaN;
    expect(() => lcfStep([pb.refs[0], holed], pb.energies, { mode: 'ls', background: 'none', window: pb.window })).toThrow(/^holed: .*no finite value/);
  });
});

describe('lcf: NiO / LiNiO2 mixtures with noise', () => {
  /**
   * Measured Ni K-edge references (examples/data) on the real 101-energy TXM grid. Each pixel
   * is t [(1 - s) NiO + s LiNiO2] + N(0, sigma^2) per energy, with s uniform in [0.2, 0.8]
   * (far from the bounds, so the sign constraints are inactive and every mode is linear in
   * the data) and t uniform in [0.5, 2] (t = 1 for the sum-to-one modes).
   * Expected standard error of the fraction s:
   *  - sum-to-one: y - NiO = s (LiNiO2 - NiO) + noise, so SE = sigma / ||LiNiO2 - NiO||;
   *  - free weights: f = wL / (wN + wL) with Cov(w) = sigma^2 (X^T X)^-1; by the delta method
   *    SE = sqrt(g^T Cov g), g = (-wL, wN) / (wN + wL)^2 at the true weights.
   * The test checks the standardised errors (s_hat - s) / SE over 4096 pixels: mean within
   * 4 / sqrt(n) of 0 (no bias) and RMS within 1 +- 0.07 (about 6 sampling standard deviations).
   */
  const SIGMA = 0.01;
  const N = 4096;
  const energies = niTxmEnergies();
  const { nio, linio2 } = loadNiReferences();
  const refs = [
    { name: 'NiO', mu: energies.map((e) => interpLinear(nio.energy, nio.mu, e)) },
    { name: 'LiNiO2', mu: energies.map((e) => interpLinear(linio2.energy, linio2.mu, e)) },
  ];
  const nE = energies.length;
  const G = [[0, 0], [0, 0]];
  let diff2 = 0;
  for (let i = 0; i < nE; i++) {
    const a = refs[0].mu[i], b = refs[1].mu[i];
    G[0][0] += a * a; G[0][1] += a * b; G[1][1] += b * b;
    diff2 += (b - a) ** 2;
  }
  G[1][0] = G[0][1];
  const det = G[0][0] * G[1][1] - G[0][1] ** 2;
  const cov = [[G[1][1] / det, -G[0][1] / det], [-G[0][1] / det, G[0][0] / det]].map((r) => r.map((v) => v * SIGMA ** 2));
  const seSum1 = SIGMA / Math.sqrt(diff2);
  const seFree = (s: number, t: number) => {
    const wN = t * (1 - s), wL = t * s, tot = wN + wL;
    const g = [-wL / tot ** 2, wN / tot ** 2];
    return Math.sqrt(g[0] * (cov[0][0] * g[0] + cov[0][1] * g[1]) + g[1] * (cov[1][0] * g[0] + cov[1][1] * g[1]));
  };

  for (const mode of MODES) {
    test(`${mode}: fraction errors match the expected standard error (sigma = ${SIGMA})`, async () => {
      const sum1 = mode.endsWith('sum1');
      const rng = makeRng(SEED + 10 + MODES.indexOf(mode));
      const s = new Float64Array(N), t = new Float64Array(N), se = new Float64Array(N);
      const cube = new Float32Array(nE * N);
      for (let p = 0; p < N; p++) {
        s[p] = 0.2 + 0.6 * rng.uniform();
        t[p] = sum1 ? 1 : 0.5 + 1.5 * rng.uniform();
        se[p] = sum1 ? seSum1 : seFree(s[p], t[p]);
        for (let i = 0; i < nE; i++) cube[i * N + p] = t[p] * ((1 - s[p]) * refs[0].mu[i] + s[p] * refs[1].mu[i]) + SIGMA * rng.normal();
      }
      const step = lcfStep(refs, energies, { mode, background: 'none' });
      for (const backend of [await gpuBackend(), cpuBackend()]) {
        const r = await step.runTile(backend, cube, N);
        let sum = 0, sum2 = 0;
        for (let p = 0; p < N; p++) {
          expect(r.status[p]).toBe(LcfStatus.OK);
          const zscore = (r.maps.fraction_LiNiO2[p] - s[p]) / se[p];
          sum += zscore;
          sum2 += zscore * zscore;
        }
        const mean = sum / N, rms = Math.sqrt(sum2 / N);
        console.log(`${mode} ${backend.name}: expected SE ${sum1 ? seSum1.toFixed(4) : `${seFree(0.5, 2).toFixed(4)}..${seFree(0.2, 0.5).toFixed(4)}`}, standardised error mean ${mean.toFixed(3)}, rms ${rms.toFixed(3)}`);
        expect(Math.abs(mean), `${mode} ${backend.name} bias`).toBeLessThan(4 / Math.sqrt(N));
        expect(Math.abs(rms - 1), `${mode} ${backend.name} spread`).toBeLessThan(0.07);
      }
    });
  }
});
