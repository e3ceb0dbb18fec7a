/**
 * Pictures of the clustering and PCA outputs: elbow, label map with legend, cluster mean
 * spectra, scree plot, and maps on their 1st-99th percentile range.
 */
import { Canvas, BLACK, GREY, WHITE, type Rgb } from './raster.js';
import { textWidth } from './font.js';
import { drawFrame, drawLegend, makeAxes, renderLinePlot } from './lineplot.js';
import { renderMap } from './colormap.js';
import { percentiles } from './histogram.js';
import type { ElbowRow } from '../pipeline/elbow.js';
import type { ClusterSpectra } from '../pipeline/cluster-stats.js';
import type { PcaModel } from '../cpu/pca.js';

/** The WCSS curve with the chosen k marked. */
export function renderElbowPng(table: ElbowRow[], chosenK: number, opts: { units?: string } = {}): Uint8Array {
  const x = Float64Array.from(table, (r) => r.k);
  const y = Float64Array.from(table, (r) => r.wcss);
  const pick = table.find((r) => r.k === chosenK);
  const series = [{ x, y, label: 'WCSS' }];
  if (pick) {
    // A '+' marker (two strokes, NaN breaks the line between them): a lone point would be a dot.
    let lo = Infinity, hi = -Infinity;
    for (const v of y) if (Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    const dy = 0.06 * (hi - lo || Math.abs(hi) || 1);
    const dk = 0.04 * Math.max(1, x[x.length - 1] - x[0]);
    series.push({
      x: Float64Array.of(pick.k - dk, pick.k + dk, NaN, pick.k, pick.k),
      y: Float64Array.of(pick.wcss, pick.wcss, NaN, pick.wcss - dy, pick.wcss + dy),
      label: `chosen k = ${chosenK}`,
    });
  }
  return renderLinePlot({
    series,
    xlabel: 'k (clusters)',
    ylabel: `WCSS${opts.units ? ` (${opts.units})` : ''}`,
    title: `Elbow: k = ${chosenK} (Kneedle)`,
  });
}

/**
 * Distinct colours for cluster labels (never black, which marks excluded pixels):
 * Okabe & Ito's palette without black, then Paul Tol's "muted" scheme, then three more;
 * beyond 20 clusters, hues at the golden angle.
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

/**
 * The label map in colour, excluded pixels black, with a legend: one swatch per cluster
 * with its number and share of the included pixels (or the given legend texts).
 */
export function renderLabelsPng(
  labels: Int32Array | Int16Array, width: number, height: number, k: number,
  opts: { title?: string; legend?: string[] } = {},
): Uint8Array {
  if (labels.length !== width * height) throw new RangeError(`renderLabelsPng: ${labels.length} labels is not ${width} x ${height}`);
  const TEXT = 2, MARGIN = 16, SW = 16, GAP = 8, ROW = 22;
  const scale = Math.max(1, Math.min(Math.ceil(400 / height), Math.floor(2000 / width)));
  const counts = new Array<number>(k).fill(0);
  let excluded = 0;
  for (const l of labels) {
    if (l >= 0 && l < k) counts[l]++;
    else excluded++;
  }
  const included = labels.length - excluded;
  const texts = Array.from({ length: k }, (_, j) => opts.legend?.[j] ?? `${j}: ${included > 0 ? ((100 * counts[j]) / included).toFixed(1) : '0.0'} %`);
  if (excluded > 0) texts.push(`excluded: ${excluded}`);
  const legendW = SW + GAP + Math.max(...texts.map((t) => textWidth(t, TEXT)));
  const titleH = opts.title ? 7 * TEXT + 14 : 0;
  const mapW = width * scale, mapH = height * scale;
  const W = Math.max(MARGIN + mapW + 24 + legendW + MARGIN, opts.title ? textWidth(opts.title, TEXT) + 2 * MARGIN : 0);
  const H = MARGIN + titleH + Math.max(mapH, texts.length * ROW) + MARGIN;
  const cv = new Canvas(W, H, WHITE);
  const rgb = new Uint8Array(width * height * 3);
  for (let p = 0; p < labels.length; p++) {
    const l = labels[p];
    if (l < 0 || l >= k) continue;
    const c = labelColor(l);
    rgb[p * 3] = c[0];
    rgb[p * 3 + 1] = c[1];
    rgb[p * 3 + 2] = c[2];
  }
  const top = MARGIN + titleH;
  cv.blitScaled(rgb, width, height, MARGIN, top, scale);
  cv.strokeRect(MARGIN - 1, top - 1, mapW + 2, mapH + 2, GREY);
  const lx = MARGIN + mapW + 24;
  texts.forEach((t, i) => {
    const y = top + i * ROW;
    const c = i < k ? labelColor(i) : BLACK;
    cv.fillRect(lx, y, SW, SW, c);
    cv.strokeRect(lx, y, SW, SW, GREY);
    cv.text(t, lx + SW + GAP, y + 1, { scale: TEXT });
  });
  if (opts.title) cv.text(opts.title, W / 2, MARGIN, { scale: TEXT, align: 'center' });
  return cv.png();
}

function tint(c: Rgb, a: number): Rgb {
  return [Math.round(255 + (c[0] - 255) * a), Math.round(255 + (c[1] - 255) * a), Math.round(255 + (c[2] - 255) * a)];
}

/** Mean spectrum per cluster (line) with a +/- 1 std band (light tint), legend with pixel counts. */
export function renderClusterSpectraPng(energies: Float64Array, s: ClusterSpectra, opts: { title?: string; ylabel?: string } = {}): Uint8Array {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < s.k * s.nE; i++) {
    const a = s.mean[i] - s.std[i], b = s.mean[i] + s.std[i];
    if (Number.isFinite(a)) lo = Math.min(lo, a);
    if (Number.isFinite(b)) hi = Math.max(hi, b);
  }
  if (!(hi > lo)) [lo, hi] = [Number.isFinite(lo) ? lo - 0.5 : 0, Number.isFinite(lo) ? lo + 0.5 : 1];
  const pad = 0.05 * (hi - lo);
  const ax = makeAxes({
    xlabel: 'Energy (eV)', ylabel: opts.ylabel ?? 'mean ± std', title: opts.title ?? 'Mean spectrum per cluster',
    width: 900, height: 560, xlim: [energies[0], energies[energies.length - 1]], ylim: [lo - pad, hi + pad],
  });
  const { cv, plot } = ax;
  cv.clip = plot;
  const points: [number, number][] = [];
  for (let j = 0; j < s.k; j++) {
    const band = tint(labelColor(j), 0.25);
    for (let e = 0; e + 1 < s.nE; e++) {
      const x0 = ax.px(energies[e]), x1 = ax.px(energies[e + 1]);
      for (let x = Math.round(x0); x <= Math.round(x1); x++) {
        const t = x1 > x0 ? Math.min(1, Math.max(0, (x - x0) / (x1 - x0))) : 0;
        const m = s.mean[j * s.nE + e] * (1 - t) + s.mean[j * s.nE + e + 1] * t;
        const sd = s.std[j * s.nE + e] * (1 - t) + s.std[j * s.nE + e + 1] * t;
        if (!Number.isFinite(m) || !Number.isFinite(sd)) continue;
        const ya = ax.py(m + sd), yb = ax.py(m - sd);
        cv.fillRect(x, Math.round(ya), 1, Math.max(1, Math.round(yb) - Math.round(ya)), band);
      }
    }
  }
  for (let j = 0; j < s.k; j++) {
    const c = labelColor(j);
    let prev: [number, number] | null = null;
    for (let e = 0; e < s.nE; e++) {
      const m = s.mean[j * s.nE + e];
      if (!Number.isFinite(m)) {
        prev = null;
        continue;
      }
      const p: [number, number] = [ax.px(energies[e]), ax.py(m)];
      if (prev) cv.line(prev[0], prev[1], p[0], p[1], c, 2);
      points.push(p);
      prev = p;
    }
  }
  drawFrame(ax);
  drawLegend(ax, Array.from({ length: s.k }, (_, j) => ({ label: `${j} (${s.pixels[j]} px)`, color: labelColor(j) })), points);
  return cv.png();
}

/** Scree plot: log10 of the explained-variance ratio of the first components (noise floor visible). */
export function renderScreePng(model: PcaModel, opts: { components?: number; significant?: number } = {}): Uint8Array {
  const n = Math.min(model.d, opts.components ?? 20);
  const x = Float64Array.from({ length: n }, (_, k) => k + 1);
  const y = Float64Array.from({ length: n }, (_, k) => (model.explained[k].ratio > 0 ? Math.log10(model.explained[k].ratio) : NaN));
  const sig = opts.significant;
  return renderLinePlot({
    series: [{ x, y, label: 'explained variance' }],
    xlabel: 'component',
    ylabel: 'log10 explained variance ratio',
    title: `PCA scree${sig !== undefined && Number.isFinite(sig) ? `: ${sig} significant` : ''}`,
  });
}

/** A map as PNG on its 1st-99th percentile range (viridis, NaN black). */
export function renderMapAuto(map: Float32Array, width: number, height: number, title: string, unit?: string): Uint8Array {
  let [lo, hi] = percentiles(map, [1, 99]);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (!(hi > lo)) [lo, hi] = [lo - 0.5, lo + 0.5];
  return renderMap({ data: map, width, height, vmin: lo, vmax: hi, title, unit });
}
