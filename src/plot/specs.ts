/**
 * Vega specifications of every picture the project draws. The same builders serve the PNG
 * files (rendered in Node by src/plot/render.ts, Vega -> SVG -> resvg) and report.html
 * (rendered in the browser by Vega's canvas renderer), so a figure looks the same in both.
 * The builders are pure: data in, a JSON-able spec out. Map images arrive as image URLs
 * (colour-mapped pixels, src/plot/colormap.ts); axes, colour bars and legends are Vega's.
 */
import type { Spec } from 'vega';
import { type ColormapName, type Rgb, css, SERIES_COLORS } from './colormap.js';

/** Fonts: Inter (bundled for PNGs by @expo-google-fonts/inter), the browser's sans-serif otherwise. */
export const FONT = 'Inter, Helvetica, Arial, sans-serif';

const CONFIG = {
  font: FONT,
  title: { fontSize: 16, fontWeight: 600, offset: 10 },
  axis: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: 600, grid: false, labelOverlap: true },
  legend: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: 600 },
  background: 'white',
};

/**
 * Number format of axis and colour-bar labels (d3-format): fixed point with the decimals the
 * tick step needs, trailing zeros trimmed, no thousands separators (8340.5, not 8,340.5).
 */
export const NUMBER_FORMAT = '~f';

export interface ImagePlot {
  /** URL of the picture (a data: URL of a PNG, or a canvas's). */
  url: string;
  /** Map size in pixels (the axes count map pixels). */
  width: number;
  height: number;
  /** Displayed size of the map area, in screen pixels. */
  displayWidth: number;
  displayHeight: number;
  title?: string;
  /** µm per map pixel: draws a scale bar (bottom right) when given. */
  pixelSizeUm?: number;
}

/**
 * Length of a scale bar for a field `fieldUm` wide: the largest 1, 2 or 5 x 10^k µm not
 * longer than a fifth of the field.
 */
export function scaleBarUm(fieldUm: number): number {
  const target = fieldUm / 5;
  const p = 10 ** Math.floor(Math.log10(target));
  return [5, 2, 1].map((m) => m * p).find((v) => v <= target * (1 + 1e-12)) ?? p;
}

function scaleBarMarks(o: ImagePlot): unknown[] {
  if (!(o.pixelSizeUm && o.pixelSizeUm > 0)) return [];
  const um = scaleBarUm(o.width * o.pixelSizeUm);
  const len = (um / o.pixelSizeUm) * (o.displayWidth / o.width);
  const x2 = o.displayWidth - 10, y = o.displayHeight - 12;
  const text = `${Number(um.toPrecision(3))} µm`;
  return [
    { type: 'rect', name: 'scalebar_back', encode: { enter: { x: { value: x2 - len - 6 }, x2: { value: x2 + 6 }, y: { value: y - 22 }, y2: { value: y + 10 }, fill: { value: '#000' }, opacity: { value: 0.55 } } } },
    { type: 'rect', name: 'scalebar', encode: { enter: { x: { value: x2 - len }, x2: { value: x2 }, y: { value: y }, y2: { value: y + 5 }, fill: { value: '#fff' } } } },
    { type: 'text', name: 'scalebar_label', encode: { enter: { x: { value: x2 - len / 2 }, y: { value: y - 4 }, text: { value: text }, align: { value: 'center' }, baseline: { value: 'bottom' }, fill: { value: '#fff' }, fontSize: { value: 12 }, fontWeight: { value: 600 } } } },
  ];
}

export interface ColorBar {
  vmin: number;
  vmax: number;
  cmap: ColormapName;
  /** Colour-bar title: the quantity and its unit, e.g. "e0_half (eV)". */
  label: string;
  /** The map has masked (NaN) pixels: a black swatch under the bar says what black means. */
  masked?: boolean;
}

/** What black means in a value map (every picture and report.html paint NaN black). */
export const MASKED_LABEL = 'black: masked (NaN)';

export interface Swatch {
  label: string;
  color: Rgb;
}

/** Map pixel axes with y down (row 0 at the top), as images are shown. */
function pixelAxes(o: ImagePlot) {
  return {
    scales: [
      { name: 'x', type: 'linear', domain: [0, o.width], range: [0, { signal: 'width' }], zero: false, nice: false },
      { name: 'y', type: 'linear', domain: [0, o.height], range: [0, { signal: 'height' }], zero: false, nice: false },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: 'x (pixel)', format: 'd', tickMinStep: 1 },
      { orient: 'left', scale: 'y', title: 'y (pixel)', format: 'd', tickMinStep: 1 },
    ],
  };
}

