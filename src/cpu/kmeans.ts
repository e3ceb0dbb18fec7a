/**
 * k-means on the host, in float64: the CPU twins of shaders/kmeans_assign.wgsl and
 * shaders/kmeans_partial.wgsl, the CPU engine built from them, and the backend-independent
 * host pieces (feature statistics and standardisation, k-means++ seeding, the choice of
 * replacement centres for empty clusters).
 *
 * Data: features are float32, feature-major [d][N] (feature f of pixel p at f*N + p), the
 * layout of a stack of maps and of an energy-major cube alike. A pixel with any non-finite
 * feature is excluded: label -1, distance NaN, not counted in any statistic.
 * Clustering happens in standardised units z = (x - shift) / scale (see standardization()).
 */
import type { Rng } from '../synth/random.js';
import { KM_CPU_BLOCK, kmeansScreenNorms, kmeansSweepBlocks, type SweepView } from './kmeans-sweep.js';
import { KernelPool, defaultThreads, isShared, shareFloat32, sharedFloat32 } from './threads.js';
import { heapF32, heapFree, inHeap, wasmHeap } from './wasm-heap.js';
import { sweepScratchBytes, wasmSweepRuns } from './kmeans-wasm.js';
import { wasmSimd } from './wasm.js';

/** Number of rows the assignment writes per pixel, and which is which (shared with WGSL). */
export const KM_ROWS = 2;
export const KM_ROW_LABEL = 0;
export const KM_ROW_DIST2 = 1;
/** Largest k accepted (the GPU engine sizes its centre buffer for it once; elbow ranges are far smaller). */
export const KMEANS_MAX_K = 64;

/**
 * Two points count as the same point when their squared distance (standardised units) is at
 * most SAME_POINT_DIST2 * d. Float32 rounding of standardised values of order one is ~1e-7
 * relative, so rounding alone gives squared distances near 1e-14 per feature; distinct data
 * points differ by far more. Used when looking for distinct points to re-seed empty clusters.
 */
export const SAME_POINT_DIST2 = 1e-10;

export interface Features {
  /** Number of features (rows). */
  d: number;
  /** Number of pixels (columns). */
  n: number;
  /** Feature-major float32: data[f * n + p]. */
  data: Float32Array;
  /** Feature names (CSV headers), e.g. map names. */
  names?: string[];
}

/**
 * A contiguous range of pixels of a feature set, without copying: feature f of the view's
 * pixel i is data[f * stride + offset + i]. Engines work through lists of views (tiles).
 */
export interface FeatureView {
  data: Float32Array;
  stride: number;
  offset: number;
  count: number;
}

/**
 * Largest feature matrix (bytes) placed in the WebAssembly heap: the heap is one wasm32
 * memory (4 GiB at most, shared by every kernel of the thread), and heap memory once
 * committed is reused but never returned to the operating system.
 */
export const FEATURES_HEAP_MAX_BYTES = 2 ** 31;

/**
 * A float32 array of n values for a feature matrix. `heap` (the CPU backend will cluster it):
 * in this thread's WebAssembly heap (src/cpu/wasm-heap.ts), where the sweeps (kmeans-wasm.ts,
 * every d) read it in place instead of copying each block of rows into their scratch; the heap's memory is shared, so the engine's worker threads read it without a copy
 * too. Otherwise, or beyond FEATURES_HEAP_MAX_BYTES, or without WebAssembly SIMD: shared
 * memory. Give it back with releaseFeatures when the clustering is done.
 */
export function featureArray(n: number, heap = false): Float32Array {
  return heap && wasmSimd && 4 * n <= FEATURES_HEAP_MAX_BYTES ? heapF32(n) : sharedFloat32(n);
}

/**
 * Returns a feature matrix from featureArray(.., true) to the heap (nothing for any other):
 * its data must not be used after. The block is reused by the next heap allocation (the
 * next field's features, a tile); its memory stays with the process.
 */
export function releaseFeatures(f: Features | null | undefined): void {
  if (f && inHeap(f.data)) heapFree(f.data);
}

/**
 * Stacks equal-length maps (one per feature) into a feature-major Features; `heap`: in the
 * WebAssembly heap (featureArray; the caller releases it with releaseFeatures).
 */
