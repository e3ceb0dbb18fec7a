/**
 * CPU twin of shaders/shift_apply.wgsl, in float64: removing a displacement (dy, dx) from
 * an image, i.e. out(y, x) = in(y + dy, x + dx), where (dy, dx) is the displacement of the
 * image's content (positive dy: content moved down, to larger row index).
 *
 * - Fourier (default for whole images): the spectrum times exp(+2 pi i (ky' dy / ny +
 *   kx' dx / nx)), centred frequencies; the inverse FFT's real part is the shifted image
 *   (exact for band-limited content; periodic, so the caller sets what wrapped to NaN).
 * - bilinear, bicubic (Keys 1981, a = -0.5, Catmull-Rom) in real space, on row tiles:
 *   an output pixel is NaN when its source point (y + dy, x + dx) lies outside the frame
 *   [0, H-1] x [0, W-1]; neighbours beyond the frame are clamped to its edge; a NaN
 *   neighbour makes the output NaN.
 */
import { centred } from './cross_power.js';
import { ShiftMode } from '../kernels/align_layout.js';

/** Fourier shift of a spectrum in place ([ny][nx] complex). */
export function fourierShiftCpu(X: Float64Array, ny: number, nx: number, dy: number, dx: number): void {
  for (let ky = 0; ky < ny; ky++) {
    const py = (centred(ky, ny) * dy) / ny;
    for (let kx = 0; kx < nx; kx++) {
      const ph = py + (centred(kx, nx) * dx) / nx;
      const a = 2 * Math.PI * (ph - Math.floor(ph));
      const c = Math.cos(a), s = Math.sin(a);
      const i = 2 * (ky * nx + kx);
      const xr = X[i], xi = X[i + 1];
      X[i] = xr * c - xi * s;
      X[i + 1] = xr * s + xi * c;
    }
  }
}

/** Keys' cubic convolution weights (a = -0.5) for fractional offset t in [0, 1): taps -1, 0, 1, 2. */
export function cubicWeights(t: number, w: Float64Array): void {
  const A = -0.5;
  const k = (x: number) => {
    const ax = Math.abs(x);
    if (ax <= 1) return ((A + 2) * ax - (A + 3)) * ax * ax + 1;
    if (ax < 2) return ((A * ax - 5 * A) * ax + 8 * A) * ax - 4 * A;
    return 0;
  };
  w[0] = k(1 + t);
  w[1] = k(t);
  w[2] = k(1 - t);
  w[3] = k(2 - t);
}

export interface InterpTile {
  /** Source rows [srcY0, srcY0 + srcRows) of every energy: src[e][r][x]. */
  src: ArrayLike<number>;
  srcY0: number;
  srcRows: number;
  /** Output rows [y0, y0 + rows): out[e][r][x]. */
  y0: number;
  rows: number;
  nE: number;
  /** Full frame. */
  height: number;
  width: number;
  /** Displacement of each energy's content, px: dy[e], dx[e]. */
  dy: ArrayLike<number>;
  dx: ArrayLike<number>;
  mode: number; // ShiftMode.BILINEAR | ShiftMode.BICUBIC
}

/** The source rows an output tile needs: [lo, hi) clamped to the frame. */
export function sourceRowsFor(y0: number, rows: number, height: number, dy: ArrayLike<number>): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let e = 0; e < dy.length; e++) {
    if (!Number.isFinite(dy[e])) continue;
    lo = Math.min(lo, Math.floor(y0 + dy[e]) - 1);
    hi = Math.max(hi, Math.floor(y0 + rows - 1 + dy[e]) + 3);
  }
  if (!Number.isFinite(lo)) return [Math.max(0, y0), Math.min(height, y0 + rows)];
  return [Math.max(0, Math.min(lo, y0)), Math.min(height, Math.max(hi, y0 + rows))];
}

export function interpShiftCpu(t: InterpTile, out: Float32Array): void {
  const { src, srcY0, srcRows, y0, rows, nE, height: H, width: W, mode } = t;
  const wy = new Float64Array(4), wx = new Float64Array(4);
  const clampRow = (y: number) => Math.min(srcY0 + srcRows - 1, Math.max(srcY0, Math.min(H - 1, Math.max(0, y)))) - srcY0;
  const clampCol = (x: number) => Math.min(W - 1, Math.max(0, x));
  for (let e = 0; e < nE; e++) {
    const dy = t.dy[e], dx = t.dx[e];
    const sb = e * srcRows * W, ob = e * rows * W;
    for (let r = 0; r < rows; r++) {
      const sy = y0 + r + dy;
      for (let x = 0; x < W; x++) {
        const sx = x + dx;
        const o = ob + r * W + x;
        if (!(sy >= 0 && sy <= H - 1 && sx >= 0 && sx <= W - 1)) {
          out[o] = NaN;
          continue;
        }
        const iy = Math.floor(sy), ix = Math.floor(sx);
        const fy = sy - iy, fx = sx - ix;
        let v = 0;
        if (mode === ShiftMode.BILINEAR) {
          const r0 = sb + clampRow(iy) * W, r1 = sb + clampRow(iy + 1) * W;
          const c0 = clampCol(ix), c1 = clampCol(ix + 1);
          v = (1 - fy) * ((1 - fx) * src[r0 + c0] + fx * src[r0 + c1]) + fy * ((1 - fx) * src[r1 + c0] + fx * src[r1 + c1]);
        } else {
          cubicWeights(fy, wy);
          cubicWeights(fx, wx);
          for (let a = 0; a < 4; a++) {
            const rb = sb + clampRow(iy - 1 + a) * W;
            let h = 0;
            for (let b = 0; b < 4; b++) h += wx[b] * src[rb + clampCol(ix - 1 + b)];
            v += wy[a] * h;
          }
        }
        out[o] = v;
      }
    }
  }
}
