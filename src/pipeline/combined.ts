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
import { kmeansFit, kmeansAssign, KMEANS_DEFAULTS, type KmeansOptions, type KmeansModel, type KmeansResult } from './kmeans.js';
import { FitSampler, FIT_SAMPLE_DEFAULT, sampleBytesPerPixel } from './cluster-sample.js';
import { collectGarbage, outputPhaseBytes } from './memory.js';
import { elbow, type ElbowResult, type ElbowRow } from './elbow.js';
import { featuresFromMaps, releaseFeatures } from '../cpu/kmeans.js';
import { KM_SCREEN_MIN_D } from '../cpu/kmeans-wasm.js';
import { writeKmeansOutputs } from './cluster-outputs.js';
import { addClusterStats, clusterStats, type ClusterStats } from './cluster-stats.js';
import { centresCsv, clusterStatsCsv, elbowCsv } from '../io/cluster-csv.js';
import { renderElbowPng } from '../plot/cluster.js';
import { addCounts, histogramCsv, histogramFromCounts, histogramPeak } from '../plot/histogram.js';
import { renderHistogram } from '../plot/histogram-png.js';
import type { Backend } from './step.js';
import { wcssUnits } from './standardize.js';
import type { RunSummary } from './summary.js';
import { clusterStepSummary, type FieldContext } from './run-reports.js';
import { writeReport } from '../report/html.js';

const MiB = 2 ** 20;

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
  /** Pixels the centres are fitted on at most (default FIT_SAMPLE_DEFAULT): src/pipeline/cluster-sample.ts. */
  fitSample?: number;
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
  onField?: (name: string, counts: FieldClusterCounts) => void;
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
 * A field of the clustering: its shape, and its maps read when needed (from its .npy files),
 * so that one field's maps are in memory at a time.
 */
export interface ClusterFieldSource {
  name: string;
  width: number;
  height: number;
  ctx?: FieldContext;
  /** The field's feature maps (in `features` order) and weight, fresh arrays (the caller may change them). */
  load(): ClusterField;
}

/** What the clustering across fields needs in memory, bytes (see combinedClusterPlan). */
export interface CombinedClusterPlan {
  /** Pixels the centres are fitted on. */
  samplePixels: number;
  sampleBytes: number;
  /** The largest field's labelling pass (its maps, features, labels, distances and outputs). */
  fieldBytes: number;
  largest: { width: number; height: number } | null;
  /**
   * Bytes the clustering leaves in the WebAssembly heap when the CPU backend clusters
   * (`heap`): the fit sample's and the largest field's features (featureArray) and, for
   * d >= 9, the screen's per-pixel norms are released for reuse by later heap blocks but stay
   * with the process; 0 otherwise.
   */
  heapKeptBytes: number;
}

/**
 * Memory of the clustering across fields beside the process: the fitted sample (the
 * reservoir, the sample in study order, the fit's labels and distances of it), and one field
 * at a time (its maps read back, the engine's shared copy of its features, labels, squared
 * distances and distances; with the labels written, int16 labels, the TIFF bytes of labels
 * and distances, and writing its cluster folder: outputPhaseBytes). The two are counted as held together (the reservoir is filled
 * while a field is read). `fit`: the centres are fitted here (else read from a model);
 * `labels`: the fields' cluster folders are written here.
 */
export function combinedClusterPlan(c: ClusterSettings, fields: { width: number; height: number }[], o: { fit: boolean; labels: boolean; heap?: boolean }): CombinedClusterPlan {
  const d = c.features.length;
  const total = fields.reduce((a, f) => a + f.width * f.height, 0);
  const samplePixels = o.fit ? Math.min(total, c.fitSample ?? FIT_SAMPLE_DEFAULT) : 0;
  const sampleBytes = samplePixels * (sampleBytesPerPixel(d) + 4 * d + 12);
  let fieldBytes = 0;
  let largest: CombinedClusterPlan['largest'] = null;
  for (const f of fields) {
    const P = f.width * f.height;
    const b = P * (4 * (d + (c.weight ? 1 : 0)) + 4 * d + 12) + (o.labels ? 8 * P + outputPhaseBytes(f.height, f.width) : 0);
    if (b > fieldBytes) [fieldBytes, largest] = [b, { width: f.width, height: f.height }];
  }
  // Per pixel: the features, and for d >= KM_SCREEN_MIN_D the screen's norms (4 bytes, formed
  // once per engine, on any thread count: kmeansScreenNorms).
  const kept = 4 * (d + (d >= KM_SCREEN_MIN_D ? 1 : 0));
  const heapKeptBytes = o.heap ? kept * (samplePixels + (largest ? largest.width * largest.height : 0)) : 0;
  return { samplePixels, sampleBytes, fieldBytes, largest, heapKeptBytes };
}

/**
 * The budget check of the clustering across fields: one error line naming --memory and what
 * is needed when `processBytes` (the process as it is, worker threads included) and the plan
 * do not fit, or a later phase (`laterBytes`, after the clustering) does not. Returns the
 * planned peak, bytes.
 */