export function featuresFromMaps(maps: Float32Array[], names?: string[], heap = false): Features {
  if (maps.length === 0) throw new RangeError('featuresFromMaps: no maps');
  const n = maps[0].length;
  maps.forEach((m, i) => {
    if (m.length !== n) throw new RangeError(`featuresFromMaps: map ${names?.[i] ?? i} has ${m.length} pixels, map 0 has ${n}`);
  });
  // Shared memory (the heap's is shared too): the CPU engine's worker threads read it without a copy.
  const data = featureArray(maps.length * n, heap);
  maps.forEach((m, f) => data.set(m, f * n));
  return { d: maps.length, n, data, names };
}

/** Views of at most maxPixels pixels each, covering 0..n in order. */
export function splitFeatures(features: Features, maxPixels: number): FeatureView[] {
  const views: FeatureView[] = [];
  const step = Math.max(1, Math.floor(maxPixels));
  for (let p0 = 0; p0 < features.n; p0 += step) {
    views.push({ data: features.data, stride: features.n, offset: p0, count: Math.min(step, features.n - p0) });
  }
  return views;
}

export interface FeatureStats {
  nIncluded: number;
  nExcluded: number;
  mean: Float64Array;
  /** Population standard deviation over included pixels. */
  std: Float64Array;
}

/** Mean and population standard deviation of each feature over the included pixels (two passes, float64). */
export function featureStats(f: Features): FeatureStats {
  const { d, n, data } = f;
  const included = new Uint8Array(n);
  let nIncluded = 0;
  for (let p = 0; p < n; p++) {
    let ok = 1;
    for (let k = 0; k < d; k++) {
      if (!Number.isFinite(data[k * n + p])) {
        ok = 0;
        break;
      }
    }
    included[p] = ok;
    nIncluded += ok;
  }
  const mean = new Float64Array(d);
  const std = new Float64Array(d);
  if (nIncluded > 0) {
    for (let k = 0; k < d; k++) {
      let s = 0;
      for (let p = 0; p < n; p++) if (included[p]) s += data[k * n + p];
      const m = s / nIncluded;
      let s2 = 0;
      for (let p = 0; p < n; p++) {
        if (!included[p]) continue;
        const t = data[k * n + p] - m;
        s2 += t * t;
      }
      mean[k] = m;
      std[k] = Math.sqrt(s2 / nIncluded);
    }
  }
  return { nIncluded, nExcluded: n - nIncluded, mean, std };
}

/** z = (x - shift) / scale per feature. */
export interface Standardization {
  shift: Float64Array;
  scale: Float64Array;
  /** Features with zero variance over the included pixels (their scale is 1). */
  constant: number[];
  standardized: boolean;
  /** zscore | robust | none (src/pipeline/standardize.ts); absent means zscore or none as `standardized` says. */
  method?: string;
}

/**
 * The standardisation used for clustering. With `standardize`, z-scores over the included
 * pixels (population standard deviation). A feature with zero variance cannot be scaled;
 * the rule (as in scikit-learn's StandardScaler) is scale = 1: the feature is centred, is
 * then 0 for every pixel and contributes nothing to any distance, so clustering is the same
 * as without it. Such features are listed in `constant`.
 * Without `standardize`, features are only centred (shift = mean, scale = 1): distances and
 * WCSS are in the features' own units, and centring keeps float32 differences accurate for
 * features with a large offset (edge energies near 8340 eV).
 * The shift is the mean rounded to float32, so both backends subtract the same number (the
 * GPU cannot hold the float64 mean: at 8342 eV its float32 rounding, up to 0.5 meV, would
 * offset every standardised value of that feature by a few 1e-4), and the difference of
 * two nearby float32 values is exact.
 */
export function standardization(stats: FeatureStats, standardize: boolean): Standardization {
  const d = stats.mean.length;
  const scale = new Float64Array(d);
  const constant: number[] = [];
  for (let k = 0; k < d; k++) {
    if (stats.std[k] === 0) constant.push(k);
    scale[k] = standardize && stats.std[k] > 0 ? stats.std[k] : 1;
  }
  return { shift: stats.mean.map(Math.fround), scale, constant, standardized: standardize };
}

