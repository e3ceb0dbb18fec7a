/**
 * Numbers shared by the alignment kernels (fft, cross_power, corr_peak, dft_upsample,
 * shift_apply) and their CPU twins; the WGSL sees them as generated constants.
 */

export const CrossPowerMode = {
  /** X = conj(F) G, unnormalised (plain cross-correlation). */
  NONE: 0,
  /** X / |X|: phase correlation (scikit-image's default, normalization='phase'). */
  PHASE: 1,
} as const;

export const ShiftMode = {
  /** Multiply a spectrum by exp(-2 pi i (ky dy / ny + kx dx / nx)): moves content by (-dy, -dx). */
  FOURIER: 0,
  /** Real-space bilinear interpolation. */
  BILINEAR: 1,
  /** Real-space bicubic convolution (Keys 1981, a = -0.5: Catmull-Rom). */
  BICUBIC: 2,
} as const;

/** Values each corr_peak invocation scans; it writes one (max, index) partial. */
export const PEAK_CHUNK = 256;

/**
 * Upsampling factor of the subpixel refinement (1/100 pixel, the and scikit-image's
 * upsample_factor=100) and the side of the refined region: 1.5 pixels around the coarse
 * peak (Guizar-Sicairos et al. 2008), an odd count so the coarse peak is its centre.
 */
export const UPSAMPLE = 100;
export const UPSAMPLED_REGION = 151;

/**
 * The largest padded image side registered; larger stacks are registered on a block-averaged
 * copy (src/align/copy.ts): one complex float64 image of 4096^2 is already 256 MiB on the CPU.
 */
export const MAX_REGISTER_SIDE = 4096;

export function alignConstants(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(CrossPowerMode)) out[`CP_${k}`] = v;
  for (const [k, v] of Object.entries(ShiftMode)) out[`SHIFT_${k}`] = v;
  out.PEAK_CHUNK = PEAK_CHUNK;
  return out;
}
