/**
 * PCA projection of a pixel with missing points (the NaN policy of pca's projection), float64
 * on the host for both backends: the kernels (shaders/pca_project.wgsl, pcaProjectCpu in
 * src/cpu/pca.ts) give NaN for a spectrum with any unusable value, and src/pipeline/pca.ts
 * then fills those pixels here.
 *
 * A non-finite point (or one of magnitude >= PCA_MAX_ABS) is dropped for that pixel: its
 * scores are the least-squares fit of the first n components to the points it has,
 *   s = argmin sum_{e observed} (x_e - mean_e - sum_k s_k v_ke)^2,
 * solved from the n x n normal equations (V_o^T V_o) s = V_o^T y_o by Cholesky. With every
 * point present V_o^T V_o = I and this is the plain projection <y, v_k>, so a pixel's
 * scores do not jump when one point goes missing. recon_error is the RMS residual over the
 * observed points. The pixel stays NaN (excluded) only when too few points remain: fewer
 * than max(n + 1, ceil(d x PCA_MIN_POINT_FRACTION)), or when the observed rows leave a
 * component undetermined (a Cholesky pivot <= PCA_MISSING_PIVOT of its unit diagonal).
 *
 * The covariance (pass 1) still uses only pixels with every point usable (documented in the
 * README): a pixel with a hole is excluded from the covariance but still projected.
 */
import { usableValue, type PcaModel } from './pca.js';

/**
 * Half the energies: a spectrum missing more than half its points is not the spectrum the
 * components describe (a thick pixel with the whole edge region saturated, a frame edge).
 */
export const PCA_MIN_POINT_FRACTION = 0.5;
/**
 * Pivot floor of the observed rows' Gram matrix (its diagonal is <= 1): below it the missing
 * points carried that component almost entirely and its score is not determined.
 */
export const PCA_MISSING_PIVOT = 1e-6;

/** Fewest usable points a pixel needs for n scores out of d energies. */
export function minProjectionPoints(d: number, n: number): number {
  return Math.max(n + 1, Math.ceil(d * PCA_MIN_POINT_FRACTION));
}

/**
 * Scores and reconstruction error of pixel p (cube energy-major [d][P]) from its usable
 * points into out (rows [n + 1][P]); leaves NaN there when too few remain. Returns whether
 * it wrote scores.
 */
export function projectWithMissing(cube: Float32Array, P: number, p: number, model: PcaModel, n: number, out: Float64Array | Float32Array): boolean {
  const { d, mean, components: V } = model;
  const obs: number[] = [];
  for (let e = 0; e < d; e++) if (usableValue(cube[e * P + p])) obs.push(e);
  for (let k = 0; k <= n; k++) out[k * P + p] = NaN;
  if (obs.length < minProjectionPoints(d, n)) return false;
  // Normal equations over the observed rows (full n x n, row-major) and right-hand side.
  const G = new Float64Array(n * n);
  const b = new Float64Array(n);
  for (const e of obs) {
    const y = cube[e * P + p] - mean[e];
    for (let a = 0; a < n; a++) {
      const va = V[a * d + e];
      b[a] += va * y;
      for (let c = 0; c <= a; c++) G[a * n + c] += va * V[c * d + e];
    }
  }
  // Cholesky G = L L^T in place (lower triangle).
  for (let a = 0; a < n; a++) {
    for (let c = 0; c <= a; c++) {
      let s = G[a * n + c];
      for (let k = 0; k < c; k++) s -= G[a * n + k] * G[c * n + k];
      if (a === c) {
        if (!(s > PCA_MISSING_PIVOT)) return false;
        G[a * n + a] = Math.sqrt(s);
      } else G[a * n + c] = s / G[c * n + c];
    }
  }
  for (let a = 0; a < n; a++) {
    let s = b[a];
    for (let k = 0; k < a; k++) s -= G[a * n + k] * b[k];
    b[a] = s / G[a * n + a];
  }
  for (let a = n - 1; a >= 0; a--) {
    let s = b[a];
    for (let k = a + 1; k < n; k++) s -= G[k * n + a] * b[k];
    b[a] = s / G[a * n + a];
  }
  let r2 = 0;
  for (const e of obs) {
    let r = cube[e * P + p] - mean[e];
    for (let k = 0; k < n; k++) r -= b[k] * V[k * d + e];
    r2 += r * r;
  }
  for (let k = 0; k < n; k++) out[k * P + p] = b[k];
  out[n * P + p] = Math.sqrt(r2 / obs.length);
  return true;
}
