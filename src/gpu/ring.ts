/**
 * The slot ring for tiles streamed through the GPU (k-means in streamed mode, the PCA
 * covariance pass): tile i uploads into slot i % n of a fixed set of buffers made once. Queue
 * order already puts tile i's upload after the work of tile i - n, which used the same slot;
 * the host waits for that work only to bound Dawn's staged uploads to n tiles, so tile i + 1
 * is queued while tile i computes. One submit per tile, its validation errors thrown.
 */
import type { GpuContext } from './device.js';
import { guard } from './device.js';

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
