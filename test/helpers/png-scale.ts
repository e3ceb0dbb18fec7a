/**
 * Shrinks a PNG screenshot by an area average (each output pixel the mean of the input
 * pixels it covers), for the README's small copies of the browser test's screenshots.
 */
import { decode, encode } from 'fast-png';

export function shrinkPng(png: Uint8Array, factor: number): Uint8Array {
  if (!(factor > 0 && factor <= 1)) throw new RangeError(`shrinkPng: factor ${factor} is not in (0, 1]`);
  const img = decode(png);
  const c = img.channels;
  const W = img.width, H = img.height;
  const w = Math.max(1, Math.round(W * factor)), h = Math.max(1, Math.round(H * factor));
  const src = img.data as Uint8Array;
  const out = new Uint8Array(w * h * c);
  const acc = new Float64Array(c);
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor((y * H) / h), y1 = Math.max(y0 + 1, Math.floor(((y + 1) * H) / h));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor((x * W) / w), x1 = Math.max(x0 + 1, Math.floor(((x + 1) * W) / w));
      acc.fill(0);
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) for (let k = 0; k < c; k++) acc[k] += src[(yy * W + xx) * c + k];
      const n = (y1 - y0) * (x1 - x0);
      for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = Math.round(acc[k] / n);
    }
  }
  return encode({ width: w, height: h, data: out, channels: c, depth: 8 });
}