/** A map with a colour bar (continuous values) or with swatches (labels, RGB composites). */
export function imageSpec(o: ImagePlot, legend: { bar: ColorBar } | { swatches: Swatch[]; notes?: string[] }): Spec {
  const ax = pixelAxes(o);
  const scales: unknown[] = [...ax.scales];
  const legends: unknown[] = [];
  if ('bar' in legend) {
    const b = legend.bar;
    const [lo, hi] = b.vmax > b.vmin ? [b.vmin, b.vmax] : [b.vmin - 0.5, b.vmin + 0.5];
    scales.push({ name: 'colour', type: 'linear', domain: [lo, hi], range: { scheme: b.cmap }, zero: false, nice: false });
    legends.push({ fill: 'colour', type: 'gradient', title: b.label, format: NUMBER_FORMAT, gradientLength: { signal: b.masked ? 'height - 40' : 'height' }, gradientThickness: 18, direction: 'vertical', tickCount: 6, titleLimit: 400 });
    if (b.masked) {
      scales.push({ name: 'masked', type: 'ordinal', domain: [MASKED_LABEL], range: ['#000'] });
      legends.push({ fill: 'masked', symbolType: 'square', symbolSize: 200, symbolStrokeColor: '#666', symbolStrokeWidth: 0.5, labelLimit: 360 });
    }
  } else {
    const labels = legend.swatches.map((s) => s.label);
    scales.push({ name: 'swatch', type: 'ordinal', domain: labels, range: legend.swatches.map((s) => css(s.color)) });
    legends.push({
      fill: 'swatch', symbolType: 'square', symbolSize: 200, symbolStrokeColor: '#666', symbolStrokeWidth: 0.5,
      title: legend.notes?.length ? legend.notes : null, titleFontWeight: 400, titleFontSize: 12, labelLimit: 360, titleLimit: 400,
    });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    width: o.displayWidth,
    height: o.displayHeight,
    padding: 12,
    autosize: 'pad',
    title: o.title ? { text: o.title } : undefined,
    signals: [{ name: 'pixelX', value: -1 }, { name: 'pixelY', value: -1 }],
    scales,
    axes: ax.axes,
    legends,
    marks: [
      {
        type: 'image',
        name: 'map',
        encode: { enter: { url: { value: o.url }, x: { value: 0 }, y: { value: 0 }, width: { signal: 'width' }, height: { signal: 'height' }, aspect: { value: false }, smooth: { value: false } } },
      },
      { type: 'rect', encode: { enter: { x: { value: 0 }, y: { value: 0 }, width: { signal: 'width' }, height: { signal: 'height' }, stroke: { value: '#888' }, fill: { value: null } } } },
      ...scaleBarMarks(o),
      // The inspected pixel (report.html sets the signals; -1 = none).
      {
        type: 'rect',
        encode: {
          update: {
            x: { signal: "scale('x', pixelX) - 2" }, x2: { signal: "scale('x', pixelX + 1) + 2" },
            y: { signal: "scale('y', pixelY) - 2" }, y2: { signal: "scale('y', pixelY + 1) + 2" },
            stroke: { value: '#ff2d55' }, strokeWidth: { value: 2 }, fill: { value: null },
            opacity: { signal: 'pixelX >= 0 ? 1 : 0' },
          },
        },
      },
    ],
    config: CONFIG,
  } as Spec;
}

export interface LineSeries {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  label: string;
  color?: Rgb;
  /** 'line' (default), 'points' (markers, e.g. measured data), or a +/- band around y with y2. */
  kind?: 'line' | 'points' | 'band';
  /** For kind 'band': the upper edge (y is the lower edge). */
  y2?: ArrayLike<number>;
  dash?: number[];
  width?: number;
}

export interface LinePlot {
  series: LineSeries[];
  xlabel: string;
  ylabel: string;
  title?: string;
  width?: number;
  height?: number;
  xlim?: [number, number];
  ylim?: [number, number];
  /** Vertical markers (e.g. e0) with a label. */
  rules?: { x: number; label: string; color?: Rgb; dash?: number[] }[];
  /** Shaded x ranges (e.g. the pre- and post-edge windows). */
  windows?: { x0: number; x1: number; label: string; color?: Rgb }[];
  /** Logarithmic y axis. */
  ylog?: boolean;
  /** Integer x values (k, component numbers): ticks at integers only. */
  xinteger?: boolean;
}

/** Default size of line plots (the plotting area, pixels). */
export const LINE_WIDTH = 640;
export const LINE_HEIGHT = 380;