export function checkCombinedBudget(plan: CombinedClusterPlan, nFields: number, d: number, processBytes: number, budgetBytes: number, laterBytes = 0): number {
  // A later phase (xanes merge's results.h5) comes after the clustering has let go of its
  // data, except what it leaves in the WebAssembly heap (heapKeptBytes).
  const need = processBytes + Math.max(plan.sampleBytes + plan.fieldBytes, laterBytes > 0 ? laterBytes + plan.heapKeptBytes : 0);
  if (need > budgetBytes) {
    const largest = plan.largest ? `, the largest field ${plan.largest.width} x ${plan.largest.height}: ${Math.ceil(plan.fieldBytes / MiB)} MiB` : '';
    const sample = plan.samplePixels > 0 ? `; the ${plan.samplePixels.toLocaleString('en-US')} fitted pixels, ${Math.ceil(plan.sampleBytes / MiB)} MiB` : '';
    throw new InputError('--memory', `a budget of ${Math.floor(budgetBytes / MiB)} MiB is too small for the k-means across ${nFields} field(s) (${d} feature(s)): it needs at least ${Math.ceil(need / MiB)} MiB (the process itself, ${Math.ceil(processBytes / MiB)} MiB${sample}${largest})`);
  }
  return need;
}

/**
 * k-means across fields, one field's maps in memory at a time (src/pipeline/cluster-sample.ts):
 *  1. the fields are read in study order and the fitted pixels drawn: every included pixel
 *     (all features finite, weight >= minWeight) if there are at most `fitSample` (default
 *     FIT_SAMPLE_DEFAULT), else a seeded uniform sample of exactly that many;
 *  2. standardisation (zscore or robust: of the fitted pixels), k-means++ restarts, Lloyd and
 *     the elbow (over the fitted pixels) as `xanes cluster` does on one image;
 *  3. every pixel of every field labelled with the centres, field by field: counts,
 *     fractions, weighted fractions and the WCSS over all pixels; combined/cluster/
 *     {centres,clusters,elbow}.csv, elbow.png, model.json;
 *  4. if asked, each field's cluster folder, labelled from model.json as read back, i.e.
 *     exactly what `xanes run --assign-from combined/cluster` writes for it.
 * Nothing here depends on --memory, threads or how the fields were split among shards.
 */
export async function writeClusterProducts(backend: Backend, c: ClusterSettings, fields: ClusterFieldSource[], t: CombinedTargets): Promise<NonNullable<RunSummary['combined']['cluster']>> {
  const d = c.features.length;
  const total = fields.reduce((acc, f) => acc + f.width * f.height, 0);
  const limit = c.fitSample ?? FIT_SAMPLE_DEFAULT;
  const sampler = new FitSampler(d, Math.max(1, Math.min(limit, total)), c.kmeans?.seed ?? KMEANS_DEFAULTS.seed);
  for (const s of fields) sampleField(sampler, s, c);
  // The CPU backend clusters the sample (and each field's features below) in the WebAssembly
  // heap, read in place by its sweep (src/cpu/kmeans.ts featureArray); each is released when
  // its pass ends, so the next reuses its block.
  const heap = !backend.gpu;
  const sample = sampler.finish(c.features, heap);
  if (sample.included === 0) {
    releaseFeatures(sample.features);
    throw new InputError('features', `no pixel has every feature finite${c.minWeight !== undefined && c.weight ? ` and a weight >= ${c.minWeight}` : ''} (${total} pixels in ${fields.length} field(s), all excluded)`);
  }
  collectGarbage();
  let el: ElbowResult | undefined;
  let k = c.k;
  let fit: KmeansResult;
  try {
    if (c.kRange) {
      el = await elbow(backend, sample.features, c.kRange, { ...(c.kmeans ?? {}), minClusterSize: c.minClusterSize });
      k = el.k;
    }
    fit = await kmeansFit(backend, sample.features, { ...(c.kmeans ?? {}), k: k! });
  } finally {
    releaseFeatures(sample.features);
  }
  collectGarbage();
  // Every pixel labelled: the counts, fractions and WCSS over all fields.
  const parts: ClusterStats[] = [];
  let wcss = 0;
  for (const s of fields) {
    const a = await fieldStats(backend, s, c, fit);
    parts.push(a.stats);
    wcss += a.wcss;
  }
  const stats = addClusterStats(parts, fit.k, c.weight !== undefined);
  const result: KmeansResult = {
    ...fit, labels: new Int32Array(0), distance: new Float32Array(0), counts: stats.counts, wcss,
    nIncluded: stats.nIncluded, nExcluded: stats.nExcluded, nonEmpty: stats.counts.filter((n) => n > 0).length,
  };
  const elbowRecord = el ? { table: el.table, k: el.k, rule: el.rule } : null;
  const cdir = path.join(t.combinedDir, 'cluster');
  fs.mkdirSync(cdir, { recursive: true });
  fs.writeFileSync(path.join(cdir, 'centres.csv'), centresCsv(result));
  fs.writeFileSync(path.join(cdir, 'clusters.csv'), clusterStatsCsv(stats));
  fs.writeFileSync(path.join(cdir, 'model.json'), modelJson(result, c, elbowRecord));
  if (el) {
    fs.writeFileSync(path.join(cdir, 'elbow.csv'), elbowCsv(el.table));
    fs.writeFileSync(path.join(cdir, 'elbow.png'), await renderElbowPng(el.table, el.k, { units: result.model.st.standardized ? 'standardised units' : undefined }));
  }
  if (t.fieldClusterDir) {
    // Per field: labels, distances, fractions, from the model as `--assign-from` reads it.
    const saved = readModel(cdir);
    for (const s of fields) t.onField?.(s.name, await labelField(backend, saved, s, t.fieldClusterDir(s.name)));
  }
  return {
    k: result.k, wcss: result.wcss, wcss_units: wcssUnits(result.model.st), standardization: result.model.st.method ?? (result.model.st.standardized ? 'zscore' : 'none'),
    pixels_included: result.nIncluded, pixels_excluded: result.nExcluded, counts: stats.counts, fractions: stats.fractions,
    ...(stats.weightedFractions ? { weighted_fractions: stats.weightedFractions } : {}),
    iterations: result.iterations, converged: result.converged, warnings: result.warnings,
    ...(el ? { elbow: { table: el.table, k: el.k, rule: el.rule } } : {}),
    features: c.features, weight: c.weight ?? null, min_weight: c.minWeight ?? null,
    fit_sample: { limit, pixels: sample.features.n, included: sample.included, rule: sample.rule, wcss: fit.wcss, standardization: 'of the fitted pixels', elbow: 'WCSS of the fitted pixels' },
  };
}

