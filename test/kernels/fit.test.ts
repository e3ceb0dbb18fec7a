/**
 * The per-pixel LM fit (shaders/fit.wgsl, src/cpu/fit.ts, src/pipeline/fit-step.ts): known
 * truth on synthetic spectra, GPU against CPU, measured V K-edge spectra, hostile pixels,
 * tile splits and the user's options. One set of 12,000 synthetic pixels is fitted once on
 * each backend and shared by the tests that read it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { getGpu, type GpuContext } from '../../src/gpu/device.js';
import { PRESETS, parseModelSpec, type FitModel } from '../../src/models/model.js';
import { parseFitOptions } from '../../src/models/options.js';
import { FitStatus, FitStop, FIT_STATUS_NAMES } from '../../src/models/layout.js';
import { spectraFromParams, syntheticPresetSpectra, vkGrid40, type SyntheticFitData } from '../../src/models/synthetic.js';
import { fitMaps, fitStep, fitTileCpu, fitTileGpu, type FitStep } from '../../src/pipeline/fit-step.js';
import type { Backend, TileResult } from '../../src/pipeline/step.js';
import { interpLinear } from '../../src/synth/references.js';
import { makeRng } from '../../src/synth/random.js';
import { runTiles, tileBudget } from '../../src/pipeline/run-tiles.js';
import { cpuBackend as cpuBackendThreads } from '../../src/pipeline/backend.js';
import { MemoryStack } from '../../src/stack/source.js';

const SEED = 20240611;
/** Noise sigmas (data units; the edge jump is 0.6-1.4), a quarter of the pixels each. */
const LEVELS = [0, 0.003, 0.01, 0.03] as const;
const P = 12_000;

// --- named tolerances ---
/** The issue's bounds on the spread of (fit - true) / stderr. */
const PULL_SPREAD_MIN = 0.8;
const PULL_SPREAD_MAX = 1.25;
/**
 * |median pull|: LM estimates of nonlinear parameters carry a bias of order 1/SNR; at the
 * highest level a few tenths of a standard error are expected, more would be a wrong
 * derivative or scale.
 */
const PULL_BIAS_MAX = 0.25;
/**
 * Converged fraction per level: every noiseless and low-noise fit converges; at sigma 0.03
 * the weak pre-edge peak or the coarsely sampled white line sometimes leaves a parameter
 * undetermined (singular / at-bound), ~2 % measured.
 */
const MIN_CONVERGED: Record<number, number> = { 0: 0.999, 0.003: 0.999, 0.01: 0.995, 0.03: 0.95 };
/** Converged pixels with |pull| > OUTLIER_PULL (a wrong local minimum): at most this fraction. */
const OUTLIER_PULL = 5;
const OUTLIER_FRACTION = 0.01;
/**
 * Noiseless data: |fit - true| <= half a float32 ulp of the true value (the maps are float32)
 * + NOISELESS_SIGMAS x the standard error that float32 rounding of the data alone causes
 * (sigma = 2^-24 x the pixel's largest |value|, the rounding of the values near it). The
 * stopping rule allows an RMS residual of 1e-7 x that value (CHI2_FLOOR_REL), 1.7 times the
 * rounding, and 12,000 fits reach the tails: up to ~9 seen on 2,000.
 */
const NOISELESS_SIGMAS = 16;
/** GPU (float32) against CPU (float64): statuses equal on at least this fraction (the issue). */
const STATUS_AGREEMENT = 0.995;
/**
 * Iteration counts within ITERATION_SLACK on this fraction of the pixels both converged: the
 * rest took different paths through a flat or multi-minimum chi2 surface (0.1 % measured),
 * where float32 rounding decides between two almost equal steps.
 */
const ITERATION_SLACK = 2;
const ITERATION_AGREEMENT = 0.995;
/**
 * Where both converged along the same path (iterations within the slack), parameters agree
 * to this fraction of their standard error (noisy data; 0.03 worst seen), or to
 * 2 x NOISELESS_SIGMAS float32-rounding errors plus an ulp (noiseless data).
 */
