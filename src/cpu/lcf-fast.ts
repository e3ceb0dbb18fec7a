/**
 * The CPU backend's lcf kernel: the same plan, subsets and outputs as the twin lcfCpu
 * (lcf.ts), the subset found by an active-set search (lcfSearchPixel, below) where the twin
 * tries subsets exhaustively (lcfSolvePixel), and each pixel's projection z = Q^T y taken as
 * M dot products with a precomputed table instead of M Givens rotations per energy:
 *   z = Qt y   (one multiply-add per column and energy; Qt = lcfProjection(plan), the
 *               linear map the twin's rotation sequence applies to a spectrum, its rows
 *               found once per plan by passing each unit spectrum through that sequence),
 *   rho2 = ||y||^2 - ||z||^2.
 * So a pixel costs one pass over its energies with M + 1 dot products (z and ||y||^2), then
 * the subset solve on z: what `pinv(X) @ Y` does with BLAS, and no per-pixel triangular solve
 * (the kernel used to form g = Xs^T y and solve Rs^T z = g per pixel: M (M - 1) / 2
 * multiply-adds and M divisions, ~1/3 of the solve's time at 6 references). The pass takes two pixels
 * at a time, reads their float32 values straight from the energy-major tile (adjacent
 * floats of each energy row) and keeps every running sum in a local variable (registers:
 * up to 4 columns x 2 pixels + 2 sums of squares per sweep; designs with more than 4
 * columns take a second sweep over the same two pixels, which are then in cache); the
 * column values come from a small table padded to multiples of 4 columns.
 *
 * Accuracy (float64 throughout): Qt is orthonormal to rounding (products of Givens
 * rotations), so z carries ~nW eps ||y|| absolute error, with no cond(R) factor (the
 * triangular solve of the former route had ~eps cond(Rs), cond <= 1 / LCF_DEPENDENT_RCOND);
 * rho2 by subtraction has an absolute error of a few eps ||y||^2, i.e.
 * the residual is exact to ~1e-15 of the signal's sum of squares, far below any measured
 * noise. (The GPU cannot afford that subtraction in float32; it keeps the Givens route.)
 * A non-finite value makes ||y||^2 non-finite (float32 squares cannot overflow float64), which
 * is how a pixel is found to have no data without a test per value.
 */
import { lcfNoData, lcfRows, lcfSolvePixel, lcfWriteSubset, subsetLayout, type LcfPlan } from './lcf.js';

/** Columns per sweep (running sums per pixel held in locals). */
export const LCF_SWEEP_COLUMNS = 4;

const projCache = new WeakMap<LcfPlan, Float64Array>();

/**
 * The plan's projection table Qt, [nW][M] row-major: z = sum_e Qt[e] y_e is the z the twin
 * (lcfCpu) forms by its Givens rotations (plan.rot), up to rounding. Row e is what that
 * rotation sequence makes of the unit spectrum at energy e: z is linear in y, and the twin's
 * residual component t (which only feeds rho2) never flows back into z. Built for all nW
 * unit spectra at once, energy by energy, in the twin's operation order; ~nW^2 M rotations
 * per plan (~0.1 ms at 100 energies).
 */
export function lcfProjection(plan: LcfPlan): Float64Array {
  let q = projCache.get(plan);
  if (q) return q;
  const { M, nW, rot } = plan;
  // Z[i][k]: z of unit spectrum i after the energies processed so far.
  const Z = new Float64Array(nW * M);
  for (let e = 0; e < nW; e++) {
    for (let i = 0; i <= e; i++) {
      let t = i === e ? 1 : 0;
      const zi = i * M;
      for (let k = 0; k < M; k++) {
        const c = rot[(e * M + k) * 2], s = rot[(e * M + k) * 2 + 1];
        const zk = Z[zi + k];
        Z[zi + k] = c * zk + s * t;
        t = c * t - s * zk;
      }
    }
  }
  q = Z;
  projCache.set(plan, q);
  return q;
}

const padCache = new WeakMap<LcfPlan, Float64Array>();

/** Qt padded to sweeps of 4 columns: xp[(c * nW + e) * 4 + k] = Qt[e][4c + k] (0 past M). */
function padded(plan: LcfPlan): Float64Array {
  let xp = padCache.get(plan);
  if (xp) return xp;
  const { M, nW } = plan;
  const xs = lcfProjection(plan);
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
  const th = new Float64Array(M);
  const L = subsetLayout(M, K);
  const search = lcfSearchTable(plan);
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
    for (let h = 0; h <= d; h++) lcfFinishPixel(plan, L, g, h * G, h === 0 ? s0 : s1, th, out, rows, P, p + h, search);
  }
  return out;
}

/**
 * One pixel's solve from its projection z = Qt y (z[zo .. zo + M)) and sumsq = ||y||^2:
 * rho2 = max(0, sumsq - ||z||^2) (||z||^2 summed in k order), then the subset search: the
 * active-set search (lcfSearchPixel) where `search` is the plan's table (lcfSearchTable),
 * else the twin's exhaustive search (lcfSolvePixel). Used by lcfFast and by the WebAssembly
 * pass (lcf-wasm.ts), so both give the same bytes.
 */
