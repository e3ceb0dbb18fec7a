/**
 * The per-pixel model fit as a PixelStep, and its two backends as separately callable
 * functions (tests, benchmarks):
 *  - fitTileCpu: normalize + edge (CPU twins, float64) for the start values, then the fit's
 *    CPU twin (src/cpu/fit.ts);
 *  - fitTileGpu / the step's gpuPart: one upload of the tile, then the normalize, edge and
 *    fit kernels back to back in one submit (their rows stay on the GPU: the fit kernel
 *    reads the normalize rows from the same work buffer), one readback of the results
 *    (src/pipeline/gpu-tiles.ts streams tiles through a ring of such slots).
 * Both return the same rows (internal units); fitMaps turns them into user-unit maps in
 * float64 arithmetic, so everything downstream is backend-blind.
 *
 * Maps: one per parameter (user units: eV for positions and widths, data units for
 * amplitudes), `<param>_stderr` (from (J^T J)^-1 scaled by the reduced chi-square; 0 for a
 * fixed parameter, NaN where the fit is singular), `redchi` (chi-square / (finite points -
 * free parameters), data units squared), `iterations`, `stop` (which stopping rule ended the
 * fit: FitStop in src/models/layout.ts, 0 = none), then the model's derived maps (the
 * preset's PE and PE_over_b1). Masked-input and non-finite pixels are NaN in every map
 * except `iterations` and `stop` (0).
 */
import type { GpuContext } from '../gpu/device.js';
import { encodeDispatch } from '../gpu/kernel.js';
import { normalizeKernel, normalizeParams } from '../kernels/normalize.js';
import { edgeKernel, edgeParams } from '../kernels/edge.js';
import { EDGE_ROWS, NormRow, NORM_ROWS } from '../kernels/layout.js';
import { fitConsts, fitKernel, fitParams, FIT_ROW_BASE } from '../kernels/fit.js';
import { normalizeCpu } from '../cpu/normalize.js';
import { edgeCpu } from '../cpu/edge.js';
import { fitCpu } from '../cpu/fit.js';
import type { FitModel } from '../models/model.js';
import { parseModelSpec, PRESETS } from '../models/model.js';
import type { FitOptions } from '../models/options.js';
import { defaultFitOptions } from '../models/options.js';
import type { FitEdgeOptions, FitPlan } from '../models/plan.js';
import { fromInternal, makeFitPlan, stderrFromInternal } from '../models/plan.js';
import { FitStatus, FitStop, FIT_STATUS_NAMES, fitRows } from '../models/layout.js';
import { syntheticPresetSpectra, vkGrid } from '../models/synthetic.js';
import type { Backend, GpuTile, PixelStep, TileDest, TileResult } from './step.js';
import { gpuRowsOnce, runGpuTileOnce, type RowsEncoder } from './gpu-tiles.js';
import { registerCpuStep } from './cpu-steps.js';

export { FIT_STATUS_NAMES, FitStatus } from '../models/layout.js';

/** The raw results of one tile: fit rows [fitRows(np).count][P] and the pre-edge noise row. */
export interface FitTileRows {
  rows: Float32Array | Float64Array;
  noise: Float32Array | Float64Array;
  P: number;
}

export function fitTileCpu(plan: FitPlan, cube: Float32Array, P: number): FitTileRows {
  const norm = normalizeCpu(plan.edge, cube, P);
  const edge = edgeCpu(plan.edge, cube, P, norm);
  const rows = fitCpu(plan, cube, P, norm, edge);
  return { rows, noise: norm.subarray(NormRow.NOISE * P, (NormRow.NOISE + 1) * P), P };
}

/**
 * Pixels fitted per piece on the CPU, and the most time between two turns of the event loop.
 * A fit costs up to ~5 ms per pixel on one core (a model that does not suit the data runs to
 * max iterations), and several times that on a loaded machine, so a whole tile, or one row
 * of a wide image, would hold off a Ctrl-C for seconds. In pieces of 32 pixels, yielding
 * whenever FIT_CPU_YIELD_MS have passed, the signal handler runs within a fraction of a
 * second even at a few times the worst per-pixel cost.
 */
export const FIT_CPU_CHUNK_PIXELS = 32;
export const FIT_CPU_YIELD_MS = 50;

/**
 * fitTileCpu in pieces of FIT_CPU_CHUNK_PIXELS, yielding to the event loop every FIT_CPU_YIELD_MS so
 * a signal is handled while a tile is being fitted. Every pixel is fitted independently, so
 * the rows are the same bytes as one fitTileCpu call on the whole tile (tested).
 */