const PARAM_AGREE_SE = 0.1;
/**
 * Reduced chi-squares of one minimum on both backends agree to float32 rounding of the sums
 * (~1e-6) plus what FTOL leaves (1e-5); 1e-3 separates another minimum (x1.01 and more).
 */
const SAME_MINIMUM_REL = 1e-3;

function ulp32(x: number): number {
  const f = new Float32Array([Math.abs(x)]);
  const u = new Uint32Array(f.buffer);
  const a = f[0];
  u[0]++;
  return f[0] - a;
}

/**
 * The standard error of each parameter caused by float32 rounding of the data alone: the
 * least-squares covariance (J^T J)^-1 at the true parameters (float64) times sigma^2 with
 * sigma = 2^-24 x the largest |value|.
 */
function float32Sigmas(model: FitModel, energies: Float64Array, params: number[]): number[] {
  const np = params.length;
  const eRef = (energies[0] + energies[energies.length - 1]) / 2;
  const q = new Float64Array(np);
  for (let k = 0; k < np; k++) q[k] = model.paramRoles[k] === 'energy' ? params[k] - eRef : params[k];
  const A = Array.from({ length: np }, () => new Float64Array(np));
  const d = new Float64Array(np);
  let ymax = 0;
  for (const E of energies) {
    let f = 0;
    for (const c of model.components) f += c.def.evaluate(E - eRef, q, c.offset, d);
    ymax = Math.max(ymax, Math.abs(f));
    for (let a = 0; a < np; a++) for (let b = 0; b < np; b++) A[a][b] += d[a] * d[b];
  }
  // Gauss-Jordan inverse (float64, partial pivoting).
  const inv = Array.from({ length: np }, (_, i) => Float64Array.from({ length: np }, (_, j) => (i === j ? 1 : 0)));
  for (let c = 0; c < np; c++) {
    let piv = c;
    for (let r = c + 1; r < np; r++) if (Math.abs(A[r][c]) > Math.abs(A[piv][c])) piv = r;
    [A[c], A[piv]] = [A[piv], A[c]];
    [inv[c], inv[piv]] = [inv[piv], inv[c]];
    const dv = A[c][c];
    for (let k = 0; k < np; k++) {
      A[c][k] /= dv;
      inv[c][k] /= dv;
    }
    for (let r = 0; r < np; r++) {
      if (r === c) continue;
      const f = A[r][c];
      for (let k = 0; k < np; k++) {
        A[r][k] -= f * A[c][k];
        inv[r][k] -= f * inv[c][k];
      }
    }
  }
  const s = ymax * 2 ** -24;
  return params.map((_, k) => Math.sqrt(inv[k][k]) * s);
}

function quantile(sorted: number[], f: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(f * (sorted.length - 1))))];
}

function cpuBackend(): Backend {
  return { name: 'cpu', adapter: 'test CPU' };
}

let gpu: GpuContext | null = null;
let data: SyntheticFitData;
let step: FitStep;
const results: Record<'cpu' | 'webgpu', TileResult> = {} as never;

beforeAll(async () => {
  gpu = await getGpu();
  // The software adapter exists here and in CI; a missing one is a failure, not a skip.
  expect(gpu, 'no WebGPU adapter (llvmpipe expected)').not.toBeNull();
  data = syntheticPresetSpectra(vkGrid40(), P, SEED, LEVELS);
  step = fitStep(data.model, data.energies);
  results.cpu = fitMaps(step.plan, fitTileCpu(step.plan, data.cube, P));
  results.webgpu = fitMaps(step.plan, await fitTileGpu(gpu!, step.plan, data.cube, P));
});