/**
 * 1 / scale per feature. Every engine standardises as z = (x - shift) * (1 / scale) (a
 * multiply, as the GPU does), so all of them see the same z for the same pixel.
 */
export function inverseScale(st: Standardization): Float64Array {
  return st.scale.map((s) => 1 / s);
}

/** Standardised feature vector of view pixel i into z; false if a raw value is not finite. */
export function standardizedPixel(view: FeatureView, i: number, d: number, st: Standardization, z: Float64Array): boolean {
  const at = view.offset + i;
  for (let f = 0; f < d; f++) {
    const x = view.data[f * view.stride + at];
    if (!Number.isFinite(x)) return false;
    z[f] = (x - st.shift[f]) * (1 / st.scale[f]);
  }
  return true;
}

/**
 * Twin of kmeans_assign.wgsl over one view: labels[o + i] (the nearest active centre, the
 * lower index on an exact tie; -1 if excluded) and dist2[o + i] (its squared distance, NaN
 * if excluded). With `second`, also the squared distance to the second-nearest active
 * centre (Infinity with a single active centre): tests use best vs second-best to tell
 * near-ties, where the GPU may rightly pick the other centre.
 */
export function kmeansAssignCpu(
  view: FeatureView, d: number, st: Standardization, k: number, centres: Float64Array, active: Uint8Array,
  labels: Int32Array, dist2: Float64Array | Float32Array, o: number, second?: Float64Array,
): void {
  const z = new Float64Array(d);
  for (let i = 0; i < view.count; i++) {
    if (!standardizedPixel(view, i, d, st, z)) {
      labels[o + i] = -1;
      dist2[o + i] = NaN;
      if (second) second[o + i] = NaN;
      continue;
    }
    let best = -1, bestV = Infinity, secondV = Infinity;
    for (let j = 0; j < k; j++) {
      if (!active[j]) continue;
      let s = 0;
      const c = j * d;
      for (let f = 0; f < d; f++) {
        const t = z[f] - centres[c + f];
        s += t * t;
      }
      if (best < 0 || s < bestV) {
        secondV = bestV;
        best = j;
        bestV = s;
      } else if (s < secondV) secondV = s;
    }
    labels[o + i] = best;
    dist2[o + i] = best >= 0 ? bestV : NaN;
    if (second) second[o + i] = secondV;
  }
}

/** Entries per cluster in the partial sums: d deviation sums, the count, the squared-distance sum. */
export function entriesPerCluster(d: number): number {
  return d + 2;
}

/**
 * Twin of kmeans_partial.wgsl over one view, added into sums[k * (d + 2)]: per cluster j,
 * sum of (z_f - c_jf), the pixel count and the sum of squared distances.
 */
export function kmeansPartialCpu(
  view: FeatureView, d: number, st: Standardization, k: number, centres: Float64Array,
  labels: Int32Array, dist2: Float64Array | Float32Array, o: number, sums: Float64Array,
): void {
  const m = d + 2;
  const z = new Float64Array(d);
  for (let i = 0; i < view.count; i++) {
    const j = labels[o + i];
    if (j < 0 || j >= k) continue;
    standardizedPixel(view, i, d, st, z);
    const b = j * m;
    for (let f = 0; f < d; f++) sums[b + f] += z[f] - centres[j * d + f];
    sums[b + d] += 1;
    sums[b + d + 1] += dist2[o + i];
  }
}

/** One assignment + partial-sum pass over all pixels, as both engines return it. */
export interface KmeansStepResult {
  /** k * (d + 2) float64 sums (see entriesPerCluster), relative to `base`. */
  sums: Float64Array;
  /** The centres as the engine used them (the GPU rounds them to float32). */
  base: Float64Array;
  /** Per pixel, when asked for: label (-1 excluded) and squared distance (NaN excluded). */
  labels?: Int32Array;
  dist2?: Float32Array;
}

