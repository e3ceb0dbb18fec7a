// Line plots (spectra, fit residuals, elbow curves) as PNG: axes with nice ticks and light
// grid, axis labels, title and a legend. `makeAxes` is shared with the histogram plot.
import { textWidth } from './font.js';
import { BLACK, Canvas, LIGHT_GREY, WHITE, GREY, type Rect, type Rgb } from './raster.js';
import { formatTicks, niceTicks } from './ticks.js';

export interface Series {
  x: Float64Array;
  y: Float64Array;
  label: string;
  /** Defaults to the next colour of SERIES_COLORS. */
  color?: Rgb;
}

export interface LinePlotOptions {
  series: Series[];
  xlabel: string;
  ylabel: string;
  title: string;
  width?: number;
  height?: number;
  /** Axis ranges; default: the data's x range, the y range padded by 5 %. */
  xlim?: [number, number];
  ylim?: [number, number];
}

/** Okabe & Ito's colour-blind-safe palette, reordered so the first colours contrast most on white. */
export const SERIES_COLORS: readonly Rgb[] = [
  [0, 114, 178], // blue
  [213, 94, 0], // vermillion
  [0, 158, 115], // bluish green
  [204, 121, 167], // reddish purple
  [230, 159, 0], // orange
  [86, 180, 233], // sky blue
  [0, 0, 0], // black
  [240, 228, 66], // yellow (weak on white: last)
];

const TEXT = 2;
const CH = 7 * TEXT; // text height in px
const MARGIN = 16;
const TICK = 5;

export interface Axes {
  cv: Canvas;
  plot: Rect;
  /** Data -> pixel (not rounded, not clipped). */
  px(x: number): number;
  py(y: number): number;
  xlim: [number, number];
  ylim: [number, number];
}

