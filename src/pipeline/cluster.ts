/**
 * Chemical domains: the library behind `xanes pca` and `xanes cluster`.
 *
 *  inputs   readFeatureMaps(files, names?)               --features a.npy,b.tif
 *           featurePathsFromDir(dir, names)              --from DIR --features e0_half,...
 *           featuresFromStack(source, energies)          whole spectra; featuresFromMaps(pca.scores)
 *  k-means  kmeansFit(backend, features, opts)           one k, restarts, best WCSS
 *           kmeansFromCentres(backend, features, ...)    one Lloyd run from given centres
 *           elbow(backend, features, ks, opts)           { table: {k, wcss}[], k, rule } (Kneedle)
 *           parseKRange('2:12'), kneedle(table)
 *           prepareKmeans + fitPrepared                  several k on one upload (what elbow does)
 *           kmeansAssignStep(model)                      PixelStep: labels of new pixels
 *  stats    clusterStats(labels, k, weight?)             counts, fractions, weighted fractions
 *           clusterSpectra(source, labels, k)            mean +/- std spectrum per cluster
 *  PCA      pcaRun(backend, source, energies, n, opts)   two streamed passes + outputs
 *           pcaProjectStep(model, n)                     PixelStep: scores + error
 *  outputs  writeKmeansOutputs(dir, result, {...}) writes them all and returns summary.json
 *           fields; or one by one: writeLabels, writeMap, centresCsv, clusterStatsCsv,
 *           elbowCsv, renderElbowPng, renderLabelsPng, clusterSpectraCsv,
 *           renderClusterSpectraPng, screeCsv, renderScreePng, componentsCsv, renderMapAuto
 *  bench    benchKmeansIteration, benchPcaCovariance (timing lives here, not in tests)
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
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../io/errors.js';
import { NpyFile, formatShape, writeNpy } from '../io/npy.js';
import { TiffStack, writeTiffFloat32, writeTiffStack } from '../io/tiff.js';
import type { StackSource } from '../stack/source.js';
import { planTiles } from '../stack/tiles.js';
import { DEFAULT_MEMORY_MIB } from '../stack/tiles.js';
import { makeRng, type Rng } from '../synth/random.js';
import { Canvas, BLACK, GREY, WHITE, type Rgb } from '../plot/raster.js';
import { textWidth } from '../plot/font.js';
import { drawFrame, drawLegend, makeAxes, renderLinePlot } from '../plot/lineplot.js';
import { renderMap } from '../plot/colormap.js';
import { percentiles } from '../plot/histogram.js';
import type { Backend, BackendName, PixelStep, TileResult } from './step.js';
import { runTiles, tileBudget } from './run-tiles.js';
import { GpuOutOfMemoryError } from '../gpu/buffers.js';
import {
  CpuKmeansEngine, KMEANS_MAX_K, KM_ROWS, KM_ROW_DIST2, KM_ROW_LABEL, entriesPerCluster, farthestDistinct, featureStats,
  featuresFromMaps, kmeansAssignCpu, kmeansPlusPlus, sampleIncluded, splitFeatures, standardization,
  type FeatureView, type Features, type KmeansEngine, type Standardization,
} from '../cpu/kmeans.js';
import { GpuKmeansEngine, kmeansAssignGpu, maxKmeansTilePixels } from '../kernels/kmeans.js';
import { PcaAccumulator, pcaGramCpu, pcaProjectCpu, significantComponents, usableValue, type PcaModel } from '../cpu/pca.js';
import { PCA_MAX_COMPONENTS, pcaGramGpu, pcaProjectGpu } from '../kernels/pca.js';

export type { Features, FeatureView, Standardization } from '../cpu/kmeans.js';
export { featuresFromMaps } from '../cpu/kmeans.js';
export type { PcaModel, ExplainedRow } from '../cpu/pca.js';

// ------------------------------------------------------------------ feature inputs

/** Pixels of a feature set and its image shape. */
export interface FeatureImage {
  features: Features;
  width: number;
  height: number;
}

/**
 * One 2-D map per feature file (`--features a.npy,b.tif`): .npy [H, W] of any numeric type or
 * a single-page TIFF (uint8, uint16, float32), read as float32. Names default to the file
 * names without extension. All maps must have the same shape.
 */
export async function readFeatureMaps(files: string[], names?: string[]): Promise<FeatureImage> {
  if (files.length === 0) throw new InputError('--features', 'no feature maps given');
  const maps: Float32Array[] = [];
  let width = 0, height = 0;
  for (const file of files) {
    const ext = path.extname(file).toLowerCase();
    let map: Float32Array, w: number, h: number;
    if (ext === '.npy') {
      const f = NpyFile.open(file);
      try {
        const shape = f.shape.length === 3 && f.shape[0] === 1 ? f.shape.slice(1) : f.shape;
        if (shape.length !== 2) throw new InputError(file, `expected a 2-D map [height, width], got shape ${formatShape(f.shape)}`);
        [h, w] = shape;
        map = new Float32Array(w * h);
        f.readElements(0, w * h, map, 0);
      } finally {
        f.close();
      }
    } else if (ext === '.tif' || ext === '.tiff') {
      const t = await TiffStack.open(file);
      try {
        if (t.nE !== 1) throw new InputError(file, `expected a single-page map, found ${t.nE} pages`);
        [w, h] = [t.width, t.height];
        map = new Float32Array(w * h);
        await t.readRows(0, h, map);
      } finally {
        t.close();
      }
    } else {
      throw new InputError(file, `unknown map format '${ext || '(no extension)'}' (supported: .npy, .tif)`);
    }
    if (maps.length === 0) [width, height] = [w, h];
    else if (w !== width || h !== height) throw new InputError(file, `map is ${w} x ${h}, ${files[0]} is ${width} x ${height}`);
    maps.push(map);
  }
  const featureNames = names ?? files.map((f) => path.basename(f).replace(/\.[^.]*$/, ''));
  return { features: featuresFromMaps(maps, featureNames), width, height };
}

/**
 * `--from DIR --features e0_half,PE_over_b1`: each name resolves to DIR/name.npy, else
 * DIR/name.tif (maps written by an earlier xanes command).
 */
export function featurePathsFromDir(dir: string, names: string[]): string[] {
  return names.map((name) => {
    for (const ext of ['.npy', '.tif', '.tiff']) {
      const p = path.join(dir, name + ext);
      if (fs.existsSync(p)) return p;
    }
    throw new InputError('--features', `no map '${name}' in ${dir} (looked for ${name}.npy and ${name}.tif)`);
  });
}

