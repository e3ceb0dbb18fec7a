/**
 * GPU buffer ownership: every buffer belongs to a BufferSet that destroys it, and a set is
 * released only after the submit that uses it has completed (onSubmittedWorkDone), so no
 * buffer is destroyed under a running dispatch.
 */
import type { GpuContext } from './device.js';
import { guard } from './device.js';

/**
 * Buffers of finished tiles kept for the next tile of the same shape, while a tiled run is in
 * progress (withBufferReuse): a tile then creates no buffer (creation, the driver's
 * allocation and Dawn's zero-fill cost llvmpipe more than the copies themselves: 49 % of a
 * no-op tiled run's time, measured). Keyed by label, usage and size; a set asking for a
 * label at another size (tile height changed) destroys that label's kept buffers first, so
 * at most one tile's buffers are kept, the ones the next tile would otherwise create.
 * Kernels write every element of their outputs (tiled runs and whole runs give the same
 * bytes, test/pipeline), so a reused buffer's old contents never reach a result.
 */
interface Pool { free: Map<string, GPUBuffer[]> }
const pools = new WeakMap<GpuContext, Pool>();

/** Runs `fn` with buffer reuse between BufferSets on `ctx`; destroys the kept buffers after. */
export async function withBufferReuse<T>(ctx: GpuContext, fn: () => Promise<T>): Promise<T> {
  if (pools.has(ctx)) return fn();
  const pool: Pool = { free: new Map() };
  pools.set(ctx, pool);
  try {
    return await fn();
  } finally {
    pools.delete(ctx);
    for (const list of pool.free.values()) for (const b of list) b.destroy();
  }
}

export class BufferSet {
  readonly buffers: GPUBuffer[] = [];
  /** Reuse keys of the buffers this set made (others, added by track(), are destroyed). */
  private readonly keys = new Map<GPUBuffer, string>();
  constructor(private readonly ctx: GpuContext, private readonly label: string) {}

  /** A buffer from the tile before (withBufferReuse), else a new one. */
  private make(name: string, size: number, usage: number): GPUBuffer {
    const label = `${this.label}.${name}`;
    const pool = pools.get(this.ctx);
    if (!pool) return this.track(this.ctx.device.createBuffer({ label, size, usage }));
    const key = `${label}|${usage}|${size}`;
    let b = pool.free.get(key)?.pop();
    if (!b) {
      for (const [k, list] of pool.free) {
        if (k.startsWith(`${label}|`) && k !== key) {
          for (const x of list) x.destroy();
          pool.free.delete(k);
        }
      }
      b = this.ctx.device.createBuffer({ label, size, usage });
    }
    this.keys.set(b, key);
    return this.track(b);
  }

  /** A storage buffer (at least 4 bytes: zero-sized bindings are invalid). */
  storage(name: string, bytes: number, extraUsage = 0): GPUBuffer {
    return this.make(name, align4(Math.max(4, bytes)), GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC | extraUsage);
  }

  /** A storage buffer filled from `data` (queue.writeBuffer: staged by Dawn, not mapped here). */
  upload(name: string, data: ArrayBufferView): GPUBuffer {
    const b = this.storage(name, data.byteLength);
    writeBytes(this.ctx, b, 0, new Uint8Array(data.buffer, data.byteOffset, align4Down(data.byteLength)));
    return b;
  }

  readback(name: string, bytes: number): GPUBuffer {
    return this.make(`${name}.readback`, align4(Math.max(4, bytes)), GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  }

  track(b: GPUBuffer): GPUBuffer {
    this.buffers.push(b);
    return b;
  }

  /**
   * Once the queue has finished all work submitted so far: keeps the buffers for the next
   * tile (withBufferReuse, unmapped buffers this set made), destroys the others.
   */
  async release(): Promise<void> {
    let done = false;
    try {
      await guard(this.ctx, this.ctx.device.queue.onSubmittedWorkDone());
      done = true;
    } finally {
      const pool = done ? pools.get(this.ctx) : undefined;
      for (const b of this.buffers) {
        const key = this.keys.get(b);
        if (pool && key !== undefined && b.mapState === 'unmapped') {
          const list = pool.free.get(key);
          if (list) list.push(b);
          else pool.free.set(key, [b]);
        } else b.destroy();
      }
      this.buffers.length = 0;
      this.keys.clear();
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
