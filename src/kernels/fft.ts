/** GPU wrapper of shaders/fft.wgsl (CPU twin: src/cpu/fft.ts): 2-D FFTs by Stockham stages. */
import type { KernelDef } from '../gpu/kernel.js';
import { encodeDispatch } from '../gpu/kernel.js';
import type { GpuContext } from '../gpu/device.js';
import type { BufferSet } from '../gpu/buffers.js';
import { twiddles } from '../cpu/fft.js';
import { alignConstants } from './align_layout.js';
import wgsl from '../../shaders/fft.wgsl';

export const fftKernel: KernelDef = {
  name: 'fft',
  wgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'src', kind: 'read-only-storage' },
    { name: 'dst', kind: 'storage' },
    { name: 'tw', kind: 'read-only-storage' },
  ],
  params: [['n', 'u32'], ['ns', 'u32'], ['tw_stride', 'u32'], ['elem_stride', 'u32'], ['line_stride', 'u32'], ['sign', 'f32'], ['scale', 'f32']],
  constants: alignConstants(),
};

/** The twiddle table of length n as a GPU buffer (float64 values rounded once to float32). */
export function uploadTwiddles(set: BufferSet, n: number): GPUBuffer {
  return set.upload(`tw${n}`, Float32Array.from(twiddles(n)));
}

/**
 * Records a 2-D FFT of the [ny][nx] complex image in `a` (ping-ponging with `b`, same size).
 * Returns the buffer that holds the result. The inverse is scaled by 1/(nx ny).
 */
export async function encodeFft2(
  ctx: GpuContext,
  encoder: GPUCommandEncoder,
  bufs: { a: GPUBuffer; b: GPUBuffer; twx: GPUBuffer; twy: GPUBuffer },
  ny: number,
  nx: number,
  inverse: boolean,
  owned: GPUBuffer[],
): Promise<GPUBuffer> {
  let src = bufs.a, dst = bufs.b;
  const sign = inverse ? -1 : 1;
  const pass = async (n: number, es: number, ls: number, lines: number, tw: GPUBuffer, finalScale: number) => {
    for (let ns = 1; ns < n; ns *= 2) {
      const scale = ns * 2 === n ? finalScale : 1;
      await encodeDispatch(ctx, encoder, fftKernel, lines * (n / 2), { n, ns, tw_stride: n / (2 * ns), elem_stride: es, line_stride: ls, sign, scale }, [src, dst, tw], owned);
      [src, dst] = [dst, src];
    }
  };
  // The inverse's 1/(nx ny) goes on the very last stage (the row pass's when ny = 1).
  const s = inverse ? 1 / (nx * ny) : 1;
  await pass(nx, 1, nx, ny, bufs.twx, ny > 1 ? 1 : s);
  await pass(ny, nx, 1, nx, bufs.twy, ny > 1 ? s : 1);
  return src;
}
