/**
 * Benchmark entry points for k-means and PCA (timing lives here, never in tests): one Lloyd
 * iteration and the PCA covariance pass over synthetic data. `xanes cluster --backend auto`
 * also uses them to measure the real job on a sample.
 */
import { makeRng } from '../synth/random.js';
import { sharedFloat32 } from '../cpu/threads.js';
import { heapF32, heapFree } from '../cpu/wasm-heap.js';
import type { Backend, BackendName } from './step.js';
import { checkK } from './kmeans.js';
import {
  CpuKmeansEngine, entriesPerCluster, featureStats, standardization, type FeatureView, type KmeansEngine,
} from '../cpu/kmeans.js';
import { GpuKmeansEngine, maxKmeansTilePixels } from '../kernels/kmeans.js';
import { PcaAccumulator } from '../cpu/pca.js';
import { CpuGram, CpuGramAccumulator } from '../cpu/pca-gram.js';
import { GpuGramAccumulator } from '../kernels/pca.js';

export interface KmeansBenchOptions {
  pixels: number;
  d: number;
  k: number;
  /** Timed iterations (default 3), after `warmup` untimed ones. */
  repeats?: number;
  /**
   * Untimed iterations before the timed ones (default 1: pipeline compilation, first-touch
   * allocations). On the CPU backend the first few iterations of a process also pay V8's
   * background threads (JIT and WebAssembly tier-up, GC): at 100k x 101 on one thread the
   * 1st-4th iterations after one warm-up took 20-48 ms against 15 ms from the 6th on, and at
   * 1M x 3 the best process CPU time of 7 such iterations was 2x their best wall time.
   */
  warmup?: number;
  seed?: number;
  residentBytes?: number;
  /** Pixels of the synthetic tile that is repeated to reach `pixels` (default: the largest the device allows, at most 2^22). */
  tilePixels?: number;
  /**
   * 'blobs' (default): k Gaussian blobs, pixel p in blob p % k; 'normal': every feature
   * N(0, 1), as scikit-learn's peer in bench/peers/peers.py (the start: the first k pixels).
   */
  data?: 'blobs' | 'normal';
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
  /** The same iterations in process CPU time (every thread; robust to other work on a shared machine). */
  iterationCpuSeconds: number[];
  backend: BackendName;
  adapter: string;
}

/**
 * Synthetic features: k Gaussian blobs in d dimensions (unit spread, centres ~N(0, 4^2); all
 * at 0 when `normal`), f32[d][P]; in the WebAssembly heap when `heap` (as the CLI allocates
 * the features the CPU backend clusters: its sweep reads them in place), else shared memory.
 */