/**
 * Whole spectra as features (d = number of energies): the stack read at once, which is
 * already feature-major. Refuses stacks larger than `maxBytes` (default 4 GiB): cluster
 * PCA scores instead (pcaRun), which holds n maps rather than every energy.
 */
export async function featuresFromStack(source: StackSource, energies: Float64Array, maxBytes = 4 * 2 ** 30): Promise<FeatureImage> {
  const { nE, height: H, width: W } = source;
  const bytes = 4 * nE * H * W;
  if (bytes > maxBytes) {
    throw new InputError(source.path, `whole spectra need ${(bytes / 2 ** 30).toFixed(1)} GiB in memory (limit ${(maxBytes / 2 ** 30).toFixed(1)} GiB): cluster PCA scores instead (--pca n)`);
  }
  const data = new Float32Array(nE * H * W);
  await source.readRows(0, H, data);
  const names = Array.from(energies, (e) => `E${e.toFixed(2)}`);
  return { features: { d: nE, n: H * W, data, names }, width: W, height: H };
}

// ------------------------------------------------------------------ k-means

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
  /** z-score standardisation (default true); false clusters in the features' own units. */
  standardize?: boolean;
  /** Pixels sampled for k-means++ seeding (default 50,000). */
  seedSample?: number;
  /** GPU: feature bytes kept on the device between iterations (default 1 GiB; more streams). */
  residentBytes?: number;
}

export const KMEANS_DEFAULTS = { seed: 0, restarts: 5, maxIter: 100, tol: 1e-4, standardize: true, seedSample: 50_000 } as const;

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

