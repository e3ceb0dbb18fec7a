/**
 * Pictures of the clustering and PCA outputs: elbow, cluster mean spectra, scree plot. Label
 * maps and percentile-range maps are in maps.ts (re-exported here for the pipeline).
 */
import { labelColor } from './colormap.js';
import { lineSpec, type LineSeries } from './specs.js';
import { renderSpec } from './render.js';
import type { ElbowRow } from '../pipeline/elbow.js';
import type { ClusterSpectra } from '../pipeline/cluster-stats.js';
import type { PcaModel } from '../cpu/pca.js';
export { renderLabelsPng, renderMapAuto } from './maps.js';
export { LABEL_COLORS, labelColor } from './colormap.js';

/** The series of the elbow plot: WCSS against k, and the chosen k as a marker line. */
export function elbowPlot(table: ElbowRow[], chosenK: number, units?: string) {
  return {
    series: [
      { x: table.map((r) => r.k), y: table.map((r) => r.wcss), label: 'WCSS' },
      { x: table.map((r) => r.k), y: table.map((r) => r.wcss), label: '', kind: 'points' as const },
    ],
    rules: [{ x: chosenK, label: `chosen k = ${chosenK}`, color: [213, 94, 0] as const }],
    xlabel: 'k (clusters)',
    xinteger: true,
    ylabel: `WCSS${units ? ` (${units})` : ''}`,
    title: `Elbow: k = ${chosenK} (Kneedle)`,
  };
}

/** The WCSS curve with the chosen k marked. */
export async function renderElbowPng(table: ElbowRow[], chosenK: number, opts: { units?: string } = {}): Promise<Uint8Array> {
  return (await renderSpec(lineSpec(elbowPlot(table, chosenK, opts.units)))).png;
}

/** Mean spectrum per cluster (line) with a +/- 1 std band, legend with pixel counts. */
export function clusterSpectraPlot(energies: ArrayLike<number>, s: ClusterSpectra, opts: { title?: string; ylabel?: string } = {}) {
  const series: LineSeries[] = [];
  for (let j = 0; j < s.k; j++) {
    const mean = s.mean.subarray(j * s.nE, (j + 1) * s.nE);
    const std = s.std.subarray(j * s.nE, (j + 1) * s.nE);
    series.push({ x: energies, y: mean.map((m, e) => m - std[e]), y2: mean.map((m, e) => m + std[e]), label: '', kind: 'band', color: labelColor(j) });
  }
  for (let j = 0; j < s.k; j++) {
    series.push({ x: energies, y: s.mean.subarray(j * s.nE, (j + 1) * s.nE), label: `cluster ${j} (${s.pixels[j]} px)`, color: labelColor(j) });
  }
  return { series, xlabel: 'Energy (eV)', ylabel: opts.ylabel ?? 'mean ± std (stack units)', title: opts.title ?? 'Mean spectrum per cluster' };
}

export async function renderClusterSpectraPng(energies: Float64Array, s: ClusterSpectra, opts: { title?: string; ylabel?: string } = {}): Promise<Uint8Array> {
  return (await renderSpec(lineSpec(clusterSpectraPlot(energies, s, opts)))).png;
}

/** Scree plot: explained-variance ratio of the first components on a log axis (noise floor visible). */
export function screePlot(model: PcaModel, opts: { components?: number; significant?: number } = {}) {
  const n = Math.min(model.d, opts.components ?? 20);
  const x = Array.from({ length: n }, (_, k) => k + 1);
  const y = x.map((k) => model.explained[k - 1].ratio);
  const sig = opts.significant;
  return {
    series: [{ x, y, label: 'explained variance ratio' }, { x, y, label: '', kind: 'points' as const }],
    xlabel: 'component',
    xinteger: true,
    ylabel: 'explained variance ratio (log scale)',
    ylog: true,
    title: `PCA scree${sig !== undefined && Number.isFinite(sig) ? `: ${sig} significant` : ''}`,
  };
}

export async function renderScreePng(model: PcaModel, opts: { components?: number; significant?: number } = {}): Promise<Uint8Array> {
  return (await renderSpec(lineSpec(screePlot(model, opts)))).png;
}
