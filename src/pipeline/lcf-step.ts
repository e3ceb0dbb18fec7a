/**
 * Linear-combination fitting as a PixelStep (the maps of `xanes lcf`) and a timing function
 * for the benchmark. The RGB composite of the fractions is drawn by src/plot/rgb.ts.
 *
 * Maps, per pixel (float32, NaN where undefined):
 *   weight_<NAME>    the coefficient of reference NAME (units of the stack per unit of the
 *                    reference: with OD stacks and normalised references, a thickness-like amount)
 *   fraction_<NAME>  weight / total (equal to the weight in the sum-to-one modes)
 *   total            sum of the weights
 *   bg_const         background constant (stack units), with --background const|linear
 *   bg_slope         background slope per eV about the window centre (info.bgRefEnergy), linear only
 *   residual_rms     sqrt(sum r^2 / nW) over the fit window
 *   rfactor          sum r^2 / sum y^2 over the fit window
 * Status (LCF_STATUS_NAMES): ok | no_data (a non-finite value in the window: every map NaN)
 *   | no_total (the weights do not sum to a positive total: fractions NaN, the rest kept).
 */
import { registerCpuStep } from './cpu-steps.js';
import type { Backend, GpuTilePart, PixelStep, TileDest, TileResult } from './step.js';
import {
  LCF_STATUS_NAMES, LcfStatus, backgroundTerms, lcfCpu, lcfRows, makeLcfPlan,
  type LcfBackground, type LcfMode, type LcfOptions, type LcfPlan, type LcfReference,
} from '../cpu/lcf.js';
import { lcfFast } from '../cpu/lcf-fast.js';
import { lcfWasm, lcfWasmAvailable, lcfWasmScratchBytes } from '../cpu/lcf-wasm.js';
import { heapF32, heapF64, heapFree, inHeap } from '../cpu/wasm-heap.js';
import { LcfThreads } from '../cpu/lcf-threads.js';
import { KernelPool, shareFloat32 } from '../cpu/threads.js';

/** The CPU backend's lcf kernel: the WebAssembly SIMD pass where the runtime has it, else the same bytes from lcfFast. */
/** The CPU backend's kernel: WebAssembly SIMD where the runtime has it, else lcfFast (the same bytes); `out` as lcfWasm takes it. */
function lcfCpuKernel(plan: LcfPlan, cube: Float32Array, P: number, out?: Float64Array): Float64Array {
  return lcfWasmAvailable ? lcfWasm(plan, cube, P, out) : lcfFast(plan, cube, P);
}
import { lcfEncoder, timeLcfDispatches } from '../kernels/lcf.js';
import { makeRng } from '../synth/random.js';
import type { EdgePlan } from './edge-plan.js';
import { normEdgeEncoder } from './edge-tile.js';
import { GpuTileRing, GPU_SLOT_TILE_COPIES, runGpuTileOnce } from './gpu-tiles.js';
import type { GpuContext } from '../gpu/device.js';
import { normalizeCpu, normalizedSpectrum } from '../cpu/normalize.js';
import { EdgeStatus, EDGE_ROWS, NormRow, NORM_ROWS } from '../kernels/layout.js';

export { LCF_STATUS_NAMES, LcfStatus, makeLcfPlan };
export type { LcfBackground, LcfMode, LcfOptions, LcfPlan, LcfReference };

/** What summary.json should record about the fit (plain JSON). */
export interface LcfInfo {
  mode: LcfMode;
  background: LcfBackground;
  references: string[];
  window: { requested: [number, number] | null; firstEnergy: number; lastEnergy: number; energies: number };
  /** bg(E) = bg_const + bg_slope (E - bgRefEnergy). */
  bgRefEnergy: number | null;
  /** Reciprocal condition number of the column-normalised design matrix (1 = orthogonal). */
  rcond: number;
  warnings: string[];
  mapUnits: Record<string, string>;
  statusNames: string[];
}