function blobTile(P: number, d: number, k: number, seed: number, normal = false, heap = false): Float32Array {
  const rng = makeRng(seed);
  const centres = Float64Array.from({ length: k * d }, () => (normal ? 0 : 4 * rng.normal()));
  const data = heap ? heapF32(d * P) : sharedFloat32(d * P);
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
  const data = blobTile(tileP, d, k, o.seed ?? 1, o.data === 'normal', !backend.gpu);
  const views: FeatureView[] = [];
  for (let p0 = 0; p0 < pixels; p0 += tileP) views.push({ data, stride: tileP, offset: 0, count: Math.min(tileP, pixels - p0) });
  const st = standardization(featureStats({ d, n: tileP, data }), true);
  const t0 = performance.now();
  const engine: KmeansEngine = backend.gpu
    ? await GpuKmeansEngine.create(backend.gpu, d, views, st, { residentBytes: o.residentBytes })
    : new CpuKmeansEngine(d, views, st, { threads: backend.threads });
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
    // Warm-up: pipeline compilation, first-touch allocations, JIT (see `warmup`).
    for (let w = 0; w < Math.max(1, o.warmup ?? 1); w++) await iterate();
    const iterationSeconds: number[] = [];
    const iterationCpuSeconds: number[] = [];
    for (let r = 0; r < (o.repeats ?? 3); r++) {
      const c = process.cpuUsage();
      const t = performance.now();
      await iterate();
      iterationSeconds.push((performance.now() - t) / 1000);
      iterationCpuSeconds.push(cpuSeconds(c));
    }
    return {
      pixels, d, k, tiles: views.length, tilePixels: tileP,
      resident: engine instanceof GpuKmeansEngine ? engine.resident : null,
      setupSeconds, iterationSeconds, iterationCpuSeconds, backend: backend.name, adapter: backend.adapter,
    };
  } finally {
    await engine.release();
    heapFree(data);
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
  /** The same passes in process CPU time. */
  covarianceCpuSeconds: number[];
  /** The eigendecomposition's best process CPU time (as eigenSeconds). */
  eigenCpuSeconds: number;
  /** Host eigendecomposition of the d x d covariance, seconds: the best of 5 calls after the first. */
  eigenSeconds: number;
  /** The first call in this process (includes JIT compilation of the solver), seconds. */
  eigenFirstSeconds: number;
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
  // On the CPU backend the tile lies in the WebAssembly heap (shared memory, as xanes pca
  // allocates it), where the kernel reads it in place on one thread or on the workers (pca-gram.ts CpuGram);
  // on a GPU ordinary memory, as xanes pca allocates it there (Dawn takes no shared memory).
  const tile = backend.gpu ? new Float32Array(d * tileP) : heapF32(d * tileP);
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
  // The CPU worker threads start once (as a run's do), not in every timed pass.
  const cpuThreads = backend.gpu ? null : new CpuGram(backend.threads);
  const pass = async () => {
    const acc = new PcaAccumulator(d, centre);
    const g = backend.gpu ? await GpuGramAccumulator.create(backend.gpu, d, tileP, centre) : new CpuGramAccumulator(d, centre, cpuThreads!);
    try {
      for (const P of tiles) {
        // A shorter last tile is the first P pixels of the tile: contiguous per energy only
        // when P = tileP, so copy it out.
        await g.add(P === tileP ? tile : sliceEnergyMajor(tile, d, tileP, P), P);
      }
      acc.add(await g.finish(), pixels);
    } finally {
      await g.release();
    }
    return acc;
  };
  const covarianceSeconds: number[] = [];
  const covarianceCpuSeconds: number[] = [];
  let last: PcaAccumulator | null = null;
  try {
    await pass(); // warm-up: pipeline compilation, worker start-up, JIT
    for (let r = 0; r < (o.repeats ?? 3); r++) {
      const c = process.cpuUsage();
      const t = performance.now();
      last = await pass();
      covarianceSeconds.push((performance.now() - t) / 1000);
      covarianceCpuSeconds.push(cpuSeconds(c));
    }
  } finally {
    await cpuThreads?.close();
    heapFree(tile);
  }
  // Timed like the peer's numpy eigh (best of repeats after a first call).
  const eig: number[] = [];
  const eigCpu: number[] = [];
  for (let r = 0; r < 6; r++) {
    const c = process.cpuUsage();
    const t = performance.now();
    last?.finish();
    eig.push((performance.now() - t) / 1000);
    eigCpu.push(cpuSeconds(c));
  }
  return {
    pixels, d, tiles: tiles.length, tilePixels: tileP, covarianceSeconds, covarianceCpuSeconds,
    eigenSeconds: Math.min(...eig.slice(1)), eigenFirstSeconds: eig[0], eigenCpuSeconds: Math.min(...eigCpu.slice(1)),
    backend: backend.name, adapter: backend.adapter,
  };
}

/** Process CPU seconds (user + system, every thread) since `start`. */
function cpuSeconds(start: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1e6;
}

function sliceEnergyMajor(cube: Float32Array, d: number, P: number, count: number): Float32Array {
  const out = sharedFloat32(d * count);
  for (let e = 0; e < d; e++) out.set(cube.subarray(e * P, e * P + count), e * count);
  return out;
}
