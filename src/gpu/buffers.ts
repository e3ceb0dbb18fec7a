/**
 * GPU buffer ownership: every buffer belongs to a BufferSet that destroys it, and a set is
 * released only after the submit that uses it has completed (onSubmittedWorkDone), so no
 * buffer is destroyed under a running dispatch.
 */
import type { GpuContext } from './device.js';
import { guard } from './device.js';

export class BufferSet {
  readonly buffers: GPUBuffer[] = [];
  constructor(private readonly ctx: GpuContext, private readonly label: string) {}

  /** A storage buffer (at least 4 bytes: zero-sized bindings are invalid). */
  storage(name: string, bytes: number, extraUsage = 0): GPUBuffer {
    return this.track(this.ctx.device.createBuffer({
      label: `${this.label}.${name}`,
      size: align4(Math.max(4, bytes)),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | extraUsage,
    }));
  }

  /** A storage buffer filled from `data` (queue.writeBuffer: staged by Dawn, not mapped here). */
  upload(name: string, data: ArrayBufferView): GPUBuffer {
    const b = this.storage(name, data.byteLength);
    this.ctx.device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, align4Down(data.byteLength));
    return b;
  }

  readback(name: string, bytes: number): GPUBuffer {
    return this.track(this.ctx.device.createBuffer({
      label: `${this.label}.${name}.readback`,
      size: align4(Math.max(4, bytes)),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    }));
  }

  track(b: GPUBuffer): GPUBuffer {
    this.buffers.push(b);
    return b;
  }

  /** Destroys every buffer once the queue has finished all work submitted so far. */
  async release(): Promise<void> {
    try {
      await guard(this.ctx, this.ctx.device.queue.onSubmittedWorkDone());
    } finally {
      for (const b of this.buffers) b.destroy();
      this.buffers.length = 0;
    }
  }
}

export function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}
function align4Down(n: number): number {
  return Math.floor(n / 4) * 4;
}

/** Maps a readback buffer and copies out its contents as float32. */
export async function readFloat32(ctx: GpuContext, b: GPUBuffer, count: number): Promise<Float32Array> {
  await guard(ctx, b.mapAsync(GPUMapMode.READ, 0, align4(count * 4)));
  const out = new Float32Array(count);
  out.set(new Float32Array(b.getMappedRange(0, align4(count * 4)), 0, count));
  b.unmap();
  return out;
}

/** The GPU reported out-of-memory for a tile's buffers; the runner halves the tile and retries. */
export class GpuOutOfMemoryError extends Error {
  constructor(what: string) {
    super(`the GPU ran out of memory for ${what}`);
    this.name = 'GpuOutOfMemoryError';
  }
}
