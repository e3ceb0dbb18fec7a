/**
 * The registration copy: the stack as whole images, which registration needs (a tile of
 * rows is not enough). Read tile by tile like every other pass; if the full stack does not
 * fit the memory budget, block-averaged by the smallest whole factor f that fits (the
 * shifts found on it are multiplied by f), which keeps every feature of the field in view.
 */
import type { StackSource } from '../stack/source.js';
import { InputError } from '../io/errors.js';
import { paddedSize } from './prepare.js';
import { MAX_REGISTER_SIDE } from '../kernels/align_layout.js';

const MiB = 2 ** 20;

export interface RegistrationCopy {
  /** [nE][height][width] float32, NaN where the source is NaN in the whole block. */
  cube: Float32Array;
  nE: number;
  height: number;
  width: number;
  /** Source pixels per copy pixel along each axis. */
  factor: number;
}

/**
 * Bytes the registration itself needs for a copy of h x w (padded to ny x nx): on the CPU
 * up to six float64 complex images (the anchor, previous and current spectra, the
 * cross-power, its inverse and the FFT scratch); on the GPU the host keeps one complex
 * float32 upload, and the device holds the rest.
 */
export function registrationBytes(h: number, w: number): number {
  const { ny, nx } = paddedSize(h, w);
  return 6 * 16 * ny * nx;
}

/** The smallest downsampling factor whose copy and registration fit in `room` bytes. */
export function copyFactor(nE: number, height: number, width: number, room: number): number {
  for (let f = 1; f <= Math.max(height, width); f++) {
    const h = Math.ceil(height / f), w = Math.ceil(width / f);
    const { ny, nx } = paddedSize(h, w);
    if (Math.max(ny, nx) > MAX_REGISTER_SIDE) continue;
    if (4 * nE * h * w + registrationBytes(h, w) <= room) return f;
  }
  throw new InputError('--memory', `too small to hold even a 1-pixel registration copy of ${nE} images`);
}

/** Rows read per tile while building the copy: about 16 MiB, whole blocks of f rows. */
function rowsPerRead(nE: number, width: number, f: number, height: number): number {
  const rows = Math.max(1, Math.floor((16 * MiB) / (4 * nE * width)));
  return Math.min(height, Math.max(f, rows - (rows % f)));
}

export function copyReadBytes(nE: number, width: number, f: number, height: number): number {
  return 4 * nE * width * rowsPerRead(nE, width, f, height);
}

export async function registrationCopy(source: StackSource, factor: number): Promise<RegistrationCopy> {
  const { nE, height: H, width: W } = source;
  const f = factor;
  const h = Math.ceil(H / f), w = Math.ceil(W / f);
  const cube = new Float32Array(nE * h * w);
  const rows = rowsPerRead(nE, W, f, H);
  const buf = new Float32Array(nE * rows * W);
  const sum = new Float64Array(w), cnt = new Float64Array(w);
  for (let y0 = 0; y0 < H; y0 += rows) {
    const r = Math.min(rows, H - y0);
    await source.readRows(y0, r, buf);
    if (f === 1) {
      for (let e = 0; e < nE; e++) cube.set(buf.subarray(e * r * W, (e + 1) * r * W), e * h * w + y0 * W);
      continue;
    }
    for (let e = 0; e < nE; e++) {
      for (let by = 0; by < r; by += f) {
        sum.fill(0);
        cnt.fill(0);
        for (let yy = by; yy < Math.min(r, by + f); yy++) {
          const row = e * r * W + yy * W;
          for (let x = 0; x < W; x++) {
            const v = buf[row + x];
            if (Number.isFinite(v)) {
              sum[(x / f) | 0] += v;
              cnt[(x / f) | 0]++;
            }
          }
        }
        const out = e * h * w + ((y0 + by) / f) * w;
        for (let x = 0; x < w; x++) cube[out + x] = cnt[x] > 0 ? sum[x] / cnt[x] : NaN;
      }
    }
  }
  return { cube, nE, height: h, width: w, factor: f };
}
