/**
 * normalize + edge as a PixelStep: the maps of `xanes edge`. Both kernels run back to back
 * on one upload of the tile.
 */
import type { PixelStep, TileDest, TileResult, Backend } from './step.js';
import type { EdgePlan } from './edge-plan.js';
import { edgeTileCpu, normEdgeEncoder } from './edge-tile.js';
import { runGpuTileOnce } from './gpu-tiles.js';
import { edgeFusedKernelBytes } from '../cpu/edge-fused.js';
import { edgeWasmAvailable } from '../cpu/edge-wasm.js';
import { heapF32, heapFree } from '../cpu/wasm-heap.js';
import { EdgeThreads } from '../cpu/edge-threads.js';
import type { KernelPool } from '../cpu/threads.js';
import { EdgeRow, EdgeStatus, EDGE_ROWS, EDGE_STATUS_NAMES, NormRow, NORM_ROWS } from '../kernels/layout.js';

/** Output maps in the order they are written; units in EDGE_MAP_UNITS. */
export const EDGE_MAP_NAMES = ['e0_half', 'e0_deriv', 'edge_step', 'noise', 'mask', 'whiteline_energy', 'whiteline_height'] as const;
export const EDGE_MAP_UNITS: Record<string, string> = {
  e0_half: 'eV',
  e0_deriv: 'eV',
  edge_step: 'absorbance',
  noise: 'absorbance',
  mask: '1 = used, 0 = masked',
  whiteline_energy: 'eV',
  whiteline_height: 'normalised absorbance',
};

/**
 * Per-pixel bytes of one tile beyond its input: GPU norm + edge rows and their readback
 * copies, the same rows on the host (float64 on the CPU backend), the tile's 7 maps and
 * status byte.
 */
export const EDGE_BYTES_PER_PIXEL = 2 * 4 * (NORM_ROWS + EDGE_ROWS) + 8 * (NORM_ROWS + EDGE_ROWS) + 4 * EDGE_MAP_NAMES.length + 1;

/** The memory terms of the edge step, known before its plan (for early budget checks and `xanes info`). */
export const EDGE_STEP_SHAPE = {
  mapNames: [...EDGE_MAP_NAMES] as string[],
  bytesPerPixel: () => EDGE_BYTES_PER_PIXEL,
  gpuBindingBytesPerPixel: (nE: number) => 4 * Math.max(nE, NORM_ROWS + EDGE_ROWS),
  /** The CPU kernel's tables and WebAssembly scratch per thread (src/cpu/edge-fused.ts). */
  cpuKernelBytes: (nE: number) => edgeFusedKernelBytes(nE),
  /** The step has a GPU part: on a GPU its tiles stream through the runner's ring (tileBudget counts its slots). */
  gpuPart: true,
  /** On several CPU threads each tile is cut into parts for the workers (src/cpu/edge-threads.ts). */
  splitsTiles: true,
};

export function edgeStep(plan: EdgePlan): PixelStep {
  // The plan on each pool it has run on (the workers' scratch, freed when the pool closes).
  const onPool = new WeakMap<KernelPool, EdgeThreads>();
  const threadsOn = (pool: KernelPool): EdgeThreads => {
    let t = onPool.get(pool);
    if (!t) onPool.set(pool, (t = new EdgeThreads(plan, pool)));
    return t;
  };
  const step: PixelStep = {
    name: 'edge',
    mapNames: [...EDGE_MAP_NAMES],
    statusNames: EDGE_STATUS_NAMES,
    bytesPerPixel: () => EDGE_BYTES_PER_PIXEL,
    gpuBindingBytesPerPixel: (nE) => 4 * Math.max(nE, NORM_ROWS + EDGE_ROWS),
    cpuKernelBytes: EDGE_STEP_SHAPE.cpuKernelBytes,
    worker: { kind: 'edge', args: plan },
    splitsTiles: true,
    async runTile(backend: Backend, cube: Float32Array, P: number): Promise<TileResult> {
      if (backend.gpu) return runGpuTileOnce(backend.gpu, step, plan.nE, step.gpuBindingBytesPerPixel(plan.nE), cube, P);
      // CPU: the rows in this thread's WebAssembly heap, where the kernel writes them in place
      // (no copy per block); the block is freed once the maps are made, so the next tile of
      // this thread reuses it (no fresh pages per tile). With a pool and the tile in the heap,
      // the workers compute the parts of the tile there (edge-threads.ts): the same rows.
      const rows = edgeWasmAvailable ? heapF32((NORM_ROWS + EDGE_ROWS) * P) : null;
      try {
        const out = rows ? edgeRowsIn(rows, P) : undefined;
        if (out && backend.pool && EdgeThreads.runs(cube, out)) {
          await threadsOn(backend.pool).run(cube, P, out);
          return edgeMaps(out.norm, out.edge, P);
        }
        const r = edgeTileCpu(plan, cube, P, out);
        return edgeMaps(r.norm, r.edge, P);
      } finally {
        if (rows) heapFree(rows);
      }
    },
    gpuPart: () => {
      const enc = normEdgeEncoder(plan, 'edge');
      return { ...enc, finish: async (rows, _cube, P, dest) => edgeMaps(rows.subarray(0, NORM_ROWS * P), rows.subarray(NORM_ROWS * P, (NORM_ROWS + EDGE_ROWS) * P), P, dest) };
    },
  };
  return step;
}

/** The norm rows, then the edge rows, of a tile of P pixels in one block of (NORM_ROWS + EDGE_ROWS) P float32. */
export function edgeRowsIn(block: Float32Array, P: number): { norm: Float32Array; edge: Float32Array } {
  return { norm: block.subarray(0, NORM_ROWS * P), edge: block.subarray(NORM_ROWS * P, (NORM_ROWS + EDGE_ROWS) * P) };
}

/** Turns the kernels' row layout into named maps (into `dest` where given); NaN where a pixel is masked. */
export function edgeMaps(norm: Float32Array, edge: Float32Array, P: number, dest?: TileDest): TileResult {
  const maps: Record<string, Float32Array> = {};
  for (const n of EDGE_MAP_NAMES) maps[n] = dest?.maps[n] ?? new Float32Array(P);
  const status = dest?.status ?? new Uint8Array(P);
  for (let p = 0; p < P; p++) {
    const s = norm[NormRow.STATUS * P + p];
    status[p] = s;
    const ok = s === EdgeStatus.OK;
    maps.mask[p] = ok ? 1 : 0;
    // Step and noise stay defined for LOW_STEP pixels: they are the reason for the mask.
    maps.edge_step[p] = s === EdgeStatus.NO_DATA ? NaN : norm[NormRow.STEP * P + p];
    maps.noise[p] = s === EdgeStatus.NO_DATA ? NaN : norm[NormRow.NOISE * P + p];
    maps.e0_half[p] = ok ? edge[EdgeRow.E0_HALF * P + p] : NaN;
    maps.e0_deriv[p] = ok ? edge[EdgeRow.E0_DERIV * P + p] : NaN;
    maps.whiteline_energy[p] = ok ? edge[EdgeRow.WL_ENERGY * P + p] : NaN;
    maps.whiteline_height[p] = ok ? edge[EdgeRow.WL_HEIGHT * P + p] : NaN;
  }
  return { maps, status };
}