describe.each(['cpu', 'webgpu'] as const)('erf-2lorentz on 12,000 synthetic spectra, %s', (backend) => {
  test.each(LEVELS.filter((l) => l > 0))('noise %s: parameters recovered, pulls honest', (level) => {
    const r = results[backend];
    const idx: number[] = [];
    let converged = 0;
    for (let p = 0; p < P; p++) {
      if (data.sigma[p] !== level) continue;
      idx.push(p);
      if (r.status[p] === FitStatus.CONVERGED) converged++;
    }
    const ctx = `seed ${SEED}, ${backend}, noise ${level}`;
    expect(converged / idx.length, `converged fraction (${ctx})`).toBeGreaterThanOrEqual(MIN_CONVERGED[level]);
    const lines: string[] = [];
    data.model.paramNames.forEach((name, k) => {
      const pulls: number[] = [];
      for (const p of idx) {
        if (r.status[p] !== FitStatus.CONVERGED) continue;
        pulls.push((r.maps[name][p] - data.truth[k][p]) / r.maps[`${name}_stderr`][p]);
      }
      pulls.sort((a, b) => a - b);
      // Robust spread: half the 15.87-84.13 % range, sigma for a normal distribution, not
      // dominated by the few fits in a wrong minimum (counted separately below).
      const spread = (quantile(pulls, 0.8413) - quantile(pulls, 0.1587)) / 2;
      const median = quantile(pulls, 0.5);
      const outliers = pulls.filter((x) => Math.abs(x) > OUTLIER_PULL).length / pulls.length;
      lines.push(`${name} ${spread.toFixed(3)}`);
      expect(spread, `pull spread of ${name} (${ctx})`).toBeGreaterThanOrEqual(PULL_SPREAD_MIN);
      expect(spread, `pull spread of ${name} (${ctx})`).toBeLessThanOrEqual(PULL_SPREAD_MAX);
      expect(Math.abs(median), `median pull of ${name} (${ctx})`).toBeLessThanOrEqual(PULL_BIAS_MAX);
      expect(outliers, `fraction of |pull| > ${OUTLIER_PULL} for ${name} (${ctx})`).toBeLessThanOrEqual(OUTLIER_FRACTION);
    });
    console.log(`pull spreads, ${backend}, noise ${level}: ${lines.join(', ')}`);
  });

  test('noiseless: recovered to float32 precision', () => {
    const r = results[backend];
    const worst = new Array(data.model.paramNames.length).fill(0);
    let n = 0;
    for (let p = 0; p < P; p++) {
      if (data.sigma[p] !== 0) continue;
      n++;
      expect(r.status[p], `status of noiseless pixel ${p} (seed ${SEED}, ${backend})`).toBe(FitStatus.CONVERGED);
      const truth = data.truth.map((t) => t[p]);
      const s = float32Sigmas(data.model, data.energies, truth);
      data.model.paramNames.forEach((name, k) => {
        const excess = Math.max(0, Math.abs(r.maps[name][p] - truth[k]) - 0.5 * ulp32(truth[k])) / s[k];
        worst[k] = Math.max(worst[k], excess);
      });
    }
    expect(n).toBe(P / LEVELS.length);
    console.log(`noiseless, ${backend}: worst error / float32-rounding sigma: ${data.model.paramNames.map((nm, k) => `${nm} ${worst[k].toFixed(1)}`).join(', ')}`);
    for (let k = 0; k < worst.length; k++) expect(worst[k], `${data.model.paramNames[k]} (seed ${SEED}, ${backend})`).toBeLessThanOrEqual(NOISELESS_SIGMAS);
  });
});

