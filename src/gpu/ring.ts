/**
 * The slot ring for tiles streamed through the GPU (k-means in streamed mode, the PCA
 * covariance pass, and the per-pixel steps of the tiled runner with TileSlot's buffers,
 * src/pipeline/gpu-tiles.ts): tile i uploads into slot i % n of a fixed set of buffers made once. Queue
 * order already puts tile i's upload after the work of tile i - n, which used the same slot;
 * the host waits for that work only to bound Dawn's staged uploads to n tiles, so tile i + 1
 * is queued while tile i computes. One submit per tile, its validation errors thrown.
 */
import type { GpuContext } from './device.js';
import { guard } from './device.js';
import { bindEntries } from './kernel.js';

/** Bind groups a slot keeps at most (a part that binds a new buffer every tile cannot grow it past this). */
const SLOT_BIND_GROUPS = 256;

/** Identity numbers of GPU objects, for bind group keys. */
const ids = new WeakMap<object, number>();
let nextId = 1;
function idOf(o: object): number {
  let id = ids.get(o);
  if (id === undefined) ids.set(o, (id = nextId++));
  return id;
}

/** Submits one command buffer; a validation error is thrown as one message naming `what`. */
export async function submitChecked(ctx: GpuContext, encoder: GPUCommandEncoder, what: string): Promise<void> {
  const device = ctx.device;
  device.pushErrorScope('validation');
  device.queue.submit([encoder.finish()]);
  const invalid = await guard(ctx, device.popErrorScope());
  if (invalid) throw new Error(`GPU validation error in ${what}: ${invalid.message}`);
}

export class UploadRing<S> {
  private readonly done: (Promise<unknown> | undefined)[];

  /** `slots`: what one tile needs (buffers), one entry per slot. */
  constructor(private readonly ctx: GpuContext, readonly slots: S[]) {
    if (slots.length === 0) throw new RangeError('UploadRing: no slots');
    this.done = new Array<Promise<unknown> | undefined>(slots.length);
  }

  /** The slot of tile i (tiles taken in order 0, 1, ...), once the tile that used it before is done. */
  async acquire(i: number): Promise<S> {
    const r = i % this.slots.length;
    const prev = this.done[r];
    if (prev) await guard(this.ctx, prev);
    return this.slots[r];
  }

  /** Submits tile i's commands (see submitChecked) and records when they are done. */
  async submit(i: number, encoder: GPUCommandEncoder, what: string): Promise<void> {
    await submitChecked(this.ctx, encoder, what);
    this.done[i % this.slots.length] = this.ctx.device.queue.onSubmittedWorkDone();
  }
}

/**
 * The persistent buffers of one slot of a ring of streamed tiles (the tiled runner's GPU
 * path, src/pipeline/gpu-tiles.ts): made at a tile's first use of a name, kept tile after
 * tile, replaced by a larger one only when a taller tile needs more (tiles grow from one row
 * to their planned height, so a run replaces each a few times at most, and a buffer larger
 * than the tile is fine: kernels index by the tile's pixel count). A slot is handed out by
 * UploadRing.acquire only once the work of the tile that used it before is done, so
 * replacing or rewriting its buffers never touches a running dispatch.
 */
export class TileSlot {
  private readonly bufs = new Map<string, GPUBuffer>();
  private readonly uniforms: GPUBuffer[] = [];
  private nextUniform = 0;
  private readonly groups = new Map<string, GPUBindGroup>();

  constructor(private readonly ctx: GpuContext, readonly label: string) {}

  /**
   * The bind group of `layout` over `buffers` (see UniformSink.bindGroup): made once and
   * used tile after tile (the slot's buffers, the uniform ones included, are the same from
   * one tile to the next; a replaced buffer makes new groups, and the old ones are dropped).
   */
  bindGroup(label: string, layout: GPUBindGroupLayout, buffers: GPUBuffer[], uniformBytes: number): GPUBindGroup {
    const key = `${idOf(layout)}:${uniformBytes}:${buffers.map(idOf).join(',')}`;
    let g = this.groups.get(key);
    if (!g) {
      if (this.groups.size >= SLOT_BIND_GROUPS) this.groups.clear();
      g = this.ctx.device.createBindGroup({ label, layout, entries: bindEntries(buffers, uniformBytes) });
      this.groups.set(key, g);
    }
    return g;
  }

  /** A buffer of at least `bytes` (rounded up to 4, at least 4) named `name`. */
  buffer(name: string, bytes: number, usage: number): GPUBuffer {
    const size = Math.ceil(Math.max(4, bytes) / 4) * 4;
    const old = this.bufs.get(name);
    if (old && old.size >= size && old.usage === usage) return old;
    if (old) this.groups.clear();
    old?.destroy();
    const b = this.ctx.device.createBuffer({ label: `${this.label}.${name}`, size, usage });
    this.bufs.set(name, b);
    return b;
  }

  /** A storage buffer (also a copy source and destination). */
  storage(name: string, bytes: number): GPUBuffer {
    return this.buffer(name, bytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
  }

  /** The slot's one readback buffer: every output of a tile is copied into it, mapped once. */
  readback(bytes: number): GPUBuffer {
    return this.buffer('readback', bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
  }

  /** Starts a tile: its dispatches get the slot's uniform buffers again, in the same order. */
  begin(): void {
    this.nextUniform = 0;
  }

  /** The next dispatch's uniform parameter buffer (UniformSink of encodeDispatch). */
  uniform(label: string, bytes: number): GPUBuffer {
    const i = this.nextUniform++;
    const old = this.uniforms[i];
    if (old && old.size >= bytes) return old;
    if (old) this.groups.clear();
    old?.destroy();
    const b = this.ctx.device.createBuffer({ label: `${this.label}.${label}`, size: bytes, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    this.uniforms[i] = b;
    return b;
  }

  /** Device bytes the slot holds. */
  get bytes(): number {
    let n = 0;
    for (const b of this.bufs.values()) n += b.size;
    for (const b of this.uniforms) n += b.size;
    return n;
  }

  destroy(): void {
    for (const b of this.bufs.values()) b.destroy();
    for (const b of this.uniforms) b.destroy();
    this.bufs.clear();
    this.uniforms.length = 0;
    this.groups.clear();
  }
}
