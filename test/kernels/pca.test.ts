/**
 * pca: GPU (pca_mask + pca_cov + pca_project) vs the float64 CPU twin vs known truth, on a
 * stack mixed from three measured Ni K-edge spectra (NiO and LiNiO2 bundled references,
 * Ni foil from the XAS Data Library fixture) with noise, and on degenerate inputs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadNiReferences, niTxmEnergies } from '../../src/synth/ni-txm.js';
import { interpLinear } from '../../src/synth/references.js';
import { makeRng } from '../../src/synth/random.js';
import { MemoryStack } from '../../src/stack/source.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { readNpy } from '../../src/io/npy.js';
import {
  PcaAccumulator, jacobiEigenSymmetric, pcaGramCpu, pcaModelFromGram, pcaProjectCpu, significantComponents, PCA_MAX_ABS,
} from '../../src/cpu/pca.js';
import { COV_PANEL, COV_WG, covPlan, directBlockClasses, directLayout, pcaGramGpu, pcaProjectGpu } from '../../src/kernels/pca.js';
import { CpuGram, PCA_CPU_BLOCK } from '../../src/cpu/pca-gram.js';
import { GRAM_F32_BOUND } from '../../src/cpu/pca-wasm.js';
import { sharedFloat32 } from '../../src/cpu/threads.js';
import { heapF32, heapFree, inHeap, wasmHeap } from '../../src/cpu/wasm-heap.js';
import { pcaProjectStep, pcaRun } from '../../src/pipeline/cluster.js';
import { gpuBackend } from '../helpers/backends.js';
import { fixturePath, readXdiMu, roughlyNormalised } from '../helpers/cluster.js';

const SEED = 515151;
/** Noise of the synthetic stack (normalised absorbance units): typical of a good TXM pixel. */
const NOISE = 0.01;
/**
 * GPU Gram matrix vs float64, relative to its largest diagonal entry: float32 products of
 * centred O(1) values, summed in blocks of <= 64 terms per stage before float64; a few
 * 1e-7 seen, 1e-5 leaves margin yet catches a wrong or missing term (1/n ~ 5e-4).
 */
const GRAM_REL = 1e-5;
/** Leading eigenvalues GPU vs CPU, relative (follows from GRAM_REL on well-separated eigenvalues). */
const EIG_REL = 1e-4;
/** |<v_gpu, v_cpu>| for the leading components: they are separated by orders of magnitude. */
const VEC_DOT_TOL = 1e-6;
/**
 * Scores and reconstruction error, GPU (float32) vs CPU (float64), absolute in normalised
 * units: sums of 101 products of O(1) values in float32 (~1e-6 each); 1e-4 leaves margin.
 */
const SCORE_TOL = 1e-4;
/** Reconstruction RMS vs its expectation NOISE * sqrt((d - 3) / d): mean over ~2000 pixels (chi-square spread ~1.5 %). */
const RECON_REL = 0.05;

function refs(energies: Float64Array): Float64Array[] {
  const { nio, linio2 } = loadNiReferences();
  const on = (s: { energy: Float64Array; mu: Float64Array }) => energies.map((e) => interpLinear(s.energy, s.mu, e));
  const foil = readXdiMu(fixturePath('ni-k/Ni_metal_rt_01.xdi'));
  return [on(nio), on(linio2), roughlyNormalised(foil, energies)];
}

/** Spectra = sum of 3 references with independent random weights + Gaussian noise; some NaN and huge pixels. */
function mixedStack(W: number, H: number, seed: number, noise = NOISE) {
  const energies = niTxmEnergies();
  const nE = energies.length;
  const R = refs(energies);
  const rng = makeRng(seed);
  const P = W * H;
  const cube = new Float32Array(nE * P);
  const weights = new Float64Array(3 * P);
  const bad = new Set<number>();
  for (let p = 0; p < P; p++) {
    for (let i = 0; i < 3; i++) weights[i * P + p] = 0.2 + 0.8 * rng.uniform();
    for (let e = 0; e < nE; e++) {
      let v = 0;
      for (let i = 0; i < 3; i++) v += weights[i * P + p] * R[i][e];
      cube[e * P + p] = v + noise * rng.normal();
    }
  }
  // Excluded pixels: NaN at one energy, +Inf, and a value too large to square in float32.
  const setBad = (p: number, e: number, v: number) => {
    cube[e * P + p] = v;
    bad.add(p);
  };
  setBad(3, 50, NaN);
  setBad(P - 1, 0, NaN);
  setBad(Math.floor(P / 2), 10, Infinity);
  setBad(Math.floor(P / 3), 70, 3e20);
  return { energies, nE, cube, P, bad, weights };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-pca-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('jacobiEigenSymmetric', () => {
  test('known spectrum of the second-difference matrix; orthonormal vectors; A v = lambda v', () => {
    const n = 12;
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      A[i * n + i] = 2;
      if (i > 0) A[i * n + i - 1] = A[(i - 1) * n + i] = -1;
    }
    const { values, vectors } = jacobiEigenSymmetric(A, n);
    const truth = Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))).sort((a, b) => b - a);
    truth.forEach((t, k) => expect(Math.abs(values[k] - t)).toBeLessThan(1e-13));
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < n; b++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += vectors[a * n + i] * vectors[b * n + i];
        expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-13);
      }
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let j = 0; j < n; j++) av += A[i * n + j] * vectors[a * n + j];
        expect(Math.abs(av - values[a] * vectors[a * n + i])).toBeLessThan(1e-13);
      }
    }
  });
});