/** A backend's Lloyd step over a fixed feature set and standardisation. */
export interface KmeansEngine {
  readonly d: number;
  readonly n: number;
  step(k: number, centres: Float64Array, active: Uint8Array, wantPixels: boolean): Promise<KmeansStepResult>;
  /** Standardised features of pixel p (for re-seeding empty clusters); false if excluded. */
  pixel(p: number, z: Float64Array): boolean;
  release(): Promise<void>;
}

/** Locates global pixel p in a list of views. */
export function locatePixel(views: FeatureView[], p: number): { view: FeatureView; i: number } {
  let start = 0;
  for (const view of views) {
    if (p < start + view.count) return { view, i: p - start };
    start += view.count;
  }
  throw new RangeError(`pixel ${p} outside the feature set`);
}

/** Options of the CPU engine. */
export interface CpuKmeansOptions {
  /** Worker threads (default: every core); 1 runs in this thread. The bytes of every result do not depend on it. */
  threads?: number;
  /**
   * Largest feature set (bytes) copied once into shared memory when the features are not
   * already shared (2 GiB); beyond it the engine runs in this thread.
   */
  maxShareBytes?: number;
}

/**
 * The CPU engine: per step one fused sweep (assignment + sums, kmeans-sweep.ts) over the
 * float32 features, cut into fixed global blocks that worker threads share out; block sums
 * (float64) are added in block order, so results do not depend on the thread count.
 */
export class CpuKmeansEngine implements KmeansEngine {
  readonly n: number;
  readonly threads: number;
  private readonly sweepViews: SweepView[];
  private readonly pool: KernelPool | null;
  private readonly invScale: Float64Array;
  /** d >= 9, features in the heap: the screen's per-pixel norms, formed at the first step (kmeansScreenNorms). */
  private norms: Float32Array | null | undefined;
  /**
   * Worker threads, features in this thread's heap: the workers run the WebAssembly sweep in
   * this heap (reading the features in place, with the norms), each in a scratch block of
   * its own allocated here, per k (kmeans-wasm.ts, SweepTarget).
   */
  readonly inPlace: boolean;

  constructor(readonly d: number, readonly views: FeatureView[], readonly st: Standardization, opts: CpuKmeansOptions = {}) {
    this.n = views.reduce((s, v) => s + v.count, 0);
    this.invScale = inverseScale(st);
    const blocks = Math.ceil(this.n / KM_CPU_BLOCK);
    let threads = Math.max(1, Math.min(Math.floor(opts.threads ?? defaultThreads()), blocks));
    const distinct = new Set(views.map((v) => v.data));
    const unshared = [...distinct].filter((a) => !isShared(a)).reduce((s, a) => s + a.byteLength, 0);
    if (unshared > (opts.maxShareBytes ?? 2 ** 31)) threads = 1;
    this.pool = threads > 1 ? KernelPool.create(threads) : null;
    this.threads = this.pool ? threads : 1;
    if (this.pool) {
      // One shared copy of each distinct data array (none if already shared).
      const shared = new Map<Float32Array, Float32Array>();
      for (const a of distinct) shared.set(a, shareFloat32(a));
      this.sweepViews = views.map((v) => ({ data: shared.get(v.data)!, stride: v.stride, offset: v.offset, count: v.count }));
    } else {
      this.sweepViews = views.map((v) => ({ data: v.data, stride: v.stride, offset: v.offset, count: v.count }));
    }
    this.inPlace = this.pool !== null && views.length > 0 && views.every((v) => inHeap(v.data)) && wasmSweepRuns(d);
  }

  /** The workers' scratch blocks in this thread's heap for k clusters (allocated at the first step with k, freed when the pool closes). */
  private scratchFor(k: number): number[] {
    return this.pool!.heapScratch(k, sweepScratchBytes(this.d, k, KM_CPU_BLOCK));
  }

