/**
 * Map pictures as PNG: a value map with its colour bar, a label map with its legend, an RGB
 * composite with its channel legend. Specs from src/plot/specs.ts, rendered by render.ts.
 */
import { colorize, colorizeLabels, labelColor, type ColormapName } from './colormap.js';
import { imageSpec, type Swatch } from './specs.js';
import { pngDataUrl, renderSpec, type Rendered } from './render.js';
import { percentiles } from './histogram.js';
import { mapScale, PICTURE_MAX_SIDE } from './map-scale.js';
import { collectGarbage } from '../pipeline/memory.js';
import { rgbComposite, rgbSwatches, type RgbCompositeOptions, type RgbLegend } from './rgb.js';
export { mapScale };

/**
 * A map too large to hold twice, as blocks of whole rows visited from the top (e.g. read from
 * its .npy): `visit(block, y0)` for rows y0.. of the block.
 */
export type RowBlocks = (visit: (block: Float32Array, y0: number) => void) => void;

export interface MapOptions {
  /** float32 [height][width] (NaN = masked), or its rows in blocks. */
  data: Float32Array | RowBlocks;
  width: number;
  height: number;
  vmin: number;
  vmax: number;
  title?: string;
  /** Unit of the values (colour-bar title). */
  unit?: string;
  /** Quantity shown on the colour bar (default: the title). */
  label?: string;
  cmap?: ColormapName;
  /** µm per pixel: a scale bar is drawn when given. */
  pixelSizeUm?: number;
}


/**
 * Pictures show at most PICTURE_MAX_SIDE map pixels a side: a larger map is drawn by blocks
 * of b x b pixels (b the smallest integer that fits), so a picture's memory and size do not
 * grow with the image; the full maps are in the .npy/.tif files. The axes still count map pixels.
 */
function blockSize(width: number, height: number): number {
  return Math.ceil(Math.max(width, height) / PICTURE_MAX_SIDE);
}

/**
 * Value maps: the mean of each block's finite values (NaN when it has none). Rows are added
 * in order whether the map comes whole or in row blocks, so both give the same bytes.
 */
function blockMeans(data: Float32Array | RowBlocks, width: number, height: number): { data: Float32Array; width: number; height: number } {
  const b = blockSize(width, height);
  if (b <= 1) {
    if (typeof data !== 'function') return { data, width, height };
    const whole = new Float32Array(width * height);
    data((block, y0) => whole.set(block, y0 * width));
    return { data: whole, width, height };
  }
  const w = Math.ceil(width / b);
  const h = Math.ceil(height / b);
  const sum = new Float64Array(w * h);
  const count = new Uint32Array(w * h);
  const add = (rows: Float32Array, y0: number) => {
    const n = rows.length / width;
    for (let r = 0; r < n; r++) {
      const row = Math.floor((y0 + r) / b) * w;
      for (let x = 0; x < width; x++) {
        const v = rows[r * width + x];
        if (Number.isFinite(v)) {
          sum[row + Math.floor(x / b)] += v;
          count[row + Math.floor(x / b)]++;
        }
      }
    }
  };
  if (typeof data === 'function') data(add);
  else add(data, 0);
  const out = new Float32Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = count[i] > 0 ? sum[i] / count[i] : NaN;
  return { data: out, width: w, height: h };
}

/** Label and composite pictures: each block shows its first pixel (colours are not averaged). */
function blockCorners(rgba: Uint8ClampedArray, width: number, height: number): { rgba: Uint8ClampedArray; width: number; height: number } {
  const b = blockSize(width, height);
  if (b <= 1) return { rgba, width, height };
  const w = Math.ceil(width / b);
  const h = Math.ceil(height / b);
  const src = new Uint32Array(rgba.buffer, rgba.byteOffset, width * height);
  const out = new Uint8ClampedArray(w * h * 4);
  const dst = new Uint32Array(out.buffer);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) dst[y * w + x] = src[y * b * width + x * b];
  return { rgba: out, width: w, height: h };
}

function checkMap(n: number, width: number, height: number, what: string): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0) || n !== width * height) {
    throw new RangeError(`${what}: ${n} values is not ${width} x ${height}`);
  }
}

function hasNaN(data: ArrayLike<number> | RowBlocks): boolean {
  if (typeof data === 'function') {
    let found = false;
    data((block) => {
      if (!found) found = hasNaN(block);
    });
    return found;
  }
  for (let i = 0; i < data.length; i++) if (Number.isNaN(data[i])) return true;
  return false;
}

