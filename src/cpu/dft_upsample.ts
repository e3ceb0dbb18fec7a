/**
 * CPU twin of shaders/dft_upsample.wgsl, in float64: the cross-correlation (the inverse
 * DFT of a cross-power spectrum X) evaluated on a fine grid of shifts around the coarse
 * peak, by the matrix-multiply DFT of Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 33, 156
 * (2008): only an S x S region at 1/U pixel spacing is computed, not the whole upsampled
 * array. Written from the paper's description.
 *
 * Sample (a, j) is the shift (ty0 + a, tx0 + j) / U pixels:
 *   pass 0: T[ky][j] = sum_kx X[ky][kx] exp(+2 pi i kx' (tx0 + j) / (nx U))
 *   pass 1: R[a][j]  = sum_ky T[ky][j]  exp(+2 pi i ky' (ty0 + a) / (ny U)) / (nx ny)
 * with centred frequencies k' in [-n/2, n/2), so R interpolates the band-limited
 * correlation (R at integer shifts equals the inverse FFT). The phase k' t is reduced
 * modulo n U exactly in integers, so its accuracy does not depend on the image size.
 */
import { centred } from './cross_power.js';

export interface UpsampleRegion {
  ny: number;
  nx: number;
  /** First sample's shift, in 1/U pixels (integers). */
  ty0: number;
  tx0: number;
  /** Samples per side. */
  size: number;
  /** Upsampling factor. */
  factor: number;
}

/**
 * The kernel matrix exp(+2 pi i k' t / (n U)) for k in [0, n), t = t0 + j, j in [0, size):
 * [k][j] interleaved. Both backends use it (the GPU gets it rounded to float32 once).
 */
export function upsampleKernel(n: number, t0: number, size: number, U: number): Float64Array {
  const K = new Float64Array(2 * n * size);
  const M = n * U;
  for (let k = 0; k < n; k++) {
    const kc = centred(k, n);
    for (let j = 0; j < size; j++) {
      const ph = (((kc * (t0 + j)) % M) + M) % M;
      const a = (2 * Math.PI * ph) / M;
      K[2 * (k * size + j)] = Math.cos(a);
      K[2 * (k * size + j) + 1] = Math.sin(a);
    }
  }
  return K;
}

/** Pass 0: [ny][size] complex. */
export function dftUpsampleRowsCpu(X: ArrayLike<number>, r: UpsampleRegion): Float64Array {
  const { ny, nx, size: S } = r;
  const K = upsampleKernel(nx, r.tx0, S, r.factor);
  const T = new Float64Array(2 * ny * S);
  for (let ky = 0; ky < ny; ky++) {
    const t = 2 * ky * S;
    for (let kx = 0; kx < nx; kx++) {
      const xr = X[2 * (ky * nx + kx)], xi = X[2 * (ky * nx + kx) + 1];
      if (xr === 0 && xi === 0) continue;
      const kb = 2 * kx * S;
      for (let j = 0; j < S; j++) {
        const cr = K[kb + 2 * j], ci = K[kb + 2 * j + 1];
        T[t + 2 * j] += xr * cr - xi * ci;
        T[t + 2 * j + 1] += xr * ci + xi * cr;
      }
    }
  }
  return T;
}

/** Pass 1: [size][size] complex, scaled by 1/(nx ny) like an inverse FFT. */
export function dftUpsampleColsCpu(T: ArrayLike<number>, r: UpsampleRegion): Float64Array {
  const { ny, nx, size: S } = r;
  const K = upsampleKernel(ny, r.ty0, S, r.factor);
  const R = new Float64Array(2 * S * S);
  const sc = 1 / (nx * ny);
  for (let a = 0; a < S; a++) {
    for (let j = 0; j < S; j++) {
      let re = 0, im = 0;
      for (let ky = 0; ky < ny; ky++) {
        const tr = T[2 * (ky * S + j)], ti = T[2 * (ky * S + j) + 1];
        const cr = K[2 * (ky * S + a)], ci = K[2 * (ky * S + a) + 1];
        re += tr * cr - ti * ci;
        im += tr * ci + ti * cr;
      }
      R[2 * (a * S + j)] = re * sc;
      R[2 * (a * S + j) + 1] = im * sc;
    }
  }
  return R;
}

export function dftUpsampleCpu(X: ArrayLike<number>, r: UpsampleRegion): Float64Array {
  return dftUpsampleColsCpu(dftUpsampleRowsCpu(X, r), r);
}
