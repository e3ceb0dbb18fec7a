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
import { EdgeThreads, sharedEdgeMaps, type EdgeMapsDest } from '../cpu/edge-threads.js';
import type { KernelPool } from '../cpu/threads.js';
import { EDGE_ROWS, EDGE_STATUS_NAMES, NORM_ROWS } from '../kernels/layout.js';
import { EDGE_MAP_NAMES, edgeMaps } from './edge-maps.js';

export { EDGE_MAP_NAMES, edgeMaps };
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
  // The tile's maps that the workers write: shared arrays kept for the run and handed out as
  // views of P pixels (the runner copies a tile's maps into its own before the next tile).
  // A fresh SharedArrayBuffer per tile, as first written, is held until every worker
  // isolate that received it has collected its handle, which the workers, allocating
  // almost nothing on their own heaps, seldom do: xanes edge on the 2 GiB FXI file at
  // --memory 512 on 2 threads peaked at 700 MiB with them (tiles of ~30k pixels at load 4),
  // 493 MiB on the idle machine. Capacity grows by a quarter at a time as tiles grow.
  let shared: { cap: number; dest: EdgeMapsDest } | null = null;
  const mapsFor = (P: number): EdgeMapsDest => {
    if (!shared || shared.cap < P) {
      const cap = Math.max(P, Math.ceil((shared?.cap ?? 0) * 1.25));
      shared = { cap, dest: sharedEdgeMaps(cap) };
    }
    const d = shared.dest;
    return { maps: Object.fromEntries(Object.entries(d.maps).map(([n, m]) => [n, m.subarray(0, P)])), status: d.status.subarray(0, P) };
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
          // The maps too are made by the workers, in shared memory.
          const maps = mapsFor(P);
          await threadsOn(backend.pool).run(cube, P, out, maps);
          return maps;
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