export async function fitTileCpuYielding(plan: FitPlan, cube: Float32Array, P: number, chunk = FIT_CPU_CHUNK_PIXELS, yieldMs = FIT_CPU_YIELD_MS): Promise<FitTileRows> {
  if (P <= chunk) return fitTileCpu(plan, cube, P);
  const nE = plan.nE;
  const sub = new Float32Array(nE * chunk);
  let rows: Float32Array | Float64Array | null = null;
  let noise: Float32Array | Float64Array | null = null;
  let nRows = 0;
  let lastYield = performance.now();
  for (let p0 = 0; p0 < P; p0 += chunk) {
    const c = Math.min(chunk, P - p0);
    for (let e = 0; e < nE; e++) sub.set(cube.subarray(e * P + p0, e * P + p0 + c), e * c);
    const part = fitTileCpu(plan, sub.subarray(0, nE * c), c);
    if (rows === null || noise === null) {
      nRows = part.rows.length / c;
      rows = part.rows instanceof Float64Array ? new Float64Array(nRows * P) : new Float32Array(nRows * P);
      noise = part.noise instanceof Float64Array ? new Float64Array(P) : new Float32Array(P);
    }
    for (let k = 0; k < nRows; k++) rows.set(part.rows.subarray(k * c, (k + 1) * c), k * P + p0);
    noise.set(part.noise.subarray(0, c), p0);
    if (performance.now() - lastYield >= yieldMs) {
      await new Promise((res) => setImmediate(res));
      lastYield = performance.now();
    }
  }
  return { rows: rows!, noise: noise!, P };
}

/** Rows read back from the work buffer: from the noise row to the last fit row. */
function readbackRows(plan: FitPlan): { first: number; count: number } {
  const first = NormRow.NOISE;
  return { first, count: FIT_ROW_BASE + fitRows(plan.np).count - first };
}

export async function fitTileGpu(ctx: GpuContext, plan: FitPlan, cube: Float32Array, P: number): Promise<FitTileRows> {
  return fitRowsOf(plan, await gpuRowsOnce(ctx, 'fitTile', plan.nE, fitEncoder(plan), cube, P), P);
}

/** The fit rows and noise row within the readback rows (views). */
function fitRowsOf(plan: FitPlan, all: Float32Array, P: number): FitTileRows {
  const rb = readbackRows(plan);
  const base = (FIT_ROW_BASE - rb.first) * P;
  return { rows: all.subarray(base, rb.count * P), noise: all.subarray((NormRow.NOISE - rb.first) * P, (NormRow.NOISE - rb.first + 1) * P), P };
}

/**
 * normalize, edge and fit on a tile of a ring slot (src/pipeline/gpu-tiles.ts), back to back
 * on the slot's cube: the fit kernel reads the normalize rows from the same work buffer;
 * the rows from the noise row to the last fit row are copied into the readback from `row0`.
 */
function fitEncoder(plan: FitPlan): RowsEncoder {
  const L = fitRows(plan.np);
  const workRows = FIT_ROW_BASE + L.count;
  const rb = readbackRows(plan);
  const xData = Float32Array.from(plan.edge.x);
  const constsData = fitConsts(plan);
  return {
    readRows: rb.count,
    scratchBytesPerPixel: 4 * (workRows + EDGE_ROWS),
    async encode(t: GpuTile, P: number, row0: number): Promise<void> {
      const x = t.constant('fit.x', xData);
      const consts = t.constant('fit.consts', constsData);
      const workBuf = t.slot.storage('fit.work', workRows * P * 4);
      const edgeBuf = t.slot.storage('fit.edge', EDGE_ROWS * P * 4);
      await encodeDispatch(t.ctx, t.encoder, normalizeKernel, P, normalizeParams(plan.edge), [x, t.cube, workBuf], t.slot);
      await encodeDispatch(t.ctx, t.encoder, edgeKernel, P, edgeParams(plan.edge), [x, t.cube, workBuf, edgeBuf], t.slot);
      await encodeDispatch(t.ctx, t.encoder, fitKernel(plan), P, fitParams(plan), [consts, t.cube, workBuf, edgeBuf], t.slot);
      t.encoder.copyBufferToBuffer(workBuf, rb.first * P * 4, t.read, row0 * P * 4, rb.count * P * 4);
    },
  };
}

/**
 * Names of the maps fitMaps returns, in order. `raw/<param>`: the fitted values of every
 * fitted pixel, whatever its status (the maps without the prefix are NaN unless the fit
 * converged); written to the raw/ subfolder and its own group of results.h5, for diagnosis.
 */
export function fitMapNames(model: FitModel): string[] {
  return [...model.paramNames, ...model.paramNames.map((n) => `${n}_stderr`), 'redchi', 'iterations', 'stop', ...model.derived.map((d) => d.name), ...model.paramNames.map((n) => `raw/${n}`)];
}

