/**
 * Flat and dark fields with fewer frames than the stack has energies (one flat for the whole
 * scan, a few darks): the frames are averaged pixel by pixel (in float64, then rounded to
 * float32 once) and the mean is used at every energy. A field with one frame per energy is
 * used as it is, energy by energy.
 */
import type { StackSource } from './source.js';
import { checkRowRequest } from './source.js';
import { InputError } from '../io/errors.js';

export class FrameMeanStack implements StackSource {
  readonly height: number;
  readonly width: number;
  readonly dtype: string;
  private buf = new Float32Array(0);
  private closed = false;

  constructor(private frames: StackSource, readonly nE: number) {
    this.height = frames.height;
    this.width = frames.width;
    this.dtype = `mean of ${frames.nE} frame(s) of ${frames.dtype}`;
  }

  get path(): string {
    return this.frames.path;
  }

  /** Frames averaged into each energy's field. */
  get frameCount(): number {
    return this.frames.nE;
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const nF = this.frames.nE;
    const n = rows * this.width;
    if (this.buf.length < nF * n) this.buf = new Float32Array(nF * n);
    await this.frames.readRows(y0, rows, this.buf);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let f = 0; f < nF; f++) s += this.buf[f * n + i];
      out[i] = s / nF;
    }
    for (let e = 1; e < this.nE; e++) out.copyWithin(e * n, 0, n);
  }

  /** Host bytes per pixel this wrapper holds (the frames of a tile). */
  extraBytesPerPixel(): number {
    return 4 * this.frames.nE;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.frames.close();
  }
}

/**
 * A flat or dark field for a stack of nE energies: as it is with nE frames, averaged and
 * broadcast with fewer, an error with more (naming the field).
 */
export function fieldFor(field: StackSource, sample: StackSource, role: 'flat' | 'dark'): StackSource {
  if (field.height !== sample.height || field.width !== sample.width) {
    throw new InputError(field.path, `${role} images are ${field.height}x${field.width}, the stack's ${sample.height}x${sample.width} (${sample.path})`);
  }
  if (field.nE === sample.nE) return field;
  if (field.nE < sample.nE) return new FrameMeanStack(field, sample.nE);
  throw new InputError(field.path, `${role} has ${field.nE} frames, more than the stack's ${sample.nE} energies (${sample.path}): give one frame per energy or fewer (averaged)`);
}
