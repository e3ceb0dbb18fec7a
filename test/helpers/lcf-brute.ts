/**
 * Independent references for the lcf tests, written without anything from src/cpu/lcf.ts:
 *  - bruteForceLcf: the constrained least-squares optimum by trying every active set
 *    (subset of references forced to zero), each solved from its KKT system
 *      [X_F^T X_F  a_F] [theta_F]   [X_F^T y]
 *      [a_F^T      0  ] [  mu   ] = [   1   ]     (the last row and column only with sum-to-one)
 *    by Gaussian elimination with partial pivoting and iterative refinement (columns scaled
 *    to unit norm first),
 *    keeping the feasible solution (constrained weights >= 0) with the smallest residual,
 *    which is evaluated directly as ||y - X theta||^2;
 *  - numericalRank: rank of X by modified Gram-Schmidt with column pivoting.
 * The design matrix uses absolute units: background columns 1 and (E - eRef), so the slope
 * comes out per eV, as the step reports it.
 */

export interface BruteProblem {
  /** nW x M, row-major: references first, then background columns. */
  X: Float64Array;
  nW: number;
  M: number;
  /** Number of reference columns (the only ones that can be sign- or sum-constrained). */
  K: number;
  nonneg: boolean;
  sum1: boolean;
}

export interface BruteResult {
  theta: Float64Array;
  rss: number;
  /** Free references of the winning active set, as a bit mask. */
  mask: number;
}

function solveDense(A: Float64Array, b: Float64Array, n: number): Float64Array | null {
  const a = Float64Array.from(A);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r * n + c]) > Math.abs(a[piv * n + c])) piv = r;
    if (a[piv * n + c] === 0) return null;
    if (piv !== c) {
      for (let k = 0; k < n; k++) [a[c * n + k], a[piv * n + k]] = [a[piv * n + k], a[c * n + k]];
      [x[c], x[piv]] = [x[piv], x[c]];
    }
    for (let r = c + 1; r < n; r++) {
      const f = a[r * n + c] / a[c * n + c];
      if (f === 0) continue;
      for (let k = c; k < n; k++) a[r * n + k] -= f * a[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let acc = x[r];
    for (let k = r + 1; k < n; k++) acc -= a[r * n + k] * x[k];
    x[r] = acc / a[r * n + r];
  }
  return x;
}

export function bruteForceLcf(pb: BruteProblem, y: ArrayLike<number>): BruteResult {
  const { X, nW, M, K, nonneg, sum1 } = pb;
  const scale = new Float64Array(M);
  for (let j = 0; j < M; j++) {
    let s = 0;
    for (let i = 0; i < nW; i++) s += X[i * M + j] ** 2;
    scale[j] = 1 / Math.sqrt(s);
  }
  let best: BruteResult = { theta: new Float64Array(M).fill(NaN), rss: Infinity, mask: -1 };
  const masks = nonneg ? 1 << K : 1;
  for (let m = 0; m < masks; m++) {
    const mask = nonneg ? m : (1 << K) - 1;
    const free: number[] = [];
    for (let j = 0; j < M; j++) if (j >= K || (mask >> j) & 1) free.push(j);
    const nRefFree = free.filter((j) => j < K).length;
    if (sum1 && nRefFree === 0) continue;
    const f = free.length;
    const n = f + (sum1 ? 1 : 0);
    if (n === 0) {
      let rss = 0;
      for (let i = 0; i < nW; i++) rss += y[i] * y[i];
      if (rss < best.rss) best = { theta: new Float64Array(M), rss, mask };
      continue;
    }
    const A = new Float64Array(n * n);
    const b = new Float64Array(n);
    for (let r = 0; r < f; r++) {
      for (let c = 0; c < f; c++) {
        let s = 0;
        for (let i = 0; i < nW; i++) s += X[i * M + free[r]] * X[i * M + free[c]];
        A[r * n + c] = s * scale[free[r]] * scale[free[c]];
      }
      let s = 0;
      for (let i = 0; i < nW; i++) s += X[i * M + free[r]] * y[i];
      b[r] = s * scale[free[r]];
      if (sum1) {
        const a = free[r] < K ? scale[free[r]] : 0;
        A[r * n + f] = a;
        A[f * n + r] = a;
      }
    }
    if (sum1) b[f] = 1;
    const sol = solveDense(A, b, n);
    if (!sol) continue;
    // Two steps of iterative refinement: the saddle-point system of sum-to-one is far worse
    // conditioned than its blocks, and plain elimination leaves errors of 1e-7 there.
    for (let it = 0; it < 2; it++) {
      const res = new Float64Array(n);
      for (let r = 0; r < n; r++) {
        let acc = b[r];
        for (let c = 0; c < n; c++) acc -= A[r * n + c] * sol[c];
        res[r] = acc;
      }
      const dx = solveDense(A, res, n);
      if (dx) for (let r = 0; r < n; r++) sol[r] += dx[r];
    }
    const theta = new Float64Array(M);
    for (let r = 0; r < f; r++) theta[free[r]] = sol[r] * scale[free[r]];
    if (nonneg && free.some((j) => j < K && theta[j] < 0)) continue;
    let rss = 0;
    for (let i = 0; i < nW; i++) {
      let r = y[i];
      for (let j = 0; j < M; j++) r -= X[i * M + j] * theta[j];
      rss += r * r;
    }
    if (rss < best.rss) best = { theta, rss, mask };
  }
  return best;
}

/** Numerical rank of X (nW x M) with relative tolerance tol, by pivoted modified Gram-Schmidt. */
export function numericalRank(X: Float64Array, nW: number, M: number, tol = 1e-9): number {
  const cols: Float64Array[] = [];
  for (let j = 0; j < M; j++) {
    const c = new Float64Array(nW);
    let s = 0;
    for (let i = 0; i < nW; i++) s += X[i * M + j] ** 2;
    for (let i = 0; i < nW; i++) c[i] = X[i * M + j] / Math.sqrt(s);
    cols.push(c);
  }
  let rank = 0;
  const left = [...cols];
  while (left.length > 0) {
    let bi = 0, bn = -1;
    left.forEach((c, i) => {
      const n = Math.hypot(...c);
      if (n > bn) [bi, bn] = [i, n];
    });
    if (bn <= tol) break;
    const q = left.splice(bi, 1)[0].map((v) => v / bn);
    rank++;
    for (const c of left) {
      let d = 0;
      for (let i = 0; i < nW; i++) d += q[i] * c[i];
      for (let i = 0; i < nW; i++) c[i] -= d * q[i];
    }
  }
  return rank;
}
