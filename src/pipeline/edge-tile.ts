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

export async function edgeTileGpu(ctx: GpuContext, plan: EdgePlan, cube: Float32Array, P: number): Promise<EdgeTileResult> {
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
    const normRead = set.readback('norm', NORM_ROWS * P * 4);
    const outRead = set.readback('out', EDGE_ROWS * P * 4);
    const encoder = device.createCommandEncoder({ label: 'edgeTile.encoder' });
    await encodeDispatch(ctx, encoder, normalizeKernel, P, normalizeParams(plan), [xBuf, cubeBuf, normBuf], set.buffers);
    await encodeDispatch(ctx, encoder, edgeKernel, P, edgeParams(plan), [xBuf, cubeBuf, normBuf, outBuf], set.buffers);
    encoder.copyBufferToBuffer(normBuf, 0, normRead, 0, NORM_ROWS * P * 4);
    encoder.copyBufferToBuffer(outBuf, 0, outRead, 0, EDGE_ROWS * P * 4);
    device.queue.submit([encoder.finish()]);
    const invalid = await guard(ctx, device.popErrorScope());
    const oom = await guard(ctx, device.popErrorScope());
    if (oom) throw new GpuOutOfMemoryError(`a tile of ${P} pixels`);
    if (invalid) throw new Error(`GPU validation error in normalize/edge: ${invalid.message}`);
    const norm = await readFloat32(ctx, normRead, NORM_ROWS * P);
    const edge = await readFloat32(ctx, outRead, EDGE_ROWS * P);
    return { norm, edge };
  } finally {
    await set.release();
  }
}