export interface LcfStep extends PixelStep {
  plan: LcfPlan;
  info: LcfInfo;
}

/** Map names in the order written: weights, fractions, total, background, residuals. */
export function lcfMapNames(names: readonly string[], background: LcfBackground): string[] {
  return [
    ...names.map((n) => `weight_${n}`),
    ...names.map((n) => `fraction_${n}`),
    'total',
    ...backgroundTerms(background).map((t) => `bg_${t}`),
    'residual_rms',
    'rfactor',
  ];
}

/**
 * The lcf step for references already on the stack's energy grid (src/io/references.ts
 * interpolates files and averages regions). Throws InputError for dependent references, a
 * window with too few energies, non-finite reference values in the window.
 */
/**
 * `xanes lcf --normalize`: every pixel's spectrum is first normalised as larch's pre_edge
 * would (src/cpu/normalize.ts, the same plan as `xanes edge`), so weights are fractions of
 * normalised references and sum-to-one means what it means in Athena. Pixels whose
 * normalisation fails or whose edge step is below maskSigma x noise are masked (NaN, status
 * no_data). `flatten`: larch's flat instead of norm.
 */
export interface LcfNormalize {
  plan: EdgePlan;
  flatten: boolean;
}

/**
 * Default mask-sigma of lcf: a pixel whose total weight is below 3 standard errors of it is
 * taken as empty (a 3-sigma detection: 0.13 % of empty pixels pass by chance). Edge maps
 * keep the literature's 1 (their mask is the edge step's).
 */
export const LCF_MASK_SIGMA = 3;

/**
 * sum_jk (X^T X)^-1_jk over the reference columns: the variance of the total weight per unit
 * noise variance, for the unconstrained fit of the window (references then background).
 * NaN when X^T X cannot be inverted.
 */
export function totalVarianceFactor(refs: readonly LcfReference[], energies: Float64Array, plan: LcfPlan): number {
  const { K, M, i0, nW } = plan;
  const G = new Float64Array(M * M);
  const row = new Float64Array(M);
  for (let i = 0; i < nW; i++) {
    for (let j = 0; j < K; j++) row[j] = refs[j].mu[i0 + i];
    if (M > K) row[K] = 1;
    if (M > K + 1) row[K + 1] = (energies[i0 + i] - plan.bgRefEnergy) / plan.bgHalfWidth;
    for (let a = 0; a < M; a++) for (let b = 0; b < M; b++) G[a * M + b] += row[a] * row[b];
  }
  // Solve G x = u with u = [1..1 (refs), 0 (background)]; the factor is u^T x.
  const A = Float64Array.from(G);
  const x = Float64Array.from({ length: M }, (_, j) => (j < K ? 1 : 0));
  for (let c = 0; c < M; c++) {
    let piv = c;
    for (let r = c + 1; r < M; r++) if (Math.abs(A[r * M + c]) > Math.abs(A[piv * M + c])) piv = r;
    if (!(Math.abs(A[piv * M + c]) > 0)) return NaN;
    for (let k = 0; k < M; k++) [A[c * M + k], A[piv * M + k]] = [A[piv * M + k], A[c * M + k]];
    [x[c], x[piv]] = [x[piv], x[c]];
    for (let r = 0; r < M; r++) {
      if (r === c) continue;
      const f = A[r * M + c] / A[c * M + c];
      for (let k = c; k < M; k++) A[r * M + k] -= f * A[c * M + k];
      x[r] -= f * x[c];
    }
  }
  let f = 0;
  for (let j = 0; j < K; j++) f += x[j] / A[j * M + j];
  return f;
}

/**
 * The tile's spectra normalised per pixel (NaN for masked pixels) from the normalize rows
 * (`norm`, [NORM_ROWS][P]: the GPU's, or the CPU twin's); the subtraction and division run
 * here, in float64, on either backend.
 */