function checkK(k: number, where = '--k'): void {
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
  const st = standardization(stats, o.standardize);
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

async function makeEngine(backend: Backend, features: Features, st: Standardization, residentBytes?: number): Promise<KmeansEngine> {
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
  return new CpuKmeansEngine(features.d, splitFeatures(features, features.n), st);
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

// ------------------------------------------------------------------ elbow

export interface ElbowRow {
  k: number;
  wcss: number;
}

export interface ElbowResult {
  table: ElbowRow[];
  /** The k chosen by the rule. */
  k: number;
  rule: string;
}

/** "a:b" (inclusive) or "a,b,c" -> sorted distinct ks. */
export function parseKRange(spec: string, where = '--k-range'): number[] {
  const s = spec.trim();
  let ks: number[];
  const m = /^(\d+)\s*:\s*(\d+)$/.exec(s);
  if (m) {
    const a = Number(m[1]), b = Number(m[2]);
    if (!(a <= b)) throw new InputError(where, `expected a:b with a <= b, got '${spec}'`);
    ks = Array.from({ length: b - a + 1 }, (_, i) => a + i);
  } else if (/^\d+(\s*,\s*\d+)*$/.test(s)) {
    ks = s.split(',').map((t) => Number(t.trim()));
  } else {
    throw new InputError(where, `expected a:b (e.g. 2:12) or a list (2,3,4), got '${spec}'`);
  }
  ks = [...new Set(ks)].sort((x, y) => x - y);
  for (const k of ks) checkK(k, where);
  return ks;
}

export const KNEEDLE_RULE =
  'Kneedle (Satopaa et al. 2011), offline form: k and WCSS scaled to [0, 1]; the chosen k is the one farthest below the chord from the first to the last point (the smallest k if no point lies below it)';

/**
 * Kneedle on a decreasing, convex WCSS(k) curve: with x = (k - k_min) / (k_max - k_min)
 * and y = (W - W_min) / (W_max - W_min), the knee maximises (1 - y) - x. Returns the
 * smallest k when the curve never falls below the chord (straight or concave) or is flat.
 */
export function kneedle(table: ElbowRow[]): number {
  if (table.length === 0) throw new RangeError('kneedle: empty table');
  const rows = [...table].sort((a, b) => a.k - b.k);
  const k0 = rows[0].k, k1 = rows[rows.length - 1].k;
  let wmin = Infinity, wmax = -Infinity;
  for (const r of rows) {
    wmin = Math.min(wmin, r.wcss);
    wmax = Math.max(wmax, r.wcss);
  }
  if (rows.length < 3 || !(wmax > wmin)) return k0;
  let best = k0, bestD = 0;
  for (const r of rows) {
    const x = (r.k - k0) / (k1 - k0);
    const y = (r.wcss - wmin) / (wmax - wmin);
    const diff = 1 - y - x;
    if (diff > bestD) {
      bestD = diff;
      best = r.k;
    }
  }
  return best;
}

/**
 * WCSS for each k (every restart, best kept; labels are not read back) and the Kneedle
 * choice. Fitting the chosen k again with kmeansFit and the same options gives the same
 * clustering and WCSS (seeds depend on seed, k and restart only).
 */
export async function elbow(backend: Backend, features: Features, ks: number[], opts: Omit<KmeansOptions, 'k'> = {}): Promise<ElbowResult> {
  if (ks.length < 3) throw new InputError('--k-range', `needs at least 3 values of k to find an elbow, got ${ks.length}`);
  ks.forEach((k) => checkK(k, '--k-range'));
  const prep = await prepareKmeans(backend, features, opts);
  try {
    const table: ElbowRow[] = [];
    for (const k of [...ks].sort((a, b) => a - b)) {
      const r = await fitPrepared(prep, k, false);
      table.push({ k, wcss: r.wcss });
    }
    return { table, k: kneedle(table), rule: KNEEDLE_RULE };
  } finally {
    await prep.engine.release();
  }
}

// ------------------------------------------------------------------ PixelSteps

export const KMEANS_STATUS_NAMES = ['ok', 'excluded'] as const;

/**
 * Labels new pixels with a fitted model: the tile is the raw features, feature-major
 * [d][P] (nE = d). Maps: 'label' (cluster as float, NaN excluded) and 'distance' (to the
 * centre, units clustered). Status 0 ok, 1 excluded (a non-finite feature).
 */
export function kmeansAssignStep(model: KmeansModel): PixelStep {
  const { d, k } = model;
  return {
    name: 'kmeans',
    mapNames: ['label', 'distance'],
    statusNames: KMEANS_STATUS_NAMES,
    // GPU: assignment rows, their readback buffer and the host copy of it (3 x 8 B), the two
    // maps (8 B), status (1 B) = 33; CPU: Int32 labels + float64 distances (12 B), maps,
    // status = 21. The larger.
    bytesPerPixel: () => 3 * 4 * KM_ROWS + 8 + 1,
    gpuBindingBytesPerPixel: () => 4 * Math.max(d, KM_ROWS),
    async runTile(backend: Backend, cube: Float32Array, P: number): Promise<TileResult> {
      const label = new Float32Array(P);
      const distance = new Float32Array(P);
      const status = new Uint8Array(P);
      if (backend.gpu) {
        const rows = await kmeansAssignGpu(backend.gpu, cube, P, model.st, k, model.centres, model.active);
        for (let p = 0; p < P; p++) {
          const l = rows[KM_ROW_LABEL * P + p];
          label[p] = l >= 0 ? l : NaN;
          distance[p] = l >= 0 ? Math.sqrt(rows[KM_ROW_DIST2 * P + p]) : NaN;
          status[p] = l >= 0 ? 0 : 1;
        }
      } else {
        const lab = new Int32Array(P);
        const d2 = new Float64Array(P);
        kmeansAssignCpu({ data: cube, stride: P, offset: 0, count: P }, d, model.st, k, model.centres, model.active, lab, d2, 0);
        for (let p = 0; p < P; p++) {
          label[p] = lab[p] >= 0 ? lab[p] : NaN;
          distance[p] = lab[p] >= 0 ? Math.sqrt(d2[p]) : NaN;
          status[p] = lab[p] >= 0 ? 0 : 1;
        }
      }
      return { maps: { label, distance }, status };
    },
  };
}

export const PCA_STATUS_NAMES = ['ok', 'excluded'] as const;

export function pcaMapNames(n: number): string[] {
  return [...Array.from({ length: n }, (_, k) => `score_${k + 1}`), 'recon_error'];
}

/**
 * Scores on the first n components ('score_1'..'score_n') and the RMS reconstruction error
 * ('recon_error', in the stack's units) of each pixel. Status 0 ok, 1 excluded (a
 * non-finite value, or one of magnitude >= PCA_MAX_ABS, in the spectrum: NaN maps).
 */
export function pcaProjectStep(model: PcaModel, n: number): PixelStep {
  if (!(Number.isInteger(n) && n >= 1 && n <= Math.min(PCA_MAX_COMPONENTS, model.d))) {
    throw new InputError('--components', `must be an integer from 1 to ${Math.min(PCA_MAX_COMPONENTS, model.d)}, got ${n}`);
  }
  const names = pcaMapNames(n);
  const rows = n + 1;
  return {
    name: 'pca',
    mapNames: names,
    statusNames: PCA_STATUS_NAMES,
    // Per output row: GPU storage, readback buffer and its host copy (12 B; the CPU's
    // float64 rows take 8 B), plus the returned float32 map (4 B); and the status byte.
    bytesPerPixel: () => 16 * rows + 1,
    gpuBindingBytesPerPixel: (nE) => 4 * Math.max(nE, rows),
    async runTile(backend: Backend, cube: Float32Array, P: number): Promise<TileResult> {
      const out = backend.gpu ? await pcaProjectGpu(backend.gpu, cube, P, model, n) : pcaProjectCpu(cube, P, model, n);
      const maps: Record<string, Float32Array> = {};
      names.forEach((name, r) => (maps[name] = Float32Array.from(out.subarray(r * P, (r + 1) * P))));
      const status = new Uint8Array(P);
      const err = maps.recon_error;
      for (let p = 0; p < P; p++) status[p] = Number.isNaN(err[p]) ? 1 : 0;
      return { maps, status };
    },
  };
}

// ------------------------------------------------------------------ cluster statistics

export interface ClusterStats {
  k: number;
  counts: number[];
  /** count / included pixels. */
  fractions: number[];
  nIncluded: number;
  nExcluded: number;
  /** With a weight map: sum of the weight per cluster, and its fraction of the total. */
  weightSums?: number[];
  weightedFractions?: number[];
  /** Included pixels whose weight is not finite (left out of the weighted sums). */
  nWeightMissing?: number;
}

/**
 * Counts and fractions per cluster; with `weight` (e.g. the edge-jump map) also the
 * weighted fractions sum_{p in j} w_p / sum_p w_p over included pixels with a finite weight.
 */
export function clusterStats(labels: Int32Array | Int16Array, k: number, weight?: Float32Array): ClusterStats {
  if (weight && weight.length !== labels.length) {
    throw new InputError('--weight', `map has ${weight.length} pixels, the labels ${labels.length}`);
  }
  const counts = new Array<number>(k).fill(0);
  const wsum = new Array<number>(k).fill(0);
  let nIncluded = 0, nExcluded = 0, missing = 0;
  for (let p = 0; p < labels.length; p++) {
    const j = labels[p];
    if (j < 0 || j >= k) {
      nExcluded++;
      continue;
    }
    nIncluded++;
    counts[j]++;
    if (weight) {
      const w = weight[p];
      if (Number.isFinite(w)) wsum[j] += w;
      else missing++;
    }
  }
  const stats: ClusterStats = { k, counts, fractions: counts.map((c) => (nIncluded > 0 ? c / nIncluded : 0)), nIncluded, nExcluded };
  if (weight) {
    const total = wsum.reduce((a, b) => a + b, 0);
    stats.weightSums = wsum;
    stats.weightedFractions = wsum.map((w) => (total !== 0 ? w / total : NaN));
    stats.nWeightMissing = missing;
  }
  return stats;
}

export interface ClusterSpectra {
  k: number;
  nE: number;
  /** k x nE: mean, population std and number of finite values per cluster and energy. */
  mean: Float64Array;
  std: Float64Array;
  count: Float64Array;
  /** Pixels per cluster. */
  pixels: number[];
}

/**
 * Mean +/- standard deviation spectrum of each cluster, streaming the stack by tiles of
 * rows (at most `memoryBytes` per tile, default 256 MiB). Per tile, per cluster and energy:
 * count, mean and sum of squared deviations in float64, merged across tiles with Chan et
 * al.'s pairwise update (no sum-of-squares cancellation). Non-finite values are skipped.
 */
export async function clusterSpectra(source: StackSource, labels: Int32Array | Int16Array, k: number, opts: { memoryBytes?: number } = {}): Promise<ClusterSpectra> {
  const { nE, height: H, width: W } = source;
  if (labels.length !== H * W) throw new InputError(source.path, `stack is ${W} x ${H} pixels, the labels ${labels.length}`);
  const budget = opts.memoryBytes ?? 256 * 2 ** 20;
  const rows = Math.max(1, Math.min(H, Math.floor(budget / (4 * nE * W))));
  const tile = new Float32Array(nE * rows * W);
  const n = new Float64Array(k * nE), mean = new Float64Array(k * nE), m2 = new Float64Array(k * nE);
  const tn = new Float64Array(k * nE), ts = new Float64Array(k * nE), tm2 = new Float64Array(k * nE);
  const pixels = new Array<number>(k).fill(0);
  for (let y0 = 0; y0 < H; y0 += rows) {
    const r = Math.min(rows, H - y0);
    const P = r * W;
    await source.readRows(y0, r, tile);
    tn.fill(0);
    ts.fill(0);
    tm2.fill(0);
    for (let p = 0; p < P; p++) {
      const j = labels[y0 * W + p];
      if (j < 0 || j >= k) continue;
      pixels[j]++;
      for (let e = 0; e < nE; e++) {
        const x = tile[e * P + p];
        if (!Number.isFinite(x)) continue;
        tn[j * nE + e]++;
        ts[j * nE + e] += x;
      }
    }
    for (let p = 0; p < P; p++) {
      const j = labels[y0 * W + p];
      if (j < 0 || j >= k) continue;
      for (let e = 0; e < nE; e++) {
        const x = tile[e * P + p];
        if (!Number.isFinite(x)) continue;
        const i = j * nE + e;
        const t = x - ts[i] / tn[i];
        tm2[i] += t * t;
      }
    }
    for (let i = 0; i < k * nE; i++) {
      if (tn[i] === 0) continue;
      const tmean = ts[i] / tn[i];
      const nn = n[i] + tn[i];
      const delta = tmean - mean[i];
      mean[i] += (delta * tn[i]) / nn;
      m2[i] += tm2[i] + (delta * delta * n[i] * tn[i]) / nn;
      n[i] = nn;
    }
  }
  const std = new Float64Array(k * nE);
  for (let i = 0; i < k * nE; i++) {
    if (n[i] === 0) {
      mean[i] = NaN;
      std[i] = NaN;
    } else std[i] = Math.sqrt(m2[i] / n[i]);
  }
  return { k, nE, mean, std, count: n, pixels };
}

// ------------------------------------------------------------------ writers

/** Labels as int16 (-1 excluded), the type labels.npy / labels.tif hold. */
export function labelsToInt16(labels: Int32Array): Int16Array {
  return Int16Array.from(labels);
}

/** labels.npy (int16 [H, W]) or labels.tif (int16, SampleFormat 2), by extension. */
export function writeLabels(file: string, labels: Int32Array | Int16Array, width: number, height: number): void {
  if (labels.length !== width * height) throw new RangeError(`writeLabels: ${labels.length} labels is not ${width} x ${height}`);
  const data = labels instanceof Int16Array ? labels : labelsToInt16(labels);
  const ext = path.extname(file).toLowerCase();
  if (ext === '.npy') writeNpy(file, data, [height, width]);
  else if (ext === '.tif' || ext === '.tiff') writeTiffStack(file, data, width, height, 1);
  else throw new InputError(file, `unknown label format '${ext}' (supported: .npy, .tif)`);
}

/** A float32 map as .npy [H, W] or .tif, by extension. */
export function writeMap(file: string, map: Float32Array, width: number, height: number): void {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.npy') writeNpy(file, map, [height, width]);
  else if (ext === '.tif' || ext === '.tiff') writeTiffFloat32(file, map, width, height);
  else throw new InputError(file, `unknown map format '${ext}' (supported: .npy, .tif)`);
}

function num(v: number): string {
  return Number.isFinite(v) ? String(v) : 'nan';
}

function csvName(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** centres.csv: cluster, pixel count, then each feature's centre in original units. */
export function centresCsv(r: KmeansResult): string {
  const lines = [['cluster', 'count', ...r.names.map(csvName)].join(',')];
  for (let j = 0; j < r.k; j++) {
    const row = [String(j), String(r.counts[j])];
    for (let f = 0; f < r.model.d; f++) row.push(num(r.centres[j * r.model.d + f]));
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}

/** clusters.csv: cluster, count, fraction[, weight_sum, weighted_fraction]. */
export function clusterStatsCsv(s: ClusterStats): string {
  const w = s.weightSums !== undefined;
  const lines = [['cluster', 'count', 'fraction', ...(w ? ['weight_sum', 'weighted_fraction'] : [])].join(',')];
  for (let j = 0; j < s.k; j++) {
    const row = [String(j), String(s.counts[j]), num(s.fractions[j])];
    if (w) row.push(num(s.weightSums![j]), num(s.weightedFractions![j]));
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}

/** elbow.csv: k,wcss. */
export function elbowCsv(table: ElbowRow[]): string {
  return ['k,wcss', ...table.map((r) => `${r.k},${num(r.wcss)}`)].join('\n') + '\n';
}

/** The WCSS curve with the chosen k marked. */
export function renderElbowPng(table: ElbowRow[], chosenK: number, opts: { units?: string } = {}): Uint8Array {
  const x = Float64Array.from(table, (r) => r.k);
  const y = Float64Array.from(table, (r) => r.wcss);
  const pick = table.find((r) => r.k === chosenK);
  const series = [{ x, y, label: 'WCSS' }];
  if (pick) {
    // A '+' marker (two strokes, NaN breaks the line between them): a lone point would be a dot.
    let lo = Infinity, hi = -Infinity;
    for (const v of y) if (Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    const dy = 0.06 * (hi - lo || Math.abs(hi) || 1);
    const dk = 0.04 * Math.max(1, x[x.length - 1] - x[0]);
    series.push({
      x: Float64Array.of(pick.k - dk, pick.k + dk, NaN, pick.k, pick.k),
      y: Float64Array.of(pick.wcss, pick.wcss, NaN, pick.wcss - dy, pick.wcss + dy),
      label: `chosen k = ${chosenK}`,
    });
  }
  return renderLinePlot({
    series,
    xlabel: 'k (clusters)',
    ylabel: `WCSS${opts.units ? ` (${opts.units})` : ''}`,
    title: `Elbow: k = ${chosenK} (Kneedle)`,
  });
}

/**
 * Distinct colours for cluster labels (never black, which marks excluded pixels):
 * Okabe & Ito's palette without black, then Paul Tol's "muted" scheme, then three more;
 * beyond 20 clusters, hues at the golden angle.
 */
export const LABEL_COLORS: readonly Rgb[] = [
  [0, 114, 178], [213, 94, 0], [0, 158, 115], [204, 121, 167], [230, 159, 0], [86, 180, 233], [240, 228, 66],
  [204, 102, 119], [51, 34, 136], [221, 204, 119], [17, 119, 51], [136, 204, 238], [136, 34, 85], [68, 170, 153],
  [153, 153, 51], [170, 68, 153], [221, 221, 221], [140, 86, 75], [247, 129, 191], [90, 90, 90],
];

export function labelColor(j: number): Rgb {
  if (j < LABEL_COLORS.length) return LABEL_COLORS[j];
  const h = ((j * 137.508) % 360) / 60;
  const v = 0.85, s = 0.65;
  const c = v * s, xx = c * (1 - Math.abs((h % 2) - 1)), m = v - c;
  const [r, g, b] = h < 1 ? [c, xx, 0] : h < 2 ? [xx, c, 0] : h < 3 ? [0, c, xx] : h < 4 ? [0, xx, c] : h < 5 ? [xx, 0, c] : [c, 0, xx];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/**
 * The label map in colour, excluded pixels black, with a legend: one swatch per cluster
 * with its number and share of the included pixels (or the given legend texts).
 */
export function renderLabelsPng(
  labels: Int32Array | Int16Array, width: number, height: number, k: number,
  opts: { title?: string; legend?: string[] } = {},
): Uint8Array {
  if (labels.length !== width * height) throw new RangeError(`renderLabelsPng: ${labels.length} labels is not ${width} x ${height}`);
  const TEXT = 2, MARGIN = 16, SW = 16, GAP = 8, ROW = 22;
  const scale = Math.max(1, Math.min(Math.ceil(400 / height), Math.floor(2000 / width)));
  const counts = new Array<number>(k).fill(0);
  let excluded = 0;
  for (const l of labels) {
    if (l >= 0 && l < k) counts[l]++;
    else excluded++;
  }
  const included = labels.length - excluded;
  const texts = Array.from({ length: k }, (_, j) => opts.legend?.[j] ?? `${j}: ${included > 0 ? ((100 * counts[j]) / included).toFixed(1) : '0.0'} %`);
  if (excluded > 0) texts.push(`excluded: ${excluded}`);
  const legendW = SW + GAP + Math.max(...texts.map((t) => textWidth(t, TEXT)));
  const titleH = opts.title ? 7 * TEXT + 14 : 0;
  const mapW = width * scale, mapH = height * scale;
  const W = Math.max(MARGIN + mapW + 24 + legendW + MARGIN, opts.title ? textWidth(opts.title, TEXT) + 2 * MARGIN : 0);
  const H = MARGIN + titleH + Math.max(mapH, texts.length * ROW) + MARGIN;
  const cv = new Canvas(W, H, WHITE);
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < labels.length; p++) {
    const l = labels[p];
    if (l < 0 || l >= k) continue;
    const c = labelColor(l);
    rgb[p * 3] = c[0];
    rgb[p * 3 + 1] = c[1];
    rgb[p * 3 + 2] = c[2];
  }
  const top = MARGIN + titleH;
  cv.blitScaled(rgb, width, height, MARGIN, top, scale);
  cv.strokeRect(MARGIN - 1, top - 1, mapW + 2, mapH + 2, GREY);
  const lx = MARGIN + mapW + 24;
  texts.forEach((t, i) => {
    const y = top + i * ROW;
    const c = i < k ? labelColor(i) : BLACK;
    cv.fillRect(lx, y, SW, SW, c);
    cv.strokeRect(lx, y, SW, SW, GREY);
    cv.text(t, lx + SW + GAP, y + 1, { scale: TEXT });
  });
  if (opts.title) cv.text(opts.title, W / 2, MARGIN, { scale: TEXT, align: 'center' });
  return cv.png();
}

/** cluster_spectra.csv: energy, then mean_j, std_j, n_j for each cluster. */
export function clusterSpectraCsv(energies: Float64Array, s: ClusterSpectra): string {
  const head = ['energy_eV'];
  for (let j = 0; j < s.k; j++) head.push(`mean_${j}`, `std_${j}`, `n_${j}`);
  const lines = [head.join(',')];
  for (let e = 0; e < s.nE; e++) {
    const row = [num(energies[e])];
    for (let j = 0; j < s.k; j++) row.push(num(s.mean[j * s.nE + e]), num(s.std[j * s.nE + e]), String(s.count[j * s.nE + e]));
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}

function tint(c: Rgb, a: number): Rgb {
  return [Math.round(255 + (c[0] - 255) * a), Math.round(255 + (c[1] - 255) * a), Math.round(255 + (c[2] - 255) * a)];
}

/** Mean spectrum per cluster (line) with a +/- 1 std band (light tint), legend with pixel counts. */
export function renderClusterSpectraPng(energies: Float64Array, s: ClusterSpectra, opts: { title?: string; ylabel?: string } = {}): Uint8Array {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < s.k * s.nE; i++) {
    const a = s.mean[i] - s.std[i], b = s.mean[i] + s.std[i];
    if (Number.isFinite(a)) lo = Math.min(lo, a);
    if (Number.isFinite(b)) hi = Math.max(hi, b);
  }
  if (!(hi > lo)) [lo, hi] = [Number.isFinite(lo) ? lo - 0.5 : 0, Number.isFinite(lo) ? lo + 0.5 : 1];
  const pad = 0.05 * (hi - lo);
  const ax = makeAxes({
    xlabel: 'Energy (eV)', ylabel: opts.ylabel ?? 'mean ± std', title: opts.title ?? 'Mean spectrum per cluster',
    width: 900, height: 560, xlim: [energies[0], energies[energies.length - 1]], ylim: [lo - pad, hi + pad],
  });
  const { cv, plot } = ax;
  cv.clip = plot;
  const points: [number, number][] = [];
  for (let j = 0; j < s.k; j++) {
    const band = tint(labelColor(j), 0.25);
    for (let e = 0; e + 1 < s.nE; e++) {
      const x0 = ax.px(energies[e]), x1 = ax.px(energies[e + 1]);
      for (let x = Math.round(x0); x <= Math.round(x1); x++) {
        const t = x1 > x0 ? Math.min(1, Math.max(0, (x - x0) / (x1 - x0))) : 0;
        const m = s.mean[j * s.nE + e] * (1 - t) + s.mean[j * s.nE + e + 1] * t;
        const sd = s.std[j * s.nE + e] * (1 - t) + s.std[j * s.nE + e + 1] * t;
        if (!Number.isFinite(m) || !Number.isFinite(sd)) continue;
        const ya = ax.py(m + sd), yb = ax.py(m - sd);
        cv.fillRect(x, Math.round(ya), 1, Math.max(1, Math.round(yb) - Math.round(ya)), band);
      }
    }
  }
  for (let j = 0; j < s.k; j++) {
    const c = labelColor(j);
    let prev: [number, number] | null = null;
    for (let e = 0; e < s.nE; e++) {
      const m = s.mean[j * s.nE + e];
      if (!Number.isFinite(m)) {
        prev = null;
        continue;
      }
      const p: [number, number] = [ax.px(energies[e]), ax.py(m)];
      if (prev) cv.line(prev[0], prev[1], p[0], p[1], c, 2);
      points.push(p);
      prev = p;
    }
  }
  drawFrame(ax);
  drawLegend(ax, Array.from({ length: s.k }, (_, j) => ({ label: `${j} (${s.pixels[j]} px)`, color: labelColor(j) })), points);
  return cv.png();
}

/** scree.csv: component, eigenvalue, explained-variance ratio, cumulative ratio. */
export function screeCsv(model: PcaModel): string {
  return ['component,eigenvalue,ratio,cumulative', ...model.explained.map((r) => `${r.component},${num(r.eigenvalue)},${num(r.ratio)},${num(r.cumulative)}`)].join('\n') + '\n';
}

/** Scree plot: log10 of the explained-variance ratio of the first components (noise floor visible). */
export function renderScreePng(model: PcaModel, opts: { components?: number; significant?: number } = {}): Uint8Array {
  const n = Math.min(model.d, opts.components ?? 20);
  const x = Float64Array.from({ length: n }, (_, k) => k + 1);
  const y = Float64Array.from({ length: n }, (_, k) => (model.explained[k].ratio > 0 ? Math.log10(model.explained[k].ratio) : NaN));
  const sig = opts.significant;
  return renderLinePlot({
    series: [{ x, y, label: 'explained variance' }],
    xlabel: 'component',
    ylabel: 'log10 explained variance ratio',
    title: `PCA scree${sig !== undefined && Number.isFinite(sig) ? `: ${sig} significant` : ''}`,
  });
}

/** components.csv: energy, mean spectrum, then the first n components. */
export function componentsCsv(model: PcaModel, energies: Float64Array, n: number): string {
  const lines = [['energy_eV', 'mean', ...Array.from({ length: n }, (_, k) => `pc${k + 1}`)].join(',')];
  for (let e = 0; e < model.d; e++) {
    const row = [num(energies[e]), num(model.mean[e])];
    for (let k = 0; k < n; k++) row.push(num(model.components[k * model.d + e]));
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}

/** A map as PNG on its 1st-99th percentile range (viridis, NaN black). */
export function renderMapAuto(map: Float32Array, width: number, height: number, title: string, unit?: string): Uint8Array {
  let [lo, hi] = percentiles(map, [1, 99]);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, lo + 0.5];
  return renderMap({ data: map, width, height, vmin: lo, vmax: hi, title, unit });
}

export interface KmeansOutputOptions {
  width: number;
  height: number;
  /** Weight map for weighted fractions, and its name (e.g. edge_step). */
  weight?: Float32Array;
  weightName?: string;
  /** Per-cluster spectra (clusterSpectra) and the stack's energies. */
  spectra?: ClusterSpectra;
  energies?: Float64Array;
  /** Elbow run to write as elbow.csv/png. */
  elbow?: ElbowResult;
  /** Also write labels.tif and distance.tif (default true). */
  tiff?: boolean;
}

/**
 * Writes the clustering outputs into `dir` (created if needed) and returns the files written
 * and a summary object for summary.json:
 *   labels.npy/.tif (int16, -1 excluded), labels.png (legend), distance.npy/.tif (float32,
 *   NaN excluded), centres.csv (original units), clusters.csv (counts, fractions, weighted
 *   fractions), elbow.csv/png (if an elbow ran), cluster_spectra.csv/png (if given).
 */
export function writeKmeansOutputs(dir: string, r: KmeansResult, o: KmeansOutputOptions): { files: string[]; summary: Record<string, unknown> } {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const put = (name: string, data: string | Uint8Array) => {
    fs.writeFileSync(path.join(dir, name), data);
    files.push(name);
  };
  const { width: W, height: H } = o;
  const labels16 = labelsToInt16(r.labels);
  writeLabels(path.join(dir, 'labels.npy'), labels16, W, H);
  files.push('labels.npy');
  writeMap(path.join(dir, 'distance.npy'), r.distance, W, H);
  files.push('distance.npy');
  if (o.tiff ?? true) {
    writeLabels(path.join(dir, 'labels.tif'), labels16, W, H);
    writeMap(path.join(dir, 'distance.tif'), r.distance, W, H);
    files.push('labels.tif', 'distance.tif');
  }
  put('labels.png', renderLabelsPng(r.labels, W, H, r.k, { title: `k-means, k = ${r.k}` }));
  put('centres.csv', centresCsv(r));
  const stats = clusterStats(r.labels, r.k, o.weight);
  put('clusters.csv', clusterStatsCsv(stats));
  if (o.elbow) {
    put('elbow.csv', elbowCsv(o.elbow.table));
    put('elbow.png', renderElbowPng(o.elbow.table, o.elbow.k, { units: r.model.st.standardized ? 'standardised units' : undefined }));
  }
  if (o.spectra && o.energies) {
    put('cluster_spectra.csv', clusterSpectraCsv(o.energies, o.spectra));
    put('cluster_spectra.png', renderClusterSpectraPng(o.energies, o.spectra));
  }
  const summary: Record<string, unknown> = {
    k: r.k,
    wcss: r.wcss,
    wcss_units: r.model.st.standardized ? 'standardised (z-score) units' : 'feature units',
    features: r.names,
    standardized: r.model.st.standardized,
    constant_features: r.constantFeatures.map((f) => r.names[f]),
    pixels_included: r.nIncluded,
    pixels_excluded: r.nExcluded,
    clusters_non_empty: r.nonEmpty,
    counts: stats.counts,
    fractions: stats.fractions,
    ...(stats.weightedFractions ? { weight: o.weightName ?? 'weight', weighted_fractions: stats.weightedFractions, weight_missing: stats.nWeightMissing } : {}),
    iterations: r.iterations,
    converged: r.converged,
    restarts: r.restarts,
    warnings: r.warnings,
    backend: r.backend,
    adapter: r.adapter,
    ...(o.elbow ? { elbow: { table: o.elbow.table, k: o.elbow.k, rule: o.elbow.rule } } : {}),
  };
  return { files, summary };
}

// ------------------------------------------------------------------ PCA over a stack

export interface PcaRunOptions {
  /** Memory budget for a tile, bytes (default the CLI's --memory default). */
  memoryBytes?: number;
  /** Output folder: score_k.npy/.png, recon_error.npy/.png, scree.csv/png, components.csv. */
  outDir?: string;
  /** Also write .tif maps (default true when outDir is set). */
  tiff?: boolean;
  /** Rows sampled (evenly) for the provisional mean that centres the covariance sums (default 16). */
  centreRows?: number;
  /** Fixes the process baseline in tile planning (tests); default: measured RSS. */
  baselineBytes?: number;
}

export interface PcaRunResult {
  model: PcaModel;
  n: number;
  width: number;
  height: number;
  /** n maps [H*W], NaN where a pixel has a non-finite value. */
  scores: Float32Array[];
  reconError: Float32Array;
  status: Uint8Array;
  /** significantComponents(eigenvalues) (NaN for d < 8). */
  significant: number;
  tiles: { covariance: number; projection: number; rowsPerTile: number };
  backend: BackendName;
  adapter: string;
  files: string[];
}

/** Provisional mean over evenly spaced rows (pixels with every value usable), or zeros. */
async function provisionalMean(source: StackSource, rows: number): Promise<Float64Array> {
  const { nE, height: H, width: W } = source;
  const c = new Float64Array(nE);
  const buf = new Float32Array(nE * W);
  let n = 0;
  const take = Math.max(1, Math.min(H, rows));
  for (let i = 0; i < take; i++) {
    const y = Math.floor(((i + 0.5) * H) / take);
    await source.readRows(y, 1, buf);
    for (let p = 0; p < W; p++) {
      let ok = true;
      for (let e = 0; e < nE && ok; e++) ok = usableValue(buf[e * W + p]);
      if (!ok) continue;
      n++;
      for (let e = 0; e < nE; e++) c[e] += (buf[e * W + p] - c[e]) / n;
    }
  }
  return c;
}

/**
 * `xanes pca`: two streamed passes over the stack (tiles of rows within the memory budget
 * and the GPU's binding limits). Pass 1 accumulates the augmented Gram matrix of the
 * spectra centred on a provisional mean (GPU: float32 per-workgroup partials, float64 on the
 * host; CPU: float64) and diagonalises the covariance; pass 2 projects every pixel onto the
 * first n components and measures the reconstruction error (pcaProjectStep via runTiles).
 */
export async function pcaRun(backend: Backend, source: StackSource, energies: Float64Array, n: number, opts: PcaRunOptions = {}): Promise<PcaRunResult> {
  const { nE, height: H, width: W } = source;
  if (energies.length !== nE) throw new InputError('--energies', `${energies.length} energies for a stack of ${nE} images`);
  if (!(Number.isInteger(n) && n >= 1 && n <= Math.min(PCA_MAX_COMPONENTS, nE))) {
    throw new InputError('--components', `must be an integer from 1 to ${Math.min(PCA_MAX_COMPONENTS, nE)}, got ${n}`);
  }
  const budget = opts.memoryBytes ?? DEFAULT_MEMORY_MIB * 2 ** 20;
  const centre = await provisionalMean(source, opts.centreRows ?? 16);
  const acc = new PcaAccumulator(nE, centre);

  // Pass 1: covariance. Per pixel: the host tile; on the GPU its copy, Dawn's staging copy
  // and the mask (the partials are bounded per tile and small).
  const covStep = { mapNames: [] as string[], bytesPerPixel: () => (backend.gpu ? 4 : 0), gpuBindingBytesPerPixel: (e: number) => 4 * e };
  const plan = planTiles(H, W, tileBudget(source, covStep, backend, budget, 0, opts.baselineBytes));
  let rows = plan.rowsPerTile;
  const tile = new Float32Array(nE * rows * W);
  let covTiles = 0;
  for (let y0 = 0; y0 < H; ) {
    const r = Math.min(rows, H - y0);
    const P = r * W;
    await source.readRows(y0, r, tile);
    let G: Float64Array;
    try {
      G = backend.gpu ? await pcaGramGpu(backend.gpu, tile, P, nE, centre) : pcaGramCpu(tile, P, nE, centre);
    } catch (e) {
      // As runTiles does: the GPU reporting out-of-memory halves the tile.
      if (e instanceof GpuOutOfMemoryError && rows > 1) {
        rows = Math.max(1, Math.floor(rows / 2));
        continue;
      }
      throw e;
    }
    acc.add(G, P);
    covTiles++;
    y0 += r;
  }
  if (acc.nIncluded === 0) throw new InputError(source.path, 'no pixel has a finite value at every energy: nothing to analyse');
  const model = acc.finish();

  // Pass 2: projection.
  const step = pcaProjectStep(model, n);
  const run = await runTiles(source, step, backend, { budgetBytes: budget, baselineBytes: opts.baselineBytes });
  const scores = Array.from({ length: n }, (_, k) => run.maps[`score_${k + 1}`]);
  const reconError = run.maps.recon_error;
  const significant = significantComponents(model.eigenvalues);
  const files: string[] = [];
  if (opts.outDir) {
    const dir = opts.outDir;
    fs.mkdirSync(dir, { recursive: true });
    const tiff = opts.tiff ?? true;
    const put = (name: string, data: string | Uint8Array) => {
      fs.writeFileSync(path.join(dir, name), data);
      files.push(name);
    };
    const maps: [string, Float32Array, string][] = [
      ...scores.map((m, k): [string, Float32Array, string] => [`score_${k + 1}`, m, `PC${k + 1} score`]),
      ['recon_error', reconError, `RMS reconstruction error (${n} components)`],
    ];
    for (const [name, m, title] of maps) {
      writeMap(path.join(dir, `${name}.npy`), m, W, H);
      files.push(`${name}.npy`);
      if (tiff) {
        writeMap(path.join(dir, `${name}.tif`), m, W, H);
        files.push(`${name}.tif`);
      }
      put(`${name}.png`, renderMapAuto(m, W, H, title));
    }
    put('scree.csv', screeCsv(model));
    put('scree.png', renderScreePng(model, { significant }));
    put('components.csv', componentsCsv(model, energies, n));
  }
  return {
    model, n, width: W, height: H, scores, reconError, status: run.status, significant,
    tiles: { covariance: covTiles, projection: run.tilesRun, rowsPerTile: rows },
    backend: backend.name, adapter: backend.adapter, files,
  };
}

// ------------------------------------------------------------------ benchmark entry points

export interface KmeansBenchOptions {
  pixels: number;
  d: number;
  k: number;
  /** Timed iterations (default 3), after one untimed warm-up iteration on the GPU. */
  repeats?: number;
  seed?: number;
  residentBytes?: number;
  /** Pixels of the synthetic tile that is repeated to reach `pixels` (default: the largest the device allows, at most 2^22). */
  tilePixels?: number;
}

export interface KmeansBenchResult {
  pixels: number;
  d: number;
  k: number;
  tiles: number;
  tilePixels: number;
  resident: boolean | null;
  /** Engine creation (GPU: buffer allocation and feature upload), seconds. */
  setupSeconds: number;
  /** One Lloyd iteration each: assignment, partial sums, readback, float64 reduction, centre update. */
  iterationSeconds: number[];
  backend: BackendName;
  adapter: string;
}

/** Synthetic features: k Gaussian blobs in d dimensions (unit spread, centres ~N(0, 4^2)), f32[d][P]. */
function blobTile(P: number, d: number, k: number, seed: number): Float32Array {
  const rng = makeRng(seed);
  const centres = Float64Array.from({ length: k * d }, () => 4 * rng.normal());
  const data = new Float32Array(d * P);
  for (let p = 0; p < P; p++) {
    const j = p % k;
    for (let f = 0; f < d; f++) data[f * P + p] = centres[j * d + f] + rng.normal();
  }
  return data;
}

/**
 * Times one k-means (Lloyd) iteration over `pixels` pixels of d features with k clusters.
 * The data are one synthetic tile repeated (per-pixel work does not depend on the values),
 * so 20M x 101 needs only one tile of host memory. Benchmarks call this; tests never time.
 */
export async function benchKmeansIteration(backend: Backend, o: KmeansBenchOptions): Promise<KmeansBenchResult> {
  const { pixels, d, k } = o;
  checkK(k, 'k');
  const maxP = backend.gpu ? maxKmeansTilePixels(backend.gpu, d) : 1 << 22;
  const tileP = Math.max(1, Math.min(pixels, o.tilePixels ?? Math.min(maxP, 1 << 22)));
  const data = blobTile(tileP, d, k, o.seed ?? 1);
  const views: FeatureView[] = [];
  for (let p0 = 0; p0 < pixels; p0 += tileP) views.push({ data, stride: tileP, offset: 0, count: Math.min(tileP, pixels - p0) });
  const st = standardization(featureStats({ d, n: tileP, data }), true);
  const t0 = performance.now();
  const engine: KmeansEngine = backend.gpu
    ? await GpuKmeansEngine.create(backend.gpu, d, views, st, { residentBytes: o.residentBytes })
    : new CpuKmeansEngine(d, views, st);
  const setupSeconds = (performance.now() - t0) / 1000;
  try {
    const centres = new Float64Array(k * d);
    const z = new Float64Array(d);
    for (let j = 0; j < k; j++) {
      engine.pixel(j, z);
      centres.set(z, j * d);
    }
    const active = new Uint8Array(k).fill(1);
    const m = entriesPerCluster(d);
    const iterate = async () => {
      const s = await engine.step(k, centres, active, false);
      for (let j = 0; j < k; j++) {
        const n = s.sums[j * m + d];
        if (n > 0) for (let f = 0; f < d; f++) centres[j * d + f] = s.base[j * d + f] + s.sums[j * m + f] / n;
      }
    };
    if (backend.gpu) await iterate(); // warm-up: pipeline compilation and first-touch allocations
    const iterationSeconds: number[] = [];
    for (let r = 0; r < (o.repeats ?? 3); r++) {
      const t = performance.now();
      await iterate();
      iterationSeconds.push((performance.now() - t) / 1000);
    }
    return {
      pixels, d, k, tiles: views.length, tilePixels: tileP,
      resident: engine instanceof GpuKmeansEngine ? engine.resident : null,
      setupSeconds, iterationSeconds, backend: backend.name, adapter: backend.adapter,
    };
  } finally {
    await engine.release();
  }
}

export interface PcaBenchOptions {
  pixels: number;
  d: number;
  repeats?: number;
  seed?: number;
  tilePixels?: number;
}

export interface PcaBenchResult {
  pixels: number;
  d: number;
  tiles: number;
  tilePixels: number;
  /** The covariance pass over all pixels (GPU: upload, mask, partial sums, readback, float64 sums), seconds. */
  covarianceSeconds: number[];
  /** Host eigendecomposition of the d x d covariance, seconds. */
  eigenSeconds: number;
  backend: BackendName;
  adapter: string;
}

/**
 * Times the PCA covariance pass over `pixels` spectra of d energies: a synthetic tile (three
 * smooth components with random weights plus noise) repeated. Disk reads are not included.
 */
export async function benchPcaCovariance(backend: Backend, o: PcaBenchOptions): Promise<PcaBenchResult> {
  const { pixels, d } = o;
  const maxP = backend.gpu ? Math.floor(Math.min(backend.gpu.limits.maxStorageBufferBindingSize, backend.gpu.limits.maxBufferSize) / (4 * d)) : 1 << 20;
  const tileP = Math.max(1, Math.min(pixels, o.tilePixels ?? Math.min(maxP, 1 << 20)));
  const rng = makeRng(o.seed ?? 1);
  const tile = new Float32Array(d * tileP);
  for (let p = 0; p < tileP; p++) {
    const a = rng.uniform(), b = rng.uniform(), c = rng.uniform();
    for (let e = 0; e < d; e++) {
      const t = e / Math.max(1, d - 1);
      tile[e * tileP + p] = a / (1 + Math.exp(-(t - 0.4) * 30)) + b * Math.exp(-((t - 0.5) ** 2) / 0.01) + c * t + 0.01 * rng.normal();
    }
  }
  const centre = new Float64Array(d);
  for (let e = 0; e < d; e++) {
    let s = 0;
    for (let p = 0; p < Math.min(tileP, 1000); p++) s += tile[e * tileP + p];
    centre[e] = s / Math.min(tileP, 1000);
  }
  const tiles: number[] = [];
  for (let p0 = 0; p0 < pixels; p0 += tileP) tiles.push(Math.min(tileP, pixels - p0));
  const pass = async () => {
    const acc = new PcaAccumulator(d, centre);
    for (const P of tiles) {
      // A shorter last tile is the first P pixels of the tile: contiguous per energy only
      // when P = tileP, so copy it out.
      const cube = P === tileP ? tile : sliceEnergyMajor(tile, d, tileP, P);
      const G = backend.gpu ? await pcaGramGpu(backend.gpu, cube, P, d, centre) : pcaGramCpu(cube, P, d, centre);
      acc.add(G, P);
    }
    return acc;
  };
  if (backend.gpu) await pass(); // warm-up: pipeline compilation
  const covarianceSeconds: number[] = [];
  let last: PcaAccumulator | null = null;
  for (let r = 0; r < (o.repeats ?? 3); r++) {
    const t = performance.now();
    last = await pass();
    covarianceSeconds.push((performance.now() - t) / 1000);
  }
  const t = performance.now();
  last?.finish();
  const eigenSeconds = (performance.now() - t) / 1000;
  return { pixels, d, tiles: tiles.length, tilePixels: tileP, covarianceSeconds, eigenSeconds, backend: backend.name, adapter: backend.adapter };
}

function sliceEnergyMajor(cube: Float32Array, d: number, P: number, count: number): Float32Array {
  const out = new Float32Array(d * count);
  for (let e = 0; e < d; e++) out.set(cube.subarray(e * P, e * P + count), e * count);
  return out;
}
