/**
 * dft_upsample: GPU vs CPU twin vs the directly evaluated sum (known truth). For a pure
 * phase ramp X = exp(-2 pi i k'.s / n) the correlation is a Dirichlet kernel with its
 * maximum 1 exactly at the shift s; at whole-pixel shifts it equals the inverse FFT.
 */
import { describe, expect, test } from 'vitest';
import { makeRng } from '../../src/synth/random.js';
import { dftUpsampleCpu, upsampleKernel, type UpsampleRegion } from '../../src/cpu/dft_upsample.js';
import { centred } from '../../src/cpu/cross_power.js';
import { fft2Cpu } from '../../src/cpu/fft.js';
import { dftUpsampleKernel } from '../../src/kernels/dft_upsample.js';
import { runKernel } from '../helpers/gpu-run.js';
import { gpuBackend } from '../helpers/backends.js';

const SEED = 9401;
/** float32 sums of n unit-modulus terms with float32 angles: ~n * 1e-7 relative to the sum's scale. */
const GPU_TOL = 2e-5;

async function gpuUpsample(X: Float64Array, r: UpsampleRegion): Promise<Float32Array> {
  const ctx = (await gpuBackend()).gpu!;
  const S = r.size;
  const common = { ny: r.ny, nx: r.nx, size: S };
  const kx = Float32Array.from(upsampleKernel(r.nx, r.tx0, S, r.factor)), ky = Float32Array.from(upsampleKernel(r.ny, r.ty0, S, r.factor));
  const [T] = await runKernel(ctx, dftUpsampleKernel, r.ny * S, { ...common, stage: 0, scale: 1 }, [{ upload: Float32Array.from(X) }, { output: 8 * r.ny * S }, { upload: kx }]);
  const [R] = await runKernel(ctx, dftUpsampleKernel, S * S, { ...common, stage: 1, scale: 1 / (r.nx * r.ny) }, [{ upload: T }, { output: 8 * S * S }, { upload: ky }]);
  return R;
}

/** The defining sum at shift (dy, dx), float64, no integer reduction. */
function direct(X: Float64Array, ny: number, nx: number, dy: number, dx: number): [number, number] {
  let re = 0, im = 0;
  for (let ky = 0; ky < ny; ky++) for (let kx = 0; kx < nx; kx++) {
    const a = 2 * Math.PI * ((centred(ky, ny) * dy) / ny + (centred(kx, nx) * dx) / nx);
    const i = 2 * (ky * nx + kx);
    re += X[i] * Math.cos(a) - X[i + 1] * Math.sin(a);
    im += X[i] * Math.sin(a) + X[i + 1] * Math.cos(a);
  }
  return [re / (nx * ny), im / (nx * ny)];
}

describe('dft_upsample', () => {
  test(`pure phase ramp: maximum 1 at the shift; CPU and GPU equal the direct sum (seed ${SEED})`, async () => {
    const ny = 32, nx = 64, U = 100, S = 21;
    const sy = 3.37, sx = -7.82; // on the 1/100 grid
    const X = new Float64Array(2 * ny * nx);
    for (let ky = 0; ky < ny; ky++) for (let kx = 0; kx < nx; kx++) {
      const a = -2 * Math.PI * ((centred(ky, ny) * sy) / ny + (centred(kx, nx) * sx) / nx);
      X[2 * (ky * nx + kx)] = Math.cos(a);
      X[2 * (ky * nx + kx) + 1] = Math.sin(a);
    }
    const r: UpsampleRegion = { ny, nx, ty0: 337 - 10, tx0: -782 - 10, size: S, factor: U };
    const cpu = dftUpsampleCpu(X, r);
    const gpu = await gpuUpsample(X, r);
    let best = 0, at = -1;
    for (let a = 0; a < S; a++) for (let j = 0; j < S; j++) {
      const i = 2 * (a * S + j);
      const m = Math.hypot(cpu[i], cpu[i + 1]);
      if (m > best) { best = m; at = a * S + j; }
      if ((a * S + j) % 23 === 0) {
        const [dr, di] = direct(X, ny, nx, (r.ty0 + a) / U, (r.tx0 + j) / U);
        expect(cpu[i]).toBeCloseTo(dr, 10);
        expect(cpu[i + 1]).toBeCloseTo(di, 10);
      }
      expect(Math.abs(gpu[i] - cpu[i])).toBeLessThan(GPU_TOL);
      expect(Math.abs(gpu[i + 1] - cpu[i + 1])).toBeLessThan(GPU_TOL);
    }
    expect(at).toBe(10 * S + 10);
    expect(best).toBeCloseTo(1, 12);
  });

  test('at whole-pixel shifts the upsampled correlation equals the inverse FFT (random spectrum)', async () => {
    const ny = 16, nx = 16, U = 10;
    const rng = makeRng(SEED + 1);
    const X = Float64Array.from({ length: 2 * ny * nx }, () => rng.normal());
    const inv = X.slice();
    fft2Cpu(inv, ny, nx, true);
    // Samples at shifts -2..2 px in steps of 1/U: every U-th sample is a whole pixel.
    const r: UpsampleRegion = { ny, nx, ty0: -20, tx0: -20, size: 41, factor: U };
    const cpu = dftUpsampleCpu(X, r);
    const gpu = await gpuUpsample(X, r);
    for (let a = 0; a < 41; a += U) for (let j = 0; j < 41; j += U) {
      const y = (r.ty0 + a) / U, x = (r.tx0 + j) / U;
      const i = 2 * ((((y % ny) + ny) % ny) * nx + (((x % nx) + nx) % nx));
      const o = 2 * (a * 41 + j);
      expect(cpu[o]).toBeCloseTo(inv[i], 10);
      expect(cpu[o + 1]).toBeCloseTo(inv[i + 1], 10);
      expect(Math.abs(gpu[o] - inv[i])).toBeLessThan(GPU_TOL);
    }
  });
});