function normalizedTile(n: LcfNormalize, norm: Float32Array | Float64Array, cube: Float32Array, P: number): { cube: Float32Array; step: Float32Array } {
  const out = new Float32Array(n.plan.nE * P);
  const step = new Float32Array(P);
  const spec = new Float64Array(n.plan.nE);
  for (let p = 0; p < P; p++) {
    const ok = norm[NormRow.STATUS * P + p] === EdgeStatus.OK;
    if (ok) normalizedSpectrum(n.plan, cube, P, norm, p, n.flatten, spec);
    for (let i = 0; i < n.plan.nE; i++) out[i * P + p] = ok ? spec[i] : NaN;
    step[p] = ok ? norm[NormRow.STEP * P + p] : NaN;
  }
  return { cube: out, step };
}

export function lcfStep(refs: readonly LcfReference[], energies: Float64Array, options: LcfOptions, normalize?: LcfNormalize, maskSigma = LCF_MASK_SIGMA): LcfStep {
  const plan = makeLcfPlan(refs, energies, options);
  // The total weight's standard error per unit residual sigma (see LcfStatus.LOW_TOTAL); in
  // the sum-to-one modes the total is fixed and the mask is --normalize's edge step instead.
  const totalFactor = plan.sum1 ? NaN : totalVarianceFactor(refs, energies, plan);
  /** Plans of the finite points of pixels with missing points, by pattern (refitWithoutNaN). */
  const subPlans = new Map<string, LcfPlan | null>();
  const { K, M } = plan;
  const rows = lcfRows(M);
  // With --normalize the pixel's edge step (at its own e0) is a map too: the RGB's brightness.
  const mapNames = [...lcfMapNames(plan.names, plan.background), ...(normalize ? ['edge_step'] : [])];
  const bgTerms = backgroundTerms(plan.background);
  const mapUnits: Record<string, string> = {};
  for (const n of plan.names) {
    mapUnits[`weight_${n}`] = `stack units per unit of reference ${n}`;
    mapUnits[`fraction_${n}`] = 'weight / total';
  }
  mapUnits.total = 'sum of weights';
  if (bgTerms.includes('const')) mapUnits.bg_const = 'stack units';
  if (bgTerms.includes('slope')) mapUnits.bg_slope = `stack units per eV, about ${plan.bgRefEnergy.toFixed(3)} eV`;
  mapUnits.residual_rms = 'stack units';
  mapUnits.rfactor = 'sum r^2 / sum y^2';
  if (normalize) mapUnits.edge_step = 'stack units (the normalisation\'s edge step)';
  if (!plan.sum1 && !Number.isFinite(totalFactor)) plan.warnings.push('the total weight\'s standard error cannot be computed (singular design): no low_total mask');
  if (plan.sum1 && !normalize) plan.warnings.push('sum-to-one weights on spectra that are not normalised cannot follow the amount of the element (empty pixels get a full mixture): use --normalize, or a mode without sum-to-one');
  const info: LcfInfo = {
    mode: plan.mode,
    background: plan.background,
    references: [...plan.names],
    window: {
      requested: options.window ? [options.window[0], options.window[1]] : null,
      firstEnergy: energies[plan.i0],
      lastEnergy: energies[plan.i1 - 1],
      energies: plan.nW,
    },
    bgRefEnergy: plan.background === 'linear' ? plan.bgRefEnergy : null,
    rcond: plan.rcond,
    warnings: [...plan.warnings],
    mapUnits,
    statusNames: [...LCF_STATUS_NAMES],
  };
  // Per pixel beyond the input tile, the larger of the two backends' needs, plus the maps:
  //  webgpu: output rows in a storage buffer, its readback copy, the float32 host copy;
  //  cpu: z (M), rho2, sumsq (float64), a NaN flag byte, the float64 output rows;
  //  both: the tile's maps (float32) and status byte.
  const gpuBytes = 3 * 4 * rows.ROWS;
  const cpuBytes = 8 * (M + 2) + 1 + 8 * rows.ROWS;
  const mapBytes = 4 * mapNames.length + 1;
  // The plan on each pool it has run on (the workers' scratch in this heap, freed when the pool closes).
  const onPool = new WeakMap<KernelPool, LcfThreads>();
  const threadsOn = (pool: KernelPool): LcfThreads => {
    let t = onPool.get(pool);
    if (!t) onPool.set(pool, (t = new LcfThreads(pool)));
    return t;
  };
  const checkNE = (nE: number) => {
    if (nE !== plan.nE) throw new RangeError(`lcf step built for ${plan.nE} energies, asked about ${nE}`);
  };
  const lcf: LcfStep = {
    name: 'lcf',
    // CPU worker threads rebuild the step from the references and options (plain data).
    worker: { kind: 'lcf', args: { refs: refs.map((r) => ({ name: r.name, mu: r.mu })), energies, options, normalize, maskSigma } },
    // On several CPU threads each tile is cut into parts for the workers (src/cpu/lcf-threads.ts),
    // read in place in this thread's heap; with --normalize (normalised on the host, tile by
    // tile) whole tiles go to CPU workers, which normalise them too.
    splitsTiles: !normalize && lcfWasmAvailable,
    plan,
    info,
    mapNames,
    statusNames: LCF_STATUS_NAMES,
    bytesPerPixel(nE: number): number {
      checkNE(nE);
      // --normalize: the normalised tile (float32), the normalize rows (float64 on the CPU;
      // on the GPU the norm and edge rows, their readback and host copies).
      const normBytes = normalize ? 4 * plan.nE + Math.max(8 * NORM_ROWS, 3 * 4 * (NORM_ROWS + EDGE_ROWS)) : 0;
      return Math.max(gpuBytes, cpuBytes) + mapBytes + normBytes;
    },
    gpuHeldBytesPerPixel(nE: number): number {
      checkNE(nE);
      // --normalize on a GPU: the normalised spectra go through a one-slot ring of their own,
      // kept for the run at the tallest tile (gpuPart): its device copy of the spectra and
      // Dawn's staging copy of the upload, on a software adapter host memory too, counted as
      // the runner counts a slot of its own ring (GPU_SLOT_TILE_COPIES). That ring's output
      // rows are the lcf rows bytesPerPixel counts per slot of the runner's ring.
      return normalize ? 4 * plan.nE * GPU_SLOT_TILE_COPIES : 0;
    },
    cpuKernelBytes(nE: number): number {
      checkNE(nE);
      // The WebAssembly kernel's scratch per plan and thread (~1 MiB: a block of 2048 pixels
      // staged, projections, tables, src/cpu/lcf-wasm.ts); lcfFast keeps none.
      return lcfWasmAvailable ? lcfWasmScratchBytes(plan) : 0;
    },
    gpuBindingBytesPerPixel(nE: number): number {
      checkNE(nE);
      // The whole tile is bound (the kernel reads its window from it); the output rows and,
      // with --normalize, the normalize rows are the other large bindings.
      return 4 * Math.max(plan.nE, rows.ROWS, normalize ? NORM_ROWS + EDGE_ROWS : 0);
    },
    async runTile(backend: Backend, cube: Float32Array, P: number): Promise<TileResult> {
      if (cube.length < plan.nE * P) throw new RangeError(`lcf: tile holds ${cube.length} values, need ${plan.nE * P}`);
      if (backend.gpu) return runGpuTileOnce(backend.gpu, lcf, plan.nE, lcf.gpuBindingBytesPerPixel(plan.nE), cube, P);
      let step: Float32Array | null = null;
      if (normalize) ({ cube, step } = normalizedTile(normalize, normalizeCpu(normalize.plan, cube, P), cube, P));
      const win = cube.subarray(plan.i0 * P, plan.i1 * P);
      // CPU: the rows in the WebAssembly heap, where the kernel writes them directly; the
      // block is reused by the next tile of this thread once freed (no fresh pages per tile).
      // With a pool (splitsTiles) and the tile in the heap, the workers solve the parts of the
      // tile there (src/cpu/lcf-threads.ts): the same rows.
      const heapOut = lcfWasmAvailable ? heapF64(rows.ROWS * P) : null;
      try {
        const out = heapOut && backend.pool && inHeap(win)
          ? await threadsOn(backend.pool).run(plan, win, P, heapOut)
          : lcfCpuKernel(plan, win, P, heapOut ?? undefined);
        return finishRows(out, cube, P, step);
      } finally {
        if (heapOut) heapFree(heapOut);
      }
    },
    gpuPart(ctx: GpuContext): GpuTilePart {
      // The kernel reads the window straight from the tile's cube (row i0 on): no upload of its own.
      const direct = lcfEncoder(ctx, plan, plan.i0);
      const plain: GpuTilePart = { ...direct, finish: async (out, tile, P, dest) => finishRows(out, tile, P, null, dest) };
      if (!normalize) return plain;
      // --normalize: the normalize kernel on the uploaded tile, its rows read back; the
      // normalised tile (built here, float64 arithmetic as on the CPU) then goes through the
      // lcf kernel in a one-slot ring of its own, kept for the run: a second upload and
      // map per tile, since the normalised spectra are computed on the host.
      let second: GpuTileRing | null = null;
      return {
        ...normEdgeEncoder(normalize.plan, 'lcf.normalize', true),
        async finish(norm, tile, P, dest) {
          const n = normalizedTile(normalize, norm, tile, P);
          second ??= new GpuTileRing(ctx, plain, plan.nE, 'lcf.normalized', 1);
          const r = await second.collect(await second.submit(n.cube, P), n.cube, dest);
          if (dest?.maps.edge_step) dest.maps.edge_step.set(n.step);
          r.maps.edge_step = dest?.maps.edge_step ?? n.step;
          return r;
        },
        async dispose() {
          await second?.destroy();
        },
      };
    },
  };
  return lcf;

  /** The tile's maps from the kernel's rows (`out`, written to where pixels are refitted) and its spectra. */
  function finishRows(out: Float32Array | Float64Array, cube: Float32Array, P: number, step: Float32Array | null, dest?: TileDest): TileResult {
    refitWithoutNaN(cube.subarray(plan.i0 * P, plan.i1 * P), out, P);
    const r = lcfMaps(plan, out, P, dest);
    if (step) {
      if (dest?.maps.edge_step) dest.maps.edge_step.set(step);
      r.maps.edge_step = dest?.maps.edge_step ?? step;
    }
    return r;
  }

  /**
   * The NaN policy: a non-finite point is dropped for that pixel only. The kernels solve the
   * whole window (a pixel with a NaN in it comes back no_data); such a pixel is solved here
   * again, exactly, on its finite points (a plan per pattern of missing points, cached), on
   * either backend, when at least M + 1 points remain. The background is re-expressed about
   * the full window's reference energy, so every pixel's bg maps mean the same.
   */
  function refitWithoutNaN(win: Float32Array, out: Float32Array | Float64Array, P: number): void {
    const { nW, i0 } = plan;
    for (let p = 0; p < P; p++) {
      if (out[rows.STATUS * P + p] !== LcfStatus.NO_DATA) continue;
      const keep: number[] = [];
      for (let i = 0; i < nW; i++) if (Number.isFinite(win[i * P + p])) keep.push(i);
      if (keep.length < M + 1 || keep.length === nW) continue;
      const key = keep.join(',');
      let sub = subPlans.get(key);
      if (sub === undefined) {
        try {
          const e = Float64Array.from(keep, (i) => energies[i0 + i]);
          sub = makeLcfPlan(refs.map((r) => ({ name: r.name, mu: Float64Array.from(keep, (i) => r.mu[i0 + i]) })), e, { mode: plan.mode, background: plan.background });
        } catch {
          sub = null; // the references are dependent on these points: the pixel stays no_data
        }
        if (subPlans.size < 4096) subPlans.set(key, sub);
      }
      if (!sub) continue;
      const y = Float32Array.from(keep, (i) => win[i * P + p]);
      const o = lcfCpu(sub, y, 1);
      for (let j = 0; j < K; j++) out[(rows.THETA0 + j) * P + p] = o[rows.THETA0 + j];
      if (M > K) {
        const slope = M > K + 1 ? o[rows.THETA0 + K + 1] / sub.bgHalfWidth : 0;
        out[(rows.THETA0 + K) * P + p] = o[rows.THETA0 + K] + slope * (plan.bgRefEnergy - sub.bgRefEnergy);
        if (M > K + 1) out[(rows.THETA0 + K + 1) * P + p] = slope * plan.bgHalfWidth;
      }
      out[rows.RMS * P + p] = o[rows.RMS];
      out[rows.RFACTOR * P + p] = o[rows.RFACTOR];
      out[rows.STATUS * P + p] = o[rows.STATUS];
    }
  }

  function lcfMaps(plan: LcfPlan, out: Float32Array | Float64Array, P: number, dest?: TileDest): TileResult {
    const maps: Record<string, Float32Array> = {};
    for (const n of mapNames) maps[n] = dest?.maps[n] ?? new Float32Array(P);
    const status = dest?.status ?? new Uint8Array(P);
    const weights = plan.names.map((n) => maps[`weight_${n}`]);
    const fractions = plan.names.map((n) => maps[`fraction_${n}`]);
    const slopeScale = 1 / plan.bgHalfWidth;
    for (let p = 0; p < P; p++) {
      let s = out[rows.STATUS * P + p];
      let total = 0;
      for (let j = 0; j < K; j++) {
        const w = out[(rows.THETA0 + j) * P + p];
        weights[j][p] = w;
        total += w;
      }
      maps.total[p] = total;
      if (bgTerms.length >= 1) maps.bg_const[p] = out[(rows.THETA0 + K) * P + p];
      if (bgTerms.length === 2) maps.bg_slope[p] = out[(rows.THETA0 + K + 1) * P + p] * slopeScale;
      maps.residual_rms[p] = out[rows.RMS * P + p];
      maps.rfactor[p] = out[rows.RFACTOR * P + p];
      if (s === LcfStatus.OK && !(total > 0) && !plan.sum1) s = LcfStatus.NO_TOTAL;
      if (s === LcfStatus.OK && Number.isFinite(totalFactor)) {
        // sigma^2 = RSS / (nW - M); the total's standard error is sigma sqrt(totalFactor).
        const rms = maps.residual_rms[p];
        const se = Math.sqrt((rms * rms * plan.nW * totalFactor) / Math.max(plan.nW - M, 1));
        if (!(total > maskSigma * se)) s = LcfStatus.LOW_TOTAL;
      }
      for (let j = 0; j < K; j++) {
        fractions[j][p] = s !== LcfStatus.OK ? NaN : plan.sum1 ? weights[j][p] : weights[j][p] / total;
      }
      status[p] = s;
    }
    return { maps, status };
  }
}

