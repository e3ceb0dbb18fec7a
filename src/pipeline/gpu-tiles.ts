/**
 * Per-pixel steps on the GPU, tile after tile, through a ring of RING_SLOTS slots of
 * persistent buffers (UploadRing of TileSlots, src/gpu/ring.ts):
 *  - submit(tile i): the slot of tile i (free once tile i - RING_SLOTS is done); one upload
 *    of the tile's spectra into the slot's cube buffer, shared by every step of the tile (a
 *    combined step of `xanes run` encodes edge, fit and lcf against the same buffer); each
 *    step's dispatches; one copy per output block into the slot's single readback buffer;
 *    one submit. Nothing here waits on the GPU, so the runner submits tile i + 1 before it
 *    collects tile i: the upload and the work of tile i + 1 are queued while tile i computes,
 *    and tile i's readback is read on the host while tile i + 1 computes.
 *  - collect(tile i): one mapAsync of the readback buffer; the steps read their rows straight
 *    from the mapped range into their maps (no copy of the readback); one unmap.
 * No buffer and no bind group is created per tile once the slots have grown to the tile
 * height (a slot keeps its bind groups, TileSlot.bindGroup; the uniform
 * parameters are rewritten in place, plan tables are uploaded once per run).
 *
 * Bytes moved per tile of P pixels (nE energies; R = readRows float32 rows per pixel: edge
 * 14, lcf M + 3, fit its rows + 3 from the noise row on, a combined step the sum): 4 nE P
 * up (one queue.writeBuffer: a host copy into Dawn's staging memory, then the copy to the
 * device), 4 R P down (one copy into the readback, one map), and on the device each kernel
 * reads the cube once (4 nE P) and writes its rows. What bounds it on an H100 (3.35 TB/s
 * HBM, PCIe ~25 GB/s each way), nE = 101, edge step, per 1M-pixel tile: 404 MB up = 16 ms
 * over PCIe, 56 MB down = 2.2 ms (the other direction, overlapped), normalize + edge ~0.9 GB
 * of HBM traffic = 0.3 ms. With uploads overlapped with the kernels and readbacks, as this
 * ring does, the link bounds the device side at ~60M spectra/s (2x10^7 spectra: ~0.33 s of
 * uploads against ~6 ms of kernels). The host bounds it first: the copy into the staging
 * memory (404 MB at one thread's ~5-10 GB/s: 40-80 ms per tile) and the source (reading,
 * flat/dark conversion: ~1M spectra/s on 2 cores, bench host). Every step of `xanes run`
 * reads the one upload, so another step adds ~0.1 ms of HBM time per 1M-pixel tile, no
 * PCIe time. On a software adapter (llvmpipe) copies and kernels share the same CPU cores,
 * so the overlap gains little there; the structure is for a discrete GPU.
 */
import type { GpuContext } from '../gpu/device.js';
import { guard } from '../gpu/device.js';
import { TileSlot, UploadRing } from '../gpu/ring.js';
import { GpuOutOfMemoryError, writeFloat32 } from '../gpu/buffers.js';
import type { GpuTile, GpuTilePart, PixelStep, TileDest, TileResult } from './step.js';

/**
 * Slots in the ring: tile i + 1 is queued while tile i computes and is read back, so two
 * slots keep the GPU fed; a third would only let the host run further ahead of a GPU that
 * is already busy, at one more tile of device memory.
 */
export const RING_SLOTS = 2;

/**
 * Copies of a tile's spectra per ring slot, for memory plans: Dawn's staging copy of the
 * upload and the slot's device buffer, which on a software adapter (llvmpipe) is host memory
 * too, held by Dawn and by the GL driver (measured before the ring, with one tile in flight:
 * the resident size grew by about four tiles' worth per tile beside the two host tiles).
 */
export const GPU_SLOT_TILE_COPIES = 4;

/** A submitted tile, to collect. */
export interface PendingTile {
  readonly P: number;
  readonly read: GPUBuffer;
  readonly readBytes: number;
}

export class GpuTileRing {
  private readonly ring: UploadRing<TileSlot>;
  private readonly constants = new Map<Float32Array, GPUBuffer>();
  private count = 0;

  constructor(private readonly ctx: GpuContext, private readonly part: GpuTilePart, private readonly nE: number, private readonly what: string, slots = RING_SLOTS) {
    this.ring = new UploadRing(ctx, Array.from({ length: slots }, (_, k) => new TileSlot(ctx, `${what}.slot${k}`)));
  }

  /** Device bytes the ring holds now (slots and constants). */
  get bytes(): number {
    let n = 0;
    for (const s of this.ring.slots) n += s.bytes;
    for (const b of this.constants.values()) n += b.size;
    return n;
  }

  private constant(name: string, data: Float32Array, uniform = false): GPUBuffer {
    let b = this.constants.get(data);
    if (!b) {
      const size = uniform ? Math.max(16, Math.ceil(data.byteLength / 16) * 16) : Math.max(4, data.byteLength);
      const usage = (uniform ? GPUBufferUsage.UNIFORM : GPUBufferUsage.STORAGE) | GPUBufferUsage.COPY_DST;
      b = this.ctx.device.createBuffer({ label: `${this.what}.${name}`, size, usage });
      writeFloat32(this.ctx, b, 0, data);
      this.constants.set(data, b);
    }
    return b;
  }

