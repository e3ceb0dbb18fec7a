/**
 * fft: GPU (float32 Stockham stages) vs CPU twin (float64, same stages) vs a direct DFT
 * (known truth), and the properties the registration relies on: an impulse transforms to a
 * pure phase ramp, inverse(forward(x)) = x.
 */
import { describe, expect, test } from 'vitest';
import { makeRng } from '../../src/synth/random.js';
import { fft2Cpu, dft2Naive } from '../../src/cpu/fft.js';
import { encodeFft2, uploadTwiddles } from '../../src/kernels/fft.js';
import { BufferSet, readFloat32 } from '../../src/gpu/buffers.js';
import type { GpuContext } from '../../src/gpu/device.js';
import { gpuBackend } from '../helpers/backends.js';

const SEED = 9101;
/** float64 FFT vs direct float64 DFT: rounding of ~n log n operations on order-one values. */
const CPU_TOL = 1e-9;
/** float32 FFT: ~log2(n) roundings of 6e-8 relative, times the values' scale (sqrt(n) for random data). */
const GPU_TOL_REL = 2e-6;

function randomComplex(n: number, seed: number): Float64Array {
  const rng = makeRng(seed);
  return Float64Array.from({ length: 2 * n }, () => rng.normal());
}

async function fft2Gpu(ctx: GpuContext, data: Float64Array, ny: number, nx: number, inverse: boolean): Promise<Float32Array> {
  const set = new BufferSet(ctx, 'test.fft');
  try {
    const a = set.upload('a', Float32Array.from(data));
    const b = set.storage('b', 8 * ny * nx);
    const twx = uploadTwiddles(set, nx), twy = uploadTwiddles(set, ny);
    const enc = ctx.device.createCommandEncoder();
    const out = await encodeFft2(ctx, enc, { a, b, twx, twy }, ny, nx, inverse, set.buffers);
    const r = set.readback('r', 8 * ny * nx);
    enc.copyBufferToBuffer(out, 0, r, 0, 8 * ny * nx);
    ctx.device.queue.submit([enc.finish()]);
    return await readFloat32(ctx, r, 2 * ny * nx);
  } finally {
    await set.release();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('fft', () => {
  for (const [ny, nx] of [[1, 2], [4, 8], [16, 16], [8, 32], [32, 4]]) {
    test(`${ny}x${nx}: CPU and GPU equal the direct DFT, forward and inverse (seed ${SEED})`, async () => {
      const x = randomComplex(ny * nx, SEED + nx);
      const truth = dft2Naive(x, ny, nx);
      const cpu = x.slice();
      fft2Cpu(cpu, ny, nx);
      expect(maxAbsDiff(cpu, truth)).toBeLessThan(CPU_TOL * Math.sqrt(ny * nx) * 10);
      const gpu = await fft2Gpu((await gpuBackend()).gpu!, x, ny, nx, false);
      expect(maxAbsDiff(gpu, truth)).toBeLessThan(GPU_TOL_REL * Math.sqrt(ny * nx) * 10);
      const inv = dft2Naive(x, ny, nx, true);
      const cpuI = x.slice();
      fft2Cpu(cpuI, ny, nx, true);
      expect(maxAbsDiff(cpuI, inv)).toBeLessThan(CPU_TOL);
      const gpuI = await fft2Gpu((await gpuBackend()).gpu!, x, ny, nx, true);
      expect(maxAbsDiff(gpuI, inv)).toBeLessThan(GPU_TOL_REL * 10);
    });
  }

  test('256x128: an impulse at (y0, x0) becomes exp(-2 pi i (ky y0 / ny + kx x0 / nx)); inverse(forward) is the identity', async () => {
    const ny = 256, nx = 128, y0 = 37, x0 = 101;
    const x = new Float64Array(2 * ny * nx);
    x[2 * (y0 * nx + x0)] = 1;
    const gpu = await fft2Gpu((await gpuBackend()).gpu!, x, ny, nx, false);
    const cpu = x.slice();
    fft2Cpu(cpu, ny, nx);
    let errC = 0, errG = 0;
    for (let ky = 0; ky < ny; ky++) {
      for (let kx = 0; kx < nx; kx++) {
        const a = -2 * Math.PI * (((ky * y0) % ny) / ny + ((kx * x0) % nx) / nx);
        const i = 2 * (ky * nx + kx);
        errC = Math.max(errC, Math.abs(cpu[i] - Math.cos(a)), Math.abs(cpu[i + 1] - Math.sin(a)));
        errG = Math.max(errG, Math.abs(gpu[i] - Math.cos(a)), Math.abs(gpu[i + 1] - Math.sin(a)));
      }
    }
    expect(errC).toBeLessThan(1e-12);
    expect(errG).toBeLessThan(GPU_TOL_REL * 8);
    const r = randomComplex(ny * nx, SEED);
    const back = Float64Array.from(await fft2Gpu((await gpuBackend()).gpu!, Float64Array.from(await fft2Gpu((await gpuBackend()).gpu!, r, ny, nx, false)), ny, nx, true));
    expect(maxAbsDiff(back, r)).toBeLessThan(GPU_TOL_REL * 16);
    const backC = r.slice();
    fft2Cpu(backC, ny, nx);
    fft2Cpu(backC, ny, nx, true);
    expect(maxAbsDiff(backC, r)).toBeLessThan(1e-12);
  });

  test('sizes that are not powers of two are refused (callers pad)', () => {
    expect(() => fft2Cpu(new Float64Array(2 * 12), 3, 4)).toThrow(/power-of-two/);
  });
});