function rows(s: LineSeries): { x: number; y: number; y2?: number }[] {
  if (s.x.length !== s.y.length || (s.y2 && s.y2.length !== s.y.length)) {
    throw new RangeError(`series '${s.label}': ${s.x.length} x values, ${s.y.length} y values`);
  }
  const out: { x: number; y: number; y2?: number }[] = [];
  for (let i = 0; i < s.x.length; i++) {
    const x = s.x[i], y = s.y[i];
    // Vega's JSON data cannot hold NaN: a gap is a row the `defined` channel drops.
    out.push(s.y2 ? { x, y: Number.isFinite(y) ? y : (null as unknown as number), y2: Number.isFinite(s.y2[i]) ? s.y2[i] : (null as unknown as number) } : { x, y: Number.isFinite(y) ? y : (null as unknown as number) });
  }
  return out;
}

/** Lines, markers, bands, vertical rules and shaded windows on linear axes with units in their titles. */
export function lineSpec(o: LinePlot): Spec {
  const data: unknown[] = [];
  const marks: unknown[] = [];
  const legendLabels: string[] = [];
  const legendColors: string[] = [];
  let xlo = Infinity, xhi = -Infinity, ylo = Infinity, yhi = -Infinity;
  o.series.forEach((s, i) => {
    const color = css(s.color ?? SERIES_COLORS[i % SERIES_COLORS.length]);
    const name = `s${i}`;
    const values = rows(s);
    for (const r of values) {
      if (Number.isFinite(r.x)) [xlo, xhi] = [Math.min(xlo, r.x), Math.max(xhi, r.x)];
      for (const v of [r.y, r.y2]) if (v !== undefined && v !== null && Number.isFinite(v) && (!o.ylog || v > 0)) [ylo, yhi] = [Math.min(ylo, v), Math.max(yhi, v)];
    }
    data.push({ name, values });
    const defined = { signal: `isValid(datum.y) && isFinite(datum.y)${s.kind === 'band' ? ' && isValid(datum.y2) && isFinite(datum.y2)' : ''}${o.ylog ? ' && datum.y > 0' : ''}` };
    if (s.kind === 'band') {
      marks.push({ type: 'area', from: { data: name }, encode: { enter: { x: { scale: 'x', field: 'x' }, y: { scale: 'y', field: 'y' }, y2: { scale: 'y', field: 'y2' }, fill: { value: color }, fillOpacity: { value: 0.2 }, defined } } });
    } else if (s.kind === 'points') {
      marks.push({ type: 'symbol', from: { data: name }, encode: { enter: { x: { scale: 'x', field: 'x' }, y: { scale: 'y', field: 'y' }, size: { value: 36 }, fill: { value: color }, opacity: { signal: `isValid(datum.y) && isFinite(datum.y) ? 1 : 0` } } } });
    } else {
      marks.push({ type: 'line', from: { data: name }, encode: { enter: { x: { scale: 'x', field: 'x' }, y: { scale: 'y', field: 'y' }, stroke: { value: color }, strokeWidth: { value: s.width ?? 2 }, strokeDash: { value: s.dash ?? [] }, defined } } });
    }
    if (s.label) {
      legendLabels.push(s.label);
      legendColors.push(color);
    }
  });
  for (const w of o.windows ?? []) [xlo, xhi] = [Math.min(xlo, w.x0), Math.max(xhi, w.x1)];
  if (!(xhi > xlo)) [xlo, xhi] = Number.isFinite(xlo) ? [xlo - 0.5, xlo + 0.5] : [0, 1];
  if (!(yhi > ylo)) [ylo, yhi] = Number.isFinite(ylo) ? [ylo - 0.5, ylo + 0.5] : o.ylog ? [0.1, 1] : [0, 1];
  const pad = o.ylog ? 0 : 0.05 * (yhi - ylo);
  const xdom = o.xlim ?? [xlo, xhi];
  const ydom = o.ylim ?? [ylo - pad, yhi + pad];
  const under: unknown[] = [];
  (o.windows ?? []).forEach((w, i) => {
    const c = css(w.color ?? [150, 150, 150]);
    under.push({ type: 'rect', encode: { enter: { x: { scale: 'x', value: w.x0 }, x2: { scale: 'x', value: w.x1 }, y: { value: 0 }, y2: { signal: 'height' }, fill: { value: c }, fillOpacity: { value: 0.12 } } } });
    under.push({ type: 'text', encode: { enter: { x: { scale: 'x', value: (w.x0 + w.x1) / 2 }, y: { value: 4 + 14 * (i % 2) }, text: { value: w.label }, align: { value: 'center' }, baseline: { value: 'top' }, fontSize: { value: 11 }, fill: { value: '#555' } } } });
  });
  (o.rules ?? []).forEach((r, i) => {
    const c = css(r.color ?? [80, 80, 80]);
    marks.push({ type: 'rule', encode: { enter: { x: { scale: 'x', value: r.x }, y: { value: 0 }, y2: { signal: 'height' }, stroke: { value: c }, strokeWidth: { value: 1.5 }, strokeDash: { value: r.dash ?? [4, 3] } } } });
    marks.push({ type: 'text', encode: { enter: { x: { scale: 'x', value: r.x }, dx: { value: 3 }, y: { signal: `height - 6 - ${14 * (i % 3)}` }, text: { value: r.label }, fontSize: { value: 11 }, fill: { value: c } } } });
  });
  const legends: unknown[] = legendLabels.length
    ? [{ stroke: 'legend', fill: 'legend', symbolType: 'stroke', symbolStrokeWidth: 3, orient: 'right', labelLimit: 320 }]
    : [];
  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    width: o.width ?? LINE_WIDTH,
    height: o.height ?? LINE_HEIGHT,
    padding: 12,
    autosize: 'pad',
    title: o.title ? { text: o.title } : undefined,
    data,
    scales: [
      { name: 'x', type: 'linear', domain: xdom, range: 'width', zero: false, nice: false }, // the data's span: spectra end at their last energy
      { name: 'y', type: o.ylog ? 'log' : 'linear', domain: ydom, range: 'height', zero: false, nice: !o.ylim, clamp: false },
      { name: 'legend', type: 'ordinal', domain: legendLabels.length ? legendLabels : ['-'], range: legendColors.length ? legendColors : ['#000'] },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: o.xlabel, format: o.xinteger ? 'd' : NUMBER_FORMAT, grid: true, gridOpacity: 0.3, ...(o.xinteger ? { tickMinStep: 1 } : {}) },
      { orient: 'left', scale: 'y', title: o.ylabel, format: o.ylog ? '~g' : NUMBER_FORMAT, grid: true, gridOpacity: 0.3 },
    ],
    legends,
    marks: [{ type: 'group', encode: { enter: { width: { signal: 'width' }, height: { signal: 'height' }, clip: { value: true } } }, marks: [...under, ...marks] }],
    config: CONFIG,
  } as Spec;
}

