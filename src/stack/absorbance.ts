/**
 * Transmitted counts to absorbance, tile by tile: A = -ln((I - D) / (F - D)) with flat F
 * and dark D stacks of the same shape (D = 0 without a dark). A non-positive ratio (or
 * non-finite counts) masks the pixel at that energy only (NaN), and is counted; the
 * kernels skip NaN points.
 */
import type { StackSource } from './source.js';
import { InputError } from '../io/errors.js';

export class AbsorbanceStack implements StackSource {
  readonly dtype: string;
  readonly nE: number;
  readonly height: number;
  readonly width: number;
  /** Pixel-energy points masked because the transmission was not positive. */
  maskedPoints = 0;
  private flatBuf = new Float32Array(0);
  private darkBuf = new Float32Array(0);

  constructor(private sample: StackSource, private flat: StackSource, private dark: StackSource | null) {
    for (const other of [flat, dark]) {
      if (!other) continue;
      if (other.nE !== sample.nE || other.height !== sample.height || other.width !== sample.width) {
        throw new InputError(other.path, `shape (${other.nE},${other.height},${other.width}) differs from the stack ${sample.path} (${sample.nE},${sample.height},${sample.width})`);
      }
    }
    this.dtype = `absorbance from ${sample.dtype} counts`;
    this.nE = sample.nE;
    this.height = sample.height;
    this.width = sample.width;
  }

  get path(): string {
    return this.sample.path;
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    const n = this.nE * rows * this.width;
    if (this.flatBuf.length < n) this.flatBuf = new Float32Array(n);
    await this.sample.readRows(y0, rows, out);
    await this.flat.readRows(y0, rows, this.flatBuf);
    if (this.dark) {
      if (this.darkBuf.length < n) this.darkBuf = new Float32Array(n);
      await this.dark.readRows(y0, rows, this.darkBuf);
    }
    let masked = 0;
    for (let i = 0; i < n; i++) {
      const d = this.dark ? this.darkBuf[i] : 0;
      const ratio = (out[i] - d) / (this.flatBuf[i] - d);
      if (ratio > 0 && Number.isFinite(ratio)) out[i] = -Math.log(ratio);
      else {
        out[i] = NaN;
        masked++;
      }
    }
    this.maskedPoints += masked;
  }

  /** Host bytes per pixel this wrapper adds to a tile (flat and dark buffers). */
  extraBytesPerPixel(): number {
    return 4 * this.nE * (this.dark ? 2 : 1);
  }

  close(): void {
    this.sample.close();
    this.flat.close();
    this.dark?.close();
  }
}
