/**
 * normalize + edge over one tile, on either backend. Both return float32 rows in the same
 * struct-of-arrays layout ([row][pixel], src/kernels/layout.ts), so everything downstream
 * is backend-blind.
 */
import type { GpuContext } from '../gpu/device.js';
import { encodeDispatch } from '../gpu/kernel.js';
import { normalizeKernel, normalizeParams } from '../kernels/normalize.js';
import { edgeKernel, edgeParams } from '../kernels/edge.js';
import { EDGE_ROWS, NORM_ROWS } from '../kernels/layout.js';
import { edgeTileFused } from '../cpu/edge-fused.js';
import type { EdgePlan } from './edge-plan.js';
import type { GpuTile } from './step.js';
import { gpuRowsOnce, type RowsEncoder } from './gpu-tiles.js';

export interface EdgeTileResult {
  norm: Float32Array;
  edge: Float32Array;
}

/** The CPU backend: the fused kernel (src/cpu/edge-fused.ts), bit-identical to the twins normalizeCpu + edgeCpu; into `out`'s rows where given. */
export function edgeTileCpu(plan: EdgePlan, cube: Float32Array, P: number, out?: EdgeTileResult): EdgeTileResult {
  return edgeTileFused(plan, cube, P, out);
}

/**
 * Largest tile (pixels) whose cube and output buffers fit the device's binding and buffer
 * limits. A caller that passes more (a benchmark running a fixed 256k-pixel tile at 200
 * energies on llvmpipe's 128 MiB binding limit did: 200 MB) gets the tile in pieces.
 */
export function maxEdgeTilePixels(ctx: GpuContext, plan: EdgePlan): number {
  const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  return Math.max(1, Math.floor(limit / (4 * Math.max(plan.nE, NORM_ROWS + EDGE_ROWS))));
}

/** normalize + edge on the GPU; tiles beyond `maxPixels` (default: the device's limits) run in pieces. */
export async function edgeTileGpu(ctx: GpuContext, plan: EdgePlan, cube: Float32Array, P: number, maxPixels = maxEdgeTilePixels(ctx, plan)): Promise<EdgeTileResult> {
  if (P <= maxPixels) return edgeTileGpuOne(ctx, plan, cube, P);
  const { nE } = plan;
  const norm = new Float32Array(NORM_ROWS * P);
  const edge = new Float32Array(EDGE_ROWS * P);
  for (let p0 = 0; p0 < P; p0 += maxPixels) {
    const n = Math.min(maxPixels, P - p0);
    const piece = new Float32Array(nE * n);
    for (let i = 0; i < nE; i++) piece.set(cube.subarray(i * P + p0, i * P + p0 + n), i * n);
    const r = await edgeTileGpuOne(ctx, plan, piece, n);
    for (let k = 0; k < NORM_ROWS; k++) norm.set(r.norm.subarray(k * n, (k + 1) * n), k * P + p0);
    for (let k = 0; k < EDGE_ROWS; k++) edge.set(r.edge.subarray(k * n, (k + 1) * n), k * P + p0);
  }
  return { norm, edge };
}

async function edgeTileGpuOne(ctx: GpuContext, plan: EdgePlan, cube: Float32Array, P: number): Promise<EdgeTileResult> {
  const both = await gpuRowsOnce(ctx, 'edgeTile', plan.nE, normEdgeEncoder(plan, 'edge'), cube, P);
  return { norm: both.subarray(0, NORM_ROWS * P), edge: both.subarray(NORM_ROWS * P) };
}

/**
 * normalize + edge on a tile of a ring slot (src/pipeline/gpu-tiles.ts): both kernels read
 * the slot's cube; the norm rows, then the edge rows (NORM_ROWS + EDGE_ROWS rows, or only the
 * norm rows with `normOnly`) are copied into the readback from row `row0`. `name` prefixes
 * the slot's buffers (a combined step may hold two of these).
 */
export function normEdgeEncoder(plan: EdgePlan, name: string, normOnly = false): RowsEncoder {
  const readRows = normOnly ? NORM_ROWS : NORM_ROWS + EDGE_ROWS;
  const xData = Float32Array.from(plan.x);
  return {
    readRows,
    scratchBytesPerPixel: 4 * (NORM_ROWS + EDGE_ROWS),
    async encode(t: GpuTile, P: number, row0: number): Promise<void> {
      const x = t.constant(`${name}.x`, xData);
      const normBuf = t.slot.storage(`${name}.norm`, NORM_ROWS * P * 4);
      const outBuf = t.slot.storage(`${name}.edge`, EDGE_ROWS * P * 4);
      await encodeDispatch(t.ctx, t.encoder, normalizeKernel, P, normalizeParams(plan), [x, t.cube, normBuf], t.slot);
      await encodeDispatch(t.ctx, t.encoder, edgeKernel, P, edgeParams(plan), [x, t.cube, normBuf, outBuf], t.slot);
      t.encoder.copyBufferToBuffer(normBuf, 0, t.read, row0 * P * 4, NORM_ROWS * P * 4);
      if (!normOnly) t.encoder.copyBufferToBuffer(outBuf, 0, t.read, (row0 + NORM_ROWS) * P * 4, EDGE_ROWS * P * 4);
    },
  };
}
