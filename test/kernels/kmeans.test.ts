/**
 * kmeans: GPU engine (kmeans_assign + kmeans_partial) vs the float64 CPU twin from the same
 * initial centres, recovery of synthetic domains (adjusted Rand index), WCSS against an
 * independent careful k-means, the elbow, degenerate inputs, statistics and writers.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fromArrayBuffer } from 'geotiff';
import { afterAll, describe, expect, test } from 'vitest';
import { makeRng } from '../../src/synth/random.js';
import { MemoryStack } from '../../src/stack/source.js';
import { readNpy } from '../../src/io/npy.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { runTiles } from '../../src/pipeline/run-tiles.js';
import type { Backend } from '../../src/pipeline/step.js';
import {
  CpuKmeansEngine, featureStats, kmeansAssignCpu, kmeansPartialCpu, splitFeatures, standardization, type Features,
} from '../../src/cpu/kmeans.js';
import { KM_CPU_BLOCK } from '../../src/cpu/kmeans-sweep.js';
import { GpuKmeansEngine, KM_BINS, KM_WG, partialPlan } from '../../src/kernels/kmeans.js';
import {
  clusterSpectra, clusterStats, elbow, featurePathsFromDir, featuresFromStack, kmeansAssignStep, kmeansFit, kmeansFromCentres, kneedle, parseKRange,
  readFeatureMaps, writeKmeansOutputs, writeMap,
} from '../../src/pipeline/cluster.js';
import { bothBackends, gpuBackend } from '../helpers/backends.js';
import { adjustedRandIndex, carefulKmeansWcss, makeDomains } from '../helpers/cluster.js';

const SEED = 90210;
/**
 * Labels may differ between the GPU (float32 distances) and the CPU (float64) only where
 * the CPU's second-best squared distance exceeds the best by at most this, relative to
 * (1 + best): float32 rounding of O(1) standardised terms summed over d features is
 * ~1e-7 x d; 1e-4 is far above it and far below a real preference.
 */
const TIE_REL = 1e-4;
/** Centres GPU vs CPU after a whole Lloyd run, standardised units (float32 partial sums, float64 totals). */
const CENTRE_TOL = 1e-5;
/** WCSS GPU vs CPU, relative: float32 squared distances summed in blocks, then float64. */
const WCSS_REL = 1e-5;
/**
 * WCSS at each k vs a careful k-means (20 plain k-means++ restarts, float64, run to a fixed
 * point): at the true k both find the same optimum; beyond it the landscape has many close
 * local minima and 5 greedy restarts may land a little above the best of 20: 2 %.
 */
const WCSS_SLACK = 0.02;
/** Domain recovery at moderate noise (centre spacing ~5 noise standard deviations). */
const ARI_MIN = 0.97;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-kmeans-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function feats(data: Float32Array, d: number, names?: string[]): Features {
  return { d, n: data.length / d, data, names };
}

/** Standardised-space tie margin of the CPU for given centres: (second - best) / (1 + best). */
function tieMargins(f: Features, centres: Float64Array, k: number): Float64Array {
  const st = standardization(featureStats(f), true);
  const labels = new Int32Array(f.n), d2 = new Float64Array(f.n), second = new Float64Array(f.n);
  kmeansAssignCpu({ data: f.data, stride: f.n, offset: 0, count: f.n }, f.d, st, k, centres, new Uint8Array(k).fill(1), labels, d2, 0, second);
  return d2.map((b, p) => (second[p] - b) / (1 + b));
}

