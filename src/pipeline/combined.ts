/**
 * The products of `xanes run` that span fields: the e0 histogram over all fields and k-means
 * fitted across all fields (centres, cluster table, elbow, the model; labels per field).
 * A single run and `xanes merge` of a sharded run (src/pipeline/merge.ts) both build them
 * here from the same per-field inputs, so their bytes are the same:
 *  - the histogram from each field's e0 bin counts (<field>/edge/e0_counts.csv: 0.1 eV bins
 *    aligned at whole multiples of 0.1 eV), added bin by bin in field order;
 *  - k-means on every field's feature maps (float32, as written in <field>/<step>/<map>.npy),
 *    concatenated in the study's field order, the same seed and options.
 * combined/cluster/model.json holds the fitted model (standardisation, centres in the fit's
 * final numbering), which `xanes run --assign-from` uses to label fields shard by shard.
 */
import fs from 'node:fs';
import path from 'node:path';
import { InputError } from '../io/errors.js';
import { kmeansFit, kmeansAssign, type KmeansOptions, type KmeansModel, type KmeansResult } from './kmeans.js';
import { elbow, type ElbowResult, type ElbowRow } from './elbow.js';
import { featuresFromMaps } from '../cpu/kmeans.js';
import { writeKmeansOutputs } from './cluster-outputs.js';
import { clusterStats } from './cluster-stats.js';
import { centresCsv, clusterStatsCsv, elbowCsv } from '../io/cluster-csv.js';
import { renderElbowPng } from '../plot/cluster.js';
import { addCounts, histogramCsv, histogramFromCounts, histogramPeak } from '../plot/histogram.js';
import { renderHistogram } from '../plot/histogram-png.js';
import type { Backend } from './step.js';
import { wcssUnits } from './standardize.js';
import type { RunSummary } from './summary.js';
import { clusterStepSummary, type FieldContext } from './run-reports.js';
import { writeReport } from '../report/html.js';

/** Bin width of the e0 histogram over fields, eV. */
export const E0_BIN_EV = 0.1;

export interface ClusterSettings {
  features: string[];
  k?: number;
  kRange?: number[];
  weight?: string;
  minWeight?: number;
  minClusterSize?: number;
  kmeans?: Omit<KmeansOptions, 'k'>;
}

/** One field's inputs to the clustering: its feature maps (in `features` order) and weight. */
export interface ClusterField {
  name: string;
  width: number;
  height: number;
  features: Float32Array[];
  weight?: Float32Array;
  /** What the field's cluster summary.json and report.html record about it. */
  ctx?: FieldContext;
}

/** The elbow as a field's cluster summary records it. */
type ElbowRecord = { table: ElbowRow[]; k: number; rule: string };

/** What a field's own summary.json records of its cluster step. */
export type FieldClusterCounts = { counts: unknown; fractions: unknown; maps: string[] };

export interface CombinedTargets {
  /** Folder of the across-field products (combined/), created here. */
  combinedDir: string;
  /** Where a field's cluster outputs go; null: none (labels come from --assign-from later). */
  fieldClusterDir: ((name: string) => string) | null;
  /** Called with each field's cluster counts once its folder is written. */
  onField?: (f: ClusterField, counts: FieldClusterCounts) => void;
}

/**
 * A field's cluster folder beside the maps: the labels, distances and tables
 * (src/pipeline/cluster-outputs.ts), its summary.json and report.html.
 */
async function writeFieldCluster(dir: string, r: KmeansResult, f: ClusterField, c: { features: string[]; weight?: string }, elbowRecord: ElbowRecord | undefined): Promise<FieldClusterCounts> {
  const wk = await writeKmeansOutputs(dir, r, { width: f.width, height: f.height, weight: f.weight, weightName: c.weight });
  if (f.ctx) {
    fs.writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(clusterStepSummary(f.ctx, wk.summary, c.features, c.weight, elbowRecord), null, 2) + '\n');
    writeReport(dir, `${f.name}/cluster`);
  }
  return { counts: wk.summary.counts, fractions: wk.summary.fractions, maps: ['labels', 'distance'] };
}