describe('GPU (float32) against CPU (float64)', () => {
  test('statuses, iteration counts and parameters agree', () => {
    const g = results.webgpu;
    const c = results.cpu;
    let same = 0;
    let both = 0;
    let pathAgrees = 0;
    const worst: Record<string, number> = {};
    for (let p = 0; p < P; p++) {
      if (g.status[p] === c.status[p]) same++;
      if (g.status[p] !== FitStatus.CONVERGED || c.status[p] !== FitStatus.CONVERGED) continue;
      both++;
      if (Math.abs(g.maps.iterations[p] - c.maps.iterations[p]) > ITERATION_SLACK) continue;
      // Same path also means the same minimum: at noise 0.03 a weak pre-edge peak can end in
      // another local minimum on one backend within the same number of iterations (seen:
      // 2.7x the chi-square, 20 vs 22 iterations); such pixels count as different paths.
      // (Noisy pixels only: noiseless chi-squares are float32 rounding, not comparable.)
      if (data.sigma[p] > 0 && Math.abs(g.maps.redchi[p] - c.maps.redchi[p]) > SAME_MINIMUM_REL * c.maps.redchi[p]) continue;
      pathAgrees++;
      const level = data.sigma[p];
      const s = level === 0 ? float32Sigmas(data.model, data.energies, data.truth.map((t) => t[p])) : null;
      data.model.paramNames.forEach((name, k) => {
        const diff = Math.abs(g.maps[name][p] - c.maps[name][p]);
        const tol = level > 0
          ? PARAM_AGREE_SE * c.maps[`${name}_stderr`][p] + ulp32(c.maps[name][p])
          : 2 * NOISELESS_SIGMAS * s![k] + ulp32(c.maps[name][p]);
        worst[name] = Math.max(worst[name] ?? 0, diff / tol);
        expect(diff, `${name} at pixel ${p} (noise ${level}, seed ${SEED}): GPU ${g.maps[name][p]}, CPU ${c.maps[name][p]}`).toBeLessThanOrEqual(tol);
      });
    }
    console.log(`GPU vs CPU: same status ${(same / P * 100).toFixed(2)} %, iterations within ${ITERATION_SLACK} on ${(pathAgrees / both * 100).toFixed(2)} % of ${both} both converged; worst difference / tolerance ${Object.entries(worst).map(([n, v]) => `${n} ${v.toFixed(2)}`).join(', ')}`);
    expect(same / P, `status agreement (seed ${SEED})`).toBeGreaterThanOrEqual(STATUS_AGREEMENT);
    expect(pathAgrees / both, `iteration agreement (seed ${SEED})`).toBeGreaterThanOrEqual(ITERATION_AGREEMENT);
  });
});

// ---------------------------------------------------------------------------------------
// Measured spectra

/** An XDI file's energy and mu = ln(i0 / itrans); the column labels are on the last header line. */
function readXdi(path: string): { energy: Float64Array; mu: Float64Array } {
  let labels: string[] = [];
  const rows: number[][] = [];
  for (const line of readFileSync(path, 'utf8').split(/\r?\n/)) {
    if (line.startsWith('#')) labels = line.slice(1).trim().split(/\s+/);
    else if (line.trim() !== '') rows.push(line.trim().split(/\s+/).map(Number));
  }
  const col = (name: string) => {
    const i = labels.indexOf(name);
    if (i < 0) throw new Error(`${path}: no column '${name}' in ${labels.join(', ')}`);
    return rows.map((r) => r[i]);
  };
  const i0 = col('i0');
  const it = col('itrans');
  return { energy: Float64Array.from(col('energy')), mu: Float64Array.from(i0, (v, i) => Math.log(v / it[i])) };
}