describe('kmeans engines', () => {
  test('one step from the same centres: GPU (1 tile, 3 tiles, streamed, long chunks) = CPU sums; labels equal except near-ties', async () => {
    const gpu = (await gpuBackend()).gpu!;
    const rng = makeRng(SEED);
    for (const [n, d, k] of [[6001, 3, 5], [1500, 70, 12], [999, 2, 1], [700, 5, 64]]) {
      const data = new Float32Array(d * n).map(() => 5 + 2 * rng.normal());
      data[7] = NaN;
      data[d * n - 1] = Infinity;
      const f = feats(data, d);
      const st = standardization(featureStats(f), true);
      const centres = Float64Array.from({ length: k * d }, () => rng.normal());
      const active = new Uint8Array(k).fill(1);
      if (k > 2) active[1] = 0; // an inactive centre is never chosen
      const cpu = await new CpuKmeansEngine(d, splitFeatures(f, n), st).step(k, centres, active, true);
      const margins = tieMargins(f, centres, k);
      const sumScale = Math.max(...cpu.sums.map(Math.abs));
      // One tile; three tiles; streamed; and one chunk per tile, so that the workgroup bins
      // collect values over many batches.
      const cases = [[splitFeatures(f, n), Infinity, undefined], [splitFeatures(f, 1100), Infinity, undefined], [splitFeatures(f, 1100), 0, undefined], [splitFeatures(f, n), Infinity, 1]] as const;
      for (const [views, resident, targetPartials] of cases) {
        const eng = await GpuKmeansEngine.create(gpu, d, [...views], st, { residentBytes: resident, targetPartials });
        try {
          expect(eng.resident).toBe(resident > 0);
          const g = await eng.step(k, centres, active, true);
          const bad: string[] = [];
          for (let p = 0; p < n; p++) {
            if (g.labels![p] === cpu.labels![p]) continue;
            if (active[1] === 0 && k > 2) expect(g.labels![p]).not.toBe(1);
            if (!(margins[p] <= TIE_REL)) bad.push(`pixel ${p}: gpu ${g.labels![p]} cpu ${cpu.labels![p]} margin ${margins[p]}`);
          }
          expect(bad.slice(0, 5), `seed ${SEED} n ${n} d ${d} k ${k}`).toEqual([]);
          expect(g.labels![7]).toBe(-1);
          expect(g.labels![n - 1]).toBe(-1);
          expect(Number.isNaN(g.dist2![7])).toBe(true);
          for (let i = 0; i < cpu.sums.length; i++) expect(Math.abs(g.sums[i] - cpu.sums[i]), `entry ${i}`).toBeLessThan(WCSS_REL * sumScale);
          // Counts are exact.
          for (let j = 0; j < k; j++) expect(g.sums[j * (d + 2) + d]).toBe(cpu.sums[j * (d + 2) + d]);
        } finally {
          await eng.release();
        }
      }
    }
  });

  test('CPU engine: the fused sweep equals the twins; bytes identical on 1 and 2 threads and for any split into views', async () => {
    const rng = makeRng(SEED + 1);
    // d = 3 runs the generated sweep, d = 40 with k = 6 the generic one; n spans several blocks.
    for (const [n, d, k] of [[2 * KM_CPU_BLOCK + 777, 3, 6], [KM_CPU_BLOCK + 4321, 40, 6]]) {
      const data = new Float32Array(d * n).map(() => 5 + 2 * rng.normal());
      data[11] = NaN;
      data[(d - 1) * n + 5] = -Infinity;
      const f = feats(data, d);
      const st = standardization(featureStats(f), true);
      const centres = Float64Array.from({ length: k * d }, () => rng.normal());
      const active = new Uint8Array(k).fill(1);
      active[2] = 0;
      // The twins: assignment, then partial sums, float64, one pass each.
      const lab = new Int32Array(n), d2 = new Float64Array(n);
      const whole = { data, stride: n, offset: 0, count: n };
      kmeansAssignCpu(whole, d, st, k, centres, active, lab, d2, 0);
      const twin = new Float64Array(k * (d + 2));
      kmeansPartialCpu(whole, d, st, k, centres, lab, d2, 0, twin);
      const runs = [];
      for (const [views, threads] of [[splitFeatures(f, n), 1], [splitFeatures(f, n), 2], [splitFeatures(f, 10_000), 2], [splitFeatures(f, 3 * KM_CPU_BLOCK), 1]] as const) {
        const eng = new CpuKmeansEngine(d, [...views], st, { threads });
        try {
          runs.push(await eng.step(k, centres, active, true));
        } finally {
          await eng.release();
        }
      }
      const [ref] = runs;
      expect(Buffer.from(ref.labels!.buffer).equals(Buffer.from(lab.buffer))).toBe(true);
      expect(ref.labels![11]).toBe(-1);
      expect(ref.labels![5]).toBe(-1);
      // dist2 is float32 in the engine's output: its rounding only.
      let worst = 0;
      for (let p = 0; p < n; p++) if (lab[p] >= 0) worst = Math.max(worst, Math.abs(ref.dist2![p] - d2[p]) / (1 + d2[p]));
      expect(worst).toBeLessThan(1e-7);
      const scale = Math.max(...twin.map(Math.abs));
      // Block sums of z minus count x centre vs per-pixel deviations: float64 rounding only.
      for (let i = 0; i < twin.length; i++) expect(Math.abs(ref.sums[i] - twin[i]), `entry ${i}`).toBeLessThan(1e-9 * scale);
      for (const r of runs.slice(1)) {
        expect(Buffer.from(r.sums.buffer).equals(Buffer.from(ref.sums.buffer))).toBe(true);
        expect(Buffer.from(r.labels!.buffer).equals(Buffer.from(ref.labels!.buffer))).toBe(true);
        expect(Buffer.from(r.dist2!.buffer).equals(Buffer.from(ref.dist2!.buffer))).toBe(true);
      }
    }
  });

  test('partial-sum plans cover every pixel and entry', () => {
    for (const [d, k, P] of [[3, 6, 20_000_000], [101, 20, 4_000_000], [1, 1, 1], [3, 64, 257], [200, 64, 1000], [62, 64, 5000]]) {
      const p = partialPlan(d, k, P);
      expect(p.fWg * p.nFblocks).toBeGreaterThanOrEqual(d + 2);
      expect(p.slices * p.fWg).toBeLessThanOrEqual(KM_WG);
      expect(p.slices * k * p.fWg).toBeLessThanOrEqual(KM_BINS);
      expect(p.nChunks * p.chunk).toBeGreaterThanOrEqual(P);
      expect((p.nChunks - 1) * p.chunk).toBeLessThan(P);
      expect(p.chunk % KM_WG).toBe(0);
      expect(p.partials).toBeLessThanOrEqual(Math.max(1 << 20, p.nFblocks * k * p.fWg));
    }
  });
});

