/**
 * How k-means standardises its features (`--standardize zscore|robust|none`):
 *  - zscore (default for maps): (x - mean) / population standard deviation, scikit-learn's
 *    StandardScaler convention (standardization() in src/cpu/kmeans.ts).
 *  - robust: (x - median) / (1.4826 x MAD), the median absolute deviation scaled to equal
 *    the standard deviation for Gaussian data (scipy.stats.median_abs_deviation with
 *    scale='normal'), over the included pixels (every feature finite). A few outlier pixels
 *    (a failed fit's b2 at the edge of the range) inflate a standard deviation and so
 *    shrink that feature's weight; they do not move the median or the MAD. A feature whose
 *    MAD is 0 (more than half its pixels equal) falls back to its standard deviation, and
 *    to scale 1 if that is 0 too (listed as constant, as in zscore).
 *  - none: centred only (PCA scores, whose units already carry their weight).
 * Why zscore stays the default for maps: the MAD measures the spread of the majority only.
 * With domains of unequal size, a feature that separates a small domain from a large one
 * has the large domain's within-spread as its MAD, so robust scaling multiplies that
 * feature's between-domain distance by the ratio of the two and lets it outweigh the
 * others; the standard deviation includes the between-domain spread and keeps the features
 * comparable. The outliers robust scaling guards against are handled by --min-cluster-size
 * (src/pipeline/elbow.ts) and --mask / --min-weight. test/pipeline/standardize.test.ts
 * measures the outlier case.
 */
import type { Features, FeatureStats, Standardization } from '../cpu/kmeans.js';
import { standardization } from '../cpu/kmeans.js';

export const STANDARDIZE_MODES = ['zscore', 'robust', 'none'] as const;
export type StandardizeMode = (typeof STANDARDIZE_MODES)[number];

/** 1 / Phi^-1(3/4): MAD x this = standard deviation for normally distributed data. */
export const MAD_TO_SIGMA = 1.482602218505602;

/** Median of the first n values of a (sorted in place). */
function medianInPlace(a: Float64Array, n: number): number {
  const s = a.subarray(0, n).sort();
  return n % 2 ? s[(n - 1) / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/** Median and MAD-based scale of each feature over the pixels with every feature finite. */
export function robustStats(f: Features): { median: Float64Array; madSigma: Float64Array } {
  const { d, n, data } = f;
  const inc: number[] = [];
  for (let p = 0; p < n; p++) {
    let ok = true;
    for (let k = 0; k < d && ok; k++) ok = Number.isFinite(data[k * n + p]);
    if (ok) inc.push(p);
  }
  const m = inc.length;
  const buf = new Float64Array(m);
  const median = new Float64Array(d);
  const madSigma = new Float64Array(d);
  if (m === 0) return { median, madSigma };
  for (let k = 0; k < d; k++) {
    for (let i = 0; i < m; i++) buf[i] = data[k * n + inc[i]];
    const med = medianInPlace(buf, m);
    for (let i = 0; i < m; i++) buf[i] = Math.abs(data[k * n + inc[i]] - med);
    median[k] = med;
    madSigma[k] = MAD_TO_SIGMA * medianInPlace(buf, m);
  }
  return { median, madSigma };
}

/** The standardisation of `mode` (see the header). */
export function standardizeFeatures(f: Features, stats: FeatureStats, mode: StandardizeMode): Standardization {
  if (mode !== 'robust') return { ...standardization(stats, mode === 'zscore'), method: mode };
  const { median, madSigma } = robustStats(f);
  const d = f.d;
  const scale = new Float64Array(d);
  const constant: number[] = [];
  for (let k = 0; k < d; k++) {
    if (stats.std[k] === 0) constant.push(k);
    scale[k] = madSigma[k] > 0 ? madSigma[k] : stats.std[k] > 0 ? stats.std[k] : 1;
  }
  // Shift rounded to float32, as standardization() does (both backends subtract the same number).
  return { shift: median.map(Math.fround), scale, constant, standardized: true, method: 'robust' };
}

/** The units of distances and WCSS under a standardisation (summary.json `wcss_units`). */
export function wcssUnits(st: Standardization): string {
  if (!st.standardized) return 'feature units';
  return st.method === 'robust' ? 'robust-standardised (median / MAD) units' : 'standardised (z-score) units';
}
