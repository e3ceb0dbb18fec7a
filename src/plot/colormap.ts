/**
 * Colour maps for per-pixel maps, shared by the PNG writer (Node) and report.html (browser).
 * The tables come from Vega's colour schemes (the plotting library this project uses):
 *   viridis    perceptually uniform, the default (matplotlib's, van der Walt & Smith)
 *   cividis    perceptually uniform and readable with colour-vision deficiency (Nuñez et al. 2018)
 *   blueorange diverging (for signed maps: differences, PCA scores, residuals)
 * Masked (NaN) pixels are black in every picture (DESIGN.md "masks travel").
 */
import { scheme } from 'vega';

export const COLORMAPS = ['viridis', 'cividis', 'blueorange'] as const;
export type ColormapName = (typeof COLORMAPS)[number];
export type Rgb = readonly [number, number, number];
/** Colour of masked (NaN) pixels. */
export const MASKED_RGB: Rgb = [0, 0, 0];
/** Entries of a colour table. */
export const LUT_SIZE = 256;

export function isColormap(name: string): name is ColormapName {
  return (COLORMAPS as readonly string[]).includes(name);
}

function parseCss(c: string): Rgb {
  const m = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(c);
  if (m) return [+m[1], +m[2], +m[3]];
  const h = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(c);
  if (h) return [parseInt(h[1], 16), parseInt(h[2], 16), parseInt(h[3], 16)];
  throw new Error(`colour '${c}' not understood`);
}

const luts = new Map<ColormapName, Uint8Array>();

/** LUT_SIZE x RGB (Uint8): entry 0 = lowest value, LUT_SIZE-1 = highest. */
export function colormapLut(name: ColormapName): Uint8Array {
  let t = luts.get(name);
  if (!t) {
    const f = scheme(name) as (x: number) => string;
    if (typeof f !== 'function') throw new Error(`Vega has no colour scheme '${name}'`);
    t = new Uint8Array(LUT_SIZE * 3);
    for (let i = 0; i < LUT_SIZE; i++) t.set(parseCss(f(i / (LUT_SIZE - 1))), i * 3);
    luts.set(name, t);
  }
  return t;
}

/** Table index of a value on [vmin, vmax] (clamped); -1 for NaN. A degenerate range gives the middle. */
export function colorIndex(v: number, vmin: number, vmax: number): number {
  if (Number.isNaN(v)) return -1;
  const t = vmax > vmin ? (v - vmin) / (vmax - vmin) : 0.5;
  return Math.min(LUT_SIZE - 1, Math.max(0, Math.floor(t * LUT_SIZE)));
}

/** RGBA pixels (row-major, opaque) of a map on [vmin, vmax] in the given colour map; NaN black. */
export function colorize(data: ArrayLike<number>, vmin: number, vmax: number, cmap: ColormapName, out?: Uint8ClampedArray): Uint8ClampedArray {
  const lut = colormapLut(cmap);
  const rgba = out ?? new Uint8ClampedArray(data.length * 4);
  for (let p = 0; p < data.length; p++) {
    const k = colorIndex(data[p], vmin, vmax);
    const o = p * 4;
    if (k < 0) {
      rgba[o] = MASKED_RGB[0];
      rgba[o + 1] = MASKED_RGB[1];
      rgba[o + 2] = MASKED_RGB[2];
    } else {
      rgba[o] = lut[k * 3];
      rgba[o + 1] = lut[k * 3 + 1];
      rgba[o + 2] = lut[k * 3 + 2];
    }
    rgba[o + 3] = 255;
  }
  return rgba;
}

/**
 * Distinct colours for categories (cluster labels, series): Okabe & Ito's palette without
 * black, then Paul Tol's "muted" scheme, then three more; beyond 20, hues at the golden angle.
 * Never black, which marks excluded pixels.
 */
export const LABEL_COLORS: readonly Rgb[] = [
  [0, 114, 178], [213, 94, 0], [0, 158, 115], [204, 121, 167], [230, 159, 0], [86, 180, 233], [240, 228, 66],
  [204, 102, 119], [51, 34, 136], [221, 204, 119], [17, 119, 51], [136, 204, 238], [136, 34, 85], [68, 170, 153],
  [153, 153, 51], [170, 68, 153], [221, 221, 221], [140, 86, 75], [247, 129, 191], [90, 90, 90],
];

export function labelColor(j: number): Rgb {
  if (j < LABEL_COLORS.length) return LABEL_COLORS[j];
  const h = ((j * 137.508) % 360) / 60;
  const v = 0.85, s = 0.65;
  const c = v * s, xx = c * (1 - Math.abs((h % 2) - 1)), m = v - c;
  const [r, g, b] = h < 1 ? [c, xx, 0] : h < 2 ? [xx, c, 0] : h < 3 ? [0, c, xx] : h < 4 ? [0, xx, c] : h < 5 ? [xx, 0, c] : [c, 0, xx];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

/** Series colours for line plots: Okabe & Ito, ordered so the first contrast most on white. */
export const SERIES_COLORS: readonly Rgb[] = [
  [0, 114, 178], [213, 94, 0], [0, 158, 115], [204, 121, 167], [230, 159, 0], [86, 180, 233], [0, 0, 0], [240, 228, 66],
];

export function css(c: Rgb): string {
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** RGBA pixels of a label map (-1 or >= k: excluded, black). */
export function colorizeLabels(labels: ArrayLike<number>, k: number, out?: Uint8ClampedArray): Uint8ClampedArray {
  const rgba = out ?? new Uint8ClampedArray(labels.length * 4);
  for (let p = 0; p < labels.length; p++) {
    const l = labels[p];
    const c = l >= 0 && l < k ? labelColor(l) : MASKED_RGB;
    rgba.set(c, p * 4);
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}
