/**
 * normalize + edge over one tile, on either backend. Both return float32 rows in the same
 * struct-of-arrays layout ([row][pixel], src/kernels/layout.ts), so everything downstream
 * is backend-blind.
 */
import type { GpuContext } from '../gpu/device.js';
import { guard } from '../gpu/device.js';
import { BufferSet, GpuOutOfMemoryError, readFloat32 } from '../gpu/buffers.js';
import { encodeDispatch } from '../gpu/kernel.js';
import { normalizeKernel, normalizeParams } from '../kernels/normalize.js';
import { edgeKernel, edgeParams } from '../kernels/edge.js';
import { EDGE_ROWS, NORM_ROWS } from '../kernels/layout.js';
import { edgeTileFused } from '../cpu/edge-fused.js';
import type { EdgePlan } from './edge-plan.js';

export interface EdgeTileResult {
  norm: Float32Array;
  edge: Float32Array;
}

/** The CPU backend: the fused kernel (src/cpu/edge-fused.ts), bit-identical to the twins normalizeCpu + edgeCpu. */
export function edgeTileCpu(plan: EdgePlan, cube: Float32Array, P: number): EdgeTileResult {
  return edgeTileFused(plan, cube, P);
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
  const set = new BufferSet(ctx, 'edgeTile');
  try {
    const device = ctx.device;
    // Everything up to the submit runs without waiting on the GPU, so a caller that yields
    // once after calling this can read its next tile while the GPU works (double buffering).
    // Allocation and validation errors are collected by error scopes and checked after.
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const xBuf = set.upload('x', Float32Array.from(plan.x));
    const cubeBuf = set.upload('cube', cube.subarray(0, plan.nE * P));
    const normBuf = set.storage('norm', NORM_ROWS * P * 4);
    const outBuf = set.storage('out', EDGE_ROWS * P * 4);
    // One readback buffer (norm rows, then edge rows): one map per tile.
    const read = set.readback('normEdge', (NORM_ROWS + EDGE_ROWS) * P * 4);
    const encoder = device.createCommandEncoder({ label: 'edgeTile.encoder' });
    await encodeDispatch(ctx, encoder, normalizeKernel, P, normalizeParams(plan), [xBuf, cubeBuf, normBuf], set.buffers);
    await encodeDispatch(ctx, encoder, edgeKernel, P, edgeParams(plan), [xBuf, cubeBuf, normBuf, outBuf], set.buffers);
    encoder.copyBufferToBuffer(normBuf, 0, read, 0, NORM_ROWS * P * 4);
    encoder.copyBufferToBuffer(outBuf, 0, read, NORM_ROWS * P * 4, EDGE_ROWS * P * 4);
    device.queue.submit([encoder.finish()]);
    const invalid = await guard(ctx, device.popErrorScope());
    const oom = await guard(ctx, device.popErrorScope());
    if (oom) throw new GpuOutOfMemoryError(`a tile of ${P} pixels`);
    if (invalid) throw new Error(`GPU validation error in normalize/edge: ${invalid.message}`);
    const both = await readFloat32(ctx, read, (NORM_ROWS + EDGE_ROWS) * P);
    return { norm: both.subarray(0, NORM_ROWS * P), edge: both.subarray(NORM_ROWS * P) };
  } finally {
    await set.release();
  }
}
