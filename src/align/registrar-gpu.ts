/** The registration steps on the GPU kernels (float32). See registrar.ts. */
import type { GpuContext } from '../gpu/device.js';
import { guard } from '../gpu/device.js';
import { BufferSet, GpuOutOfMemoryError, readFloat32 } from '../gpu/buffers.js';
import { encodeDispatch } from '../gpu/kernel.js';
import { encodeFft2, uploadTwiddles } from '../kernels/fft.js';
import { crossPowerKernel } from '../kernels/cross_power.js';
import { corrPeakKernel, peakChunks } from '../kernels/corr_peak.js';
import { dftUpsampleKernel } from '../kernels/dft_upsample.js';
import { reducePeak } from '../cpu/corr_peak.js';
import { upsampleKernel } from '../cpu/dft_upsample.js';
import { imageEnergy, normalisePeak, regionAround, refineUpsampled, type PairShift, type Registrar, type RegisterOptions, type Spectrum } from './registrar.js';

class GpuSpectrum implements Spectrum {
  constructor(public buffer: GPUBuffer | null, private set: BufferSet, readonly energy: number) {}
  release(): void {
    this.buffer = null;
    void this.set.release();
  }
}

/** Checks the error scopes pushed before a batch of allocations and dispatches. */
async function popScopes(ctx: GpuContext, what: string): Promise<void> {
  const invalid = await guard(ctx, ctx.device.popErrorScope());
  const oom = await guard(ctx, ctx.device.popErrorScope());
  if (oom) throw new GpuOutOfMemoryError(what);
  if (invalid) throw new Error(`GPU validation error in ${what}: ${invalid.message}`);
}

function pushScopes(ctx: GpuContext): void {
  ctx.device.pushErrorScope('out-of-memory');
  ctx.device.pushErrorScope('validation');
}

export class GpuRegistrar implements Registrar {
  private set: BufferSet;
  private twx: GPUBuffer;
  private twy: GPUBuffer;
  private w1: GPUBuffer;
  private w2: GPUBuffer;
  private x: GPUBuffer;
  private val: GPUBuffer;
  private idx: GPUBuffer;
  private t: GPUBuffer;
  private r: GPUBuffer;
  private readonly bytes: number;

  constructor(private ctx: GpuContext, readonly ny: number, readonly nx: number, private o: RegisterOptions, private regionSize: number) {
    this.bytes = 8 * ny * nx;
    this.set = new BufferSet(ctx, 'register');
    const s = this.set;
    this.twx = uploadTwiddles(s, nx);
    this.twy = ny === nx ? this.twx : uploadTwiddles(s, ny);
    this.w1 = s.storage('w1', this.bytes);
    this.w2 = s.storage('w2', this.bytes);
    this.x = s.storage('x', this.bytes);
    this.val = s.storage('val', 4 * peakChunks(ny * nx));
    this.idx = s.storage('idx', 4 * peakChunks(ny * nx));
    this.t = s.storage('t', 8 * ny * regionSize);
    this.r = s.storage('r', 8 * regionSize * regionSize);
  }

  async spectrum(image: Float32Array): Promise<Spectrum> {
    const { ctx, ny, nx } = this;
    const set = new BufferSet(ctx, 'spectrum');
    pushScopes(ctx);
    const c = new Float32Array(2 * ny * nx);
    for (let i = 0; i < image.length; i++) c[2 * i] = image[i];
    const a = set.upload('image', c);
    const owned: GPUBuffer[] = [];
    const enc = ctx.device.createCommandEncoder({ label: 'spectrum.encoder' });
    const out = await encodeFft2(ctx, enc, { a, b: this.w1, twx: this.twx, twy: this.twy }, ny, nx, false, owned);
    if (out !== a) enc.copyBufferToBuffer(out, 0, a, 0, this.bytes);
    ctx.device.queue.submit([enc.finish()]);
    owned.forEach((b) => set.track(b));
    await popScopes(ctx, `the FFT of a ${ny}x${nx} image`);
    return new GpuSpectrum(a, set, imageEnergy(image));
  }

  async register(ref: Spectrum, moving: Spectrum): Promise<PairShift> {
    const { ctx, ny, nx } = this;
    const N = ny * nx;
    const F = (ref as GpuSpectrum).buffer!, G = (moving as GpuSpectrum).buffer!;
    const work = new BufferSet(ctx, 'register.pair');
    try {
      pushScopes(ctx);
      const chunks = peakChunks(N);
      const valRead = work.readback('val', 4 * chunks), idxRead = work.readback('idx', 4 * chunks);
      let enc = ctx.device.createCommandEncoder({ label: 'register.encoder' });
      await encodeDispatch(ctx, enc, crossPowerKernel, N, { ny, nx, mode: this.o.mode, highpass: this.o.highpass }, [F, G, this.x], work.buffers);
      enc.copyBufferToBuffer(this.x, 0, this.w1, 0, this.bytes);
      const c = await encodeFft2(ctx, enc, { a: this.w1, b: this.w2, twx: this.twx, twy: this.twy }, ny, nx, true, work.buffers);
      await encodeDispatch(ctx, enc, corrPeakKernel, chunks, { n: N }, [c, this.val, this.idx], work.buffers);
      enc.copyBufferToBuffer(this.val, 0, valRead, 0, 4 * chunks);
      enc.copyBufferToBuffer(this.idx, 0, idxRead, 0, 4 * chunks);
      ctx.device.queue.submit([enc.finish()]);
      await popScopes(ctx, `the correlation of ${ny}x${nx} images`);
      const val = await readFloat32(ctx, valRead, chunks);
      const idx = await readU32(ctx, idxRead, chunks);
      const p = reducePeak(val, idx);
      if (p.index < 0) return { dy: NaN, dx: NaN, peak: NaN };
      const region = regionAround(p.index, ny, nx);
      const S = region.size;
      pushScopes(ctx);
      const rRead = work.readback('r', 8 * S * S);
      enc = ctx.device.createCommandEncoder({ label: 'register.upsample' });
      const common = { ny, nx, size: S };
      const kx = work.upload('kx', Float32Array.from(upsampleKernel(nx, region.tx0, S, region.factor)));
      const ky = work.upload('ky', Float32Array.from(upsampleKernel(ny, region.ty0, S, region.factor)));
      await encodeDispatch(ctx, enc, dftUpsampleKernel, ny * S, { ...common, stage: 0, scale: 1 }, [this.x, this.t, kx], work.buffers);
      await encodeDispatch(ctx, enc, dftUpsampleKernel, S * S, { ...common, stage: 1, scale: 1 / N }, [this.t, this.r, ky], work.buffers);
      enc.copyBufferToBuffer(this.r, 0, rRead, 0, 8 * S * S);
      ctx.device.queue.submit([enc.finish()]);
      await popScopes(ctx, 'the upsampled correlation');
      const R = await readFloat32(ctx, rRead, 2 * S * S);
      return normalisePeak(refineUpsampled(R, region), this.o.mode, ref, moving);
    } finally {
      await work.release();
    }
  }

  destroy(): void {
    void this.set.release();
  }
}

async function readU32(ctx: GpuContext, b: GPUBuffer, count: number): Promise<Uint32Array> {
  await guard(ctx, b.mapAsync(GPUMapMode.READ, 0, count * 4));
  const out = new Uint32Array(count);
  out.set(new Uint32Array(b.getMappedRange(0, count * 4), 0, count));
  b.unmap();
  return out;
}