describe('measured V K-edge spectra (V2O3, VO2, V2O5)', () => {
  const compounds = [
    { name: 'V2O3', valence: 3 },
    { name: 'VO2', valence: 4 },
    { name: 'V2O5', valence: 5 },
  ];
  const energies = vkGrid40();
  const n = compounds.length;
  const cube = new Float32Array(energies.length * n);
  compounds.forEach((c, p) => {
    const s = readXdi(fileURLToPath(new URL(`../fixtures/v-k/${c.name}.xdi`, import.meta.url)));
    for (let i = 0; i < energies.length; i++) cube[i * n + p] = interpLinear(s.energy, s.mu, energies[i]);
  });

  test.each(['cpu', 'webgpu'] as const)('b2 and PE/b1 order with the valence (%s)', async (backend) => {
    const st = fitStep(PRESETS['erf-2lorentz'].make(), energies);
    const r = await st.runTile(backend === 'webgpu' ? { name: 'webgpu', adapter: gpu!.adapterName, gpu: gpu! } : cpuBackend(), cube, n);
    compounds.forEach((c, p) => {
      console.log(`${backend} ${c.name} (V${c.valence}+): b2 = ${r.maps.b2[p].toFixed(2)} +- ${r.maps.b2_stderr[p].toFixed(2)} eV, PE/b1 = ${r.maps.PE_over_b1[p].toFixed(3)} eV, b1 = ${r.maps.b1[p].toFixed(3)}, status ${FIT_STATUS_NAMES[r.status[p]]} after ${r.maps.iterations[p]} iterations`);
      // The preset describes these spectra only roughly (sloped pre-edge, structured white
      // line), but every fit must end with fitted values.
      expect([FitStatus.CONVERGED, FitStatus.AT_BOUND, FitStatus.MAX_ITERATIONS]).toContain(r.status[p]);
    });
    for (let p = 1; p < n; p++) {
      expect(r.maps.b2[p], `b2 of ${compounds[p].name} vs ${compounds[p - 1].name}`).toBeGreaterThan(r.maps.b2[p - 1]);
      expect(r.maps.PE_over_b1[p], `PE/b1 of ${compounds[p].name} vs ${compounds[p - 1].name}`).toBeGreaterThan(r.maps.PE_over_b1[p - 1]);
    }
  });
});

// ---------------------------------------------------------------------------------------
// Hostile pixels, tiles, options, another model

