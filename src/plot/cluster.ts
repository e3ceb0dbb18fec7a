/**
 * PNG pictures of the clustering and PCA outputs: elbow, cluster mean spectra, scree plot
 * (their descriptions are in figures.ts). Label maps and percentile-range maps are in
 * maps.ts (re-exported here for the pipeline).
 */
import { lineSpec } from './specs.js';
import { renderSpec } from './render.js';
import { clusterSpectraPlot, elbowPlot, screePlot } from './figures.js';
import type { ElbowRow } from '../pipeline/elbow.js';
import type { ClusterSpectra } from '../pipeline/cluster-stats.js';
import type { PcaModel } from '../cpu/pca.js';
export { renderLabelsPng, renderMapAuto } from './maps.js';
export { LABEL_COLORS, labelColor } from './colormap.js';

/** The WCSS curve with the chosen k marked. */
export async function renderElbowPng(table: ElbowRow[], chosenK: number, opts: { units?: string } = {}): Promise<Uint8Array> {
  return (await renderSpec(lineSpec(elbowPlot(table, chosenK, opts.units)))).png;
}

export async function renderClusterSpectraPng(energies: Float64Array, s: ClusterSpectra, opts: { title?: string; ylabel?: string } = {}): Promise<Uint8Array> {
  return (await renderSpec(lineSpec(clusterSpectraPlot(energies, s, opts)))).png;
}

export async function renderScreePng(model: PcaModel, opts: { components?: number; significant?: number } = {}): Promise<Uint8Array> {
  return (await renderSpec(lineSpec(screePlot(model.explained.map((r) => r.ratio), opts)))).png;
}
