/**
 * Turning one image into what the registration transforms: an optional region, the
 * gradient magnitude on request (low-contrast stacks), NaN filled with the mean, mean
 * removed, an optional Hann window (suppresses the frame edges, which otherwise correlate
 * at zero shift), zero-padded to a power-of-two size for the FFT.
 */
import { nextPowerOfTwo } from '../cpu/fft.js';

export interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

export interface PrepareOptions {
  /** Region of the image to register on (half-open pixel bounds); default the whole image. */
  roi?: Rect;
  on: 'intensity' | 'gradient';
  window: 'hann' | 'tukey' | 'none';
}

export type PrepareStatus = 'ok' | 'no_data' | 'no_contrast';

export interface Prepared {
  status: PrepareStatus;
  /** [ny][nx] real, float32 (what goes to either backend). */
  image: Float32Array;
  ny: number;
  nx: number;
  /** Fraction of finite pixels in the region. */
  finite: number;
}

/**
 * Window value at pixel i of n: Hann over the whole side, or Tukey (flat, with a cosine
 * taper over the outer TUKEY_TAPER of each side), or 1.
 */
export function windowAt(kind: PrepareOptions['window'], i: number, n: number): number {
  const u = (i + 0.5) / n;
  if (kind === 'hann') return 0.5 - 0.5 * Math.cos(2 * Math.PI * u);
  if (kind === 'tukey') {
    const e = Math.min(u, 1 - u) / TUKEY_TAPER;
    return e >= 1 ? 1 : 0.5 - 0.5 * Math.cos(Math.PI * e);
  }
  return 1;
}

/** Fraction of each side over which the Tukey window falls to zero. */
export const TUKEY_TAPER = 0.125;

/** Padded size for a region of h x w. */
export function paddedSize(h: number, w: number): { ny: number; nx: number } {
  return { ny: nextPowerOfTwo(h), nx: nextPowerOfTwo(w) };
}

/** A region needs at least this many finite pixels to be registered. */
export const MIN_FINITE_FRACTION = 0.5;

export function prepareImage(img: ArrayLike<number>, height: number, width: number, o: PrepareOptions): Prepared {
  const r = o.roi ?? { x0: 0, y0: 0, x1: width, y1: height };
  const h = r.y1 - r.y0, w = r.x1 - r.x0;
  const { ny, nx } = paddedSize(h, w);
  const a = new Float64Array(h * w);
  let n = 0, sum = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = img[(r.y0 + y) * width + r.x0 + x];
      a[y * w + x] = v;
      if (Number.isFinite(v)) {
        n++;
        sum += v;
      }
    }
  }
  const out = new Float32Array(ny * nx);
  const finite = n / (h * w);
  if (finite < MIN_FINITE_FRACTION) return { status: 'no_data', image: out, ny, nx, finite };
  const mean = sum / n;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) a[i] = mean;
  let b = a;
  if (o.on === 'gradient') {
    // Gradient magnitude by central differences (one-sided at the region's edges).
    b = new Float64Array(h * w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const gx = (a[y * w + Math.min(w - 1, x + 1)] - a[y * w + Math.max(0, x - 1)]) / (x === 0 || x === w - 1 ? 1 : 2);
        const gy = (a[Math.min(h - 1, y + 1) * w + x] - a[Math.max(0, y - 1) * w + x]) / (y === 0 || y === h - 1 ? 1 : 2);
        b[y * w + x] = Math.hypot(gx, gy);
      }
    }
  }
  let m = 0;
  for (let i = 0; i < b.length; i++) m += b[i];
  m /= b.length;
  let ss = 0;
  for (let i = 0; i < b.length; i++) ss += (b[i] - m) ** 2;
  // Contrast below float32 resolution of the values is no contrast.
  if (!(Math.sqrt(ss / b.length) > 1e-6 * Math.max(Math.abs(m), 1e-30))) return { status: 'no_contrast', image: out, ny, nx, finite };
  const hy = new Float64Array(h), hx = new Float64Array(w);
  for (let y = 0; y < h; y++) hy[y] = windowAt(o.window, y, h);
  for (let x = 0; x < w; x++) hx[x] = windowAt(o.window, x, w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * nx + x] = (b[y * w + x] - m) * hy[y] * hx[x];
  return { status: 'ok', image: out, ny, nx, finite };
}