describe.each(['cpu', 'webgpu'] as const)('hostile pixels and tiles, %s', (backend) => {
  const backendOf = (): Backend => (backend === 'webgpu' ? { name: 'webgpu', adapter: gpu!.adapterName, gpu: gpu! } : cpuBackend());

  test('flat, NaN, enormous and zero-jump pixels end with a status and leave their neighbours alone', async () => {
    const energies = vkGrid40();
    const nE = energies.length;
    const n = 40; // not a multiple of the workgroup size
    const clean = syntheticPresetSpectra(energies, n, SEED + 7, [0.01]);
    const cube = clean.cube.slice();
    const hostile = new Map<number, { what: string; status?: number }>();
    const set = (p: number, what: string, f: (i: number) => number, status?: number) => {
      hostile.set(p, { what, status });
      for (let i = 0; i < nE; i++) cube[i * n + p] = f(i);
    };
    const y = (p: number, i: number) => clean.cube[i * n + p];
    set(0, 'all NaN', () => NaN, FitStatus.MASKED_INPUT);
    set(3, 'flat', () => 0.7, FitStatus.SINGULAR);
    set(5, 'zeros', () => 0, FitStatus.SINGULAR);
    set(8, 'NaN in the pre-edge window', (i) => (i < 4 ? NaN : y(8, i)), FitStatus.MASKED_INPUT);
    set(11, 'fewer finite points than parameters', (i) => (i < nE - 8 ? NaN : 1), FitStatus.MASKED_INPUT);
    set(14, 'x 1e30', (i) => y(14, i) * 1e30);
    set(17, '+-3e38', (i) => (i % 2 ? 3e38 : -3e38));
    set(20, 'zero edge jump (noise only)', (i) => 0.3 + 0.01 * Math.sin(7.3 * i));
    set(23, 'one +Infinity', (i) => (i === 20 ? Infinity : y(23, i)));
    set(26, 'inverted edge', (i) => -y(26, i));
    set(29, 'x 1e-30', (i) => y(29, i) * 1e-30);
    set(39, 'NaN at the last pixel', () => NaN, FitStatus.MASKED_INPUT);
    const st = fitStep(clean.model, energies);
    const a = await st.runTile(backendOf(), clean.cube, n);
    const b = await st.runTile(backendOf(), cube, n);
    for (let p = 0; p < n; p++) {
      const h = hostile.get(p);
      if (!h) {
        for (const m of st.mapNames) expect(Object.is(b.maps[m][p], a.maps[m][p]), `${m} of neighbour ${p} changed`).toBe(true);
        expect(b.status[p]).toBe(a.status[p]);
        continue;
      }
      console.log(`${backend} hostile '${h.what}': ${FIT_STATUS_NAMES[b.status[p]]} after ${b.maps.iterations[p]} iterations`);
      expect(b.status[p], h.what).toBeLessThan(FIT_STATUS_NAMES.length);
      expect(b.maps.iterations[p], h.what).toBeLessThanOrEqual(st.plan.maxIter);
      if (h.status !== undefined) expect(FIT_STATUS_NAMES[b.status[p]], h.what).toBe(FIT_STATUS_NAMES[h.status]);
      if (b.status[p] === FitStatus.MASKED_INPUT || b.status[p] === FitStatus.NON_FINITE) {
        for (const m of st.mapNames) if (m !== 'iterations' && m !== 'stop') expect(b.maps[m][p], `${m} of '${h.what}'`).toBeNaN();
        expect(b.maps.stop[p], h.what).toBe(FitStop.NONE);
      }
    }
    // The preset's PE maps are masked where the edge jump is not above the pre-edge noise.
    expect(b.maps.PE[3]).toBeNaN();
    expect(b.maps.PE_over_b1[26]).toBeNaN();
  });

  test('a tile split anywhere gives the same maps as the whole', async () => {
    const energies = vkGrid40();
    const nE = energies.length;
    const n = 500;
    const d = syntheticPresetSpectra(energies, n, SEED + 11, [0.005, 0.02]);
    const st = fitStep(d.model, energies);
    const whole = await st.runTile(backendOf(), d.cube, n);
    const cut = 173;
    const part = (p0: number, p1: number) => {
      const c = new Float32Array(nE * (p1 - p0) + 17); // longer than needed, as the runner's buffer may be
      for (let i = 0; i < nE; i++) c.set(d.cube.subarray(i * n + p0, i * n + p1), i * (p1 - p0));
      return c;
    };
    const left = await st.runTile(backendOf(), part(0, cut), cut);
    const right = await st.runTile(backendOf(), part(cut, n), n - cut);
    for (const m of st.mapNames) {
      for (let p = 0; p < n; p++) {
        const v = p < cut ? left.maps[m][p] : right.maps[m][p - cut];
        expect(Object.is(v, whole.maps[m][p]), `${m} at pixel ${p}`).toBe(true);
      }
    }
    for (let p = 0; p < n; p++) expect(p < cut ? left.status[p] : right.status[p - cut]).toBe(whole.status[p]);
  });

  test('--init, --fix and --bounds act on every pixel', async () => {
    const energies = vkGrid40();
    const n = 400;
    // b3 fixed at its true value; c13 (true 0.7-1.4 eV) bounded to [0.9, 1.2].
    const d = syntheticPresetSpectra(energies, n, SEED + 13, [0.003], { b3: 3.5 });
    const options = parseFitOptions({ init: '{"b3": 3.5, "c23": 4}', fix: 'b3', bounds: '{"c13": [0.9, 1.2]}', maxIter: 200 }, d.model);
    const st = fitStep(d.model, energies, options);
    const r = await st.runTile(backendOf(), d.cube, n);
    const k13 = d.model.paramNames.indexOf('c13');
    let inside = 0, insideOk = 0, outside = 0, outsideAtBound = 0;
    for (let p = 0; p < n; p++) {
      // Parameter maps only where the fit converged, also with a parameter on a bound (a
      // constrained optimum; NaN elsewhere, every map); raw/ keeps the fitted values of
      // every pixel. The error of a parameter on its bound is NaN (no confidence interval).
      const converged = r.status[p] === FitStatus.CONVERGED || r.status[p] === FitStatus.AT_BOUND;
      for (const name of d.model.paramNames) {
        expect(Number.isNaN(r.maps[name][p]), `${name} at pixel ${p}, status ${r.status[p]}`).toBe(!converged);
        const onBound = name === 'c13' && (Math.abs(r.maps.c13[p] - 0.9) < 1e-6 || Math.abs(r.maps.c13[p] - 1.2) < 1e-6);
        expect(Number.isNaN(r.maps[`${name}_stderr`][p]), `${name}_stderr at pixel ${p}, status ${r.status[p]}`).toBe(!converged || onBound);
        expect(Number.isFinite(r.maps[`raw/${name}`][p]), `raw/${name} at pixel ${p}`).toBe(true);
      }
      expect(r.maps['raw/b3'][p]).toBe(3.5);
      if (converged) expect(r.maps.b3_stderr[p]).toBe(0);
      expect(r.maps['raw/c13'][p]).toBeGreaterThanOrEqual(Math.fround(0.9) * (1 - 1e-6));
      expect(r.maps['raw/c13'][p]).toBeLessThanOrEqual(Math.fround(1.2) * (1 + 1e-6));
      const t = d.truth[k13][p];
      if (t > 0.92 && t < 1.18) {
        inside++;
        if (r.status[p] === FitStatus.CONVERGED && Math.abs(r.maps.c13[p] - t) < 5 * r.maps.c13_stderr[p]) insideOk++;
      } else if (t < 0.88 || t > 1.22) {
        outside++;
        if (r.status[p] === FitStatus.AT_BOUND) outsideAtBound++;
      }
    }
    // The bounded fits that need the bound end on it; the others are unaffected by it.
    expect(outsideAtBound / outside, `at-bound fraction (seed ${SEED + 13})`).toBeGreaterThanOrEqual(0.95);
    expect(insideOk / inside, `converged within 5 stderr (seed ${SEED + 13})`).toBeGreaterThanOrEqual(0.97);
  });
});

