/**
 * The CPU backend's lcf kernel: the same plan, subsets and outputs as the twin lcfCpu
 * (lcf.ts; the subset search itself is shared, lcfSolvePixel), but each pixel's projection
 * z = Q^T y is formed from the precomputed reference matrices instead of M Givens rotations
 * per energy:
 *   g = Xs^T y   (one multiply-add per reference column and energy, Xs the column-scaled
 *                 design matrix of the plan),
 *   z = Rs^{-T} g (forward substitution with the plan's R; Xs = Q Rs, so Xs^T y = Rs^T z),
 *   rho2 = ||y||^2 - ||z||^2.
 * So a pixel costs one pass over its energies with M + 1 dot products (g and ||y||^2), then
 * an M x M triangular solve: what `pinv(X) @ Y` does with BLAS. The pass takes two pixels
 * at a time, reads their float32 values straight from the energy-major tile (adjacent
 * floats of each energy row) and keeps every running sum in a local variable (registers:
 * up to 4 columns x 2 pixels + 2 sums of squares per sweep; designs with more than 4
 * columns take a second sweep over the same two pixels, which are then in cache); the
 * column values come from a small table padded to multiples of 4 columns.
 *
 * Accuracy (float64 throughout): g and ||y||^2 carry ~nW eps relative error; z then
 * ~eps cond(Rs) (Rs is the column-scaled R: cond <= 1 / LCF_DEPENDENT_RCOND = 1e5, so
 * <= 1e-11 relative); rho2 by subtraction has an absolute error of a few eps ||y||^2, i.e.
 * the residual is exact to ~1e-15 of the signal's sum of squares, far below any measured
 * noise. (The GPU cannot afford that subtraction in float32; it keeps the Givens route.)
 * A non-finite value makes ||y||^2 non-finite (float32 squares cannot overflow float64), which
 * is how a pixel is found to have no data without a test per value.
 */
import { lcfNoData, lcfRows, lcfSolvePixel, subsetLayout, type LcfPlan } from './lcf.js';

/** Columns per sweep (running sums per pixel held in locals). */
export const LCF_SWEEP_COLUMNS = 4;

const padCache = new WeakMap<LcfPlan, Float64Array>();

/** xs padded to sweeps of 4 columns: xp[(c * nW + e) * 4 + k] = xs[e][4c + k] (0 past M). */
function padded(plan: LcfPlan): Float64Array {
  let xp = padCache.get(plan);
  if (xp) return xp;
  const { M, nW, xs } = plan;
  const C = Math.ceil(M / LCF_SWEEP_COLUMNS);
  xp = new Float64Array(C * nW * 4);
  for (let c = 0; c < C; c++) {
    for (let e = 0; e < nW; e++) {
      for (let k = 0; k < 4; k++) {
        const j = 4 * c + k;
        xp[(c * nW + e) * 4 + k] = j < M ? xs[e * M + j] : 0;
      }
    }
  }
  padCache.set(plan, xp);
  return xp;
}

/** Rows as lcfCpu returns them (lcfRows(M)), for `cube` = the window's energies [nW][P]. */
export function lcfFast(plan: LcfPlan, cube: Float32Array, P: number): Float64Array {
  const { M, K, nW } = plan;
  const rows = lcfRows(M);
  const out = new Float64Array(rows.ROWS * P);
  if (cube.length < nW * P) throw new RangeError(`lcfFast: cube holds ${cube.length} values, need ${nW * P}`);
  const xp = padded(plan);
  const C = xp.length / (4 * nW);
  const G = 4 * C;
  const g = new Float64Array(2 * G);
  const z = new Float64Array(M);
  const th = new Float64Array(M);
  const L = subsetLayout(M, K);
  let s0 = 0, s1 = 0;
  for (let p = 0; p < P; p += 2) {
    // The second pixel of the pair; a last odd pixel is summed twice and its copy dropped.
    const d = p + 1 < P ? 1 : 0;
    for (let c = 0; c < C; c++) {
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
      let o = p, q = c * nW * 4;
      if (c === 0) {
        let u0 = 0, u1 = 0;
        for (let e = 0; e < nW; e++) {
          const t = cube[o], w = cube[o + d];
          o += P;
          const x0 = xp[q], x1 = xp[q + 1], x2 = xp[q + 2], x3 = xp[q + 3];
          q += 4;
          u0 += t * t; u1 += w * w;
          a0 += x0 * t; a1 += x1 * t; a2 += x2 * t; a3 += x3 * t;
          b0 += x0 * w; b1 += x1 * w; b2 += x2 * w; b3 += x3 * w;
        }
        s0 = u0; s1 = u1;
      } else {
        for (let e = 0; e < nW; e++) {
          const t = cube[o], w = cube[o + d];
          o += P;
          const x0 = xp[q], x1 = xp[q + 1], x2 = xp[q + 2], x3 = xp[q + 3];
          q += 4;
          a0 += x0 * t; a1 += x1 * t; a2 += x2 * t; a3 += x3 * t;
          b0 += x0 * w; b1 += x1 * w; b2 += x2 * w; b3 += x3 * w;
        }
      }
      const k0 = 4 * c;
      g[k0] = a0; g[k0 + 1] = a1; g[k0 + 2] = a2; g[k0 + 3] = a3;
      g[G + k0] = b0; g[G + k0 + 1] = b1; g[G + k0 + 2] = b2; g[G + k0 + 3] = b3;
    }
    for (let h = 0; h <= d; h++) lcfFinishPixel(plan, L, g, h * G, h === 0 ? s0 : s1, z, th, out, rows, P, p + h);
  }
  return out;
}

/**
 * One pixel's solve from its projections g = Xs^T y (g[go .. go + M)) and sumsq = ||y||^2:
 * z = Rs^{-T} g by forward substitution, then the shared subset search (lcfSolvePixel). Used by
 * lcfFast and by the WebAssembly pass (lcf-wasm.ts), so both give the same bytes.
 */
export function lcfFinishPixel(
  plan: LcfPlan, L: ReturnType<typeof subsetLayout>, g: Float64Array, go: number, sumsq: number,
  z: Float64Array, th: Float64Array, out: Float64Array, rows: ReturnType<typeof lcfRows>, P: number, pp: number,
): void {
  if (!(sumsq - sumsq === 0)) { // NaN or infinite somewhere in the window
    lcfNoData(out, rows, P, pp);
    return;
  }
  const { M, rs } = plan;
  // Rs^T z = g (Rs^T lower triangular: (Rs^T)[k][j] = Rs[j][k]).
  let zz = 0;
  for (let k = 0; k < M; k++) {
    let acc = g[go + k];
    for (let j = 0; j < k; j++) acc -= rs[j * M + k] * z[j];
    z[k] = acc / rs[k * M + k];
    zz += z[k] * z[k];
  }
  lcfSolvePixel(plan, L, z, 0, Math.max(0, sumsq - zz), sumsq, th, out, rows, P, pp);
}
