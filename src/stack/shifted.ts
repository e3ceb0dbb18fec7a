/**
 * An aligned view of a stack: each energy's image with its displacement (dy, dx) removed,
 * out(y, x) = in(y + dy, x + dx), served tile by tile like any StackSource. A tile of rows
 * needs only the source rows shifted into it plus the interpolation's margin
 * (src/cpu/shift_apply.ts sourceRowsFor), so an aligned stack is never held whole.
 * Pixels whose source left the field are NaN (every kernel masks NaN); with a crop, the view
 * is cut to the area valid at every energy (commonArea).
 */
import type { StackSource } from './source.js';
import { checkRowRequest } from './source.js';
import { interpShiftCpu, sourceRowsFor } from '../cpu/shift_apply.js';
import type { Rect } from '../align/prepare.js';

/**
 * The area every shifted image covers: pixels (y, x) with 0 <= y + dy[e] <= H-1 and
 * 0 <= x + dx[e] <= W-1 for every e. Null if the shifts leave no common pixel.
 */
export function commonArea(height: number, width: number, dy: ArrayLike<number>, dx: ArrayLike<number>): Rect | null {
  let y0 = 0, y1 = height - 1, x0 = 0, x1 = width - 1;
  for (let e = 0; e < dy.length; e++) {
    y0 = Math.max(y0, Math.ceil(-dy[e] - 1e-9));
    y1 = Math.min(y1, Math.floor(height - 1 - dy[e] + 1e-9));
    x0 = Math.max(x0, Math.ceil(-dx[e] - 1e-9));
    x1 = Math.min(x1, Math.floor(width - 1 - dx[e] + 1e-9));
  }
  if (y1 < y0 || x1 < x0) return null;
  return { y0, y1: y1 + 1, x0, x1: x1 + 1 };
}

export class ShiftedStack implements StackSource {
  readonly nE: number;
  readonly height: number;
  readonly width: number;
  readonly dtype: string;
  private buf = new Float32Array(0);
  private tmp = new Float32Array(0);
  private readonly crop: Rect;
  /** Largest source row margin a tile needs beyond its own rows. */
  readonly marginRows: number;

  constructor(private source: StackSource, private dy: Float64Array, private dx: Float64Array, private mode: number, crop?: Rect) {
    this.nE = source.nE;
    this.crop = crop ?? { y0: 0, y1: source.height, x0: 0, x1: source.width };
    this.height = this.crop.y1 - this.crop.y0;
    this.width = this.crop.x1 - this.crop.x0;
    this.dtype = `${source.dtype}, aligned`;
    let lo = 0, hi = 0;
    for (const v of dy) {
      lo = Math.min(lo, Math.floor(v));
      hi = Math.max(hi, Math.ceil(v));
    }
    this.marginRows = hi - lo + 4;
  }

  get path(): string {
    return this.source.path;
  }

  get energies(): Float64Array | undefined {
    return this.source.energies;
  }

  /** Host bytes per pixel of a tile this view adds (the source rows and the full-width result). */
  extraBytesPerPixel(): number {
    return 8 * this.nE;
  }

  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    checkRowRequest(this, y0, rows, out);
    const { nE } = this;
    const H = this.source.height, W = this.source.width;
    const Y0 = y0 + this.crop.y0;
    const [lo, hi] = sourceRowsFor(Y0, rows, H, this.dy);
    const need = nE * (hi - lo) * W;
    if (this.buf.length < need) this.buf = new Float32Array(need);
    await this.source.readRows(lo, hi - lo, this.buf);
    const full = this.crop.x0 === 0 && this.crop.x1 === W;
    if (!full && this.tmp.length < nE * rows * W) this.tmp = new Float32Array(nE * rows * W);
    const dst = full ? out : this.tmp;
    interpShiftCpu({ src: this.buf, srcY0: lo, srcRows: hi - lo, y0: Y0, rows, nE, height: H, width: W, dy: this.dy, dx: this.dx, mode: this.mode }, dst);
    if (!full) {
      const w = this.width;
      for (let e = 0; e < nE; e++) {
        for (let r = 0; r < rows; r++) {
          const from = (e * rows + r) * W + this.crop.x0;
          out.set(this.tmp.subarray(from, from + w), (e * rows + r) * w);
        }
      }
    }
  }

  close(): void {
    this.source.close();
  }
}