describe.each(['cpu', 'webgpu'] as const)('a model given on the command line, %s', (backend) => {
  test('"const + linear + atan + pvoigt" is recovered from its own spectra', async () => {
    const model = parseModelSpec('const + linear + atan + pvoigt');
    expect(model.paramNames).toEqual(['const_offset', 'linear_slope', 'atan_height', 'atan_centre', 'atan_width', 'pvoigt_height', 'pvoigt_centre', 'pvoigt_hwhm', 'pvoigt_eta']);
    const energies = vkGrid40();
    const n = 300;
    const rng = makeRng(SEED + 17);
    const u = (lo: number, hi: number) => lo + (hi - lo) * rng.uniform();
    const truth = model.paramNames.map(() => new Float64Array(n));
    for (let p = 0; p < n; p++) {
      const h = u(0.6, 1.4);
      [u(-0.2, 0.2), u(-1e-3, 1e-3), h, u(5478, 5482), u(1.5, 3), h * u(0.3, 0.7), u(5469.5, 5471.5), u(0.8, 1.4), u(0.2, 0.8)].forEach((v, k) => (truth[k][p] = v));
    }
    const sigma = new Float64Array(n).fill(0.002);
    const cube = spectraFromParams(model, energies, truth, sigma, SEED + 18);
    const st = fitStep(model, energies);
    const r = await st.runTile(backend === 'webgpu' ? { name: 'webgpu', adapter: gpu!.adapterName, gpu: gpu! } : cpuBackend(), cube, n);
    let converged = 0;
    const within: number[] = new Array(model.paramNames.length).fill(0);
    for (let p = 0; p < n; p++) {
      if (r.status[p] !== FitStatus.CONVERGED) continue;
      converged++;
      model.paramNames.forEach((name, k) => {
        if (Math.abs(r.maps[name][p] - truth[k][p]) <= 4 * r.maps[`${name}_stderr`][p]) within[k]++;
      });
    }
    expect(converged / n, `converged (seed ${SEED + 17})`).toBeGreaterThanOrEqual(0.97);
    // Within 4 standard errors: 99.99 % for honest errors; allow a few wrong minima.
    model.paramNames.forEach((name, k) => expect(within[k] / converged, `${name} within 4 stderr (seed ${SEED + 17})`).toBeGreaterThanOrEqual(0.97));
  });
});

