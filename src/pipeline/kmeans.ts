/**
 * k-means over features on either backend (the engines are in src/cpu/kmeans.ts and
 * src/kernels/kmeans.ts): one k with restarts, or one run from given centres.
 *
 * k-means, step by step (both backends share everything but the engine's step):
 *  1. A pixel with any non-finite feature is excluded (label -1, distance NaN) and counted.
 *  2. Standardise (z-scores over included pixels, population std; zero-variance features
 *     get scale 1, i.e. they drop out: see standardization() in src/cpu/kmeans.ts).
 *  3. k-means++ (greedy, 2 + ln k candidates) on a uniform sample of at most `seedSample`
 *     included pixels, from a generator seeded by (seed, k, restart).
 *  4. Lloyd: assignment + per-workgroup partial sums on the engine, float64 reduction on
 *     the host; new centre = old + mean deviation. Empty clusters are re-seeded at the
 *     pixels farthest from their centres (distinct points only). Stop when the summed
 *     squared centre shift <= tol x mean feature variance (scikit-learn's rule), or maxIter.
 *  5. A final assignment with the final centres gives labels, distances and the WCSS
 *     (sum of squared distances, in the units clustered: standardised unless turned off).
 *  6. Restarts keep the lowest WCSS; clusters are then numbered in lexicographic order of
 *     their centres in original units (first feature first), so numbering is stable across
 *     backends and runs; clusters that could not be placed (fewer distinct points than k)
 *     come last with NaN centres and count 0.
 */
import { InputError } from '../io/errors.js';
import { makeRng, type Rng } from '../synth/random.js';
import type { Backend, BackendName } from './step.js';
import {
  CpuKmeansEngine, KMEANS_MAX_K, entriesPerCluster, farthestDistinct, featureStats, kmeansPlusPlus, sampleIncluded, splitFeatures,
  type Features, type KmeansEngine, type Standardization,
} from '../cpu/kmeans.js';
import { standardizeFeatures, type StandardizeMode } from './standardize.js';
import { GpuKmeansEngine, maxKmeansTilePixels } from '../kernels/kmeans.js';
import { GpuOutOfMemoryError } from '../gpu/buffers.js';

export interface KmeansOptions {
  /** Number of clusters, 1..KMEANS_MAX_K (64). */
  k: number;
  /** Seed of every random choice (default 0): the same seed gives the same seeding on either backend. */
  seed?: number;
  /** k-means++ runs; the lowest WCSS wins (default 5). */
  restarts?: number;
  /** Lloyd iterations per restart at most (default 100). */
  maxIter?: number;
  /** Convergence: summed squared centre shift <= tol x mean feature variance (default 1e-4). */
  tol?: number;
  /** zscore (default), robust (median / MAD) or none (the features' own units): src/pipeline/standardize.ts. */
  standardize?: StandardizeMode;
  /** Pixels sampled for k-means++ seeding (default 50,000). */
  seedSample?: number;
  /** GPU: feature bytes kept on the device between iterations (default 1 GiB; more streams). */
  residentBytes?: number;
}

export const KMEANS_DEFAULTS = { seed: 0, restarts: 5, maxIter: 100, tol: 1e-4, standardize: 'zscore' as StandardizeMode, seedSample: 50_000 } as const;

/** What a fit needs to label new pixels (kmeansAssignStep). */
export interface KmeansModel {
  d: number;
  k: number;
  st: Standardization;
  /** k x d, standardised units. */
  centres: Float64Array;
  active: Uint8Array;
}

export interface RestartSummary {
  seed: number;
  wcss: number;
  iterations: number;
  converged: boolean;
}

export interface KmeansResult {
  k: number;
  model: KmeansModel;
  /** Per pixel: cluster 0..k-1, -1 excluded. */
  labels: Int32Array;
  /** Per pixel: Euclidean distance to its centre in the units clustered; NaN excluded. */
  distance: Float32Array;
  /** k x d centres in the features' original units (NaN rows for clusters never placed). */
  centres: Float64Array;
  counts: number[];
  /** Within-cluster sum of squares, in the units clustered. */
  wcss: number;
  iterations: number;
  converged: boolean;
  nIncluded: number;
  nExcluded: number;
  /** Feature indices with zero variance (scale 1: no influence on the clustering). */
  constantFeatures: number[];
  /** Number of clusters with at least one pixel. */
  nonEmpty: number;
  restarts: RestartSummary[];
  warnings: string[];
  names: string[];
  backend: BackendName;
  adapter: string;
}