export function lcfFinishPixel(
  plan: LcfPlan, L: ReturnType<typeof subsetLayout>, z: Float64Array, zo: number, sumsq: number,
  th: Float64Array, out: Float64Array, rows: ReturnType<typeof lcfRows>, P: number, pp: number,
  search: Int32Array | null,
): void {
  if (!(sumsq - sumsq === 0)) { // NaN or infinite somewhere in the window
    lcfNoData(out, rows, P, pp);
    return;
  }
  const { M } = plan;
  let zz = 0;
  for (let k = 0; k < M; k++) zz += z[zo + k] * z[zo + k];
  const rho2 = Math.max(0, sumsq - zz);
  if (search) lcfSearchPixel(plan, L, search, z, zo, rho2, sumsq, th, out, rows, P, pp);
  else lcfSolvePixel(plan, L, z, zo, rho2, sumsq, th, out, rows, P, pp);
}

/**
 * Subsets the active-set search evaluates before a pixel falls back to the exhaustive
 * search. Block principal pivoting ends in a few (measured, 101 energies, 3-6 references
 * + constant, nnls and nnls-sum1, 20,000 pixels each of the benchmark's near-simplex
 * mixtures, of sparse mixtures of 1-3 phases with 20 % empty pixels, and of weights in
 * [-0.5, 1] with 10 % noise: at most 6, mean 1.1-2.9, none fell back, every output byte
 * equal to the exhaustive search's); a pixel that has not found an exact KKT point by
 * then (rounding at a degenerate optimum) gets the twin's answer.
 */
export const LCF_SEARCH_MAX_STEPS = 24;

const searchCache = new WeakMap<LcfPlan, Int32Array>();

/**
 * The active-set search's table for a plan: the subset index of each mask of free
 * references (-1 for a mask the plan does not enumerate: the empty set in nnls-sum1); null
 * where the plan has a single subset (ls, sum1, nnls-sum1 with one reference), which is
 * then the answer (lcfSolvePixel).
 */
export function lcfSearchTable(plan: LcfPlan): Int32Array | null {
  if (!plan.nonneg || plan.nSubsets <= 1) return null;
  let t = searchCache.get(plan);
  if (!t) {
    t = new Int32Array(1 << plan.K).fill(-1);
    for (let s = 0; s < plan.nSubsets; s++) t[plan.masks[s]] = s;
    searchCache.set(plan, t);
  }
  return t;
}

/**
 * The CPU kernel's subset search for the sign-constrained modes: block principal pivoting
 * (Judice & Pires; Kim & Park's NNLS form), over the plan's precomputed subsets.
 *
 * Why: the twin's exhaustive search tries subsets largest first and stops at the first
 * exact KKT point, so a pixel whose optimum has few references active tries most of the
 * 2^K subsets (measured with 6 references: 2.5 subsets per pixel on the benchmark's
 * near-simplex mixtures, 34 on mixtures of 1-3 of the 6 phases with empty pixels).
 *
 * How: start from every reference free (the unconstrained fit, subset 0); at each step
 * evaluate the current subset F exactly as the twin does (free weights A_F z + b_F, dual
 * violations W_F z + c_F of the excluded ones, in the same order, so the same signs), and
 * collect the infeasible references: free ones with a weight < 0 and excluded ones with a
 * violation > 0. None: F satisfies the KKT conditions exactly, the twin's stopping test, and
 * is the answer (the optimum is unique: R has full rank, so the KKT subset is unique unless
 * the optimum is degenerate, a weight and its gradient both zero, where either subset gives
 * the same weights to rounding). Otherwise all infeasible references switch sides while
 * their count keeps falling; after 3 steps without a fall, only the highest-numbered one
 * switches (Murty's rule, which cannot cycle), and the 3 tries are given back whenever the
 * count reaches a new low. Each step costs one subset's small mat-vecs (<= K x M products).
 * A pixel still without an exact KKT point after LCF_SEARCH_MAX_STEPS, or led to a subset
 * the plan does not hold (the empty one in nnls-sum1), gets the exhaustive search.
 * The twin (lcf.ts) keeps the exhaustive search, so the tests compare two methods.
 */
export function lcfSearchPixel(
  plan: LcfPlan, L: ReturnType<typeof subsetLayout>, index: Int32Array, z: Float64Array, zo: number, rho2: number, sumsq: number,
  th: Float64Array, out: Float64Array, rows: ReturnType<typeof lcfRows>, P: number, p: number,
): void {
  const { M, K, sub, subStride } = plan;
  const LA = L.A, Lb = L.b, LW = L.W, Lc = L.c;
  let mask = (1 << K) - 1;
  let best = K + 1;
  let tries = 3;
  for (let step = 0; step < LCF_SEARCH_MAX_STEPS; step++) {
    const s = index[mask];
    if (s < 0) break;
    const off = s * subStride;
    let flip = 0, count = 0;
    for (let i = 0; i < K; i++) {
      if ((mask >> i) & 1) {
        let acc = sub[off + Lb + i];
        const a = off + LA + i * M;
        for (let j = 0; j < M; j++) acc += sub[a + j] * z[zo + j];
        if (acc < 0) { flip |= 1 << i; count++; }
      } else {
        let acc = sub[off + Lc + i];
        const w = off + LW + i * M;
        for (let k = 0; k < M; k++) acc += sub[w + k] * z[zo + k];
        if (acc > 0) { flip |= 1 << i; count++; }
      }
    }
    if (count === 0) {
      lcfWriteSubset(plan, L, s, z, zo, rho2, sumsq, th, out, rows, P, p);
      return;
    }
    if (count < best) {
      best = count;
      tries = 3;
      mask ^= flip;
    } else if (tries > 0) {
      tries--;
      mask ^= flip;
    } else {
      mask ^= 1 << (31 - Math.clz32(flip));
    }
  }
  lcfSolvePixel(plan, L, z, zo, rho2, sumsq, th, out, rows, P, p);
}