describe('through the tiled runner', () => {
  // 29 columns: tiles are never a multiple of the workgroup size.
  const W = 29, H = 23;
  const energies = vkGrid40();
  const d = syntheticPresetSpectra(energies, W * H, SEED + 19, [0.005, 0.02]);

  test('a tiny budget (3 rows a tile) gives the same bytes as one whole-stack tile, on the GPU', async () => {
    const st = fitStep(d.model, energies);
    const backend: Backend = { name: 'webgpu', adapter: gpu!.adapterName, gpu: gpu! };
    const src = new MemoryStack(d.cube, energies.length, H, W);
    const b = tileBudget(src, st, backend, 0, 0, 0);
    // The memory plan's tiles from the first (no growth from one row by measured time).
    const whole = await runTiles(src, st, backend, { budgetBytes: 1e12, baselineBytes: 0, tileTargetSeconds: Infinity });
    const tiled = await runTiles(src, st, backend, { budgetBytes: b.fixedBytes + 3 * W * b.bytesPerPixel + 100, baselineBytes: 0, tileTargetSeconds: Infinity });
    expect(whole.tilesRun).toBe(1);
    expect(tiled.tilesRun).toBe(Math.ceil(H / 3));
    for (const m of st.mapNames) expect(Buffer.from(tiled.maps[m].buffer).equals(Buffer.from(whole.maps[m].buffer)), m).toBe(true);
    expect(Buffer.from(tiled.status).equals(Buffer.from(whole.status))).toBe(true);
    expect(whole.statusCounts.converged).toBeGreaterThan(0.9 * W * H);
  });

  test('CPU worker threads give the same bytes as the main thread', async () => {
    const st = fitStep(d.model, energies);
    expect(st.worker?.kind).toBe('fit');
    const src = new MemoryStack(d.cube, energies.length, H, W);
    const b = tileBudget(src, st, cpuBackendThreads(2), 0, 0, 0);
    const one = await runTiles(src, st, cpuBackendThreads(1), { budgetBytes: 1e12, baselineBytes: 0 });
    const pooled = await runTiles(src, st, cpuBackendThreads(2), { budgetBytes: b.fixedBytes + 4 * W * b.bytesPerPixel + 100, baselineBytes: 0 });
    expect(pooled.tilesRun).toBe(Math.ceil(H / 4));
    for (const m of st.mapNames) expect(Buffer.from(pooled.maps[m].buffer).equals(Buffer.from(one.maps[m].buffer)), m).toBe(true);
    expect(Buffer.from(pooled.status).equals(Buffer.from(one.status))).toBe(true);
  });
});

describe('the PixelStep', () => {
  test('names its maps and statuses and counts its bytes', () => {
    const st = fitStep(PRESETS['erf-2lorentz'].make(), vkGrid40());
    const names = ['a', 'b1', 'b2', 'b3', 'c11', 'c12', 'c13', 'c21', 'c22', 'c23'];
    expect(st.mapNames).toEqual([...names, ...names.map((x) => `${x}_stderr`), 'redchi', 'iterations', 'stop', 'PE', 'PE_over_b1', ...names.map((x) => `raw/${x}`)]);
    expect([...st.statusNames]).toEqual(['converged', 'max-iterations', 'singular', 'at-bound', 'masked-input', 'non-finite']);
    // At least the float32 outputs and the status byte, plus GPU work rows or CPU float64 rows.
    expect(st.bytesPerPixel(40)).toBeGreaterThan(4 * st.mapNames.length + 1 + 8 * 25);
    expect(st.gpuBindingBytesPerPixel(40)).toBe(Math.max(4 * 40, 4 * (8 + 25)));
    expect(st.gpuBindingBytesPerPixel(101)).toBe(4 * 101);
  });
});