/**
 * User-unit maps and the status map from a tile's rows (float64 arithmetic on either
 * backend's rows), into `dest` where given. A pixel whose converted parameters are not
 * finite becomes non-finite.
 */
export function fitMaps(plan: FitPlan, tile: FitTileRows, dest?: TileDest): TileResult {
  const { model, np, eRef, eScale } = plan;
  const P = tile.P;
  const L = fitRows(np);
  const rows = tile.rows;
  const nf = plan.free.length;
  const maps: Record<string, Float32Array> = {};
  for (const name of fitMapNames(model)) maps[name] = dest?.maps[name] ?? new Float32Array(P);
  const pm = model.paramNames.map((n) => maps[n]);
  const sm = model.paramNames.map((n) => maps[`${n}_stderr`]);
  const dm = model.derived.map((d) => maps[d.name]);
  const rm = model.paramNames.map((n) => maps[`raw/${n}`]);
  const status = dest?.status ?? new Uint8Array(P);
  const v = new Float64Array(np);
  for (let p = 0; p < P; p++) {
    let st = rows[L.status * P + p];
    const ysc = rows[L.yScale * P + p];
    const fitted = st !== FitStatus.MASKED_INPUT && st !== FitStatus.NON_FINITE;
    if (fitted) {
      for (let k = 0; k < np; k++) {
        v[k] = fromInternal(model.paramRoles[k], rows[(L.param0 + k) * P + p], eRef, eScale, ysc);
        if (!Number.isFinite(v[k])) st = FitStatus.NON_FINITE;
      }
    }
    status[p] = st;
    maps.iterations[p] = rows[L.iterations * P + p];
    maps.stop[p] = st === FitStatus.CONVERGED || st === FitStatus.AT_BOUND ? rows[L.stop * P + p] : FitStop.NONE;
    if (st === FitStatus.MASKED_INPUT || st === FitStatus.NON_FINITE) {
      for (let k = 0; k < np; k++) pm[k][p] = sm[k][p] = rm[k][p] = NaN;
      maps.redchi[p] = NaN;
      for (const m of dm) m[p] = NaN;
      continue;
    }
    maps.redchi[p] = (rows[L.chi2 * P + p] * ysc * ysc) / (rows[L.nFinite * P + p] - nf);
    for (let k = 0; k < np; k++) rm[k][p] = v[k];
    // Only a converged fit gives parameters, or one converged with a parameter on a bound (a
    // constrained optimum, as scipy's least_squares with bounds; the error of a parameter on
    // its bound is NaN): max-iterations and singular pixels are NaN in every parameter, error
    // and derived map (their values stay in raw/).
    if (st !== FitStatus.CONVERGED && st !== FitStatus.AT_BOUND) {
      for (let k = 0; k < np; k++) pm[k][p] = sm[k][p] = NaN;
      for (const m of dm) m[p] = NaN;
      continue;
    }
    for (let k = 0; k < np; k++) {
      pm[k][p] = v[k];
      sm[k][p] = stderrFromInternal(model.paramRoles[k], rows[(L.stderr0 + k) * P + p], eScale, ysc);
    }
    const noise = tile.noise[p];
    model.derived.forEach((d, j) => (dm[j][p] = d.compute(v, noise)));
  }
  return { maps, status };
}

export interface FitStep extends PixelStep {
  plan: FitPlan;
}

/**
 * The fit as a PixelStep over tiles of the stack. `options` from parseFitOptions;
 * `edgeOptions` sets the normalize/edge windows used for start values (default: from the
 * energy grid, src/models/plan.ts fitEdgePlan).
 */
export function fitStep(model: FitModel, energies: Float64Array, options: FitOptions = defaultFitOptions(), edgeOptions: FitEdgeOptions = {}): FitStep {
  const plan = makeFitPlan(model, energies, options, edgeOptions);
  const L = fitRows(plan.np);
  const nMaps = fitMapNames(model).length;
  const rb = readbackRows(plan);
  const step: FitStep = {
    name: 'fit',
    plan,
    mapNames: fitMapNames(model),
    statusNames: FIT_STATUS_NAMES,
    bytesPerPixel: () => {
      const outputs = 4 * nMaps + 1;
      // GPU: work and edge buffers, the readback buffer and its host copy.
      const gpu = 4 * (FIT_ROW_BASE + L.count) + 4 * EDGE_ROWS + 2 * 4 * rb.count;
      // CPU: normalize and edge rows and the fit rows, float64.
      const cpu = 8 * (NORM_ROWS + EDGE_ROWS + L.count);
      return outputs + Math.max(gpu, cpu);
    },
    gpuBindingBytesPerPixel: (nE) => Math.max(4 * nE, 4 * (FIT_ROW_BASE + L.count)),
    // CPU worker threads rebuild the step from the model's spec (which parses back to the
    // same model) and plain data.
    worker: { kind: 'fit', args: { spec: model.spec, energies, options, edgeOptions } satisfies FitWorkerArgs },
    async runTile(backend: Backend, cube: Float32Array, P: number): Promise<TileResult> {
      if (backend.gpu) return runGpuTileOnce(backend.gpu, step, plan.nE, step.gpuBindingBytesPerPixel(plan.nE), cube, P);
      return fitMaps(plan, await fitTileCpuYielding(plan, cube, P));
    },
    gpuPart: () => ({ ...fitEncoder(plan), finish: async (rows, _cube, P, dest) => fitMaps(plan, fitRowsOf(plan, rows, P), dest) }),
  };
  return step;
}