  /**
   * Uploads the tile (`cube`, [nE][P]) and submits its work; waits only for the slot's
   * previous tile. GpuOutOfMemoryError when the slot's buffers cannot grow to P pixels.
   */
  async submit(cube: Float32Array, P: number): Promise<PendingTile> {
    const { ctx, part, nE } = this;
    const device = ctx.device;
    const i = this.count;
    const slot = await this.ring.acquire(i);
    slot.begin();
    const readBytes = 4 * part.readRows * P;
    device.pushErrorScope('out-of-memory');
    let failure: unknown = null;
    let read: GPUBuffer | null = null;
    try {
      const cubeBuf = slot.storage('cube', 4 * nE * P);
      read = slot.readback(readBytes);
      writeFloat32(ctx, cubeBuf, 0, cube.subarray(0, nE * P));
      const encoder = device.createCommandEncoder({ label: `${this.what}.encoder` });
      const t: GpuTile = { ctx, encoder, cube: cubeBuf, read, slot, constant: (name, data, uniform) => this.constant(name, data, uniform) };
      await part.encode(t, P, 0);
      await this.ring.submit(i, encoder, this.what);
    } catch (e) {
      failure = e;
    }
    // The scope is popped whatever happened, so the device's scope stack stays balanced.
    const oom = await guard(ctx, device.popErrorScope());
    if (oom) {
      slot.destroy();
      throw new GpuOutOfMemoryError(`a tile of ${P} pixels`);
    }
    if (failure !== null) throw failure;
    this.count++;
    return { P, read: read!, readBytes };
  }

  /**
   * Maps tile `p`'s readback once and hands the rows to the part; `cube` is its host tile,
   * `dest` where its maps go (GpuTilePart.finish).
   */
  async collect(p: PendingTile, cube: Float32Array, dest?: TileDest): Promise<TileResult> {
    if (p.readBytes === 0) return this.part.finish(new Float32Array(0), cube, p.P, dest);
    await guard(this.ctx, p.read.mapAsync(GPUMapMode.READ, 0, p.readBytes));
    try {
      return await this.part.finish(new Float32Array(p.read.getMappedRange(0, p.readBytes)), cube, p.P, dest);
    } finally {
      p.read.unmap();
    }
  }

  /** Once the queue is idle: destroys every buffer of the ring and releases the part. */
  async destroy(): Promise<void> {
    try {
      await guard(this.ctx, this.ctx.device.queue.onSubmittedWorkDone());
    } finally {
      for (const s of this.ring.slots) s.destroy();
      for (const b of this.constants.values()) b.destroy();
      this.constants.clear();
      await this.part.dispose?.();
    }
  }
}

/**
 * One tile through a step's GPU part outside the runner (PixelStep.runTile on a GPU, tests,
 * benchmarks): a one-slot ring made and destroyed here. A tile beyond the device's binding
 * limits (`bindingBytesPerPixel`) runs in pieces, re-laid out on the host.
 */
export async function runGpuTileOnce(
  ctx: GpuContext,
  step: Pick<PixelStep, 'name' | 'mapNames'> & { gpuPart?(ctx: GpuContext): GpuTilePart },
  nE: number,
  bindingBytesPerPixel: number,
  cube: Float32Array,
  P: number,
): Promise<TileResult> {
  const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  const maxPixels = Math.max(1, Math.floor(limit / Math.max(4, bindingBytesPerPixel)));
  const part = step.gpuPart!(ctx);
  const ring = new GpuTileRing(ctx, part, nE, step.name, 1);
  try {
    if (P <= maxPixels) return await ring.collect(await ring.submit(cube, P), cube);
    const maps: Record<string, Float32Array> = {};
    const status = new Uint8Array(P);
    const piece = new Float32Array(nE * maxPixels);
    for (let p0 = 0; p0 < P; p0 += maxPixels) {
      const n = Math.min(maxPixels, P - p0);
      for (let i = 0; i < nE; i++) piece.set(cube.subarray(i * P + p0, i * P + p0 + n), i * n);
      const r = await ring.collect(await ring.submit(piece, n), piece.subarray(0, nE * n));
      for (const [name, m] of Object.entries(r.maps)) (maps[name] ??= new Float32Array(P)).set(m, p0);
      status.set(r.status, p0);
    }
    return { maps, status };
  } finally {
    await ring.destroy();
  }
}

/** What a raw-rows GPU run needs: a part's encode and its row count. */
export type RowsEncoder = Pick<GpuTilePart, 'readRows' | 'scratchBytesPerPixel' | 'encode'>;

/**
 * One tile through `enc` outside the runner, its readback rows ([readRows][P] float32) copied
 * out (kernel tests, `xanes lcf --normalize`'s rows): a one-slot ring made and destroyed here.
 */
export async function gpuRowsOnce(ctx: GpuContext, what: string, nE: number, enc: RowsEncoder, cube: Float32Array, P: number): Promise<Float32Array> {
  const part: GpuTilePart = { ...enc, finish: async (rows) => ({ maps: { rows: rows.slice() }, status: new Uint8Array(0) }) };
  const ring = new GpuTileRing(ctx, part, nE, what, 1);
  try {
    return (await ring.collect(await ring.submit(cube, P), cube)).maps.rows;
  } finally {
    await ring.destroy();
  }
}
