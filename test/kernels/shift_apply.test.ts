/**
 * shift_apply: GPU vs CPU twin vs known truth. Fourier: a whole-pixel shift is an exact
 * circular roll. Bilinear and bicubic (Keys, a = -0.5) reproduce a linear ramp exactly;
 * points whose source lies outside the frame are NaN; NaN propagates only locally.
 */
import { describe, expect, test } from 'vitest';
import { makeRng } from '../../src/synth/random.js';
import { fft2Cpu } from '../../src/cpu/fft.js';
import { fourierShiftCpu, interpShiftCpu, sourceRowsFor } from '../../src/cpu/shift_apply.js';
import { shiftApplyKernel } from '../../src/kernels/shift_apply.js';
import { ShiftMode } from '../../src/kernels/align_layout.js';
import { runKernel } from '../helpers/gpu-run.js';
import { gpuBackend } from '../helpers/backends.js';

const SEED = 9501;
/** float32 arithmetic on values of order 10-100: relative 1e-6. */
const GPU_TOL_REL = 2e-6;

describe('shift_apply', () => {
  test(`Fourier: a whole-pixel shift is a circular roll, on both backends (seed ${SEED})`, async () => {
    const ny = 16, nx = 32, dy = 3, dx = -5;
    const rng = makeRng(SEED);
    const img = Float64Array.from({ length: ny * nx }, () => rng.normal());
    const X = new Float64Array(2 * ny * nx);
    img.forEach((v, i) => (X[2 * i] = v));
    fft2Cpu(X, ny, nx);
    const [gpuX] = await runKernel((await gpuBackend()).gpu!, shiftApplyKernel, ny * nx,
      { mode: ShiftMode.FOURIER, energy: 1, height: ny, width: nx, src_y0: 0, src_rows: ny, y0: 0, rows: ny },
      [{ upload: Float32Array.from(X) }, { output: 8 * ny * nx }, { upload: Float32Array.from([0, 0, dy, dx]) }]);
    fourierShiftCpu(X, ny, nx, dy, dx);
    for (let i = 0; i < X.length; i++) expect(Math.abs(gpuX[i] - X[i])).toBeLessThan(1e-4 * (1 + Math.abs(X[i])));
    fft2Cpu(X, ny, nx, true);
    for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
      // out(y, x) = in(y + dy, x + dx), periodically.
      const want = img[((y + dy + ny) % ny) * nx + ((x + dx + nx) % nx)];
      expect(X[2 * (y * nx + x)]).toBeCloseTo(want, 10);
      expect(Math.abs(X[2 * (y * nx + x) + 1])).toBeLessThan(1e-10);
    }
  });

  for (const mode of [ShiftMode.BILINEAR, ShiftMode.BICUBIC]) {
    test(`${mode === ShiftMode.BILINEAR ? 'bilinear' : 'bicubic'}: a linear ramp is shifted exactly; NaN outside the frame; a tile with a row margin equals the whole frame`, async () => {
      const H = 24, W = 20, nE = 3;
      const dy = [0.3, -2.75, 4.5], dx = [-1.2, 0.5, 3.25];
      const src = new Float32Array(nE * H * W);
      for (let e = 0; e < nE; e++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) src[(e * H + y) * W + x] = 10 + e + 0.5 * y - 0.25 * x;
      const whole = new Float32Array(nE * H * W);
      interpShiftCpu({ src, srcY0: 0, srcRows: H, y0: 0, rows: H, nE, height: H, width: W, dy, dx, mode }, whole);
      for (let e = 0; e < nE; e++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
        const sy = y + dy[e], sx = x + dx[e];
        const v = whole[(e * H + y) * W + x];
        if (sy < 0 || sy > H - 1 || sx < 0 || sx > W - 1) expect(v).toBeNaN();
        else if (mode === ShiftMode.BILINEAR || (sy >= 1 && sy <= H - 2 && sx >= 1 && sx <= W - 2)) expect(v).toBeCloseTo(10 + e + 0.5 * sy - 0.25 * sx, 4);
      }
      // A tile of rows [y0, y0 + rows) from only the source rows it needs.
      const y0 = 9, rows = 5;
      const [lo, hi] = sourceRowsFor(y0, rows, H, dy);
      const part = new Float32Array(nE * (hi - lo) * W);
      for (let e = 0; e < nE; e++) part.set(src.subarray((e * H + lo) * W, (e * H + hi) * W), e * (hi - lo) * W);
      const tile = new Float32Array(nE * rows * W);
      const t = { src: part, srcY0: lo, srcRows: hi - lo, y0, rows, nE, height: H, width: W, dy, dx, mode };
      interpShiftCpu(t, tile);
      for (let e = 0; e < nE; e++) for (let r = 0; r < rows; r++) for (let x = 0; x < W; x++) {
        expect(Object.is(tile[(e * rows + r) * W + x], whole[(e * H + y0 + r) * W + x]) || tile[(e * rows + r) * W + x] === whole[(e * H + y0 + r) * W + x]).toBe(true);
      }
      // GPU on the same tile, random values plus a NaN.
      const rng = makeRng(SEED + mode);
      for (let i = 0; i < part.length; i++) part[i] = 50 + 10 * rng.normal();
      part[(hi - lo) * W + 3 * W + 7] = NaN;
      interpShiftCpu(t, tile);
      const shifts = new Float32Array(2 * nE);
      for (let e = 0; e < nE; e++) { shifts[2 * e] = dy[e]; shifts[2 * e + 1] = dx[e]; }
      const [gpu] = await runKernel((await gpuBackend()).gpu!, shiftApplyKernel, nE * rows * W,
        { mode, energy: 0, height: H, width: W, src_y0: lo, src_rows: hi - lo, y0, rows },
        [{ upload: part }, { output: 4 * nE * rows * W }, { upload: shifts }]);
      let nan = 0;
      for (let i = 0; i < tile.length; i++) {
        if (Number.isNaN(tile[i])) { nan++; expect(gpu[i]).toBeNaN(); continue; }
        expect(Math.abs(gpu[i] - tile[i])).toBeLessThan(GPU_TOL_REL * 100);
      }
      expect(nan).toBeGreaterThan(0);
      expect(nan).toBeLessThan(tile.length / 4);
    });
  }
});