// ---------------------------------------------------------------------------------------
// Benchmark

export interface LcfTimingOptions {
  pixels: number;
  nE: number;
  nRefs: number;
  mode: LcfMode;
  background: LcfBackground;
  seed?: number;
  /** Largest tile (pixels) to hold at once; default: what the binding limit allows, at most 2^20 on the CPU. */
  maxTilePixels?: number;
  /** CPU: timed passes over the same data; the fastest is reported (default 1). */
  repeats?: number;
  /** CPU: the tile in an ordinary Float32Array instead of the WebAssembly heap (the kernel then stages it). */
  plainTile?: boolean;
}

export interface LcfTiming {
  backend: string;
  adapter: string;
  pixels: number;
  nE: number;
  nRefs: number;
  mode: LcfMode;
  background: LcfBackground;
  tilePixels: number;
  tiles: number;
  seconds: number;
  /** CPU backend: the best repeat's process CPU seconds (every thread), which other work on a shared machine disturbs less than wall time. */
  cpuSeconds?: number;
  /** CPU backend: threads the kernel ran on (worker threads when more than one). */
  threads?: number;
  pixelsPerSecond: number;
  /** Bytes of spectra read by the kernel (4 nE per pixel) per second. */
  bytesPerSecond: number;
}

/** Smooth synthetic references: an edge plus a few peaks each, distinct per reference. */
export function syntheticReferences(nE: number, nRefs: number, seed: number): { energies: Float64Array; refs: LcfReference[] } {
  const rng = makeRng(seed);
  const energies = Float64Array.from({ length: nE }, (_, i) => 700 + (30 * i) / (nE - 1));
  const refs: LcfReference[] = [];
  for (let k = 0; k < nRefs; k++) {
    const e0 = 705 + 10 * rng.uniform();
    const peaks = [0, 1, 2].map(() => ({ c: 703 + 20 * rng.uniform(), w: 0.5 + 2 * rng.uniform(), a: rng.uniform() }));
    const mu = energies.map((e) => 0.5 * (1 + Math.tanh((e - e0) / 1.5)) + peaks.reduce((s, p) => s + p.a * Math.exp(-(((e - p.c) / p.w) ** 2)), 0));
    refs.push({ name: `ref${k + 1}`, mu });
  }
  return { energies, refs };
}

