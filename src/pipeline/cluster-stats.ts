/**
 * Per-cluster statistics: counts and (weighted) fractions, and mean +/- std spectra streamed
 * from the stack.
 */
import { InputError } from '../io/errors.js';
import type { StackSource } from '../stack/source.js';

export interface ClusterStats {
  k: number;
  counts: number[];
  /** count / included pixels. */
  fractions: number[];
  nIncluded: number;
  nExcluded: number;
  /** With a weight map: sum of the weight per cluster, and its fraction of the total. */
  weightSums?: number[];
  weightedFractions?: number[];
  /** Included pixels whose weight is not finite (left out of the weighted sums). */
  nWeightMissing?: number;
}

/**
 * Counts and fractions per cluster; with `weight` (e.g. the edge-jump map) also the
 * weighted fractions sum_{p in j} w_p / sum_p w_p over included pixels with a finite weight.
 */
export function clusterStats(labels: Int32Array | Int16Array, k: number, weight?: Float32Array): ClusterStats {
  if (weight && weight.length !== labels.length) {
    throw new InputError('--weight', `map has ${weight.length} pixels, the labels ${labels.length}`);
  }
  const counts = new Array<number>(k).fill(0);
  const wsum = new Array<number>(k).fill(0);
  let nIncluded = 0, nExcluded = 0, missing = 0;
  for (let p = 0; p < labels.length; p++) {
    const j = labels[p];
    if (j < 0 || j >= k) {
      nExcluded++;
      continue;
    }
    nIncluded++;
    counts[j]++;
    if (weight) {
      const w = weight[p];
      if (Number.isFinite(w)) wsum[j] += w;
      else missing++;
    }
  }
  const stats: ClusterStats = { k, counts, fractions: counts.map((c) => (nIncluded > 0 ? c / nIncluded : 0)), nIncluded, nExcluded };
  if (weight) {
    const total = wsum.reduce((a, b) => a + b, 0);
    stats.weightSums = wsum;
    stats.weightedFractions = wsum.map((w) => (total !== 0 ? w / total : NaN));
    stats.nWeightMissing = missing;
  }
  return stats;
}

/**
 * The statistics of several label maps together (the fields of a study, in order) from
 * each one's clusterStats: counts and weight sums added part by part (float64), fractions
 * of the totals. Equal to clusterStats of the concatenated labels up to the order of the
 * float64 additions of the weights.
 */
export function addClusterStats(parts: ClusterStats[], k: number, weighted: boolean): ClusterStats {
  const counts = new Array<number>(k).fill(0);
  const wsum = new Array<number>(k).fill(0);
  let nIncluded = 0, nExcluded = 0, missing = 0;
  for (const s of parts) {
    nIncluded += s.nIncluded;
    nExcluded += s.nExcluded;
    for (let j = 0; j < k; j++) counts[j] += s.counts[j];
    if (weighted) {
      for (let j = 0; j < k; j++) wsum[j] += s.weightSums![j];
      missing += s.nWeightMissing!;
    }
  }
  const stats: ClusterStats = { k, counts, fractions: counts.map((c) => (nIncluded > 0 ? c / nIncluded : 0)), nIncluded, nExcluded };
  if (weighted) {
    const total = wsum.reduce((a, b) => a + b, 0);
    stats.weightSums = wsum;
    stats.weightedFractions = wsum.map((w) => (total !== 0 ? w / total : NaN));
    stats.nWeightMissing = missing;
  }
  return stats;
}

export interface ClusterSpectra {
  k: number;
  nE: number;
  /** k x nE: mean, population std and number of finite values per cluster and energy. */
  mean: Float64Array;
  std: Float64Array;
  count: Float64Array;
  /** Pixels per cluster. */
  pixels: number[];
}

/**
 * Mean +/- standard deviation spectrum of each cluster, streaming the stack by tiles of
 * rows (at most `memoryBytes` per tile, default 256 MiB). Per tile, per cluster and energy:
 * count, mean and sum of squared deviations in float64, merged across tiles with Chan et
 * al.'s pairwise update (no sum-of-squares cancellation). Non-finite values are skipped.
 */
export async function clusterSpectra(source: StackSource, labels: Int32Array | Int16Array, k: number, opts: { memoryBytes?: number } = {}): Promise<ClusterSpectra> {
  const { nE, height: H, width: W } = source;
  if (labels.length !== H * W) throw new InputError(source.path, `stack is ${W} x ${H} pixels, the labels ${labels.length}`);
  const budget = opts.memoryBytes ?? 256 * 2 ** 20;
  const rows = Math.max(1, Math.min(H, Math.floor(budget / (4 * nE * W))));
  const tile = new Float32Array(nE * rows * W);
  const n = new Float64Array(k * nE), mean = new Float64Array(k * nE), m2 = new Float64Array(k * nE);
  const tn = new Float64Array(k * nE), ts = new Float64Array(k * nE), tm2 = new Float64Array(k * nE);
  const pixels = new Array<number>(k).fill(0);
  for (let y0 = 0; y0 < H; y0 += rows) {
    const r = Math.min(rows, H - y0);
    const P = r * W;
    await source.readRows(y0, r, tile);
    tn.fill(0);
    ts.fill(0);
    tm2.fill(0);
    for (let p = 0; p < P; p++) {
      const j = labels[y0 * W + p];
      if (j < 0 || j >= k) continue;
      pixels[j]++;
      for (let e = 0; e < nE; e++) {
        const x = tile[e * P + p];
        if (!Number.isFinite(x)) continue;
        tn[j * nE + e]++;
        ts[j * nE + e] += x;
      }
    }
    for (let p = 0; p < P; p++) {
      const j = labels[y0 * W + p];
      if (j < 0 || j >= k) continue;
      for (let e = 0; e < nE; e++) {
        const x = tile[e * P + p];
        if (!Number.isFinite(x)) continue;
        const i = j * nE + e;
        const t = x - ts[i] / tn[i];
        tm2[i] += t * t;
      }
    }
    for (let i = 0; i < k * nE; i++) {
      if (tn[i] === 0) continue;
      const tmean = ts[i] / tn[i];
      const nn = n[i] + tn[i];
      const delta = tmean - mean[i];
      mean[i] += (delta * tn[i]) / nn;
      m2[i] += tm2[i] + (delta * delta * n[i] * tn[i]) / nn;
      n[i] = nn;
    }
  }
  const std = new Float64Array(k * nE);
  for (let i = 0; i < k * nE; i++) {
    if (n[i] === 0) {
      mean[i] = NaN;
      std[i] = NaN;
    } else std[i] = Math.sqrt(m2[i] / n[i]);
  }
  return { k, nE, mean, std, count: n, pixels };
}
