/**
 * Writes the files of `xanes cluster` (writeKmeansOutputs) and `xanes pca` (writePcaOutputs):
 * maps, tables and pictures; returns the files written (and, for k-means, summary fields).
 */
import { wcssUnits } from './standardize.js';
import fs from 'node:fs';
import path from 'node:path';
import { labelsToInt16, writeLabels, writeMap } from '../io/maps.js';
import { centresCsv, clusterStatsCsv, elbowCsv, clusterSpectraCsv, screeCsv, componentsCsv } from '../io/cluster-csv.js';
import { renderElbowPng, renderLabelsPng, renderClusterSpectraPng, renderScreePng, renderMapAuto } from '../plot/cluster.js';
import type { KmeansResult, RestartSummary } from './kmeans.js';
import type { BackendName } from './step.js';
import type { ElbowResult, ElbowRow } from './elbow.js';
import { clusterStats, type ClusterSpectra } from './cluster-stats.js';
import type { PcaModel } from '../cpu/pca.js';

export interface KmeansOutputOptions {
  width: number;
  height: number;
  /** Weight map for weighted fractions, and its name (e.g. edge_step). */
  weight?: Float32Array;
  weightName?: string;
  /** Per-cluster spectra (clusterSpectra) and the stack's energies. */
  spectra?: ClusterSpectra;
  energies?: Float64Array;
  /** Elbow run to write as elbow.csv/png. */
  elbow?: ElbowResult;
  /** Also write labels.tif and distance.tif (default true). */
  tiff?: boolean;
}

/**
 * Writes the clustering outputs into `dir` (created if needed) and returns the files written
 * and a summary object for summary.json:
 *   labels.npy/.tif (int16, -1 excluded), labels.png (legend), distance.npy/.tif (float32,
 *   NaN excluded), centres.csv (original units), clusters.csv (counts, fractions, weighted
 *   fractions), elbow.csv/png (if an elbow ran), cluster_spectra.csv/png (if given).
 */
/** What a k-means run records in summary.json (xanes cluster, and per field in xanes run). */
export interface KmeansOutputSummary {
  k: number;
  wcss: number;
  wcss_units: string;
  features: string[];
  standardized: boolean;
  /** zscore | robust | none (src/pipeline/standardize.ts). */
  standardization: string;
  constant_features: string[];
  pixels_included: number;
  pixels_excluded: number;
  clusters_non_empty: number;
  counts: number[];
  fractions: number[];
  /** With a weight map (--weight). */
  weight?: string;
  weighted_fractions?: number[];
  weight_missing?: number;
  iterations: number;
  converged: boolean;
  restarts: RestartSummary[];
  warnings: string[];
  backend: BackendName;
  adapter: string;
  elbow?: { table: ElbowRow[]; k: number; rule: string };
}

export async function writeKmeansOutputs(dir: string, r: KmeansResult, o: KmeansOutputOptions): Promise<{ files: string[]; summary: KmeansOutputSummary }> {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const put = (name: string, data: string | Uint8Array) => {
    fs.writeFileSync(path.join(dir, name), data);
    files.push(name);
  };
  const { width: W, height: H } = o;
  const labels16 = labelsToInt16(r.labels);
  writeLabels(path.join(dir, 'labels.npy'), labels16, W, H);
  files.push('labels.npy');
  writeMap(path.join(dir, 'distance.npy'), r.distance, W, H);
  files.push('distance.npy');
  if (o.tiff ?? true) {
    writeLabels(path.join(dir, 'labels.tif'), labels16, W, H);
    writeMap(path.join(dir, 'distance.tif'), r.distance, W, H);
    files.push('labels.tif', 'distance.tif');
  }
  put('labels.png', await renderLabelsPng(r.labels, W, H, r.k, { title: `k-means, k = ${r.k}` }));
  put('centres.csv', centresCsv(r));
  const stats = clusterStats(r.labels, r.k, o.weight);
  put('clusters.csv', clusterStatsCsv(stats));
  if (o.elbow) {
    put('elbow.csv', elbowCsv(o.elbow.table));
    put('elbow.png', await renderElbowPng(o.elbow.table, o.elbow.k, { units: r.model.st.standardized ? 'standardised units' : undefined }));
  }
  if (o.spectra && o.energies) {
    put('cluster_spectra.csv', clusterSpectraCsv(o.energies, o.spectra));
    put('cluster_spectra.png', await renderClusterSpectraPng(o.energies, o.spectra));
  }
  const summary: KmeansOutputSummary = {
    k: r.k,
    wcss: r.wcss,
    wcss_units: wcssUnits(r.model.st),
    features: r.names,
    standardized: r.model.st.standardized,
    standardization: r.model.st.method ?? (r.model.st.standardized ? 'zscore' : 'none'),
    constant_features: r.constantFeatures.map((f) => r.names[f]),
    pixels_included: r.nIncluded,
    pixels_excluded: r.nExcluded,
    clusters_non_empty: r.nonEmpty,
    counts: stats.counts,
    fractions: stats.fractions,
    ...(stats.weightedFractions ? { weight: o.weightName ?? 'weight', weighted_fractions: stats.weightedFractions, weight_missing: stats.nWeightMissing } : {}),
    iterations: r.iterations,
    converged: r.converged,
    restarts: r.restarts,
    warnings: r.warnings,
    backend: r.backend,
    adapter: r.adapter,
    ...(o.elbow ? { elbow: { table: o.elbow.table, k: o.elbow.k, rule: o.elbow.rule } } : {}),
  };
  return { files, summary };
}

export interface PcaOutputs {
  model: PcaModel;
  n: number;
  width: number;
  height: number;
  scores: Float32Array[];
  reconError: Float32Array;
  significant: number;
  energies: Float64Array;
  /** Also write .tif maps (default true). */
  tiff?: boolean;
}

/**
 * Writes `xanes pca`'s files into `dir` (created if needed): score_k.npy/.tif/.png,
 * recon_error.npy/.tif/.png, scree.csv/png, components.csv. Returns the files written.
 */
export async function writePcaOutputs(dir: string, o: PcaOutputs): Promise<string[]> {
  const { model, n, width: W, height: H, scores, reconError, significant, energies } = o;
  const files: string[] = [];
  fs.mkdirSync(dir, { recursive: true });
  const tiff = o.tiff ?? true;
  const put = (name: string, data: string | Uint8Array) => {
    fs.writeFileSync(path.join(dir, name), data);
    files.push(name);
  };
  const maps: [string, Float32Array, string][] = [
    ...scores.map((m, k): [string, Float32Array, string] => [`score_${k + 1}`, m, `PC${k + 1} score`]),
    ['recon_error', reconError, `RMS reconstruction error (${n} components)`],
  ];
  for (const [name, m, title] of maps) {
    writeMap(path.join(dir, `${name}.npy`), m, W, H);
    files.push(`${name}.npy`);
    if (tiff) {
      writeMap(path.join(dir, `${name}.tif`), m, W, H);
      files.push(`${name}.tif`);
    }
    put(`${name}.png`, await renderMapAuto(m, W, H, title));
  }
  put('scree.csv', screeCsv(model));
  put('scree.png', await renderScreePng(model, { significant }));
  put('components.csv', componentsCsv(model, energies, n));
  return files;
}