describe('kmeans', () => {
  const W = 64, H = 48;
  const dom = makeDomains(W, H, SEED);
  const N = W * H;
  // Excluded pixels: NaN and Inf features.
  const data = Float32Array.from(dom.data);
  const excluded = [5, 700, N - 1];
  data[0 * N + 5] = NaN;
  data[1 * N + 700] = NaN;
  data[2 * N + N - 1] = -Infinity;
  const features = feats(data, 3, dom.names);

  test('from the same initial centres GPU and CPU reach the same labels, centres, WCSS and iteration count', async () => {
    const init = Float64Array.from([-1, 0, -1, 0, -1, 1, 1, 0.5, 0, 0.2, 1.5, -0.5]);
    const [g, c] = await Promise.all((await bothBackends()).map((b) => kmeansFromCentres(b, features, init)));
    expect(g.iterations).toBe(c.iterations);
    expect(c.converged).toBe(true);
    const margins = tieMargins(features, c.centres, 4);
    let differ = 0;
    for (let p = 0; p < N; p++) {
      if (g.labels[p] === c.labels[p]) continue;
      expect(margins[p], `pixel ${p}`).toBeLessThanOrEqual(TIE_REL);
      differ++;
    }
    expect(differ).toBeLessThan(5);
    for (let i = 0; i < c.centres.length; i++) expect(Math.abs(g.centres[i] - c.centres[i])).toBeLessThan(CENTRE_TOL);
    expect(Math.abs(g.wcss - c.wcss) / c.wcss).toBeLessThan(WCSS_REL);
    expect(g.counts).toEqual(c.counts);
    for (const p of excluded) expect(g.labels[p]).toBe(-1);
  });

  test('known domains: adjusted Rand index near 1 on both backends; excluded pixels -1 and counted; centres in feature units', async () => {
    for (const backend of await bothBackends()) {
      const r = await kmeansFit(backend, features, { k: 4, seed: 7 });
      const ari = adjustedRandIndex(r.labels, dom.truth);
      expect(ari, `${backend.name} seed 7`).toBeGreaterThan(ARI_MIN);
      expect(r.nExcluded).toBe(excluded.length);
      expect(r.nIncluded).toBe(N - excluded.length);
      for (const p of excluded) {
        expect(r.labels[p]).toBe(-1);
        expect(Number.isNaN(r.distance[p])).toBe(true);
      }
      expect(r.counts.reduce((a, b) => a + b, 0)).toBe(N - excluded.length);
      // Centres in original units, numbered by increasing first feature (edge energy):
      // the truth order is 8340.5, 8342.0 (two domains: 0.8 vs 0.2 composition), 8343.5.
      const c = (j: number, f: number) => r.centres[j * 3 + f];
      expect(Math.abs(c(0, 0) - 8340.5)).toBeLessThan(0.05);
      expect(Math.abs(c(3, 0) - 8343.5)).toBeLessThan(0.05);
      expect(c(0, 0)).toBeLessThan(c(1, 0));
      for (let j = 0; j < 3; j++) expect(c(j, 0)).toBeLessThanOrEqual(c(j + 1, 0));
      expect(r.restarts.length).toBe(5);
      expect(r.wcss).toBe(Math.min(...r.restarts.map((x) => x.wcss)));
      // Distance map: the WCSS is the sum of the squared distances.
      let s = 0;
      for (let p = 0; p < N; p++) if (r.labels[p] >= 0) s += r.distance[p] ** 2;
      expect(Math.abs(s - r.wcss) / r.wcss).toBeLessThan(1e-5);
      // Same seed, same result.
      const again = await kmeansFit(backend, features, { k: 4, seed: 7 });
      expect(again.wcss).toBe(r.wcss);
      expect(Array.from(again.labels)).toEqual(Array.from(r.labels));
    }
  });

  test('elbow: WCSS at each k no worse than a careful k-means; Kneedle picks the true k = 4', async () => {
    const ks = parseKRange('2:6');
    expect(ks).toEqual([2, 3, 4, 5, 6]);
    const careful = ks.map((k) => carefulKmeansWcss(data, 3, N, k, 20, SEED + k));
    for (const backend of await bothBackends()) {
      const e = await elbow(backend, features, ks, { seed: 3, restarts: 5 });
      expect(e.table.map((r) => r.k)).toEqual(ks);
      e.table.forEach((row, i) => {
        expect(row.wcss, `${backend.name} k = ${row.k}: ${row.wcss} vs careful ${careful[i]}`).toBeLessThanOrEqual(careful[i] * (1 + WCSS_SLACK));
      });
      for (let i = 1; i < ks.length; i++) expect(e.table[i].wcss).toBeLessThan(e.table[i - 1].wcss);
      expect(e.k).toBe(4);
      // The chosen k refitted with the same options gives the elbow's WCSS.
      const fit = await kmeansFit(backend, features, { k: e.k, seed: 3, restarts: 5 });
      expect(Math.abs(fit.wcss - e.table[2].wcss) / fit.wcss).toBeLessThan(1e-12);
    }
  });

  test('kneedle and k ranges', () => {
    expect(kneedle([{ k: 2, wcss: 100 }, { k: 3, wcss: 40 }, { k: 4, wcss: 10 }, { k: 5, wcss: 9 }, { k: 6, wcss: 8.5 }])).toBe(4);
    // A straight line has no knee: the smallest k.
    expect(kneedle([{ k: 1, wcss: 3 }, { k: 2, wcss: 2 }, { k: 3, wcss: 1 }])).toBe(1);
    expect(kneedle([{ k: 2, wcss: 0 }, { k: 3, wcss: 0 }, { k: 4, wcss: 0 }])).toBe(2);
    expect(parseKRange('3,2,5,3')).toEqual([2, 3, 5]);
    expect(() => parseKRange('5:2')).toThrow(/--k-range/);
    expect(() => parseKRange('2:99')).toThrow(/--k-range: k must be an integer from 1 to 64/);
    expect(() => parseKRange('two')).toThrow(/--k-range/);
  });

  test('degenerate: k larger than the distinct points, a constant feature, a single pixel, nothing included', async () => {
    for (const backend of await bothBackends()) {
      // 3 distinct points, repeated; k = 5.
      const n = 300, d = 2;
      const pts = [[0, 0], [1, 5], [4, 2]];
      const few = new Float32Array(d * n);
      for (let p = 0; p < n; p++) for (let f = 0; f < d; f++) few[f * n + p] = pts[p % 3][f];
      const r = await kmeansFit(backend, feats(few, d), { k: 5, seed: 1 });
      expect(r.nonEmpty, backend.name).toBe(3);
      expect(r.counts).toEqual([100, 100, 100, 0, 0]);
      expect(r.wcss).toBeLessThan(1e-9);
      expect(r.warnings.join(' ')).toMatch(/only 3 of k = 5 clusters/);
      expect(Math.max(...r.labels)).toBe(2);
      for (let j = 3; j < 5; j++) expect(Number.isNaN(r.centres[j * d])).toBe(true);
      // Float32 arithmetic on the GPU: the centre of the point (0, 0) to ~1e-7.
      expect(Math.abs(r.centres[0]) + Math.abs(r.centres[1])).toBeLessThan(1e-6);

      // A constant feature: scale 1 (no influence), reported; labels equal to clustering without it.
      const withConst = new Float32Array(3 * N);
      withConst.set(data.subarray(0, N), 0);
      withConst.fill(7.5, N, 2 * N);
      withConst.set(data.subarray(2 * N, 3 * N), 2 * N);
      const without = new Float32Array(2 * N);
      without.set(data.subarray(0, N), 0);
      without.set(data.subarray(2 * N, 3 * N), N);
      const a = await kmeansFit(backend, feats(withConst, 3, ['e0', 'flat', 'comp']), { k: 3, seed: 4 });
      const b = await kmeansFit(backend, feats(without, 2), { k: 3, seed: 4 });
      expect(a.constantFeatures).toEqual([1]);
      expect(a.warnings.join(' ')).toMatch(/constant feature flat/);
      expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
      expect(Math.abs(a.wcss - b.wcss) / b.wcss).toBeLessThan(WCSS_REL);
      for (let j = 0; j < 3; j++) expect(a.centres[j * 3 + 1]).toBe(7.5);

      // A single pixel, and a single included pixel among excluded ones.
      const one = await kmeansFit(backend, feats(Float32Array.of(8341, 0.1), 2), { k: 1 });
      expect(Array.from(one.labels)).toEqual([0]);
      expect(one.wcss).toBe(0);
      expect(one.distance[0]).toBe(0);
      expect(Array.from(one.centres)).toEqual([8341, Math.fround(0.1)]);
      const lone = await kmeansFit(backend, feats(Float32Array.of(NaN, 2, 3, 0.5, 0.5, NaN), 2), { k: 2 });
      expect(Array.from(lone.labels)).toEqual([-1, 0, -1]);
      expect(lone.nonEmpty).toBe(1);
      expect(lone.nExcluded).toBe(2);

      await expect(kmeansFit(backend, feats(Float32Array.of(NaN, 1, 2, NaN), 2), { k: 2 })).rejects.toThrow(/no pixel has every feature finite/);
      await expect(kmeansFit(backend, features, { k: 0 })).rejects.toThrow(/--k/);
    }
  });

  test('without standardisation: WCSS in feature units, same domains', async () => {
    // Scale the features to comparable spreads by hand so unstandardised k-means finds them.
    const scaled = Float32Array.from(data);
    for (let p = 0; p < N; p++) {
      scaled[N + p] *= 25;
      scaled[2 * N + p] *= 5;
    }
    const r = await kmeansFit(await gpuBackend(), feats(scaled, 3), { k: 4, seed: 2, standardize: 'none' });
    expect(r.model.st.standardized).toBe(false);
    expect(adjustedRandIndex(r.labels, dom.truth)).toBeGreaterThan(ARI_MIN);
    let s = 0;
    for (let p = 0; p < N; p++) {
      const j = r.labels[p];
      if (j < 0) continue;
      for (let f = 0; f < 3; f++) s += (scaled[f * N + p] - r.centres[j * 3 + f]) ** 2;
    }
    expect(Math.abs(s - r.wcss) / r.wcss).toBeLessThan(1e-4);
  });

  test('assignment PixelStep through the tiled runner = the fit labels; weighted fractions; spectra; outputs', async () => {
    const cpu = cpuBackend();
    const r = await kmeansFit(cpu, features, { k: 4, seed: 7 });
    const step = kmeansAssignStep(r.model);
    for (const backend of [await gpuBackend(), cpu] as Backend[]) {
      const run = await runTiles(new MemoryStack(data, 3, H, W), step, backend, { budgetBytes: 60_000, baselineBytes: 0 });
      expect(run.tilesRun, backend.name).toBeGreaterThan(3);
      const margins = tieMargins(features, r.model.centres, 4);
      for (let p = 0; p < N; p++) {
        if (r.labels[p] < 0) {
          expect(run.status[p]).toBe(1);
          expect(Number.isNaN(run.maps.label[p])).toBe(true);
          continue;
        }
        if (run.maps.label[p] !== r.labels[p]) expect(margins[p]).toBeLessThanOrEqual(TIE_REL);
        expect(Math.abs(run.maps.distance[p] - r.distance[p])).toBeLessThan(1e-4);
      }
    }

    // Weighted fractions by hand.
    const lab = Int32Array.of(0, 0, 1, -1, 1, 2);
    const w = Float32Array.of(1, 2, 3, 100, NaN, 4);
    const st = clusterStats(lab, 3, w);
    expect(st.counts).toEqual([2, 2, 1]);
    expect(st.fractions).toEqual([0.4, 0.4, 0.2]);
    expect(st.weightSums).toEqual([3, 3, 4]);
    expect(st.weightedFractions).toEqual([0.3, 0.3, 0.4]);
    expect(st.nWeightMissing).toBe(1);
    expect(st.nExcluded).toBe(1);

    // Mean +/- std spectra per cluster, streamed in small tiles = direct computation.
    const nE = 7;
    const rng = makeRng(SEED + 9);
    const cube = new Float32Array(nE * N).map(() => rng.normal());
    cube[3 * N + 10] = NaN;
    const sp = await clusterSpectra(new MemoryStack(cube, nE, H, W), r.labels, 4, { memoryBytes: 4 * nE * W * 5 });
    for (const [j, e] of [[0, 0], [2, 3], [3, 6]]) {
      const v: number[] = [];
      for (let p = 0; p < N; p++) if (r.labels[p] === j && Number.isFinite(cube[e * N + p])) v.push(cube[e * N + p]);
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
      expect(Math.abs(sp.mean[j * nE + e] - mean)).toBeLessThan(1e-12);
      expect(Math.abs(sp.std[j * nE + e] - sd)).toBeLessThan(1e-12);
      expect(sp.count[j * nE + e]).toBe(v.length);
    }
    expect(sp.pixels).toEqual(r.counts);

    // Every output file.
    const dir = path.join(tmp, 'out');
    const energies = Float64Array.from({ length: nE }, (_, i) => 8330 + i);
    const e = { table: [{ k: 2, wcss: 9 }, { k: 3, wcss: 4 }, { k: 4, wcss: 1 }, { k: 5, wcss: 0.9 }], k: 4, rule: 'Kneedle' };
    const out = await writeKmeansOutputs(dir, r, { width: W, height: H, weight: dom.jump, weightName: 'edge_step', spectra: sp, energies, elbow: e });
    for (const f of ['labels.npy', 'labels.tif', 'labels.png', 'distance.npy', 'distance.tif', 'centres.csv', 'clusters.csv', 'elbow.csv', 'elbow.png', 'cluster_spectra.csv', 'cluster_spectra.png']) {
      expect(out.files, f).toContain(f);
      expect(fs.statSync(path.join(dir, f)).size, f).toBeGreaterThan(0);
    }
    const npy = readNpy(path.join(dir, 'labels.npy'));
    expect(npy.dtype).toBe('int16');
    expect(npy.shape).toEqual([H, W]);
    expect(Array.from(npy.data)).toEqual(Array.from(r.labels));
    const buf = fs.readFileSync(path.join(dir, 'labels.tif'));
    const tif = await fromArrayBuffer(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const img = await tif.getImage();
    const ras = (await img.readRasters({ interleave: true })) as unknown as Int16Array;
    expect(ras).toBeInstanceOf(Int16Array);
    expect(Array.from(ras)).toEqual(Array.from(r.labels));
    const centres = fs.readFileSync(path.join(dir, 'centres.csv'), 'utf8').trim().split('\n');
    expect(centres[0]).toBe('cluster,count,e0_half,PE_over_b1,composition');
    expect(Number(centres[1].split(',')[2])).toBeCloseTo(r.centres[0], 9);
    expect(fs.readFileSync(path.join(dir, 'elbow.csv'), 'utf8')).toBe('k,wcss\n2,9\n3,4\n4,1\n5,0.9\n');
    const clusters = fs.readFileSync(path.join(dir, 'clusters.csv'), 'utf8').trim().split('\n');
    expect(clusters[0]).toBe('cluster,count,fraction,weight_sum,weighted_fraction');
    expect(clusters.length).toBe(5);
    expect(out.summary.k).toBe(4);
    expect(out.summary.weight).toBe('edge_step');
    const wf = out.summary.weighted_fractions as number[];
    expect(Math.abs(wf.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-12);
    const png = fs.readFileSync(path.join(dir, 'labels.png'));
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');

    // Feature maps back from the output folder (.npy and .tif), as `--from DIR --features`.
    const files = featurePathsFromDir(dir, ['distance']);
    expect(files).toEqual([path.join(dir, 'distance.npy')]);
    const fi = await readFeatureMaps([files[0], path.join(dir, 'distance.tif')]);
    expect([fi.width, fi.height, fi.features.d, fi.features.n]).toEqual([W, H, 2, N]);
    expect(fi.features.names).toEqual(['distance', 'distance']);
    for (let p = 0; p < N; p += 37) {
      expect(Object.is(fi.features.data[p], r.distance[p])).toBe(true);
      expect(Object.is(fi.features.data[N + p], r.distance[p])).toBe(true);
    }
    expect(() => featurePathsFromDir(dir, ['e0_half'])).toThrow(/--features: no map 'e0_half'/);
    // Whole spectra: the energy-major stack is already feature-major.
    const whole = await featuresFromStack(new MemoryStack(cube, nE, H, W), energies);
    expect([whole.features.d, whole.features.n, whole.width, whole.height]).toEqual([nE, N, W, H]);
    expect(whole.features.data).toEqual(cube);
    expect(whole.features.names![0]).toBe('E8330.00');
    await expect(featuresFromStack(new MemoryStack(cube, nE, H, W, 'big.npy'), energies, 1000)).rejects.toThrow(/big\.npy: whole spectra need/);
    writeMap(path.join(dir, 'small.npy'), new Float32Array(6), 3, 2);
    await expect(readFeatureMaps([files[0], path.join(dir, 'small.npy')])).rejects.toThrow(/small\.npy: map is 3 x 2/);
  });
});
