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
    writeBytes(this.ctx, b, 0, new Uint8Array(data.buffer, data.byteOffset, align4Down(data.byteLength)));
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

/** Bytes per bounce copy of writeFloat32 for shared memory (4 MiB). */
const BOUNCE_BYTES = 4 << 20;
let bounce: Uint8Array | null = null;

/**
 * queue.writeBuffer of `data` at byte `offset`. Dawn's bindings refuse views of
 * SharedArrayBuffer (the CPU threads' memory), so those go through a reused 4 MiB bounce
 * buffer (writeBuffer copies at call time, so the bounce buffer is free again at once).
 */
function writeBytes(ctx: GpuContext, buf: GPUBuffer, offset: number, data: Uint8Array): void {
  const queue = ctx.device.queue;
  if (!(data.buffer instanceof SharedArrayBuffer)) {
    queue.writeBuffer(buf, offset, data.buffer, data.byteOffset, data.byteLength);
    return;
  }
  bounce ??= new Uint8Array(BOUNCE_BYTES);
  for (let i = 0; i < data.length; i += bounce.length) {
    const n = Math.min(bounce.length, data.length - i);
    bounce.set(data.subarray(i, i + n));
    queue.writeBuffer(buf, offset + i, bounce.buffer, 0, n);
  }
}

/** writeBytes for float32 data (any length a multiple of 4 bytes). */
export function writeFloat32(ctx: GpuContext, buf: GPUBuffer, offset: number, data: Float32Array): void {
  writeBytes(ctx, buf, offset, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
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
