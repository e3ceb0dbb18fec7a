// A minimal RGB raster: rectangles, lines, bitmap text and PNG encoding. Enough for map and
// line figures without a canvas library (no native dependencies, runs anywhere Node runs).
import { encode } from 'fast-png';
import { ADVANCE, GLYPH_W, glyph, textWidth } from './font.js';

export type Rgb = readonly [number, number, number];

export const WHITE: Rgb = [255, 255, 255];
export const BLACK: Rgb = [0, 0, 0];
export const GREY: Rgb = [110, 110, 110];
export const LIGHT_GREY: Rgb = [225, 225, 225];

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export class Canvas {
  readonly data: Uint8Array;
  /** Drawing outside this rectangle is dropped (the whole canvas unless set). */
  clip: Rect;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = WHITE,
  ) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`Canvas: bad size ${width} x ${height}`);
    }
    this.data = new Uint8Array(width * height * 3);
    this.clip = { x: 0, y: 0, w: width, h: height };
    this.fillRect(0, 0, width, height, background);
  }

  setPixel(x: number, y: number, c: Rgb): void {
    const { clip } = this;
    if (x < clip.x || y < clip.y || x >= clip.x + clip.w || y >= clip.y + clip.h) return;
    const i = (y * this.width + x) * 3;
    this.data[i] = c[0];
    this.data[i + 1] = c[1];
    this.data[i + 2] = c[2];
  }

  fillRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    const x0 = Math.max(Math.round(x), this.clip.x), x1 = Math.min(Math.round(x + w), this.clip.x + this.clip.w);
    const y0 = Math.max(Math.round(y), this.clip.y), y1 = Math.min(Math.round(y + h), this.clip.y + this.clip.h);
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) {
        const i = (yy * this.width + xx) * 3;
        this.data[i] = c[0];
        this.data[i + 1] = c[1];
        this.data[i + 2] = c[2];
      }
    }
  }

  /** 1-pixel outline just inside the rectangle. */
  strokeRect(x: number, y: number, w: number, h: number, c: Rgb): void {
    this.fillRect(x, y, w, 1, c);
    this.fillRect(x, y + h - 1, w, 1, c);
    this.fillRect(x, y, 1, h, c);
    this.fillRect(x + w - 1, y, 1, h, c);
  }

  /** Line from (x0,y0) to (x1,y1) in pixel coordinates, `thickness` px wide (square pen). */
  line(x0: number, y0: number, x1: number, y1: number, c: Rgb, thickness = 1): void {
    const steps = Math.ceil(Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0)));
    const off = Math.floor((thickness - 1) / 2);
    // Far-off endpoints (a value far outside the axis range) would make the loop huge.
    if (steps > 4 * (this.width + this.height)) {
      const t0 = clipParam(x0, y0, x1, y1, this.width, this.height);
      if (!t0) return;
      const [a, b] = t0;
      this.line(x0 + a * (x1 - x0), y0 + a * (y1 - y0), x0 + b * (x1 - x0), y0 + b * (y1 - y0), c, thickness);
      return;
    }
    for (let i = 0; i <= steps; i++) {
      const t = steps === 0 ? 0 : i / steps;
      const x = Math.round(x0 + t * (x1 - x0)) - off;
      const y = Math.round(y0 + t * (y1 - y0)) - off;
      if (thickness === 1) this.setPixel(x, y, c);
      else this.fillRect(x, y, thickness, thickness, c);
    }
  }

  /**
   * Text with its top-left corner at (x, y) (or top-centre / top-right per `align`).
   * `vertical` draws it rotated a quarter turn anticlockwise, reading bottom to top, with
   * (x, y) then the left edge and the anchor along the vertical extent.
   */
  text(
    s: string,
    x: number,
    y: number,
    opts: { scale?: number; color?: Rgb; align?: 'left' | 'center' | 'right'; vertical?: boolean } = {},
  ): void {
    const scale = opts.scale ?? 2;
    const color = opts.color ?? BLACK;
    const w = textWidth(s, scale);
    const shift = opts.align === 'center' ? w / 2 : opts.align === 'right' ? w : 0;
    const chars = [...s];
    for (let k = 0; k < chars.length; k++) {
      const rows = glyph(chars[k]);
      for (let r = 0; r < rows.length; r++) { // 7 rows, 9 with a descender
        for (let col = 0; col < GLYPH_W; col++) {
          if (!((rows[r] >> (GLYPH_W - 1 - col)) & 1)) continue;
          const u = k * ADVANCE + col; // along the text
          if (opts.vertical) {
            // Rotated: text runs upwards from y + shift; glyph rows stack to the right.
            this.fillRect(Math.round(x + r * scale), Math.round(y + shift - (u + 1) * scale), scale, scale, color);
          } else {
            this.fillRect(Math.round(x - shift + u * scale), Math.round(y + r * scale), scale, scale, color);
          }
        }
      }
    }
  }

  /** Copies `src` (RGB, sw x sh) scaled up by an integer factor to (x, y). */
  blitScaled(src: Uint8Array, sw: number, sh: number, x: number, y: number, factor: number): void {
    for (let sy = 0; sy < sh; sy++) {
      for (let fy = 0; fy < factor; fy++) {
        const row = ((y + sy * factor + fy) * this.width + x) * 3;
        for (let sx = 0; sx < sw; sx++) {
          const si = (sy * sw + sx) * 3;
          for (let fx = 0; fx < factor; fx++) {
            const di = row + (sx * factor + fx) * 3;
            this.data[di] = src[si];
            this.data[di + 1] = src[si + 1];
            this.data[di + 2] = src[si + 2];
          }
        }
      }
    }
  }

  png(): Uint8Array {
    return encode({ width: this.width, height: this.height, data: this.data, channels: 3, depth: 8 });
  }
}

/** Parameter interval [a, b] of the segment inside a generous box around the canvas. */
function clipParam(x0: number, y0: number, x1: number, y1: number, w: number, h: number): [number, number] | null {
  let a = 0, b = 1;
  const dx = x1 - x0, dy = y1 - y0;
  const tests: [number, number][] = [
    [-dx, x0 + w], [dx, 2 * w - x0],
    [-dy, y0 + h], [dy, 2 * h - y0],
  ];
  for (const [p, q] of tests) {
    if (p === 0) {
      if (q < 0) return null;
      continue;
    }
    const r = q / p;
    if (p < 0) a = Math.max(a, r);
    else b = Math.min(b, r);
  }
  return a <= b ? [a, b] : null;
}