export interface HistogramPlot {
  edges: ArrayLike<number>;
  counts: ArrayLike<number>;
  xlabel: string;
  ylabel?: string;
  title?: string;
  width?: number;
  height?: number;
  color?: Rgb;
  rules?: { x: number; label: string; color?: Rgb }[];
}

/** A histogram as bars (empty bins left out). */
export function histogramSpec(o: HistogramPlot): Spec {
  const values: { a: number; b: number; n: number }[] = [];
  let maxCount = 1;
  for (let i = 0; i < o.counts.length; i++) {
    if (o.counts[i] > 0) values.push({ a: o.edges[i], b: o.edges[i + 1], n: o.counts[i] });
    maxCount = Math.max(maxCount, o.counts[i]);
  }
  const n = o.counts.length;
  const xdom = n ? [o.edges[0], o.edges[n]] : [0, 1];
  const c = css(o.color ?? SERIES_COLORS[0]);
  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    width: o.width ?? LINE_WIDTH,
    height: o.height ?? LINE_HEIGHT,
    padding: 12,
    autosize: 'pad',
    title: o.title ? { text: o.title } : undefined,
    data: [{ name: 'bins', values }],
    scales: [
      { name: 'x', type: 'linear', domain: xdom, range: 'width', zero: false, nice: false },
      { name: 'y', type: 'linear', domain: [0, maxCount * 1.05], range: 'height', nice: true },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: o.xlabel, format: NUMBER_FORMAT },
      { orient: 'left', scale: 'y', title: o.ylabel ?? 'pixels', format: NUMBER_FORMAT, grid: true, gridOpacity: 0.3 },
    ],
    marks: [
      { type: 'rect', from: { data: 'bins' }, encode: { enter: { x: { scale: 'x', field: 'a' }, x2: { scale: 'x', field: 'b' }, y: { scale: 'y', field: 'n' }, y2: { scale: 'y', value: 0 }, fill: { value: c } } } },
      ...(o.rules ?? []).flatMap((r, i) => [
        { type: 'rule', encode: { enter: { x: { scale: 'x', value: r.x }, y: { value: 0 }, y2: { signal: 'height' }, stroke: { value: css(r.color ?? [213, 94, 0]) }, strokeDash: { value: [4, 3] }, strokeWidth: { value: 1.5 } } } },
        { type: 'text', encode: { enter: { x: { scale: 'x', value: r.x }, dx: { value: 3 }, y: { value: 4 + 14 * i }, baseline: { value: 'top' }, text: { value: r.label }, fontSize: { value: 11 }, fill: { value: css(r.color ?? [213, 94, 0]) } } } },
      ]),
    ],
    config: CONFIG,
  } as Spec;
}
