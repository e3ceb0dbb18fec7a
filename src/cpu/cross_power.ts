/**
 * CPU twin of shaders/cross_power.wgsl, in float64: the normalised cross-power spectrum
 * X = conj(F) G / |conj(F) G| of a reference spectrum F and a moving image's spectrum G
 * (phase correlation, scikit-image's default normalization='phase'), optionally weighted by
 * a Gaussian high-pass 1 - exp(-f^2 / (2 s^2)) (f in cycles per pixel) that removes slowly
 * varying background (illumination, thickness gradients) from the match.
 *
 * Sign: with F the reference and G the moving image, the inverse transform of X peaks at
 * +d when the moving image's content is displaced by +d (down/right) from the reference;
 * scikit-image's phase_cross_correlation(reference, moving) returns -d.
 */
import { CrossPowerMode } from '../kernels/align_layout.js';

export interface CrossPowerParams {
  ny: number;
  nx: number;
  mode: number; // CrossPowerMode
  /** Gaussian high-pass sigma, cycles per pixel; 0 = none. */
  highpass: number;
}

/** Centred frequency index of bin k of n (numpy's fftfreq * n): k for k < n/2, else k - n. */
export function centred(k: number, n: number): number {
  return k < n / 2 ? k : k - n;
}

export function crossPowerCpu(F: ArrayLike<number>, G: ArrayLike<number>, p: CrossPowerParams): Float64Array {
  const { ny, nx } = p;
  const out = new Float64Array(2 * ny * nx);
  const s2 = 2 * p.highpass * p.highpass;
  for (let ky = 0; ky < ny; ky++) {
    const fy = centred(ky, ny) / ny;
    for (let kx = 0; kx < nx; kx++) {
      const i = 2 * (ky * nx + kx);
      const fr = F[i], fi = F[i + 1], gr = G[i], gi = G[i + 1];
      let xr = fr * gr + fi * gi;
      let xi = fr * gi - fi * gr;
      if (p.mode === CrossPowerMode.PHASE) {
        const m = Math.hypot(xr, xi);
        if (m > 0) {
          xr /= m;
          xi /= m;
        } else {
          xr = 0;
          xi = 0;
        }
      }
      if (p.highpass > 0) {
        const fx = centred(kx, nx) / nx;
        const w = 1 - Math.exp(-(fx * fx + fy * fy) / s2);
        xr *= w;
        xi *= w;
      }
      out[i] = xr;
      out[i + 1] = xi;
    }
  }
  return out;
}
