/**
 * Removing a displacement from whole images by a Fourier shift, on either backend (GPU:
 * fft + shift_apply + inverse fft; CPU: their float64 twins). The image is padded to a
 * power-of-two size with its mean (NaN pixels too); pixels whose source (y + dy, x + dx)
 * lies outside the frame, or whose nearest source pixel was NaN, are NaN in the result.
 */
import type { GpuContext } from '../gpu/device.js';
import { guard } from '../gpu/device.js';
import { BufferSet, GpuOutOfMemoryError, readFloat32 } from '../gpu/buffers.js';
import { encodeDispatch } from '../gpu/kernel.js';
import { encodeFft2, uploadTwiddles } from '../kernels/fft.js';
import { shiftApplyKernel } from '../kernels/shift_apply.js';
import { ShiftMode } from '../kernels/align_layout.js';
import { fft2Cpu } from '../cpu/fft.js';
import { fourierShiftCpu } from '../cpu/shift_apply.js';
import { paddedSize } from './prepare.js';

function padded(img: ArrayLike<number>, H: number, W: number, ny: number, nx: number): Float64Array {
  let s = 0, n = 0;
  for (let i = 0; i < H * W; i++) if (Number.isFinite(img[i])) { s += img[i]; n++; }
  const mean = n > 0 ? s / n : 0;
  const c = new Float64Array(2 * ny * nx);
  for (let i = 0; i < ny * nx; i++) c[2 * i] = mean;
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    const v = img[y * W + x];
    c[2 * (y * nx + x)] = Number.isFinite(v) ? v : mean;
  }
  return c;
}

function finish(img: ArrayLike<number>, c: ArrayLike<number>, H: number, W: number, nx: number, dy: number, dx: number, out: Float32Array): void {
  for (let y = 0; y < H; y++) {
    const sy = y + dy;
    for (let x = 0; x < W; x++) {
      const sx = x + dx;
      const inside = sy >= 0 && sy <= H - 1 && sx >= 0 && sx <= W - 1;
      out[y * W + x] = inside && Number.isFinite(img[Math.round(sy) * W + Math.round(sx)]) ? c[2 * (y * nx + x)] : NaN;
    }
  }
}

export function fourierApplyCpu(img: ArrayLike<number>, H: number, W: number, dy: number, dx: number, out: Float32Array): void {
  const { ny, nx } = paddedSize(H, W);
  const c = padded(img, H, W, ny, nx);
  fft2Cpu(c, ny, nx);
  fourierShiftCpu(c, ny, nx, dy, dx);
  fft2Cpu(c, ny, nx, true);
  finish(img, c, H, W, nx, dy, dx, out);
}

/** The GPU path, one image per call; buffers live as long as the object. */
export class FourierApplyGpu {
  private set: BufferSet;
  private a: GPUBuffer;
  private b: GPUBuffer;
  private twx: GPUBuffer;
  private twy: GPUBuffer;
  private read: GPUBuffer;
  private ny: number;
  private nx: number;

  constructor(private ctx: GpuContext, private H: number, private W: number) {
    ({ ny: this.ny, nx: this.nx } = paddedSize(H, W));
    this.set = new BufferSet(ctx, 'fourierApply');
    const bytes = 8 * this.ny * this.nx;
    this.a = this.set.storage('a', bytes);
    this.b = this.set.storage('b', bytes);
    this.twx = uploadTwiddles(this.set, this.nx);
    this.twy = this.ny === this.nx ? this.twx : uploadTwiddles(this.set, this.ny);
    this.read = this.set.readback('out', bytes);
  }

  async apply(img: ArrayLike<number>, dy: number, dx: number, out: Float32Array): Promise<void> {
    const { ctx, ny, nx, H, W } = this;
    const work = new BufferSet(ctx, 'fourierApply.image');
    try {
      ctx.device.pushErrorScope('out-of-memory');
      ctx.device.pushErrorScope('validation');
      ctx.device.queue.writeBuffer(this.a, 0, Float32Array.from(padded(img, H, W, ny, nx)));
      const shifts = work.upload('shifts', Float32Array.from([dy, dx]));
      const enc = ctx.device.createCommandEncoder({ label: 'fourierApply.encoder' });
      const f = await encodeFft2(ctx, enc, { a: this.a, b: this.b, twx: this.twx, twy: this.twy }, ny, nx, false, work.buffers);
      const g = f === this.a ? this.b : this.a;
      await encodeDispatch(ctx, enc, shiftApplyKernel, ny * nx, { mode: ShiftMode.FOURIER, energy: 0, height: ny, width: nx, src_y0: 0, src_rows: ny, y0: 0, rows: ny }, [f, g, shifts], work.buffers);
      const r = await encodeFft2(ctx, enc, { a: g, b: f, twx: this.twx, twy: this.twy }, ny, nx, true, work.buffers);
      enc.copyBufferToBuffer(r, 0, this.read, 0, 8 * ny * nx);
      ctx.device.queue.submit([enc.finish()]);
      const invalid = await guard(ctx, ctx.device.popErrorScope());
      const oom = await guard(ctx, ctx.device.popErrorScope());
      if (oom) throw new GpuOutOfMemoryError(`the Fourier shift of a ${ny}x${nx} image`);
      if (invalid) throw new Error(`GPU validation error in the Fourier shift: ${invalid.message}`);
      const c = await readFloat32(ctx, this.read, 2 * ny * nx);
      finish(img, c, H, W, nx, dy, dx, out);
    } finally {
      await work.release();
    }
  }

  destroy(): void {
    void this.set.release();
  }
}
