/** cross_power: GPU vs CPU twin vs known truth (a pure phase ramp, the high-pass weight). */
import { describe, expect, test } from 'vitest';
import { makeRng } from '../../src/synth/random.js';
import { crossPowerCpu, centred } from '../../src/cpu/cross_power.js';
import { crossPowerKernel } from '../../src/kernels/cross_power.js';
import { CrossPowerMode } from '../../src/kernels/align_layout.js';
import { runKernel } from '../helpers/gpu-run.js';
import { gpuBackend } from '../helpers/backends.js';

const SEED = 9201;
/** float32 products of order-one values and a normalisation: a few ulp. */
const GPU_TOL = 1e-5;

describe('cross_power', () => {
  const ny = 16, nx = 32, N = ny * nx;
  const rng = makeRng(SEED);
  const F = Float64Array.from({ length: 2 * N }, () => rng.normal());
  const sy = 3.25, sx = -5.5;
  // G = F exp(-2 pi i (ky' sy / ny + kx' sx / nx)): the moving image is the reference moved by (sy, sx).
  const G = new Float64Array(2 * N);
  for (let ky = 0; ky < ny; ky++) for (let kx = 0; kx < nx; kx++) {
    const a = -2 * Math.PI * ((centred(ky, ny) * sy) / ny + (centred(kx, nx) * sx) / nx);
    const i = 2 * (ky * nx + kx);
    G[i] = F[i] * Math.cos(a) - F[i + 1] * Math.sin(a);
    G[i + 1] = F[i] * Math.sin(a) + F[i + 1] * Math.cos(a);
  }

  for (const highpass of [0, 0.1]) {
    test(`phase mode, high-pass ${highpass}: X is the phase ramp of the shift times the weight, on both backends (seed ${SEED})`, async () => {
      const p = { ny, nx, mode: CrossPowerMode.PHASE, highpass };
      const cpu = crossPowerCpu(F, G, p);
      const [gpu] = await runKernel((await gpuBackend()).gpu!, crossPowerKernel, N, p, [{ upload: Float32Array.from(F) }, { upload: Float32Array.from(G) }, { output: 8 * N }]);
      for (let ky = 0; ky < ny; ky++) for (let kx = 0; kx < nx; kx++) {
        const fy = centred(ky, ny) / ny, fx = centred(kx, nx) / nx;
        const w = highpass > 0 ? 1 - Math.exp(-(fx * fx + fy * fy) / (2 * highpass * highpass)) : 1;
        const a = -2 * Math.PI * (fy * sy + fx * sx);
        const i = 2 * (ky * nx + kx);
        expect(cpu[i]).toBeCloseTo(w * Math.cos(a), 12);
        expect(cpu[i + 1]).toBeCloseTo(w * Math.sin(a), 12);
        expect(Math.abs(gpu[i] - cpu[i])).toBeLessThan(GPU_TOL);
        expect(Math.abs(gpu[i + 1] - cpu[i + 1])).toBeLessThan(GPU_TOL);
      }
    });
  }

  test('plain mode: conj(F) G; zero bins stay zero in phase mode', async () => {
    const p = { ny, nx, mode: CrossPowerMode.NONE, highpass: 0 };
    const cpu = crossPowerCpu(F, G, p);
    const [gpu] = await runKernel((await gpuBackend()).gpu!, crossPowerKernel, N, p, [{ upload: Float32Array.from(F) }, { upload: Float32Array.from(G) }, { output: 8 * N }]);
    for (let i = 0; i < N; i++) {
      const [fr, fi, gr, gi] = [F[2 * i], F[2 * i + 1], G[2 * i], G[2 * i + 1]];
      expect(cpu[2 * i]).toBeCloseTo(fr * gr + fi * gi, 12);
      expect(cpu[2 * i + 1]).toBeCloseTo(fr * gi - fi * gr, 12);
      expect(Math.abs(gpu[2 * i] - cpu[2 * i])).toBeLessThan(GPU_TOL * (1 + Math.abs(cpu[2 * i])));
    }
    const Z = new Float64Array(2 * N);
    const ph = { ...p, mode: CrossPowerMode.PHASE };
    const [gz] = await runKernel((await gpuBackend()).gpu!, crossPowerKernel, N, ph, [{ upload: Float32Array.from(Z) }, { upload: Float32Array.from(G) }, { output: 8 * N }]);
    expect([...crossPowerCpu(Z, G, ph)].every((v) => v === 0)).toBe(true);
    expect([...gz].every((v) => v === 0)).toBe(true);
  });
});