/** A value map on [vmin, vmax] with its colour bar (title: quantity and unit). NaN pixels black, and the legend says so. */
export async function renderMapImage(o: MapOptions): Promise<Rendered> {
  if (typeof o.data !== 'function') checkMap(o.data.length, o.width, o.height, 'renderMap');
  if (!Number.isFinite(o.vmin) || !Number.isFinite(o.vmax) || o.vmax < o.vmin) throw new RangeError(`renderMap: bad value range [${o.vmin}, ${o.vmax}]`);
  const cmap = o.cmap ?? 'viridis';
  const label = `${o.label ?? o.title ?? 'value'}${o.unit ? ` (${o.unit})` : ''}`;
  const masked = hasNaN(o.data);
  let r: { data: Float32Array | null; width: number; height: number } = blockMeans(o.data, o.width, o.height);
  const s = mapScale(r.width, r.height);
  const url = pngDataUrl(colorize(r.data!, o.vmin, o.vmax, cmap), r.width, r.height, s);
  r = { ...r, data: null };
  // The block means and their colours (~20 bytes a picture pixel: 20 MB for a 1000 x 1000
  // picture) are garbage now: returned before Vega and resvg draw (measured on a 2000 x 2000
  // edge run: the picture's peak is that much lower).
  collectGarbage();
  return renderSpec(imageSpec({ url, width: o.width, height: o.height, displayWidth: r.width * s, displayHeight: r.height * s, title: o.title, pixelSizeUm: o.pixelSizeUm }, { bar: { vmin: o.vmin, vmax: o.vmax, cmap, label, masked } }));
}

export async function renderMap(o: MapOptions): Promise<Uint8Array> {
  return (await renderMapImage(o)).png;
}

/** A map as PNG on its 1st-99th percentile range (viridis, NaN black). */
export async function renderMapAuto(map: Float32Array, width: number, height: number, title: string, unit?: string): Promise<Uint8Array> {
  let [lo, hi] = percentiles(map, [1, 99]);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, lo + 0.5];
  return renderMap({ data: map, width, height, vmin: lo, vmax: hi, title, unit });
}

/** RGBA pixels with a legend of swatches (cluster labels, RGB composites). */
export async function renderSwatchMap(rgba: Uint8ClampedArray, width: number, height: number, swatches: Swatch[], opts: { title?: string; notes?: string[] } = {}): Promise<Rendered> {
  checkMap(rgba.length / 4, width, height, 'renderSwatchMap');
  const r = blockCorners(rgba, width, height);
  const s = mapScale(r.width, r.height);
  const url = pngDataUrl(r.rgba, r.width, r.height, s);
  return renderSpec(imageSpec({ url, width, height, displayWidth: r.width * s, displayHeight: r.height * s, title: opts.title }, { swatches, notes: opts.notes }));
}

/**
 * The label map in colour, excluded pixels black, with a legend: one swatch per cluster with
 * its number and share of the included pixels (or the given legend texts).
 */
export async function renderLabelsPng(
  labels: Int32Array | Int16Array, width: number, height: number, k: number,
  opts: { title?: string; legend?: string[] } = {},
): Promise<Uint8Array> {
  checkMap(labels.length, width, height, 'renderLabelsPng');
  const counts = new Array<number>(k).fill(0);
  let excluded = 0;
  for (const l of labels) {
    if (l >= 0 && l < k) counts[l]++;
    else excluded++;
  }
  const included = labels.length - excluded;
  const swatches: Swatch[] = Array.from({ length: k }, (_, j) => ({
    label: opts.legend?.[j] ?? `cluster ${j}: ${included > 0 ? ((100 * counts[j]) / included).toFixed(1) : '0.0'} %`,
    color: labelColor(j),
  }));
  if (excluded > 0) swatches.push({ label: `excluded: ${excluded} px`, color: [0, 0, 0] });
  return (await renderSwatchMap(colorizeLabels(labels, k), width, height, swatches, { title: opts.title })).png;
}

/**
 * PNG of up to three fraction maps as the red, green and blue channels (rgbComposite), with a
 * legend of the channels. Returns the PNG and the legend object for summary.json.
 */
export async function renderRgbComposite(fractions: readonly Float32Array[], width: number, height: number, opts: RgbCompositeOptions): Promise<{ png: Uint8Array; legend: RgbLegend }> {
  const { rgba, legend } = rgbComposite(fractions, width, height, opts);
  const { swatches, notes } = rgbSwatches(legend);
  const r = await renderSwatchMap(rgba, width, height, swatches, { title: opts.title, notes });
  return { png: r.png, legend };
}
