/**
 * Line-plot descriptions of the clustering and PCA figures (elbow, cluster mean spectra,
 * scree), browser-safe: cluster.ts renders them to PNG, report.html draws them live.
 */
import { labelColor } from './colormap.js';
import type { LinePlot, LineSeries } from './specs.js';

/** WCSS against k, and the chosen k as a marker line. */
export function elbowPlot(table: readonly { k: number; wcss: number }[], chosenK: number, units?: string): LinePlot {
  return {
    series: [
      { x: table.map((r) => r.k), y: table.map((r) => r.wcss), label: 'WCSS' },
      { x: table.map((r) => r.k), y: table.map((r) => r.wcss), label: '', kind: 'points' },
    ],
    rules: [{ x: chosenK, label: `chosen k = ${chosenK}`, color: [213, 94, 0] }],
    xlabel: 'k (clusters)',
    xinteger: true,
    ylabel: `WCSS${units ? ` (${units})` : ''}`,
    title: `Elbow: k = ${chosenK} (Kneedle)`,
  };
}

export interface ClusterSpectraData {
  k: number;
  nE: number;
  /** k x nE, row-major. */
  mean: ArrayLike<number>;
  std: ArrayLike<number>;
  pixels: number[];
}

/** Mean spectrum per cluster (line) with a +/- 1 std band, legend with pixel counts. */
export function clusterSpectraPlot(energies: ArrayLike<number>, s: ClusterSpectraData, opts: { title?: string; ylabel?: string } = {}): LinePlot {
  const row = (a: ArrayLike<number>, j: number) => Array.from({ length: s.nE }, (_, e) => a[j * s.nE + e]);
  const series: LineSeries[] = [];
  for (let j = 0; j < s.k; j++) {
    const mean = row(s.mean, j), std = row(s.std, j);
    series.push({ x: energies, y: mean.map((m, e) => m - std[e]), y2: mean.map((m, e) => m + std[e]), label: '', kind: 'band', color: labelColor(j) });
  }
  for (let j = 0; j < s.k; j++) {
    series.push({ x: energies, y: row(s.mean, j), label: `cluster ${j}${s.pixels[j] !== undefined ? ` (${s.pixels[j]} px)` : ''}`, color: labelColor(j) });
  }
  return { series, xlabel: 'Energy (eV)', ylabel: opts.ylabel ?? 'mean ± std (stack units)', title: opts.title ?? 'Mean spectrum per cluster' };
}

/** Explained-variance ratio of the first components on a log axis (noise floor visible). */
export function screePlot(ratios: readonly number[], opts: { components?: number; significant?: number } = {}): LinePlot {
  const n = Math.min(ratios.length, opts.components ?? 20);
  const x = Array.from({ length: n }, (_, k) => k + 1);
  const y = x.map((k) => ratios[k - 1]);
  const sig = opts.significant;
  return {
    series: [{ x, y, label: 'explained variance ratio' }, { x, y, label: '', kind: 'points' }],
    xlabel: 'component',
    xinteger: true,
    ylabel: 'explained variance ratio (log scale)',
    ylog: true,
    title: `PCA scree${sig !== undefined && Number.isFinite(sig) ? `: ${sig} significant` : ''}`,
  };
}