function finiteRange(arrays: Float64Array[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const a of arrays) {
    for (const v of a) {
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  if (lo > hi) return [0, 1]; // no finite data at all
  if (lo === hi) return [lo - 0.5 * (Math.abs(lo) || 1), hi + 0.5 * (Math.abs(hi) || 1)];
  return [lo, hi];
}

/** Frame, grid, ticks, tick labels, axis labels and title; the caller draws data into `plot`. */
export function makeAxes(o: {
  xlabel: string;
  ylabel: string;
  title: string;
  width: number;
  height: number;
  xlim: [number, number];
  ylim: [number, number];
}): Axes {
  const [x0, x1] = o.xlim;
  const [y0, y1] = o.ylim;
  const xt = niceTicks(x0, x1, 7);
  const yt = niceTicks(y0, y1, 6);
  const xl = formatTicks(xt);
  const yl = formatTicks(yt);
  const yLabelW = Math.max(0, ...yl.map((s) => textWidth(s, TEXT)));
  const lastXHalf = xl.length ? textWidth(xl[xl.length - 1], TEXT) / 2 : 0;
  const left = MARGIN + (o.ylabel ? CH + 10 : 0) + yLabelW + 6 + TICK;
  const top = MARGIN + (o.title ? CH + 14 : 0);
  const bottom = MARGIN + (o.xlabel ? CH + 10 : 0) + CH + 6 + TICK;
  const right = Math.max(MARGIN, Math.ceil(lastXHalf) + 4);
  const plot = { x: left, y: top, w: o.width - left - right, h: o.height - top - bottom };
  if (plot.w < 50 || plot.h < 50) throw new RangeError(`plot: ${o.width} x ${o.height} px leaves no room for the axes`);

  const cv = new Canvas(o.width, o.height);
  const px = (x: number) => plot.x + ((x - x0) / (x1 - x0)) * (plot.w - 1);
  const py = (y: number) => plot.y + plot.h - 1 - ((y - y0) / (y1 - y0)) * (plot.h - 1);

  xt.forEach((v, i) => {
    const x = Math.round(px(v));
    cv.fillRect(x, plot.y, 1, plot.h, LIGHT_GREY);
    cv.fillRect(x, plot.y + plot.h, 1, TICK, BLACK);
    cv.text(xl[i], x, plot.y + plot.h + TICK + 6, { scale: TEXT, align: 'center' });
  });
  yt.forEach((v, i) => {
    const y = Math.round(py(v));
    cv.fillRect(plot.x, y, plot.w, 1, LIGHT_GREY);
    cv.fillRect(plot.x - TICK, y, TICK, 1, BLACK);
    cv.text(yl[i], plot.x - TICK - 6, y - Math.floor(CH / 2), { scale: TEXT, align: 'right' });
  });
  if (o.xlabel) cv.text(o.xlabel, plot.x + plot.w / 2, o.height - MARGIN - CH, { scale: TEXT, align: 'center' });
  if (o.ylabel) cv.text(o.ylabel, MARGIN, plot.y + plot.h / 2, { scale: TEXT, align: 'center', vertical: true });
  if (o.title) cv.text(o.title, o.width / 2, MARGIN, { scale: TEXT, align: 'center' });
  return { cv, plot, px, py, xlim: o.xlim, ylim: o.ylim };
}

/** Frame drawn last so data lines do not cover it. */
export function drawFrame(ax: Axes): void {
  const { plot } = ax;
  ax.cv.clip = { x: 0, y: 0, w: ax.cv.width, h: ax.cv.height };
  ax.cv.strokeRect(plot.x - 1, plot.y - 1, plot.w + 2, plot.h + 2, BLACK);
}

/** Legend box in the plot corner that covers the fewest data points. */
export function drawLegend(ax: Axes, entries: { label: string; color: Rgb }[], points: [number, number][]): void {
  if (entries.length === 0) return;
  const { cv, plot } = ax;
  const rowH = CH + 8;
  const w = 10 + 24 + 8 + Math.max(...entries.map((e) => textWidth(e.label, TEXT))) + 10;
  const h = entries.length * rowH + 8;
  const pad = 8;
  const corners: Rect[] = [
    { x: plot.x + plot.w - w - pad, y: plot.y + pad, w, h },
    { x: plot.x + pad, y: plot.y + pad, w, h },
    { x: plot.x + plot.w - w - pad, y: plot.y + plot.h - h - pad, w, h },
    { x: plot.x + pad, y: plot.y + plot.h - h - pad, w, h },
  ];
  let best = corners[0], fewest = Infinity;
  for (const r of corners) {
    let n = 0;
    for (const [x, y] of points) if (x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h) n++;
    if (n < fewest) [best, fewest] = [r, n];
  }
  cv.fillRect(best.x, best.y, best.w, best.h, WHITE);
  cv.strokeRect(best.x, best.y, best.w, best.h, GREY);
  entries.forEach((e, i) => {
    const y = best.y + 4 + i * rowH + rowH / 2;
    cv.fillRect(best.x + 10, Math.round(y) - 1, 24, 3, e.color);
    cv.text(e.label, best.x + 10 + 24 + 8, Math.round(y - CH / 2), { scale: TEXT });
  });
}

/** PNG bytes of one or more y(x) series; NaN points break a line. */
export function renderLinePlot(o: LinePlotOptions): Uint8Array {
  const width = o.width ?? 800;
  const height = o.height ?? 500;
  for (const s of o.series) {
    if (s.x.length !== s.y.length) throw new RangeError(`renderLinePlot: series '${s.label}' has ${s.x.length} x but ${s.y.length} y`);
  }
  const xlim = o.xlim ?? finiteRange(o.series.map((s) => s.x));
  let ylim = o.ylim;
  if (!ylim) {
    const [lo, hi] = finiteRange(o.series.map((s) => s.y));
    const pad = 0.05 * (hi - lo);
    ylim = [lo - pad, hi + pad];
  }
  const ax = makeAxes({ xlabel: o.xlabel, ylabel: o.ylabel, title: o.title, width, height, xlim, ylim });
  const { cv, plot } = ax;
  cv.clip = plot;
  const points: [number, number][] = [];
  const entries = o.series.map((s, i) => ({ label: s.label, color: s.color ?? SERIES_COLORS[i % SERIES_COLORS.length] }));
  o.series.forEach((s, i) => {
    let prev: [number, number] | null = null;
    for (let k = 0; k < s.x.length; k++) {
      if (!Number.isFinite(s.x[k]) || !Number.isFinite(s.y[k])) {
        prev = null;
        continue;
      }
      const p: [number, number] = [ax.px(s.x[k]), ax.py(s.y[k])];
      if (prev) {
        cv.line(prev[0], prev[1], p[0], p[1], entries[i].color, 2);
        // Samples along the segment, so the legend avoids lines and not only vertices.
        const n = Math.min(200, Math.ceil(Math.hypot(p[0] - prev[0], p[1] - prev[1]) / 8));
        for (let j = 1; j < n; j++) points.push([prev[0] + ((p[0] - prev[0]) * j) / n, prev[1] + ((p[1] - prev[1]) * j) / n]);
      } else {
        cv.line(p[0], p[1], p[0], p[1], entries[i].color, 2); // an isolated point stays visible
      }
      points.push(p);
      prev = p;
    }
  });
  drawFrame(ax);
  drawLegend(ax, entries, points);
  return cv.png();
}