describe('pca', () => {
  const W = 48, H = 40;
  const s = mixedStack(W, H, SEED);

  test('three measured references + noise: GPU Gram = CPU Gram = direct float64; 3 significant components; ratios sum to 1', async () => {
    const { nE, cube, P, bad } = s;
    // Provisional centre deliberately off the mean (first good pixel), as from a sample.
    const centre = Float64Array.from({ length: nE }, (_, e) => cube[e * P + 0]);
    const gpuCtx = (await gpuBackend()).gpu!;
    const Gg = await pcaGramGpu(gpuCtx, cube, P, nE, centre);
    const Gc = pcaGramCpu(cube, P, nE, centre);
    // One chunk per tile group: the blocked float32 sums run through every panel of the tile.
    const Glong = await pcaGramGpu(gpuCtx, cube, P, nE, centre, { targetPartials: 1 });
    expect(covPlan(nE, P, 1).nChunks).toBe(1);
    // Both shapes (pca_cov staged, pca_cov_direct) run here, whichever the adapter would choose.
    const Gstaged = await pcaGramGpu(gpuCtx, cube, P, nE, centre, { direct: false });
    const Gdirect = await pcaGramGpu(gpuCtx, cube, P, nE, centre, { direct: true, targetPartials: 1 });
    const m = nE + 1;
    let maxDiag = 0;
    for (let i = 0; i < m; i++) maxDiag = Math.max(maxDiag, Gc[i * m + i]);
    let worst = 0;
    for (let i = 0; i < m * m; i++) worst = Math.max(worst, ...[Gg, Glong, Gstaged, Gdirect].map((G) => Math.abs(G[i] - Gc[i])));
    expect(worst / maxDiag, `seed ${SEED}`).toBeLessThan(GRAM_REL);
    expect(Gg[m * m - 1]).toBe(P - bad.size);
    expect(Gc[m * m - 1]).toBe(P - bad.size);
    // pca_cov_direct over several chunks (the stack three times along the pixels): the
    // chunks' partial sums added by pca_reduce give the float64 sum of all three copies.
    const P3 = 3 * P;
    const cube3 = new Float32Array(nE * P3);
    for (let e = 0; e < nE; e++) for (let k = 0; k < 3; k++) cube3.set(cube.subarray(e * P, (e + 1) * P), e * P3 + k * P);
    expect(covPlan(nE, P3, undefined, true).nChunks).toBeGreaterThan(1);
    const G3 = await pcaGramGpu(gpuCtx, cube3, P3, nE, centre, { direct: true });
    let worst3 = 0;
    for (let i = 0; i < m * m; i++) worst3 = Math.max(worst3, Math.abs(G3[i] - 3 * Gc[i]));
    expect(worst3 / (3 * maxDiag), `seed ${SEED}`).toBeLessThan(GRAM_REL);
    // pca_cov_direct on a tile larger than its texture (the stack 19 times, so the second of
    // two pieces starts in the middle of a copy): the tile runs in pieces, each reduced on the
    // device, added in float64 on the host.
    const K = 19;
    const PK = K * P;
    expect(directLayout(nE, PK, gpuCtx.device.limits.maxTextureDimension2D).subP).toBeLessThan(PK);
    const cubeK = new Float32Array(nE * PK);
    for (let e = 0; e < nE; e++) for (let k = 0; k < K; k++) cubeK.set(cube.subarray(e * P, (e + 1) * P), e * PK + k * P);
    const GK = await pcaGramGpu(gpuCtx, cubeK, PK, nE, centre, { direct: true });
    let worstK = 0;
    for (let i = 0; i < m * m; i++) worstK = Math.max(worstK, Math.abs(GK[i] - K * Gc[i]));
    expect(worstK / (K * maxDiag), `seed ${SEED}`).toBeLessThan(GRAM_REL);
    expect(GK[m * m - 1]).toBe(K * (P - bad.size));
    // Every block size of pca_cov_direct (1, 2 and 4 tiles a side; d + 1 not a multiple of 4).
    const rng = makeRng(SEED + 1);
    for (const d of [3, 6, 13]) {
      const Pd = 2500;
      const cd = new Float32Array(d * Pd).map(() => 1 + rng.normal());
      cd[d * Pd - 1] = NaN;
      const cc = new Float64Array(d).fill(1);
      const want = pcaGramCpu(cd, Pd, d, cc);
      const got = await pcaGramGpu(gpuCtx, cd, Pd, d, cc, { direct: true });
      const md = d + 1;
      let big = 0, bad = 0;
      for (let i = 0; i < md; i++) big = Math.max(big, want[i * md + i]);
      for (let i = 0; i < md * md; i++) bad = Math.max(bad, Math.abs(got[i] - want[i]));
      expect(bad / big, `d ${d}`).toBeLessThan(GRAM_REL);
      expect(got[md * md - 1]).toBe(Pd - 1);
    }
    // pca_cov_direct without the mask (every pixel usable; 2501 pixels leave 3 unused lanes in
    // the last texel) gives the CPU's Gram matrix, and bit for bit what the masked pass gives
    // when one unusable pixel (NaN, or finite but >= PCA_MAX_ABS) is appended: the appended
    // pixel sends the piece through the mask, which must exclude it and change nothing else.
    for (const d of [3, 13, 101]) {
      const Pd = 2501;
      const cd = new Float32Array(d * Pd).map(() => 1 + rng.normal());
      const cc = new Float64Array(d).fill(1);
      const want = pcaGramCpu(cd, Pd, d, cc);
      const clean = await pcaGramGpu(gpuCtx, cd, Pd, d, cc, { direct: true });
      const md = d + 1;
      let big = 0, bad = 0;
      for (let i = 0; i < md; i++) big = Math.max(big, want[i * md + i]);
      for (let i = 0; i < md * md; i++) bad = Math.max(bad, Math.abs(clean[i] - want[i]));
      expect(bad / big, `d ${d}`).toBeLessThan(GRAM_REL);
      expect(clean[md * md - 1]).toBe(Pd);
      for (const v of [NaN, 10 * PCA_MAX_ABS]) {
        const withBad = new Float32Array(d * (Pd + 1));
        for (let e = 0; e < d; e++) {
          withBad.set(cd.subarray(e * Pd, (e + 1) * Pd), e * (Pd + 1));
          withBad[e * (Pd + 1) + Pd] = e === d - 1 ? v : 1;
        }
        const masked = await pcaGramGpu(gpuCtx, withBad, Pd + 1, d, cc, { direct: true });
        expect(Array.from(masked), `d ${d}, appended ${v}`).toEqual(Array.from(clean));
      }
    }
    // The upload paths of pca_cov_direct put the same values in the texture: a tile in
    // ordinary memory goes in by writeTexture from the tile (one call for every energy when a
    // piece is one texture row per energy, d = 101; two per energy when it spans texture rows,
    // d = 3 over 70001 pixels; the last texel's unused lanes from a padded array), one in
    // shared memory through the mapped staging buffer: the Gram matrices agree bit for bit
    // and with the CPU's.
    const maxDim = gpuCtx.device.limits.maxTextureDimension2D;
    for (const [d, Pd] of [[101, 2501], [3, 70001]]) {
      const layout = directLayout(d, Pd, maxDim);
      expect(layout.subP, `d ${d}`).toBe(Pd);
      if (d === 101) expect(layout.rpe).toBe(1);
      else expect(layout.rpe).toBeGreaterThan(1);
      const cd = new Float32Array(d * Pd).map(() => 1 + rng.normal());
      const sh = sharedFloat32(d * Pd);
      sh.set(cd);
      const cc = new Float64Array(d).fill(1);
      const want = pcaGramCpu(cd, Pd, d, cc);
      const plain = await pcaGramGpu(gpuCtx, cd, Pd, d, cc, { direct: true });
      const viaStaging = await pcaGramGpu(gpuCtx, sh, Pd, d, cc, { direct: true });
      expect(Array.from(viaStaging), `d ${d}`).toEqual(Array.from(plain));
      const md = d + 1;
      let big = 0, bad = 0;
      for (let i = 0; i < md; i++) big = Math.max(big, want[i * md + i]);
      for (let i = 0; i < md * md; i++) bad = Math.max(bad, Math.abs(plain[i] - want[i]));
      expect(bad / big, `d ${d}`).toBeLessThan(GRAM_REL);
      expect(plain[md * md - 1]).toBe(Pd);
    }

    // Known truth: mean and covariance straight from the included pixels, two-pass float64.
    const good = Array.from({ length: P }, (_, p) => p).filter((p) => !bad.has(p));
    const mean = new Float64Array(nE);
    for (let e = 0; e < nE; e++) for (const p of good) mean[e] += cube[e * P + p] / good.length;
    const cpu = pcaModelFromGram(Gc, nE, centre, P);
    const gpu = pcaModelFromGram(Gg, nE, centre, P);
    for (let e = 0; e < nE; e++) expect(Math.abs(cpu.mean[e] - mean[e])).toBeLessThan(1e-12);
    for (const [a, b] of [[0, 0], [10, 60], [50, 50], [100, 3]]) {
      let c = 0;
      for (const p of good) c += (cube[a * P + p] - mean[a]) * (cube[b * P + p] - mean[b]);
      expect(Math.abs(cpu.covariance[a * nE + b] - c / good.length)).toBeLessThan(1e-12);
    }
    expect(cpu.nIncluded).toBe(good.length);
    expect(cpu.nExcluded).toBe(bad.size);

    for (const model of [cpu, gpu]) {
      const ev = model.eigenvalues;
      // Three mixed references: three eigenvalues far above the noise floor (NOISE^2 = 1e-4),
      // then a flat floor at the noise variance.
      expect(ev[2] / ev[3]).toBeGreaterThan(20);
      expect(ev[3] / ev[20]).toBeLessThan(2);
      expect(ev[3]).toBeGreaterThan(0.5 * NOISE ** 2);
      expect(ev[3]).toBeLessThan(2 * NOISE ** 2);
      expect(significantComponents(ev)).toBe(3);
      const total = model.explained.reduce((a, r) => a + r.ratio, 0);
      expect(Math.abs(total - 1)).toBeLessThan(1e-12);
      expect(model.explained[nE - 1].cumulative).toBeCloseTo(1, 12);
      expect(model.explained[2].cumulative).toBeGreaterThan(0.99);
    }
    // Without noise only float32 rounding is left below the three components (~1e-14 of
    // the variance): still exactly 3 significant.
    const clean = mixedStack(24, 20, SEED + 1, 0);
    const zc = new Float64Array(nE);
    expect(significantComponents(pcaModelFromGram(pcaGramCpu(clean.cube, clean.P, nE, zc), nE, zc, clean.P).eigenvalues)).toBe(3);
    for (let k = 0; k < 3; k++) {
      expect(Math.abs(gpu.eigenvalues[k] - cpu.eigenvalues[k]) / cpu.eigenvalues[k]).toBeLessThan(EIG_REL);
      let dot = 0;
      for (let e = 0; e < nE; e++) dot += gpu.components[k * nE + e] * cpu.components[k * nE + e];
      expect(1 - Math.abs(dot)).toBeLessThan(VEC_DOT_TOL);
    }
  });

  test('projection: GPU = CPU; reconstruction error at the noise level; pixels with an unusable point projected on the rest', async () => {
    const { nE, cube, P, bad } = s;
    const centre = new Float64Array(nE);
    const model = pcaModelFromGram(pcaGramCpu(cube, P, nE, centre), nE, centre, P);
    const n = 3;
    const g = await pcaProjectGpu((await gpuBackend()).gpu!, cube, P, model, n);
    const c = pcaProjectCpu(cube, P, model, n);
    let worst = 0;
    for (let i = 0; i < (n + 1) * P; i++) {
      if (Number.isNaN(c[i])) {
        expect(Number.isNaN(g[i]), `row ${Math.floor(i / P)} pixel ${i % P}`).toBe(true);
        continue;
      }
      worst = Math.max(worst, Math.abs(g[i] - c[i]));
    }
    expect(worst).toBeLessThan(SCORE_TOL);
    let sum = 0, cnt = 0;
    for (let p = 0; p < P; p++) {
      if (bad.has(p)) {
        expect(Number.isNaN(c[n * P + p])).toBe(true);
        continue;
      }
      sum += c[n * P + p] ** 2;
      cnt++;
    }
    const rms = Math.sqrt(sum / cnt);
    const expected = NOISE * Math.sqrt((nE - n) / nE);
    expect(Math.abs(rms - expected) / expected).toBeLessThan(RECON_REL);
    // Exact identity (population covariance): the mean squared residual over the included
    // pixels, times d, is the sum of the eigenvalues left out; with 2 components the third
    // reference's variance is left out and the error rises well above the noise.
    for (const nc of [2, 3]) {
      const cc = pcaProjectCpu(cube, P, model, nc);
      let s2 = 0;
      for (let p = 0; p < P; p++) if (!bad.has(p)) s2 += cc[nc * P + p] ** 2;
      let left = 0;
      for (let k = nc; k < nE; k++) left += model.eigenvalues[k];
      expect(Math.abs((s2 / cnt) * nE - left) / left).toBeLessThan(1e-9);
      if (nc === 2) expect(Math.sqrt(s2 / cnt)).toBeGreaterThan(2 * expected);
    }

    // The PixelStep on both backends: same maps; a pixel with one unusable point is projected
    // on the rest (src/cpu/pca-missing.ts, test/pipeline/pca-missing.test.ts), status 0.
    const step = pcaProjectStep(model, n);
    expect(step.mapNames).toEqual(['score_1', 'score_2', 'score_3', 'recon_error']);
    for (const backend of [await gpuBackend(), cpuBackend()]) {
      const r = await step.runTile(backend, cube, P);
      for (let p = 0; p < P; p++) expect(r.status[p], `${backend.name} pixel ${p}`).toBe(0);
      for (const p of bad) expect(Number.isFinite(r.maps.score_1[p]), `${backend.name} pixel ${p}`).toBe(true);
      for (let p = 0; p < P; p += 97) expect(Math.abs(r.maps.score_1[p] - c[p]) || 0).toBeLessThan(SCORE_TOL);
    }
  });

  test('pcaRun: tiny memory budget (many tiles) = one tile, on both backends; outputs written', async () => {
    const { nE, cube, energies, bad } = s;
    const src = new MemoryStack(cube, nE, H, W);
    const results = [];
    for (const backend of [await gpuBackend(), cpuBackend()]) {
      const whole = await pcaRun(backend, src, energies, 3, { memoryBytes: 1 << 30, baselineBytes: 0 });
      const dir = path.join(tmp, backend.name);
      const tiled = await pcaRun(backend, src, energies, 3, { memoryBytes: 200_000, baselineBytes: 0, outDir: dir, centreRows: 3 });
      expect(whole.tiles.covariance).toBe(1);
      expect(tiled.tiles.covariance).toBeGreaterThan(4);
      expect(tiled.tiles.projection).toBeGreaterThan(4);
      // Tiling and a different provisional centre change only rounding.
      for (let k = 0; k < 3; k++) {
        expect(Math.abs(tiled.model.eigenvalues[k] - whole.model.eigenvalues[k]) / whole.model.eigenvalues[k]).toBeLessThan(EIG_REL);
      }
      for (let p = 0; p < W * H; p++) {
        if (bad.has(p)) {
          // Excluded from the covariance, projected on its other points.
          expect(tiled.status[p]).toBe(0);
          expect(Number.isFinite(tiled.scores[0][p])).toBe(true);
          continue;
        }
        expect(Math.abs(tiled.scores[0][p] - whole.scores[0][p])).toBeLessThan(10 * SCORE_TOL);
        expect(Math.abs(tiled.reconError[p] - whole.reconError[p])).toBeLessThan(SCORE_TOL);
      }
      expect(tiled.model.nExcluded).toBe(bad.size);
      expect(tiled.significant).toBe(3);
      for (const f of ['score_1.npy', 'score_3.tif', 'recon_error.npy', 'recon_error.png', 'scree.csv', 'scree.png', 'components.csv']) {
        expect(tiled.files, f).toContain(f);
        expect(fs.existsSync(path.join(dir, f)), f).toBe(true);
      }
      const npy = readNpy(path.join(dir, 'score_2.npy'));
      expect(npy.shape).toEqual([H, W]);
      expect(npy.dtype).toBe('float32');
      const scree = fs.readFileSync(path.join(dir, 'scree.csv'), 'utf8').trim().split('\n');
      expect(scree[0]).toBe('component,eigenvalue,ratio,cumulative');
      expect(scree.length).toBe(nE + 1);
      expect(Number(scree[nE].split(',')[3])).toBeCloseTo(1, 9);
      const png = fs.readFileSync(path.join(dir, 'scree.png'));
      expect([...png.subarray(1, 4)].map((b) => String.fromCharCode(b)).join('')).toBe('PNG');
      const comps = fs.readFileSync(path.join(dir, 'components.csv'), 'utf8').trim().split('\n');
      expect(comps[0]).toBe('energy_eV,mean,pc1,pc2,pc3');
      expect(comps.length).toBe(nE + 1);
      results.push(tiled);
    }
    // GPU run vs CPU run, end to end.
    const [g, c] = results;
    for (let k = 0; k < 3; k++) expect(Math.abs(g.model.eigenvalues[k] - c.model.eigenvalues[k]) / c.model.eigenvalues[k]).toBeLessThan(EIG_REL);
  });

  test('CPU covariance kernel: within its error bound of the rank-1 twin; bytes identical on 1 and 2 threads', async () => {
    const rng = makeRng(SEED + 7);
    for (const [d, P] of [[101, 2 * PCA_CPU_BLOCK + 333], [3, PCA_CPU_BLOCK + 5]]) {
      const cube = sharedFloat32(d * P);
      for (let i = 0; i < cube.length; i++) cube[i] = 2 + rng.normal();
      cube[5] = NaN; // pixel 5 excluded
      cube[(d - 1) * P + 9] = 2e18; // pixel 9 excluded (beyond PCA_MAX_ABS)
      const centre = Float64Array.from({ length: d }, () => 2 + 0.1 * rng.normal());
      const twin = pcaGramCpu(cube, P, d, centre);
      const m = d + 1;
      const runs: Float64Array[] = [];
      for (const threads of [1, 2]) {
        const g = new CpuGram(threads);
        try {
          runs.push(await g.gram(cube, P, d, centre));
        } finally {
          await g.close();
        }
      }
      expect(runs[0][m * m - 1]).toBe(P - 2);
      let worst = 0;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < m; j++) worst = Math.max(worst, Math.abs(runs[0][i * m + j] - twin[i * m + j]) / Math.sqrt(twin[i * m + i] * twin[j * m + j]));
      }
      // The SIMD kernel's float32 products and float64 sums: within its proven bound (pca-wasm.ts).
      expect(worst).toBeLessThanOrEqual(GRAM_F32_BOUND);
      expect(Buffer.from(runs[1].buffer).equals(Buffer.from(runs[0].buffer))).toBe(true);
    }
  });

  test('CPU covariance of tiles in the WebAssembly heap: workers read them in place (1, 2, 3 threads), same bytes as a staged tile on 1 thread', async () => {
    const rng = makeRng(SEED + 8);
    // Sizes: 4 blocks with a partial last panel (uneven parts on 3 threads), 2 blocks (a
    // third worker idle), d + 1 not a multiple of the register block.
    const cases = [[101, 3 * PCA_CPU_BLOCK + 256 + 37], [7, 2 * PCA_CPU_BLOCK - 1], [40, PCA_CPU_BLOCK + 1]] as const;
    const inputs = cases.map(([d, P]) => {
      const plain = sharedFloat32(d * P);
      for (let i = 0; i < plain.length; i++) plain[i] = 1 + rng.normal();
      plain[3] = NaN; // pixel 3 excluded
      plain[(d - 1) * P + P - 2] = -3e18; // a pixel of the last panel excluded
      plain[Math.floor(d / 2) * P + PCA_CPU_BLOCK + 1] = Infinity; // a pixel of the second block excluded
      const centre = Float64Array.from({ length: d }, () => 1 + 0.1 * rng.normal());
      return { d, P, plain, centre };
    });
    // Reference: the shared (not heap) tile on this thread, staged block by block.
    const one = new CpuGram(1);
    const refs = await Promise.all(inputs.map(({ d, P, plain, centre }) => one.gram(plain, P, d, centre)));
    await one.close();
    for (const [c, { d, P, plain, centre }] of inputs.entries()) {
      const m = d + 1;
      expect(refs[c][m * m - 1], `d ${d}`).toBe(P - 3);
      const twin = pcaGramCpu(plain, P, d, centre);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < m; j++) expect(Math.abs(refs[c][i * m + j] - twin[i * m + j]) / Math.sqrt(twin[i * m + i] * twin[j * m + j])).toBeLessThanOrEqual(GRAM_F32_BOUND);
      }
    }
    for (const threads of [1, 2, 3]) {
      // One CpuGram for every size and twice each: the workers' scratch per d, reused.
      const g = new CpuGram(threads);
      const tiles = inputs.map(({ d, P, plain }) => {
        const t = heapF32(d * P);
        t.set(plain);
        return t;
      });
      try {
        for (let round = 0; round < 2; round++) {
          for (const [c, { d, P, centre }] of inputs.entries()) {
            expect(inHeap(tiles[c])).toBe(true);
            const G = await g.gram(tiles[c], P, d, centre);
            expect(Buffer.from(G.buffer).equals(Buffer.from(refs[c].buffer)), `threads ${threads} d ${d} round ${round}`).toBe(true);
          }
        }
        // Once the workers' instances exist: a tile past the heap's end then (the shared
        // memory grown under them), the end of a block larger than the heap was.
        const { d, P, plain, centre } = inputs[0];
        const end = wasmHeap().buffer.byteLength;
        const pad = heapF32(end / 4 + d * P);
        try {
          const tile = pad.subarray(pad.length - d * P);
          expect(tile.byteOffset).toBeGreaterThan(end);
          tile.set(plain);
          const G = await g.gram(tile, P, d, centre);
          expect(Buffer.from(G.buffer).equals(Buffer.from(refs[0].buffer)), `threads ${threads}, heap grown`).toBe(true);
        } finally {
          heapFree(pad);
        }
      } finally {
        await g.close();
        for (const t of tiles) heapFree(t);
      }
    }
  });

  test('pcaRun on the CPU: the covariance tile in the heap, the same covariance bytes on 1, 2 and 3 threads', async () => {
    // 3 blocks of PCA_CPU_BLOCK in one tile (the workers' parts), a partial last panel.
    const nE = 9, Hs = 3 * 128, Ws = 128 + 3;
    const rng = makeRng(SEED + 9);
    const cube = new Float32Array(nE * Hs * Ws);
    for (let p = 0; p < Hs * Ws; p++) {
      const a = rng.uniform(), b = rng.uniform();
      for (let e = 0; e < nE; e++) cube[e * Hs * Ws + p] = a * e + b * (nE - e) + 0.05 * rng.normal();
    }
    cube[(nE - 1) * Hs * Ws + 2 * PCA_CPU_BLOCK + 7] = NaN; // one pixel of the third block excluded
    const energies = Float64Array.from({ length: nE }, (_, e) => 8300 + e);
    const covs: Float64Array[] = [];
    for (const threads of [1, 2, 3]) {
      const r = await pcaRun(cpuBackend(threads), new MemoryStack(cube, nE, Hs, Ws), energies, 2, { memoryBytes: 1 << 30, baselineBytes: 0 });
      expect(r.tiles.covariance).toBe(1);
      expect(r.model.nIncluded).toBe(Hs * Ws - 1);
      covs.push(r.model.covariance);
    }
    for (const c of covs.slice(1)) expect(Buffer.from(c.buffer).equals(Buffer.from(covs[0].buffer))).toBe(true);
    // Known truth: the float64 two-pass population covariance of the included pixels. The
    // kernel's float32 products (GRAM_F32_BOUND of sqrt(G_ii G_jj)) about the provisional
    // centre, a few rows from the mean here, leave ~1e-5 of sqrt(c_ii c_jj) at most.
    const COV_REL = 1e-4;
    const P = Hs * Ws, bad = 2 * PCA_CPU_BLOCK + 7;
    const mean = new Float64Array(nE);
    for (let e = 0; e < nE; e++) {
      for (let p = 0; p < P; p++) if (p !== bad) mean[e] += cube[e * P + p];
      mean[e] /= P - 1;
    }
    for (let i = 0; i < nE; i++) {
      for (let j = 0; j < nE; j++) {
        let t = 0;
        for (let p = 0; p < P; p++) if (p !== bad) t += (cube[i * P + p] - mean[i]) * (cube[j * P + p] - mean[j]);
        t /= P - 1;
        expect(Math.abs(covs[0][i * nE + j] - t) / Math.sqrt(covs[0][i * nE + i] * covs[0][j * nE + j]), `${i} ${j}`).toBeLessThan(COV_REL);
      }
    }
  });

  test('degenerate inputs: one pixel, identical pixels, all excluded; covPlan for odd sizes', async () => {
    const gpu = (await gpuBackend()).gpu!;
    const energies = Float64Array.from({ length: 9 }, (_, i) => 8300 + i);
    const nE = energies.length;
    // One pixel: mean = the spectrum, zero covariance, ratios still sum to 1. With the
    // centre at 0, cov = S/n - (s/n)^2 cancels: exact in float64, float32 rounding of the
    // squares (2^-24 relative, |x - c|^2 <= 0.64) on the GPU.
    const one = Float32Array.from({ length: nE }, (_, e) => 0.1 * e);
    const zero = new Float64Array(nE);
    for (const [G, tol] of [[await pcaGramGpu(gpu, one, 1, nE, zero), 1e-7], [pcaGramCpu(one, 1, nE, zero), 1e-15]] as const) {
      const m = pcaModelFromGram(G, nE, zero, 1);
      expect(m.nIncluded).toBe(1);
      for (let e = 0; e < nE; e++) expect(m.mean[e]).toBeCloseTo(0.1 * e, 6);
      expect(Math.max(...m.eigenvalues)).toBeLessThan(tol);
      expect(m.explained.reduce((a, r) => a + r.ratio, 0)).toBeCloseTo(1, 12);
    }
    // Centred on the pixel itself (as pcaRun's sample gives), the GPU is exact too.
    const m1 = pcaModelFromGram(await pcaGramGpu(gpu, one, 1, nE, Float64Array.from(one)), nE, Float64Array.from(one), 1);
    expect(Math.max(...m1.eigenvalues)).toBe(0);
    expect(m1.explained[0].ratio).toBe(1);
    // Identical pixels (a flat region): zero variance, recon error 0.
    const P = 300;
    const same = new Float32Array(nE * P);
    for (let e = 0; e < nE; e++) same.fill(1 + e, e * P, (e + 1) * P);
    const acc = new PcaAccumulator(nE, new Float64Array(nE).fill(1));
    acc.add(await pcaGramGpu(gpu, same, P, nE, acc.centre), P);
    const flat = acc.finish();
    expect(flat.nIncluded).toBe(P);
    expect(Math.max(...flat.eigenvalues)).toBeLessThan(1e-10);
    const proj = await pcaProjectGpu(gpu, same, P, flat, 2);
    for (let p = 0; p < P; p++) expect(Math.abs(proj[2 * P + p])).toBeLessThan(1e-5);
    // Nothing usable: a clear input error.
    const src = new MemoryStack(new Float32Array(nE * 4).fill(NaN), nE, 2, 2, 'nan.npy');
    await expect(pcaRun(cpuBackend(), src, energies, 2)).rejects.toThrow(/nan\.npy: no pixel has a finite value at every energy/);
    await expect(pcaRun(cpuBackend(), new MemoryStack(same.subarray(0, nE * 4), nE, 2, 2), energies, 40)).rejects.toThrow(/--components/);
    await expect(pcaRun(cpuBackend(), new MemoryStack(same.subarray(0, nE * 4), nE, 2, 2), energies.subarray(1), 2)).rejects.toThrow(/--energies/);
    expect(PCA_MAX_ABS).toBe(1e18);
    // Block plans: augmented rows covered, chunks cover every pixel.
    for (const [d, n, direct] of [[1, 1, 0], [3, 5000, 0], [7, 257, 1], [8, 100, 0], [15, 64, 1], [101, 123457, 0], [101, 123457, 1], [3, 5000, 1]]) {
      const plan = covPlan(d, n, undefined, direct === 1);
      expect(4 * plan.nt).toBeGreaterThanOrEqual(d + 1);
      if (direct) {
        // pca_cov_direct: square blocks of dq x dq tiles covering the 4 x 4 tiles, no more.
        expect(plan.dq * plan.ntb).toBeGreaterThanOrEqual(plan.nt);
        expect(plan.dq * (plan.ntb - 1)).toBeLessThan(plan.nt);
        expect(plan.dq).toBeLessThanOrEqual(Math.max(1, plan.nt));
        expect(plan.nBig).toBe((plan.ntb * (plan.ntb + 1)) / 2);
      } else {
        expect(plan.tpg * plan.nTgroups).toBeGreaterThanOrEqual(plan.nTiles);
        expect(plan.tpg * plan.slices).toBeLessThanOrEqual(COV_WG);
        expect(4 * plan.nt * plan.panel).toBeLessThanOrEqual(COV_PANEL);
      }
      expect(plan.chunk % plan.panel).toBe(0);
      expect(plan.nChunks * plan.chunk).toBeGreaterThanOrEqual(n);
      expect((plan.nChunks - 1) * plan.chunk).toBeLessThan(n);
    }
    // pca_cov_direct's block classes put every 4 x 4 tile of the upper triangle in exactly one
    // block (diagonal blocks add only their tiles on and above the diagonal) and none past nt.
    for (let nt = 1; nt <= 40; nt++) {
      const seen = new Map<string, number>();
      for (const c of directBlockClasses(nt)) {
        expect(c.rq).toBeGreaterThan(0);
        expect(c.cq).toBeGreaterThan(0);
        if (c.diag) expect(c.cq).toBe(c.rq);
        for (const [a0, b0] of c.blocks) {
          for (let i = 0; i < c.rq; i++) {
            for (let j = 0; j < c.cq; j++) {
              const a = a0 + i, b = b0 + j;
              if (c.diag && j < i) continue;
              expect(a).toBeLessThan(nt);
              expect(b).toBeLessThan(nt);
              expect(b).toBeGreaterThanOrEqual(a);
              seen.set(`${a},${b}`, (seen.get(`${a},${b}`) ?? 0) + 1);
            }
          }
        }
      }
      expect(seen.size, `nt ${nt}`).toBe((nt * (nt + 1)) / 2);
      expect([...seen.values()].every((k) => k === 1), `nt ${nt}`).toBe(true);
    }
  });
});