  async step(k: number, centres: Float64Array, active: Uint8Array, wantPixels: boolean): Promise<KmeansStepResult> {
    const d = this.d;
    const m = entriesPerCluster(d);
    const nBlocks = Math.ceil(this.n / KM_CPU_BLOCK);
    const shared = this.pool !== null;
    let labels: Int32Array | undefined;
    let dist2: Float32Array | undefined;
    if (wantPixels) {
      labels = shared ? new Int32Array(new SharedArrayBuffer(4 * this.n)) : new Int32Array(this.n);
      dist2 = shared ? new Float32Array(new SharedArrayBuffer(4 * this.n)) : new Float32Array(this.n);
    }
    const params = { d, k, shift: this.st.shift, invScale: this.invScale, centres, active };
    let blockSums: Float64Array;
    if (this.norms === undefined) this.norms = kmeansScreenNorms(this.sweepViews, d, k, this.st.shift, this.invScale);
    if (this.pool) {
      // Every worker claims blocks from one shared counter until none is left
      // (kmeansSweepClaimed: even workers from the front, odd from the back), each block's
      // sums written at its place: a worker slowed by other work on its core, or started
      // later, sweeps fewer blocks instead of holding up the step (a fixed split gave each half
      // the pixels whatever its share of a core). Worker t runs in its scratch block with inPlace.
      const bases = this.inPlace ? this.scratchFor(k) : null;
      const mem = bases ? wasmHeap().mem : null;
      const next = new BigInt64Array(new SharedArrayBuffer(8));
      blockSums = new Float64Array(new SharedArrayBuffer(8 * nBlocks * k * m));
      await Promise.all(Array.from({ length: this.threads }, (_, t) => this.pool!.runOn<Float64Array>(t, {
        kind: 'kmeans', views: this.sweepViews, ...params, nBlocks, next, fromEnd: t % 2 === 1, out: blockSums, labels: labels ?? null, dist2: dist2 ?? null,
        norms: bases ? this.norms : null, target: bases ? { mem, base: bases[t] } : null,
      })));
    } else {
      blockSums = kmeansSweepBlocks(this.sweepViews, params, Array.from({ length: nBlocks }, (_, b) => b), labels ?? null, dist2 ?? null, true, this.norms);
    }
    const sums = new Float64Array(k * m);
    for (let b = 0; b < nBlocks; b++) {
      const o = b * k * m;
      for (let q = 0; q < k * m; q++) sums[q] += blockSums[o + q];
    }
    return { sums, base: Float64Array.from(centres), labels, dist2 };
  }

  pixel(p: number, z: Float64Array): boolean {
    const { view, i } = locatePixel(this.views, p);
    return standardizedPixel(view, i, this.d, this.st, z);
  }

  async release(): Promise<void> {
    // The workers first: they may use the norms and their scratch until they end.
    await this.pool?.close();
    if (this.norms) heapFree(this.norms);
    this.norms = null;
  }
}

/**
 * Uniform sample (without replacement) of up to m included pixels, by reservoir sampling
 * (Vitter's algorithm R) so one pass suffices; returned in increasing pixel order.
 */
