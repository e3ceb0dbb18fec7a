/**
 * CSV tables of the clustering and PCA outputs: centres, cluster statistics, elbow, cluster
 * spectra, scree and components. Non-finite numbers are written as 'nan'.
 */
import type { KmeansResult } from '../pipeline/kmeans.js';
import type { ElbowRow } from '../pipeline/elbow.js';
import type { ClusterStats, ClusterSpectra } from '../pipeline/cluster-stats.js';
import type { PcaModel } from '../cpu/pca.js';

export function num(v: number): string {
  return Number.isFinite(v) ? String(v) : 'nan';
}

export function csvName(s: string): string {
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** centres.csv: cluster, pixel count, then each feature's centre in original units. */
export function centresCsv(r: KmeansResult): string {
  const lines = [['cluster', 'count', ...r.names.map(csvName)].join(',')];
  for (let j = 0; j < r.k; j++) {
    const row = [String(j), String(r.counts[j])];
    for (let f = 0; f < r.model.d; f++) row.push(num(r.centres[j * r.model.d + f]));
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}

/** clusters.csv: cluster, count, fraction[, weight_sum, weighted_fraction]. */
export function clusterStatsCsv(s: ClusterStats): string {
  const w = s.weightSums !== undefined;
  const lines = [['cluster', 'count', 'fraction', ...(w ? ['weight_sum', 'weighted_fraction'] : [])].join(',')];
  for (let j = 0; j < s.k; j++) {
    const row = [String(j), String(s.counts[j]), num(s.fractions[j])];
    if (w) row.push(num(s.weightSums![j]), num(s.weightedFractions![j]));
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}

/** elbow.csv: k,wcss. */
export function elbowCsv(table: ElbowRow[]): string {
  return ['k,wcss', ...table.map((r) => `${r.k},${num(r.wcss)}`)].join('\n') + '\n';
}

/** cluster_spectra.csv: energy, then mean_j, std_j, n_j for each cluster. */
export function clusterSpectraCsv(energies: Float64Array, s: ClusterSpectra): string {
  const head = ['energy_eV'];
  for (let j = 0; j < s.k; j++) head.push(`mean_${j}`, `std_${j}`, `n_${j}`);
  const lines = [head.join(',')];
  for (let e = 0; e < s.nE; e++) {
    const row = [num(energies[e])];
    for (let j = 0; j < s.k; j++) row.push(num(s.mean[j * s.nE + e]), num(s.std[j * s.nE + e]), String(s.count[j * s.nE + e]));
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}

/** scree.csv: component, eigenvalue, explained-variance ratio, cumulative ratio. */
export function screeCsv(model: PcaModel): string {
  return ['component,eigenvalue,ratio,cumulative', ...model.explained.map((r) => `${r.component},${num(r.eigenvalue)},${num(r.ratio)},${num(r.cumulative)}`)].join('\n') + '\n';
}

/** components.csv: energy, mean spectrum, then the first n components. */
export function componentsCsv(model: PcaModel, energies: Float64Array, n: number): string {
  const lines = [['energy_eV', 'mean', ...Array.from({ length: n }, (_, k) => `pc${k + 1}`)].join(',')];
  for (let e = 0; e < model.d; e++) {
    const row = [num(energies[e]), num(model.mean[e])];
    for (let k = 0; k < n; k++) row.push(num(model.components[k * model.d + e]));
    lines.push(row.join(','));
  }
  return lines.join('\n') + '\n';
}
