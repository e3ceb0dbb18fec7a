/**
 * The CPU backend's lcf kernel: the same plan, subsets and outputs as the twin lcfCpu
 * (lcf.ts), but each pixel's projection z = Q^T y is formed from the precomputed reference
 * matrices instead of M Givens rotations per energy:
 *   g = Xs^T y   (one multiply-add per reference column and energy, Xs the column-scaled
 *                 design matrix of the plan),
 *   z = Rs^{-T} g (forward substitution with the plan's R; Xs = Q Rs, so Xs^T y = Rs^T z),
 *   rho2 = ||y||^2 - ||z||^2.
 * The tile is read once, as float32, in memory order, for blocks of LCF_BLOCK pixels whose M
 * running sums stay in L1. The subset search (exact NNLS / sum-to-one by KKT) is the twin's.
 *
 * Accuracy (float64 throughout): g and ||y||^2 carry ~nW eps relative error; z then
 * ~eps cond(Rs) (Rs is the column-scaled R: cond <= 1 / LCF_DEPENDENT_RCOND = 1e5, so
 * <= 1e-11 relative); rho2 by subtraction has an absolute error of a few eps ||y||^2, i.e.
 * the residual is exact to ~1e-15 of the signal's sum of squares, far below any measured
 * noise. (The GPU cannot afford that subtraction in float32; it keeps the Givens route.)
 */
import { LcfStatus, lcfRows, subsetLayout, type LcfPlan } from './lcf.js';

/** Pixels per block of running sums. */
export const LCF_BLOCK = 64;

/** Rows as lcfCpu returns them (lcfRows(M)), for `cube` = the window's energies [nW][P]. */
export function lcfFast(plan: LcfPlan, cube: Float32Array, P: number): Float64Array {
  const { M, K, nW, xs, rs, sub, subStride, nSubsets, masks, nonneg } = plan;
  const rows = lcfRows(M);
  const out = new Float64Array(rows.ROWS * P);
  if (cube.length < nW * P) throw new RangeError(`lcfFast: cube holds ${cube.length} values, need ${nW * P}`);
  const B = LCF_BLOCK;
  const g = new Float64Array(M * B);
  const sumsq = new Float64Array(B);
  const bad = new Uint8Array(B);
  const z = new Float64Array(M);
  const th = new Float64Array(M);
  const L = subsetLayout(M, K);
  for (let p0 = 0; p0 < P; p0 += B) {
    const nb = Math.min(B, P - p0);
    g.fill(0);
    sumsq.fill(0);
    bad.fill(0);
    for (let e = 0; e < nW; e++) {
      const base = e * P + p0;
      for (let i = 0; i < nb; i++) {
        const t = cube[base + i];
        if (t - t !== 0) bad[i] = 1; // NaN or infinite
        sumsq[i] += t * t;
      }
      for (let k = 0; k < M; k++) {
        const xk = xs[e * M + k];
        const gk = k * B;
        for (let i = 0; i < nb; i++) g[gk + i] += xk * cube[base + i];
      }
    }
    for (let i = 0; i < nb; i++) {
      const p = p0 + i;
      if (bad[i]) {
        for (let k = 0; k < rows.STATUS; k++) out[k * P + p] = NaN;
        out[rows.STATUS * P + p] = LcfStatus.NO_DATA;
        continue;
      }
      // Rs^T z = g (Rs^T lower triangular: (Rs^T)[k][j] = Rs[j][k]).
      let zz = 0;
      for (let k = 0; k < M; k++) {
        let acc = g[k * B + i];
        for (let j = 0; j < k; j++) acc -= rs[j * M + k] * z[j];
        z[k] = acc / rs[k * M + k];
        zz += z[k] * z[k];
      }
      const rho2 = Math.max(0, sumsq[i] - zz);
      let bestS = 0;
      let bestV = Infinity;
      for (let s = 0; s < nSubsets; s++) {
        const mask = masks[s];
        const off = s * subStride;
        let ok = true;
        if (nonneg) {
          for (let q = 0; q < K; q++) {
            if (!((mask >> q) & 1)) continue;
            let acc = sub[off + L.b + q];
            for (let j = 0; j < M; j++) acc += sub[off + L.A + q * M + j] * z[j];
            if (acc < 0) ok = false;
          }
        }
        if (!ok) continue;
        let v = 0;
        for (let j = 0; j < K; j++) {
          if ((mask >> j) & 1) continue;
          let acc = sub[off + L.c + j];
          for (let k = 0; k < M; k++) acc += sub[off + L.W + j * M + k] * z[k];
          if (acc > v) v = acc;
        }
        if (v < bestV) {
          bestV = v;
          bestS = s;
        }
        if (bestV === 0) break;
      }
      const off = bestS * subStride;
      for (let q = 0; q < M; q++) {
        let acc = sub[off + L.b + q];
        for (let j = 0; j < M; j++) acc += sub[off + L.A + q * M + j] * z[j];
        th[q] = acc;
      }
      let bestF = 0;
      for (let q = 0; q < M; q++) {
        let acc = sub[off + L.e + q];
        for (let j = 0; j < M; j++) acc += sub[off + L.E + q * M + j] * z[j];
        bestF += acc * acc;
      }
      const rss = rho2 + bestF;
      for (let k = 0; k < M; k++) out[(rows.THETA0 + k) * P + p] = th[k];
      out[rows.RMS * P + p] = Math.sqrt(Math.max(rss, 0) / nW);
      out[rows.RFACTOR * P + p] = sumsq[i] > 0 ? rss / sumsq[i] : NaN;
      out[rows.STATUS * P + p] = LcfStatus.OK;
    }
  }
  return out;
}