interface FitWorkerArgs {
  spec: string;
  energies: Float64Array;
  options: FitOptions;
  edgeOptions: FitEdgeOptions;
}

registerCpuStep('fit', (a: FitWorkerArgs) => fitStep(parseModelSpec(a.spec), a.energies, a.options, a.edgeOptions));

export interface FitRateOptions {
  /** Fits to time in all (the tile is reused until this many are done). */
  pixels: number;
  nE: number;
  /** Pixels per tile; default the most that fits the device's binding limit, at most 2^20. */
  tilePixels?: number;
  /** Default: the erf-2lorentz preset. */
  model?: FitModel;
  seed?: number;
  /** Gaussian noise sigma in data units (edge jump 0.6-1.4); default 0.01. */
  noise?: number;
}

export interface FitRate {
  backend: string;
  adapter: string;
  model: string;
  nE: number;
  pixels: number;
  tilePixels: number;
  tiles: number;
  seconds: number;
  fitsPerSecond: number;
  statusCounts: Record<string, number>;
  medianIterations: number;
}

/**
 * Fits per second of a model on a backend at a given size, end to end per tile (upload,
 * normalize + edge + fit, readback, conversion to maps), on synthetic spectra of the preset
 * sampled on a V K-edge-like grid of nE energies (src/models/synthetic.ts). One small tile
 * runs first so pipeline compilation is not counted. For benchmarks; tests never time.
 */
export async function measureFitRate(backend: Backend, o: FitRateOptions): Promise<FitRate> {
  const energies = vkGrid(o.nE);
  const model = o.model ?? PRESETS['erf-2lorentz'].make();
  const step = fitStep(model, energies);
  const limit = backend.gpu
    ? Math.floor(Math.min(backend.gpu.limits.maxStorageBufferBindingSize, backend.gpu.limits.maxBufferSize) / step.gpuBindingBytesPerPixel(o.nE))
    : 1 << 16;
  const tilePixels = Math.max(1, Math.min(o.tilePixels ?? 1 << 20, limit, o.pixels));
  // Spectra are laid out [nE][P], so every tile size needs its own data (made before timing).
  const synth = (P: number, seed: number) => syntheticPresetSpectra(energies, P, seed, [o.noise ?? 0.01]).cube;
  const seed = o.seed ?? 1;
  const full = synth(tilePixels, seed);
  const rest = o.pixels % tilePixels;
  const last = rest > 0 ? synth(rest, seed + 1) : null;
  const warm = Math.min(tilePixels, 256);
  await step.runTile(backend, synth(warm, seed + 2), warm);
  const counts = new Float64Array(FIT_STATUS_NAMES.length);
  const iterations: number[] = [];
  let done = 0;
  let tiles = 0;
  const t0 = performance.now();
  while (done < o.pixels) {
    const P = Math.min(tilePixels, o.pixels - done);
    const r = await step.runTile(backend, P === tilePixels ? full : last!, P);
    for (let p = 0; p < P; p++) counts[r.status[p]]++;
    if (tiles === 0) for (let p = 0; p < P; p += Math.max(1, Math.floor(P / 10000))) iterations.push(r.maps.iterations[p]);
    done += P;
    tiles++;
  }
  const seconds = (performance.now() - t0) / 1000;
  iterations.sort((a, b) => a - b);
  const statusCounts: Record<string, number> = {};
  FIT_STATUS_NAMES.forEach((n, i) => (statusCounts[n] = counts[i]));
  return {
    backend: backend.name,
    adapter: backend.adapter,
    model: model.spec,
    nE: o.nE,
    pixels: o.pixels,
    tilePixels,
    tiles,
    seconds,
    fitsPerSecond: o.pixels / seconds,
    statusCounts,
    medianIterations: iterations[Math.floor(iterations.length / 2)],
  };
}
