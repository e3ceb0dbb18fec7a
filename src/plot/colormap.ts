// Colour maps of per-pixel results (edge energy, state of charge, ...) as PNG: the map on a
// fixed value range in viridis, masked (NaN) pixels black, a labelled colour bar and a title.
import { textWidth } from './font.js';
import { BLACK, Canvas, GREY, type Rect } from './raster.js';
import { formatTicks, niceTicks } from './ticks.js';

// viridis, the perceptually uniform map of matplotlib (van der Walt & Smith, CC0), from the
// degree-6 least-squares polynomial fit in t in [0, 1] published by Matt Zucker (Shadertoy).
// Checked when written against the 256-entry CC0 table: within 3.3/255 everywhere
// (largest at the yellow end), 0.9/255 on average; its CIE L* rises monotonically (8-bit
// rounding leaves steps of at most -0.03 L*, far below what an eye can see).
const VIRIDIS_POLY: readonly (readonly [number, number, number])[] = [
  [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
  [0.1050930431085774, 1.404613529898575, 1.384590162594685],
  [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
  [-4.634230498983486, -5.799100973351585, -19.33244095627987],
  [6.228269936347081, 14.17993336680509, 56.69055260068105],
  [4.776384997670288, -13.74514537774601, -65.35303263337234],
  [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

/** 256 x RGB (Uint8), entry 0 = lowest value (dark blue-purple), 255 = highest (yellow). */
export const VIRIDIS: Uint8Array = (() => {
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    for (let ch = 0; ch < 3; ch++) {
      let v = 0;
      for (let k = VIRIDIS_POLY.length - 1; k >= 0; k--) v = v * t + VIRIDIS_POLY[k][ch];
      table[i * 3 + ch] = Math.round(255 * Math.min(1, Math.max(0, v)));
    }
  }
  return table;
})();

/** Table index of a value on [vmin, vmax] (clamped); -1 for NaN. */
export function colorIndex(v: number, vmin: number, vmax: number): number {
  if (Number.isNaN(v)) return -1;
  const t = vmax > vmin ? (v - vmin) / (vmax - vmin) : 0.5;
  return Math.min(255, Math.max(0, Math.floor(t * 256)));
}

export interface MapOptions {
  /** float32 [height][width]; NaN = masked. */
  data: Float32Array;
  width: number;
  height: number;
  vmin: number;
  vmax: number;
  title?: string;
  unit?: string;
}

export interface MapLayout {
  /** Integer nearest-neighbour magnification of the map. */
  scale: number;
  map: Rect;
  bar: Rect;
  width: number;
  height: number;
}

const TEXT = 2; // font magnification: 10 x 14 px glyphs
const MARGIN = 16;
const MIN_MAP_PX = 400; // small maps are magnified to about this height so labels fit
const MAX_SCALED_WIDTH = 2000;
const BAR_GAP = 20;
const BAR_W = 24;
// Tick marks cross the bar's edge and stand well clear of their labels: a short dash right
// beside "0.25" reads as a minus sign.
const TICK_IN = 6;
const TICK_OUT = 4;
const LABEL_GAP = 8;

function tickValues(vmin: number, vmax: number): number[] {
  return niceTicks(vmin, vmax, 5);
}

/** Where renderMap puts things (exported so tests and callers can find the colour bar). */
export function mapLayout(o: Omit<MapOptions, 'data'>): MapLayout {
  const scale = Math.max(1, Math.min(Math.ceil(MIN_MAP_PX / o.height), Math.floor(MAX_SCALED_WIDTH / o.width)));
  const titleH = o.title ? 7 * TEXT + 14 : 0;
  const map = { x: MARGIN, y: MARGIN + titleH, w: o.width * scale, h: o.height * scale };
  const bar = { x: map.x + map.w + BAR_GAP, y: map.y, w: BAR_W, h: map.h };
  const labels = formatTicks(tickValues(o.vmin, o.vmax));
  const labelW = Math.max(0, ...labels.map((s) => textWidth(s, TEXT)));
  let right = bar.x + bar.w + TICK_OUT + LABEL_GAP + labelW;
  if (o.unit) right += 10 + 7 * TEXT;
  const width = Math.max(right + MARGIN, o.title ? textWidth(o.title, TEXT) + 2 * MARGIN : 0);
  const height = map.y + map.h + MARGIN;
  return { scale, map, bar, width, height };
}

/** PNG bytes of the map with a colour bar (vmax at the top), tick labels, unit and title. */
export function renderMap(o: MapOptions): Uint8Array {
  const { data, width, height, vmin, vmax } = o;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`renderMap: bad size ${width} x ${height}`);
  }
  if (data.length !== width * height) throw new RangeError(`renderMap: data has ${data.length} values, expected ${width * height}`);
  if (!Number.isFinite(vmin) || !Number.isFinite(vmax) || vmax < vmin) {
    throw new RangeError(`renderMap: need finite vmin <= vmax, got ${vmin}, ${vmax}`);
  }
  const L = mapLayout(o);
  const cv = new Canvas(L.width, L.height);

  // Colour the map at native size, then magnify.
  const rgb = new Uint8Array(width * height * 3); // zeros: NaN stays black
  for (let i = 0; i < data.length; i++) {
    const k = colorIndex(data[i], vmin, vmax);
    if (k < 0) continue;
    rgb[i * 3] = VIRIDIS[k * 3];
    rgb[i * 3 + 1] = VIRIDIS[k * 3 + 1];
    rgb[i * 3 + 2] = VIRIDIS[k * 3 + 2];
  }
  cv.blitScaled(rgb, width, height, L.map.x, L.map.y, L.scale);

  // Colour bar: each row shows the colour of the value at that height, top = vmax.
  const { bar } = L;
  for (let j = 0; j < bar.h; j++) {
    const v = bar.h > 1 ? vmax - (j / (bar.h - 1)) * (vmax - vmin) : vmax;
    const k = colorIndex(v, vmin, vmax);
    cv.fillRect(bar.x, bar.y + j, bar.w, 1, [VIRIDIS[k * 3], VIRIDIS[k * 3 + 1], VIRIDIS[k * 3 + 2]]);
  }
  cv.strokeRect(bar.x - 1, bar.y - 1, bar.w + 2, bar.h + 2, GREY);

  const ticks = tickValues(vmin, vmax);
  const labels = formatTicks(ticks);
  const labelX = bar.x + bar.w + TICK_OUT + LABEL_GAP;
  let labelW = 0;
  ticks.forEach((v, i) => {
    const y = vmax > vmin ? Math.round(bar.y + ((vmax - v) / (vmax - vmin)) * (bar.h - 1)) : bar.y + Math.floor(bar.h / 2);
    cv.fillRect(bar.x + bar.w - TICK_IN, y, TICK_IN + TICK_OUT, 1, BLACK);
    cv.text(labels[i], labelX, y - Math.floor((7 * TEXT) / 2), { scale: TEXT });
    labelW = Math.max(labelW, textWidth(labels[i], TEXT));
  });
  if (o.unit) cv.text(o.unit, labelX + labelW + 10, bar.y + bar.h / 2, { scale: TEXT, vertical: true, align: 'center' });
  if (o.title) cv.text(o.title, L.width / 2, MARGIN, { scale: TEXT, align: 'center' });
  return cv.png();
}