/** Mixes (seed, k, restart) into one 32-bit seed (a murmur3-style finaliser). */
export function mixSeed(seed: number, k: number, restart: number): number {
  let h = (Math.floor(seed) ^ 0x9e3779b9) >>> 0;
  for (const v of [k, restart]) {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

function checkFeatures(f: Features): void {
  if (!(Number.isInteger(f.d) && f.d >= 1 && Number.isInteger(f.n) && f.n >= 1) || f.data.length < f.d * f.n) {
    throw new InputError('features', `need at least one feature and one pixel (got d = ${f.d}, n = ${f.n}, ${f.data.length} values)`);
  }
}

export function checkK(k: number, where = '--k'): void {
  if (!(Number.isInteger(k) && k >= 1 && k <= KMEANS_MAX_K)) throw new InputError(where, `k must be an integer from 1 to ${KMEANS_MAX_K}, got ${k}`);
}

/** Engine + standardisation + seeding sample, shared by every k of an elbow run. */
export interface PreparedKmeans {
  engine: KmeansEngine;
  features: Features;
  st: Standardization;
  nIncluded: number;
  nExcluded: number;
  /** m x d standardised sample for k-means++, and m. */
  sample: Float64Array;
  m: number;
  /** Absolute convergence threshold (tol x mean variance of the clustered features). */
  tolAbs: number;
  backend: Backend;
  opts: Required<Omit<KmeansOptions, 'k' | 'residentBytes'>> & { residentBytes?: number };
}

/**
 * Statistics, standardisation, the seeding sample and the engine (on the GPU: features
 * uploaded). Release with `prep.engine.release()`.
 */
export async function prepareKmeans(backend: Backend, features: Features, opts: Omit<KmeansOptions, 'k'> = {}): Promise<PreparedKmeans> {
  checkFeatures(features);
  const o = { ...KMEANS_DEFAULTS, ...opts };
  if (!(Number.isInteger(o.restarts) && o.restarts >= 1)) throw new InputError('--restarts', `must be a positive integer, got ${o.restarts}`);
  if (!(Number.isInteger(o.maxIter) && o.maxIter >= 1)) throw new InputError('--max-iter', `must be a positive integer, got ${o.maxIter}`);
  if (!(o.tol >= 0)) throw new InputError('--tol', `must be >= 0, got ${o.tol}`);
  const stats = featureStats(features);
  if (stats.nIncluded === 0) {
    throw new InputError('features', `no pixel has every feature finite (${stats.nExcluded} pixels, all excluded)`);
  }
  const st = standardizeFeatures(features, stats, o.standardize);
  const d = features.d;
  let meanVar = 0;
  for (let f = 0; f < d; f++) meanVar += (stats.std[f] / st.scale[f]) ** 2 / d;
  const engine = await makeEngine(backend, features, st, opts.residentBytes);
  const rng = makeRng(mixSeed(o.seed, 0, 0xffff));
  const views = splitFeatures(features, features.n);
  const idx = sampleIncluded(views, d, Math.max(1, Math.floor(o.seedSample)), rng);
  const sample = new Float64Array(idx.length * d);
  const z = new Float64Array(d);
  idx.forEach((p, i) => {
    engine.pixel(p, z);
    sample.set(z, i * d);
  });
  return { engine, features, st, nIncluded: stats.nIncluded, nExcluded: stats.nExcluded, sample, m: idx.length, tolAbs: o.tol * meanVar, backend, opts: o };
}

export async function makeEngine(backend: Backend, features: Features, st: Standardization, residentBytes?: number): Promise<KmeansEngine> {
  if (backend.name === 'webgpu') {
    if (!backend.gpu) throw new Error('webgpu backend without a GPU context');
    const views = splitFeatures(features, maxKmeansTilePixels(backend.gpu, features.d));
    try {
      return await GpuKmeansEngine.create(backend.gpu, features.d, views, st, { residentBytes });
    } catch (e) {
      // Not enough device memory to keep every tile: stream them through one slot instead.
      if (e instanceof GpuOutOfMemoryError && residentBytes !== 0) return GpuKmeansEngine.create(backend.gpu, features.d, views, st, { residentBytes: 0 });
      throw e;
    }
  }
  return new CpuKmeansEngine(features.d, splitFeatures(features, features.n), st, { threads: backend.threads });
}

interface LloydRun {
  centres: Float64Array;
  active: Uint8Array;
  wcss: number;
  counts: number[];
  iterations: number;
  converged: boolean;
  unplaced: number;
}

/**
 * Lloyd iterations from the given centres. Returns the final centres and the WCSS and
 * counts of a last assignment with them.
 */
export async function lloyd(
  engine: KmeansEngine, k: number, centres0: Float64Array, active0: Uint8Array, opts: { maxIter: number; tolAbs: number },
): Promise<LloydRun> {
  const d = engine.d;
  const m = entriesPerCluster(d);
  const centres = Float64Array.from(centres0);
  const active = Uint8Array.from(active0);
  // Clusters for which no distinct point was left: not tried again.
  const exhausted = new Uint8Array(k);
  let iterations = 0;
  let converged = false;
  while (iterations < opts.maxIter) {
    const st = await engine.step(k, centres, active, false);
    iterations++;
    let shift2 = 0;
    const empty: number[] = [];
    for (let j = 0; j < k; j++) {
      const n = st.sums[j * m + d];
      if (!(n > 0)) {
        if (!exhausted[j]) empty.push(j);
        continue;
      }
      for (let f = 0; f < d; f++) {
        const delta = st.sums[j * m + f] / n;
        centres[j * d + f] = st.base[j * d + f] + delta;
        shift2 += delta * delta;
      }
    }
    if (empty.length > 0) {
      // Re-seed at the farthest points of the assignment just made (same centres, so the
      // same labels): one more pass that also returns per-pixel distances.
      const px = await engine.step(k, st.base, active, true);
      const far = farthestDistinct(px.dist2!, empty.length, d, engine);
      const z = new Float64Array(d);
      empty.forEach((j, i) => {
        if (i < far.length) {
          engine.pixel(far[i], z);
          centres.set(z, j * d);
          active[j] = 1;
        } else {
          active[j] = 0;
          exhausted[j] = 1;
          centres.fill(0, j * d, j * d + d);
        }
      });
      if (far.length > 0) continue; // moved centres: not a converged state
    }
    if (shift2 <= opts.tolAbs) {
      converged = true;
      break;
    }
  }
  const fin = await engine.step(k, centres, active, false);
  let wcss = 0;
  const counts: number[] = [];
  for (let j = 0; j < k; j++) {
    counts.push(Math.round(fin.sums[j * m + d]));
    wcss += fin.sums[j * m + d + 1];
  }
  return { centres, active, wcss, counts, iterations, converged, unplaced: exhausted.reduce((a, b) => a + b, 0) };
}

/** One restart's seeding: k-means++ on the prepared sample. */
export function seedCentres(prep: PreparedKmeans, k: number, restart: number): { centres: Float64Array; active: Uint8Array; seed: number } {
  const seed = mixSeed(prep.opts.seed, k, restart);
  const rng: Rng = makeRng(seed);
  return { ...kmeansPlusPlus(prep.sample, prep.m, prep.features.d, k, rng), seed };
}

/** Every restart for one k on a prepared engine; labels only for the best (one more pass). */
export async function fitPrepared(prep: PreparedKmeans, k: number, wantPixels = true): Promise<KmeansResult> {
  checkK(k);
  const d = prep.features.d;
  let best: LloydRun | null = null;
  const restarts: RestartSummary[] = [];
  for (let r = 0; r < prep.opts.restarts; r++) {
    const init = seedCentres(prep, k, r);
    const run = await lloyd(prep.engine, k, init.centres, init.active, { maxIter: prep.opts.maxIter, tolAbs: prep.tolAbs });
    restarts.push({ seed: init.seed, wcss: run.wcss, iterations: run.iterations, converged: run.converged });
    if (!best || run.wcss < best.wcss) best = run;
  }
  return finishFit(prep, k, best!, restarts, wantPixels);
}

async function finishFit(prep: PreparedKmeans, k: number, run: LloydRun, restarts: RestartSummary[], wantPixels: boolean): Promise<KmeansResult> {
  const d = prep.features.d;
  const m = entriesPerCluster(d);
  const { st } = prep;
  const n = prep.features.n;
  let labels: Int32Array = new Int32Array(0);
  let distance: Float32Array = new Float32Array(0);
  let counts = run.counts;
  let wcss = run.wcss;
  if (wantPixels) {
    const fin = await prep.engine.step(k, run.centres, run.active, true);
    labels = fin.labels!;
    distance = new Float32Array(n);
    for (let p = 0; p < n; p++) distance[p] = Math.sqrt(fin.dist2![p]);
    counts = [];
    wcss = 0;
    for (let j = 0; j < k; j++) {
      counts.push(Math.round(fin.sums[j * m + d]));
      wcss += fin.sums[j * m + d + 1];
    }
  }
  // Original units, then a stable numbering: placed clusters in lexicographic order.
  const orig = new Float64Array(k * d);
  for (let j = 0; j < k; j++) {
    for (let f = 0; f < d; f++) orig[j * d + f] = run.active[j] ? run.centres[j * d + f] * st.scale[f] + st.shift[f] : NaN;
  }
  const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => {
    if (run.active[a] !== run.active[b]) return run.active[b] - run.active[a];
    for (let f = 0; f < d; f++) {
      const u = orig[a * d + f], v = orig[b * d + f];
      if (u !== v) return u - v;
    }
    return a - b;
  });
  const newOf = new Int32Array(k);
  order.forEach((old, nw) => (newOf[old] = nw));
  for (let p = 0; p < labels.length; p++) if (labels[p] >= 0) labels[p] = newOf[labels[p]];
  const centres = new Float64Array(k * d);
  const zc = new Float64Array(k * d);
  const active = new Uint8Array(k);
  order.forEach((old, nw) => {
    centres.set(orig.subarray(old * d, old * d + d), nw * d);
    zc.set(run.centres.subarray(old * d, old * d + d), nw * d);
    active[nw] = run.active[old];
  });
  const sortedCounts = order.map((old) => counts[old]);
  const nonEmpty = sortedCounts.filter((c) => c > 0).length;
  const warnings: string[] = [];
  if (run.unplaced > 0 || nonEmpty < k) {
    warnings.push(`only ${nonEmpty} of k = ${k} clusters hold pixels: the data have fewer distinct points than k (or the rest are too close to tell apart)`);
  }
  if (st.constant.length > 0) {
    const names = st.constant.map((f) => prep.features.names?.[f] ?? `feature ${f}`);
    warnings.push(`constant feature${names.length > 1 ? 's' : ''} ${names.join(', ')}: zero variance, no influence on the clusters`);
  }
  if (!restarts.some((r) => r.converged)) warnings.push(`no restart converged within ${prep.opts.maxIter} iterations`);
  const bestRestart = restarts.reduce((b, r) => (r.wcss < b.wcss ? r : b), restarts[0]);
  return {
    k,
    model: { d, k, st, centres: zc, active },
    labels,
    distance,
    centres,
    counts: sortedCounts,
    wcss,
    iterations: bestRestart.iterations,
    converged: bestRestart.converged,
    nIncluded: prep.nIncluded,
    nExcluded: prep.nExcluded,
    constantFeatures: st.constant,
    nonEmpty,
    restarts,
    warnings,
    names: prep.features.names ?? Array.from({ length: d }, (_, f) => `feature_${f}`),
    backend: prep.backend.name,
    adapter: prep.backend.adapter,
  };
}

/** k-means with k-means++ restarts on either backend (see the file header for the steps). */
export async function kmeansFit(backend: Backend, features: Features, opts: KmeansOptions): Promise<KmeansResult> {
  checkK(opts.k);
  const prep = await prepareKmeans(backend, features, opts);
  try {
    return await fitPrepared(prep, opts.k);
  } finally {
    await prep.engine.release();
  }
}

/**
 * One Lloyd run from given initial centres (k x d, standardised units), no restarts and no
 * relabelling: the GPU-vs-CPU comparison from identical starting points. Returns labels in
 * the initial centres' numbering.
 */
export async function kmeansFromCentres(
  backend: Backend, features: Features, centres: Float64Array, opts: Omit<KmeansOptions, 'k' | 'restarts' | 'seed' | 'seedSample'> = {},
): Promise<{ centres: Float64Array; labels: Int32Array; dist2: Float32Array; wcss: number; counts: number[]; iterations: number; converged: boolean; st: Standardization }> {
  const d = features.d;
  const k = centres.length / d;
  checkK(k);
  const prep = await prepareKmeans(backend, features, { ...opts, seedSample: 1 });
  try {
    const run = await lloyd(prep.engine, k, centres, new Uint8Array(k).fill(1), { maxIter: prep.opts.maxIter, tolAbs: prep.tolAbs });
    const fin = await prep.engine.step(k, run.centres, run.active, true);
    return { centres: run.centres, labels: fin.labels!, dist2: fin.dist2!, wcss: run.wcss, counts: run.counts, iterations: run.iterations, converged: run.converged, st: prep.st };
  } finally {
    await prep.engine.release();
  }
}

/**
 * Labels pixels with a fitted model (its standardisation and centres, already in the fit's
 * final numbering) through the same engine step as the fit's final assignment, so labels
 * and distances are the bytes the fit gives for the same pixels (`xanes run --assign-from`).
 */
export async function kmeansAssign(backend: Backend, features: Features, model: KmeansModel): Promise<{ labels: Int32Array; distance: Float32Array; counts: number[]; wcss: number }> {
  checkFeatures(features);
  const engine = await makeEngine(backend, features, model.st);
  try {
    const fin = await engine.step(model.k, model.centres, model.active, true);
    const distance = new Float32Array(features.n);
    for (let p = 0; p < features.n; p++) distance[p] = Math.sqrt(fin.dist2![p]);
    // Pixels and squared distances per cluster, as the fit's final assignment sums them.
    const m = entriesPerCluster(model.d);
    const counts: number[] = [];
    let wcss = 0;
    for (let j = 0; j < model.k; j++) {
      counts.push(Math.round(fin.sums[j * m + model.d]));
      wcss += fin.sums[j * m + model.d + 1];
    }
    return { labels: fin.labels!, distance, counts, wcss };
  } finally {
    await engine.release();
  }
}