export function sampleIncluded(views: FeatureView[], d: number, m: number, rng: Rng): number[] {
  const res: number[] = [];
  let seen = 0;
  let p = 0;
  for (const v of views) {
    for (let i = 0; i < v.count; i++, p++) {
      let ok = true;
      for (let f = 0; f < d; f++) {
        if (!Number.isFinite(v.data[f * v.stride + v.offset + i])) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      seen++;
      if (res.length < m) res.push(p);
      else {
        const r = Math.floor(rng.uniform() * seen);
        if (r < m) res[r] = p;
      }
    }
  }
  return res.sort((a, b) => a - b);
}

/**
 * Greedy k-means++ seeding (Arthur & Vassilvitskii 2007, with scikit-learn's greedy variant:
 * 2 + floor(ln k) candidates per step, keeping the one that lowers the potential most) on
 * `sample` (m x d standardised points, row-major). Candidates are drawn with probability
 * proportional to D^2, so a point that coincides with a chosen centre is never drawn; when
 * every sample point coincides with a centre (fewer distinct points than k), the remaining
 * centres stay inactive (active[j] = 0) and the Lloyd loop tries to place them at the
 * farthest points of the whole data set.
 */
export function kmeansPlusPlus(sample: Float64Array, m: number, d: number, k: number, rng: Rng): { centres: Float64Array; active: Uint8Array } {
  const centres = new Float64Array(k * d);
  const active = new Uint8Array(k);
  if (m === 0) return { centres, active };
  const dist = (i: number, c: Float64Array, co: number) => {
    let s = 0;
    for (let f = 0; f < d; f++) {
      const t = sample[i * d + f] - c[co + f];
      s += t * t;
    }
    return s;
  };
  const first = Math.min(m - 1, Math.floor(rng.uniform() * m));
  centres.set(sample.subarray(first * d, first * d + d), 0);
  active[0] = 1;
  const D2 = new Float64Array(m);
  let pot = 0;
  for (let i = 0; i < m; i++) pot += D2[i] = dist(i, centres, 0);
  const trials = 2 + Math.floor(Math.log(k));
  const cum = new Float64Array(m);
  const cand = new Float64Array(m);
  const bestD2 = new Float64Array(m);
  for (let c = 1; c < k; c++) {
    if (!(pot > 0)) break;
    let s = 0;
    for (let i = 0; i < m; i++) cum[i] = s += D2[i];
    let bestPot = Infinity;
    let bestIdx = -1;
    for (let t = 0; t < trials; t++) {
      const r = rng.uniform() * cum[m - 1];
      // First index whose cumulative sum exceeds r: never a point with D2 = 0.
      let lo = 0, hi = m - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cum[mid] > r) hi = mid;
        else lo = mid + 1;
      }
      if (!(D2[lo] > 0)) continue;
      let p2 = 0;
      for (let i = 0; i < m; i++) {
        let q = 0;
        for (let f = 0; f < d; f++) {
          const u = sample[i * d + f] - sample[lo * d + f];
          q += u * u;
        }
        cand[i] = Math.min(D2[i], q);
        p2 += cand[i];
      }
      if (p2 < bestPot) {
        bestPot = p2;
        bestIdx = lo;
        bestD2.set(cand);
      }
    }
    if (bestIdx < 0) break;
    centres.set(sample.subarray(bestIdx * d, bestIdx * d + d), c * d);
    active[c] = 1;
    D2.set(bestD2);
    pot = bestPot;
  }
  return { centres, active };
}

/**
 * The pixels farthest from their centres, for re-seeding `need` empty clusters: among
 * included pixels with dist2 > SAME_POINT_DIST2 * d (a point at its centre, up to rounding,
 * would only duplicate it), in decreasing distance (lower index first on ties), skipping any
 * that coincide with one already taken. Returns at most `need` pixel indices.
 */
export function farthestDistinct(dist2: Float32Array | Float64Array, need: number, d: number, engine: Pick<KmeansEngine, 'pixel'>): number[] {
  if (need <= 0) return [];
  const thr = SAME_POINT_DIST2 * Math.max(1, d);
  // Bounded selection of the largest distances (a sorted list of a few times `need`).
  const want = 8 * need + 32;
  const top: number[] = [];
  const better = (a: number, b: number) => dist2[a] > dist2[b] || (dist2[a] === dist2[b] && a < b);
  for (let p = 0; p < dist2.length; p++) {
    const v = dist2[p];
    if (!(v > thr)) continue;
    if (top.length === want && !better(p, top[top.length - 1])) continue;
    let at = top.length;
    while (at > 0 && better(p, top[at - 1])) at--;
    top.splice(at, 0, p);
    if (top.length > want) top.pop();
  }
  const pick = (candidates: number[]): number[] => {
    const chosen: number[] = [];
    const zs: Float64Array[] = [];
    const z = new Float64Array(d);
    for (const p of candidates) {
      if (chosen.length === need) break;
      if (!engine.pixel(p, z)) continue;
      const dup = zs.some((w) => {
        let s = 0;
        for (let f = 0; f < d; f++) s += (w[f] - z[f]) ** 2;
        return s <= thr;
      });
      if (dup) continue;
      chosen.push(p);
      zs.push(Float64Array.from(z));
    }
    return chosen;
  };
  const chosen = pick(top);
  if (chosen.length === need || top.length < want) return chosen;
  // The short list held too many copies of the same far points: rank every candidate.
  const all: number[] = [];
  for (let p = 0; p < dist2.length; p++) if (dist2[p] > thr) all.push(p);
  all.sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0));
  return pick(all);
}
