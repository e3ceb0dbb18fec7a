/**
 * Registration of one image against another by phase correlation with upsampled-DFT
 * refinement (Guizar-Sicairos, Thurman & Fienup 2008), on either backend:
 *   1. both images' 2-D FFTs (each image is transformed once, however often it is used),
 *   2. the normalised cross-power spectrum (cross_power),
 *   3. its inverse FFT and the largest |c| (corr_peak): the whole-pixel shift,
 *   4. the correlation on a 151 x 151 grid at 1/100 pixel around it (dft_upsample),
 *   5. on the host: the grid's maximum refined by a parabola through it and its neighbours
 *      along each axis (sub-1/100 px, and continuous, so the backends agree closely).
 * The result is the displacement (dy, dx) of the moving image's content relative to the
 * reference (positive dy: moved down); scikit-image's phase_cross_correlation(reference,
 * moving) returns (-dy, -dx).
 */
import { CrossPowerMode, UPSAMPLE, UPSAMPLED_REGION } from '../kernels/align_layout.js';
import { centred } from '../cpu/cross_power.js';

export interface RegisterOptions {
  mode: number; // CrossPowerMode
  highpass: number;
}

export interface PairShift {
  dy: number;
  dx: number;
  /**
   * Height of the correlation peak, normalised: 1 for identical images (phase correlation:
   * the peak itself; plain cross-correlation: divided by the images' norms).
   */
  peak: number;
}

/** A transformed image, owned by the registrar that made it. */
export interface Spectrum {
  /** Sum of squares of the prepared image (float64, on the host). */
  readonly energy: number;
  release(): void;
}

export function imageEnergy(image: Float32Array): number {
  let s = 0;
  for (let i = 0; i < image.length; i++) s += image[i] * image[i];
  return s;
}

/** The peak normalised as PairShift.peak says. */
export function normalisePeak(s: PairShift, mode: number, ref: Spectrum, moving: Spectrum): PairShift {
  return mode === CrossPowerMode.PHASE ? s : { ...s, peak: s.peak / Math.sqrt(ref.energy * moving.energy) };
}

export interface Registrar {
  readonly ny: number;
  readonly nx: number;
  spectrum(image: Float32Array): Promise<Spectrum>;
  register(ref: Spectrum, moving: Spectrum): Promise<PairShift>;
  destroy(): void;
}

/** The upsampled region centred on a whole-pixel peak at flat index `index` of [ny][nx]. */
export function regionAround(index: number, ny: number, nx: number) {
  const py = Math.floor(index / nx), px = index % nx;
  const dy0 = centred(py, ny), dx0 = centred(px, nx);
  const c = (UPSAMPLED_REGION - 1) / 2;
  return { ny, nx, ty0: dy0 * UPSAMPLE - c, tx0: dx0 * UPSAMPLE - c, size: UPSAMPLED_REGION, factor: UPSAMPLE };
}

/** Step 5: the maximum of |R| over the region, refined by parabolas; shift in pixels. */
export function refineUpsampled(R: ArrayLike<number>, region: { ty0: number; tx0: number; size: number; factor: number }, scale = 1): PairShift {
  const S = region.size;
  const mag = (a: number, j: number) => Math.hypot(R[2 * (a * S + j)], R[2 * (a * S + j) + 1]);
  let best = -1, ba = 0, bj = 0;
  for (let a = 0; a < S; a++) {
    for (let j = 0; j < S; j++) {
      const m = mag(a, j);
      if (m > best) {
        best = m;
        ba = a;
        bj = j;
      }
    }
  }
  const vertex = (m0: number, mm: number, mp: number) => {
    const den = mm - 2 * m0 + mp;
    if (!(den < 0)) return 0;
    return Math.max(-0.5, Math.min(0.5, (0.5 * (mm - mp)) / den));
  };
  const fa = ba > 0 && ba < S - 1 ? vertex(best, mag(ba - 1, bj), mag(ba + 1, bj)) : 0;
  const fj = bj > 0 && bj < S - 1 ? vertex(best, mag(ba, bj - 1), mag(ba, bj + 1)) : 0;
  return {
    dy: ((region.ty0 + ba + fa) / region.factor) * scale,
    dx: ((region.tx0 + bj + fj) / region.factor) * scale,
    peak: best,
  };
}