/**
 * Times the lcf kernel (no file reading, no upload or readback on the GPU: the kernel's
 * own throughput) over `pixels` synthetic spectra on `backend`: the pixels are processed as
 * repeated tiles of one resident tile. Benchmarks call this; tests never time.
 */
export async function timeLcf(backend: Backend, o: LcfTimingOptions): Promise<LcfTiming> {
  return (await timeLcfOn([backend], o))[0];
}

/**
 * timeLcf on each of `backends` over the same data: CPU backends (several thread counts)
 * are timed repeat by repeat in turn, so each count's best repeat comes from the same
 * stretch of a shared machine's load; a GPU backend is timed alone (backends = [it]).
 */
export async function timeLcfOn(backends: Backend[], o: LcfTimingOptions): Promise<LcfTiming[]> {
  const backend = backends[0];
  if (backend.gpu && backends.length > 1) throw new RangeError('timeLcfOn: a GPU backend is timed alone');
  const { energies, refs } = syntheticReferences(o.nE, o.nRefs, o.seed ?? 1);
  const plan = makeLcfPlan(refs, energies, { mode: o.mode, background: o.background });
  const bindingLimit = backend.gpu ? Math.floor(backend.gpu.limits.maxStorageBufferBindingSize / (4 * o.nE)) : 1 << 20;
  const tile = Math.max(1, Math.min(o.pixels, o.maxTilePixels ?? Infinity, bindingLimit));
  const rng = makeRng((o.seed ?? 1) + 1);
  // On the CPU backend the tile is allocated in the WebAssembly heap (src/cpu/wasm-heap.ts),
  // where the kernel reads it in place, unless o.plainTile asks for an ordinary array (which the
  // kernel stages block by block: what that copy costs).
  const cube = backend.gpu || o.plainTile ? new Float32Array(o.nE * tile) : heapF32(o.nE * tile);
  // Mixtures near the simplex (fractions u_k / sum u, u_k uniform, plus 0.05 normal
  // jitter), scaled by a thickness in [0.5, 1.5] (1 in the sum-to-one modes), a constant
  // background and 1 % noise: some weights are near zero, so the constraints bind for a
  // share of the pixels and the active-set search does real work.
  const sum1 = o.mode.endsWith('sum1');
  for (let p = 0; p < tile; p++) {
    const u = refs.map(() => rng.uniform());
    const su = u.reduce((a, b) => a + b, 0);
    const t = sum1 ? 1 : 0.5 + rng.uniform();
    const w = u.map((x) => t * (x / su + 0.05 * rng.normal()));
    const bg = 0.1 * rng.uniform();
    for (let e = 0; e < o.nE; e++) {
      let v = bg + 0.01 * rng.normal();
      for (let k = 0; k < refs.length; k++) v += w[k] * refs[k].mu[e];
      cube[e * tile + p] = v;
    }
  }
  const tiles = Math.ceil(o.pixels / tile);
  const seconds = backends.map(() => Infinity);
  const cpuSeconds: (number | undefined)[] = backends.map(() => undefined);
  if (backend.gpu) {
    seconds[0] = await timeLcfDispatches(backend.gpu, plan, cube, tile, tiles);
  } else {
    // The rows go to a heap block, as runTile gives them (one block reused tile after tile).
    const rowsLen = lcfRows(plan.M).ROWS * tile;
    const out = o.plainTile || !lcfWasmAvailable ? undefined : heapF64(rowsLen);
    // Several threads: the tile's pixels cut among the workers (LcfThreads), which read the
    // heap tile and write the heap rows in place; a plain tile goes to them as a shared copy
    // with shared rows (each worker stages its blocks, as one thread does a plain tile).
    const lts = backends.map((b) => {
      const threads = lcfWasmAvailable ? (b.threads ?? 1) : 1;
      const pool = threads > 1 ? KernelPool.create(threads) : null;
      return pool ? new LcfThreads(pool) : null;
    });
    let shared: { cube: Float32Array; out: Float64Array } | null = null;
    const run = async (lt: LcfThreads | null, P: number) => {
      if (!lt) return void lcfCpuKernel(plan, cube, P, out);
      if (o.plainTile) shared ??= { cube: shareFloat32(cube), out: new Float64Array(new SharedArrayBuffer(8 * rowsLen)) };
      await lt.run(plan, shared?.cube ?? cube, P, shared?.out ?? out!);
    };
    try {
      for (const lt of lts) await run(lt, Math.min(tile, 1024 * (lt?.pool.size ?? 1))); // warm-up (JIT, each worker's module)
      for (let r = 0; r < Math.max(1, o.repeats ?? 1); r++) {
        for (let k = 0; k < backends.length; k++) {
          const c = process.cpuUsage();
          const t = performance.now();
          for (let i = 0; i < tiles; i++) await run(lts[k], tile);
          seconds[k] = Math.min(seconds[k], (performance.now() - t) / 1000);
          const u = process.cpuUsage(c);
          cpuSeconds[k] = Math.min(cpuSeconds[k] ?? Infinity, (u.user + u.system) / 1e6);
        }
      }
    } finally {
      for (const lt of lts) await lt?.pool.close(); // frees the workers' scratch
      if (out) heapFree(out);
    }
  }
  heapFree(cube);
  const pixels = tiles * tile;
  return backends.map((b, k) => ({
    backend: b.name,
    adapter: b.adapter,
    pixels,
    ...(cpuSeconds[k] !== undefined ? { cpuSeconds: cpuSeconds[k] } : {}),
    ...(b.gpu ? {} : { threads: timedThreads(b) }),
    nE: o.nE,
    nRefs: o.nRefs,
    mode: o.mode,
    background: o.background,
    tilePixels: tile,
    tiles,
    seconds: seconds[k],
    pixelsPerSecond: pixels / seconds[k],
    bytesPerSecond: (pixels * 4 * o.nE) / seconds[k],
  }));
}

/** Threads the CPU timing ran on (one without WebAssembly SIMD). */
function timedThreads(b: Backend): number {
  return lcfWasmAvailable ? Math.max(1, b.threads ?? 1) : 1;
}

registerCpuStep('lcf', (a: { refs: LcfReference[]; energies: Float64Array; options: LcfOptions; normalize?: LcfNormalize; maskSigma: number }) => lcfStep(a.refs, a.energies, a.options, a.normalize, a.maskSigma));