/*
 * One field at a time: each of these reads the field's maps and lets go of them when it
 * returns (a loop variable of the caller would keep the last field's maps alive, an async
 * function's locals outlive their block), after a full collection of the previous field's.
 */

/** Adds one field's pixels to the fit's sample. */
function sampleField(sampler: FitSampler, s: ClusterFieldSource, c: ClusterSettings): void {
  collectGarbage();
  const f = s.load();
  sampler.add(f.features, f.weight, c.weight ? c.minWeight : undefined);
}

/** One field labelled with the fitted centres: its cluster statistics and WCSS. */
async function fieldStats(backend: Backend, s: ClusterFieldSource, c: ClusterSettings, fit: KmeansResult): Promise<{ stats: ClusterStats; wcss: number }> {
  collectGarbage();
  const f = s.load();
  excludeBelowWeight(f, c.minWeight ?? null);
  const features = featuresFromMaps(f.features, c.features, !backend.gpu);
  f.features.length = 0;
  let a: Awaited<ReturnType<typeof kmeansAssign>>;
  try {
    a = await kmeansAssign(backend, features, fit.model);
  } finally {
    releaseFeatures(features);
  }
  return { stats: clusterStats(a.labels, fit.k, f.weight), wcss: a.wcss };
}

/** One field's cluster folder from the saved model. */
async function labelField(backend: Backend, saved: SavedModel, s: ClusterFieldSource, dir: string): Promise<FieldClusterCounts> {
  collectGarbage();
  return assignField(backend, saved, { ...s.load(), ctx: s.ctx }, dir);
}

/** minWeight: pixels whose weight is below it (or not a number) get NaN features (excluded). */
function excludeBelowWeight(f: ClusterField, minWeight: number | null): void {
  if (minWeight === null || !f.weight) return;
  const P = f.width * f.height;
  for (let p = 0; p < P; p++) if (!(f.weight[p] >= minWeight)) for (const m of f.features) m[p] = NaN;
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

/** Labels of one field with a saved model (the field's maps are used up: changed and let go), written as the single run writes them (src/pipeline/cluster-outputs.ts). */
export async function assignField(backend: Backend, saved: SavedModel, f: ClusterField, dir: string): Promise<FieldClusterCounts> {
  // The field's maps as read for this pass: changed in place (pixels below minWeight NaN).
  excludeBelowWeight(f, saved.minWeight);
  const features = featuresFromMaps(f.features, saved.features, !backend.gpu);
  f.features.length = 0; // (the engine's copy is all it needs from here)
  let r: Awaited<ReturnType<typeof kmeansAssign>>;
  try {
    r = await kmeansAssign(backend, features, saved.model);
  } finally {
    releaseFeatures(features);
  }
  const { labels, distance } = r;
  return writeFieldCluster(dir, { ...(saved.result as KmeansResult), labels, distance }, f, { features: saved.features, weight: saved.weight ?? undefined }, saved.elbow);
}

/** A study field's FieldContext (for its cluster summary) from its field.json. */
export function fieldContextOf(rec: Record<string, any>): FieldContext {
  return {
    field: rec.field, stack: rec.stack, energies: Float64Array.from(rec.energies ?? []), width: rec.shape.width, height: rec.shape.height,
    dtype: rec.dtype, read: rec.read, backend: rec.backend ?? {}, quantity: rec.quantity ?? '',
  };
}