/** The e0 histogram over fields: combined/e0_hist.csv/png. Returns its summary entries. */
export async function writeE0Histogram(perField: Map<number, number>[], nFields: number, combinedDir: string): Promise<Record<string, unknown>> {
  const all = new Map<number, number>();
  for (const c of perField) addCounts(all, c);
  if (all.size === 0) return {};
  const h = histogramFromCounts(all, E0_BIN_EV);
  fs.writeFileSync(path.join(combinedDir, 'e0_hist.csv'), histogramCsv(h));
  fs.writeFileSync(path.join(combinedDir, 'e0_hist.png'), await renderHistogram(h, { title: `e0_half over ${nFields} field(s)`, xlabel: 'e0_half (eV)', ylabel: 'pixels' }));
  return { e0_histogram_peak_eV: histogramPeak(h) };
}

/**
 * k-means across fields: centres fitted on every field's features (pixels whose weight is
 * below minWeight left out), combined/cluster/{centres,clusters,elbow}.csv, elbow.png,
 * model.json, and per field (if asked) the labels, distances and fractions.
 */
export async function writeClusterProducts(backend: Backend, c: ClusterSettings, fields: ClusterField[], t: CombinedTargets): Promise<NonNullable<RunSummary['combined']['cluster']>> {
  const n = fields.reduce((acc, f) => acc + f.width * f.height, 0);
  const cat = (get: (f: ClusterField) => Float32Array | undefined) => {
    const out = new Float32Array(n);
    let off = 0;
    for (const f of fields) { out.set(get(f)!, off); off += f.width * f.height; }
    return out;
  };
  const feats = c.features.map((_, j) => cat((f) => f.features[j]));
  const weight = c.weight ? cat((f) => f.weight) : undefined;
  if (c.minWeight !== undefined && weight) for (let p = 0; p < n; p++) if (!(weight[p] >= c.minWeight)) for (const m of feats) m[p] = NaN;
  const features = featuresFromMaps(feats, c.features);
  feats.length = 0;
  let el: ElbowResult | undefined;
  let k = c.k;
  if (c.kRange) {
    el = await elbow(backend, features, c.kRange, { ...(c.kmeans ?? {}), minClusterSize: c.minClusterSize });
    k = el.k;
  }
  const result = await kmeansFit(backend, features, { ...(c.kmeans ?? {}), k: k! });
  if (t.fieldClusterDir) {
    // Per field: labels, distances, fractions (the centres are the same everywhere).
    let off = 0;
    for (const f of fields) {
      const P = f.width * f.height;
      const part = { ...result, labels: result.labels.slice(off, off + P), distance: result.distance.slice(off, off + P) };
      const counts = await writeFieldCluster(t.fieldClusterDir(f.name), part, f, c, el ? { table: el.table, k: el.k, rule: el.rule } : undefined);
      t.onField?.(f, counts);
      off += P;
    }
  }
  // Across fields: the tables only (an image of all fields together would be meaningless).
  const cdir = path.join(t.combinedDir, 'cluster');
  fs.mkdirSync(cdir, { recursive: true });
  const stats = clusterStats(result.labels, result.k, weight);
  fs.writeFileSync(path.join(cdir, 'centres.csv'), centresCsv(result));
  fs.writeFileSync(path.join(cdir, 'clusters.csv'), clusterStatsCsv(stats));
  fs.writeFileSync(path.join(cdir, 'model.json'), modelJson(result, c, el ? { table: el.table, k: el.k, rule: el.rule } : null));
  if (el) {
    fs.writeFileSync(path.join(cdir, 'elbow.csv'), elbowCsv(el.table));
    fs.writeFileSync(path.join(cdir, 'elbow.png'), await renderElbowPng(el.table, el.k, { units: result.model.st.standardized ? 'standardised units' : undefined }));
  }
  return {
    k: result.k, wcss: result.wcss, wcss_units: wcssUnits(result.model.st), standardization: result.model.st.method ?? (result.model.st.standardized ? 'zscore' : 'none'),
    pixels_included: result.nIncluded, pixels_excluded: result.nExcluded, counts: stats.counts, fractions: stats.fractions,
    ...(stats.weightedFractions ? { weighted_fractions: stats.weightedFractions } : {}),
    iterations: result.iterations, converged: result.converged, warnings: result.warnings,
    ...(el ? { elbow: { table: el.table, k: el.k, rule: el.rule } } : {}),
    features: c.features, weight: c.weight ?? null, min_weight: c.minWeight ?? null,
  };
}

