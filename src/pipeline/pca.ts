/**
 * PCA over a stack: the covariance pass, the projection step (scores + reconstruction
 * error per pixel) and `xanes pca`'s run (outputs through writePcaOutputs).
 */
import { InputError } from '../io/errors.js';
import type { StackSource } from '../stack/source.js';
import { planTiles, DEFAULT_MEMORY_MIB } from '../stack/tiles.js';
import type { Backend, BackendName, PixelStep, TileResult } from './step.js';
import { runTiles, tileBudget } from './run-tiles.js';
import { GpuOutOfMemoryError } from '../gpu/buffers.js';
import { PcaAccumulator, pcaProjectCpu, significantComponents, usableValue, type PcaModel } from '../cpu/pca.js';
import { CpuGramAccumulator } from '../cpu/pca-gram.js';
import { featureArray } from '../cpu/kmeans.js';
import { heapFree, inHeap } from '../cpu/wasm-heap.js';
import { GpuGramAccumulator, PCA_MAX_COMPONENTS, pcaProjectGpu } from '../kernels/pca.js';
import { writePcaOutputs } from './cluster-outputs.js';
import { projectWithMissing } from '../cpu/pca-missing.js';

export const PCA_STATUS_NAMES = ['ok', 'excluded'] as const;

export function pcaMapNames(n: number): string[] {
  return [...Array.from({ length: n }, (_, k) => `score_${k + 1}`), 'recon_error'];
}

/**
 * Scores on the first n components ('score_1'..'score_n') and the RMS reconstruction error
 * ('recon_error', in the stack's units) of each pixel. A non-finite point (or one of
 * magnitude >= PCA_MAX_ABS) is dropped for that pixel: its scores are fitted to the points
 * it has (src/cpu/pca-missing.ts). Status 0 ok, 1 excluded (too few points left: NaN maps).
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
      // The kernels give NaN to a spectrum with any unusable point; such a pixel is projected
      // on the points it has (src/cpu/pca-missing.ts), the same on both backends.
      for (let p = 0; p < P; p++) if (Number.isNaN(out[n * P + p])) projectWithMissing(cube, P, p, model, n, out);
      const maps: Record<string, Float32Array> = {};
      names.forEach((name, r) => (maps[name] = Float32Array.from(out.subarray(r * P, (r + 1) * P))));
      const status = new Uint8Array(P);
      const err = maps.recon_error;
      for (let p = 0; p < P; p++) status[p] = Number.isNaN(err[p]) ? 1 : 0;
      return { maps, status };
    },
  };
}

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
  /** Progress over both passes: spectra done (covariance, then projection) and 2 x pixels in all. */
  onTile?: (done: number, total: number) => void;
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
 * spectra centred on a provisional mean (GPU: blocked float32 sums reduced on the device,
 * tiles added in float64 on the host; CPU: float64 panels on worker threads) and diagonalises the covariance; pass 2 projects every pixel onto the
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

  // Pass 1: covariance. Per pixel: the host tile (shared memory: the CPU threads read it in
  // place); on the GPU two upload slots, Dawn's staging copy and the mask (the partials are
  // bounded per tile and small). The device keeps every tile's Gram matrix until one readback.
  const covStep = { mapNames: [] as string[], bytesPerPixel: () => (backend.gpu ? 4 * nE + 4 : 0), gpuBindingBytesPerPixel: (e: number) => 4 * e };
  const plan = planTiles(H, W, tileBudget(source, covStep, backend, budget, 0, opts.baselineBytes));
  let rows = plan.rowsPerTile;
  let pass: GpuGramAccumulator | CpuGramAccumulator | null = null;
  while (!pass) {
    try {
      pass = backend.gpu ? await GpuGramAccumulator.create(backend.gpu, nE, rows * W, centre) : new CpuGramAccumulator(nE, centre, backend.threads);
    } catch (e) {
      // As runTiles does: the GPU reporting out-of-memory halves the tile.
      if (e instanceof GpuOutOfMemoryError && rows > 1) {
        rows = Math.max(1, Math.floor(rows / 2));
        continue;
      }
      throw e;
    }
  }
  // On the CPU: this thread's WebAssembly heap (shared memory; featureArray, at most 2 GiB,
  // else other shared memory), where the covariance kernel reads it in place on this thread
  // and on the worker threads alike (pca-gram.ts CpuGram) instead of copying every block.
  // Ordinary memory on a GPU (as runTiles does), which Dawn takes as it is: the direct mode
  // writes it straight into its texture (one copy, not two through a staging buffer;
  // src/kernels/pca.ts uploadDirect).
  const tile = backend.gpu ? new Float32Array(nE * rows * W) : featureArray(nE * rows * W, true);
  let covTiles = 0;
  try {
    for (let y0 = 0; y0 < H; y0 += rows) {
      const r = Math.min(rows, H - y0);
      const P = r * W;
      // A short last tile is the first P pixels of each energy row of the buffer: contiguous.
      const cube = tile.subarray(0, nE * P);
      await source.readRows(y0, r, cube);
      await pass.add(cube, P);
      covTiles++;
      opts.onTile?.((y0 + r) * W, 2 * H * W);
    }
    acc.add(await pass.finish(), H * W);
  } finally {
    await pass.release();
    if (inHeap(tile)) heapFree(tile);
  }
  if (acc.nIncluded === 0) throw new InputError(source.path, 'no pixel has a finite value at every energy: nothing to analyse');
  const model = acc.finish();

  // Pass 2: projection.
  const step = pcaProjectStep(model, n);
  const run = await runTiles(source, step, backend, { budgetBytes: budget, baselineBytes: opts.baselineBytes, onTile: opts.onTile ? (d) => opts.onTile!(H * W + d, 2 * H * W) : undefined });
  const scores = Array.from({ length: n }, (_, k) => run.maps[`score_${k + 1}`]);
  const reconError = run.maps.recon_error;
  const significant = significantComponents(model.eigenvalues);
  const files = opts.outDir ? await writePcaOutputs(opts.outDir, { model, n, width: W, height: H, scores, reconError, significant, energies, tiff: opts.tiff }) : [];
  return {
    model, n, width: W, height: H, scores, reconError, status: run.status, significant,
    tiles: { covariance: covTiles, projection: run.tilesRun, rowsPerTile: rows },
    backend: backend.name, adapter: backend.adapter, files,
  };
}