const nums = (a: ArrayLike<number>) => Array.from(a, (x) => (Number.isFinite(x) ? x : null));
const floats = (a: (number | null)[]) => Float64Array.from(a, (x) => (x === null ? NaN : x));

/** The fitted model as JSON: numbers round-trip exactly (shortest decimal form of a float64). */
function modelJson(r: KmeansResult, c: ClusterSettings, elbowRecord: unknown): string {
  const { st } = r.model;
  return JSON.stringify({
    tool: 'xanes-engine', kind: 'kmeans-model', k: r.k, d: r.model.d, names: r.names, features: c.features, weight: c.weight ?? null, min_weight: c.minWeight ?? null,
    standardization: { shift: nums(st.shift), scale: nums(st.scale), constant: st.constant, standardized: st.standardized, method: st.method },
    centres_standardized: nums(r.model.centres), active: Array.from(r.model.active),
    centres: nums(r.centres), counts: r.counts, elbow: elbowRecord,
    // The rest of the fit's record (each field's cluster summary.json repeats it).
    fit: { wcss: r.wcss, iterations: r.iterations, converged: r.converged, nIncluded: r.nIncluded, nExcluded: r.nExcluded, constantFeatures: r.constantFeatures, nonEmpty: r.nonEmpty, restarts: r.restarts, warnings: r.warnings, backend: r.backend, adapter: r.adapter },
  }, null, 1) + '\n';
}

/** What `--assign-from DIR` reads: the model and the parts of the fit the per-field files show. */
export interface SavedModel {
  model: KmeansModel;
  /** The fit's result less the per-pixel arrays (centres.csv of each field is written from it). */
  result: Omit<KmeansResult, 'labels' | 'distance'>;
  features: string[];
  weight: string | null;
  minWeight: number | null;
  elbow: ElbowRecord | undefined;
}

export function readModel(dir: string): SavedModel {
  const file = path.join(dir, 'model.json');
  let j: any;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new InputError(dir, `no k-means model here (${path.basename(file)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give the combined/cluster folder of xanes merge`);
  }
  if (j?.kind !== 'kmeans-model' || !Array.isArray(j.centres_standardized)) throw new InputError(file, 'not a k-means model of xanes');
  const st = { shift: floats(j.standardization.shift), scale: floats(j.standardization.scale), constant: j.standardization.constant, standardized: j.standardization.standardized, ...(j.standardization.method !== undefined ? { method: j.standardization.method } : {}) };
  const model: KmeansModel = { d: j.d, k: j.k, st, centres: floats(j.centres_standardized), active: Uint8Array.from(j.active) };
  const result = { constantFeatures: st.constant, restarts: [], warnings: [], ...(j.fit ?? {}), k: j.k, model, centres: floats(j.centres), counts: j.counts, names: j.names } as unknown as SavedModel['result'];
  return { model, result, features: j.features, weight: j.weight, minWeight: j.min_weight, elbow: j.elbow ?? undefined };
}

/** Labels of one field with a saved model, written as the single run writes them (src/pipeline/cluster-outputs.ts). */
export async function assignField(backend: Backend, saved: SavedModel, f: ClusterField, dir: string): Promise<FieldClusterCounts> {
  const P = f.width * f.height;
  const feats = f.features.map((m) => Float32Array.from(m));
  if (saved.minWeight !== null && f.weight) for (let p = 0; p < P; p++) if (!(f.weight[p] >= saved.minWeight)) for (const m of feats) m[p] = NaN;
  const { labels, distance } = await kmeansAssign(backend, featuresFromMaps(feats, saved.features), saved.model);
  return writeFieldCluster(dir, { ...(saved.result as KmeansResult), labels, distance }, f, { features: saved.features, weight: saved.weight ?? undefined }, saved.elbow);
}

/** A study field's FieldContext (for its cluster summary) from its field.json. */
export function fieldContextOf(rec: Record<string, any>): FieldContext {
  return {
    field: rec.field, stack: rec.stack, energies: Float64Array.from(rec.energies ?? []), width: rec.shape.width, height: rec.shape.height,
    dtype: rec.dtype, read: rec.read, backend: rec.backend ?? {}, quantity: rec.quantity ?? '',
  };
}
