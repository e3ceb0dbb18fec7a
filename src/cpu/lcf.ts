/**
 * Linear-combination fitting (lcf): the host plan, built once per run in float64, and the
 * CPU twin of shaders/lcf.wgsl.
 *
 * Model, per pixel, over the energies of the fit window:
 *   y(E) = sum_j w_j ref_j(E) + background(E)
 * background: none | const (c0) | linear (c0 + c1 (E - E_ref), E_ref = window centre).
 * Modes: ls (unconstrained), nnls (w >= 0), sum1 (sum w = 1), nnls-sum1 (both). Background
 * terms are never sign-constrained.
 *
 * Everything that depends only on the references is done here, once:
 *  - The design matrix X (references and background columns over the window), columns
 *    scaled to unit norm (D), and its QR factorisation by Givens rotations applied row by
 *    row in energy order. The rotation angles (c, s) of every (energy, column) pair are
 *    kept: they depend only on X, so every pixel's spectrum y can be rotated by the same
 *    sequence while it is read, once, in energy order. That yields z = Q^T y (M numbers)
 *    and rho2 = ||y - Q z||^2, the part of ||y||^2 no combination of the columns can
 *    explain, as a sum of squares of small numbers: no cancellation, unlike
 *    ||y||^2 - ||z||^2, which in float32 loses the residual of a good fit entirely.
 *  - For any coefficients theta, ||y - X theta||^2 = rho2 + ||z - R theta||^2 with R upper
 *    triangular (M x M). So each pixel's constrained problem is an M-dimensional one.
 *  - Exact NNLS by subset enumeration: for every subset F of references allowed to be
 *    non-zero (background always free), the least-squares solution on F is an affine map
 *    of z, theta = A_F z + b_F (rows of excluded columns zero; b_F = 0 unless the
 *    sum-to-one constraint is eliminated in closed form, KKT). The problem is convex and R
 *    has full rank, so the optimum is unique and is the solution of the subset that
 *    satisfies the KKT conditions: primal feasible (free weights >= 0) and dual feasible
 *    (no excluded reference whose gradient g_j = X_j^T r exceeds the common value nu of the
 *    free ones; nu = 0 without sum-to-one). Among the primal-feasible subsets the one with
 *    the smallest dual violation max_j (g_j - nu)+ / ||X_j|| is taken.
 *    Two choices keep this accurate in float32 on the GPU:
 *     - deciding by KKT violation, not by the smallest residual: two subsets whose solutions
 *       differ by delta differ in residual by O(delta^2) (below float32 resolution already
 *       for delta ~ 1e-3) but in gradient by O(delta);
 *     - the violation of each excluded j is precomputed as an affine function of z,
 *       (g_j - nu) / ||X_j|| = w_Fj . z + c_Fj, with w_Fj the part of column j that the free
 *       columns cannot represent. Computing it from the residual z - R theta instead would
 *       add the residual's cancellation error (eps ||y||), which divided by the flat
 *       curvature of nearly collinear references (rcond^2) moves theta by eps / rcond^2;
 *       this way the error stays eps / rcond, as for the unconstrained fit.
 *    The reduced residual of the chosen subset is r = E_F z + e_F (E_F = I - R A_F, a
 *    projection), again without cancelling large terms. With <= 6 references that is <= 64
 *    small mat-vecs per pixel in the twin, which tries them in order; the CPU kernel reaches
 *    the same subset by an active-set search in a few steps (lcfSearchPixel, lcf-fast.ts).
 *  - Linearly dependent columns are found from the singular values of the scaled R
 *    (one-sided Jacobi SVD) and reported by name, with the columns of the null vector.
 *
 * The CPU twin runs the same plan in float64, reading the tile energy-major (energy outer,
 * pixel inner) so that it streams the cube in memory order.
 */
import { InputError } from '../io/errors.js';

export type LcfMode = 'ls' | 'nnls' | 'sum1' | 'nnls-sum1';
export type LcfBackground = 'none' | 'const' | 'linear';
export const LCF_MODES: readonly LcfMode[] = ['ls', 'nnls', 'sum1', 'nnls-sum1'];
export const LCF_BACKGROUNDS: readonly LcfBackground[] = ['none', 'const', 'linear'];

/** Subset enumeration is exact and affordable up to 2^6 = 64 subsets per pixel. */
export const LCF_MAX_REFS = 6;

/**
 * Reference matrices whose smallest singular value (columns scaled to unit norm) is below
 * this fraction of the largest are rejected as linearly dependent. The GPU works in float32
 * (6e-8 relative): at a condition number of 1e5 its weights can already be off by ~1 %
 * of the signal, and beyond it they are noise.
 */
export const LCF_DEPENDENT_RCOND = 1e-5;
/** Below this reciprocal condition number the plan carries a precision warning. */
export const LCF_WARN_RCOND = 1e-3;

export interface LcfReference {
  name: string;
  /** mu on the stack's energies (one value per energy; only the window must be finite). */
  mu: Float64Array;
}

export interface LcfOptions {
  mode: LcfMode;
  background: LcfBackground;
  /** Energy window [a, b] in eV (inclusive); default: every energy. */
  window?: readonly [number, number];
}

export interface LcfPlan {
  mode: LcfMode;
  background: LcfBackground;
  names: string[];
  /** K references, M = K + background columns. */
  K: number;
  M: number;
  nE: number;
  /** Window as the index range [i0, i1) of the stack energies. */
  i0: number;
  i1: number;
  nW: number;
  /** Background linear term: bg(E) = c0 + c1 (E - bgRefEnergy), c1 per eV. */
  bgRefEnergy: number;
  /** Half-width of the window (eV): the linear column is (E - bgRefEnergy) / bgHalfWidth. */
  bgHalfWidth: number;
  /** Givens angles [nW][M][c, s]. */
  rot: Float64Array;
  /** R with the column scaling undone (theta in user units), M x M row-major, upper triangular. */
  ru: Float64Array;
  /** The column-scaled design matrix [nW][M] and its R (M x M, upper triangular, positive diagonal). */
  xs: Float64Array;
  rs: Float64Array;
  /**
   * Subsets in enumeration order: masks[s], bit j set = reference j free. Largest subsets
   * first (then larger masks first): the search stops at the first subset that satisfies
   * the KKT conditions exactly, and optima with most references active are the common case.
   */
  nSubsets: number;
  masks: Int32Array;
  /** Per subset, at subsetLayout(M, K) offsets: A, b, E, e, W, c (see makeLcfPlan). */
  sub: Float64Array;
  subStride: number;
  nonneg: boolean;
  sum1: boolean;
  /** Reciprocal condition number of the column-scaled design matrix. */
  rcond: number;
  warnings: string[];
}

/**
 * Offsets inside one subset's block of the plan:
 *  A (M x M) and b (M): theta = A z + b;  E (M x M) and e (M): reduced residual r = E z + e;
 *  W (K x M) and c (K): dual violation of excluded reference j, (g_j - nu) / ||X_j|| = W_j . z + c_j
 *  (rows of free references are zero and not used); mask: the subset's bit mask.
 */
export function subsetLayout(M: number, K: number): { A: number; b: number; E: number; e: number; W: number; c: number; mask: number; stride: number } {
  const A = 0, b = M * M, E = b + M, e = E + M * M, W = e + M, c = W + K * M, mask = c + K;
  return { A, b, E, e, W, c, mask, stride: mask + 1 };
}

/** Column names of the background terms, in order. */
export function backgroundTerms(bg: LcfBackground): string[] {
  return bg === 'none' ? [] : bg === 'const' ? ['const'] : ['const', 'slope'];
}

function describeColumn(plan: { names: string[]; K: number }, j: number): string {
  if (j < plan.K) return plan.names[j];
  return j === plan.K ? 'the constant background' : 'the linear background';
}

/** Index range [i0, i1) of energies within [a, b] (inclusive). */
export function windowRange(energies: Float64Array, window?: readonly [number, number]): { i0: number; i1: number } {
  if (!window) return { i0: 0, i1: energies.length };
  const [a, b] = window;
  let i0 = 0;
  while (i0 < energies.length && energies[i0] < a) i0++;
  let i1 = i0;
  while (i1 < energies.length && energies[i1] <= b) i1++;
  return { i0, i1 };
}

export function makeLcfPlan(refs: readonly LcfReference[], energies: Float64Array, options: LcfOptions): LcfPlan {
  const { mode, background } = options;
  if (!LCF_MODES.includes(mode)) throw new InputError('--mode', `expected one of ${LCF_MODES.join(', ')}, got '${String(mode)}'`);
  if (!LCF_BACKGROUNDS.includes(background)) {
    throw new InputError('--background', `expected one of ${LCF_BACKGROUNDS.join(', ')}, got '${String(background)}'`);
  }
  const K = refs.length;
  if (K < 1) throw new InputError('--ref', 'at least one reference is needed');
  if (K > LCF_MAX_REFS) {
    throw new InputError('--ref', `${K} references given; at most ${LCF_MAX_REFS} are supported (the exact constrained fit enumerates all 2^K subsets per pixel)`);
  }
  const names = refs.map((r) => r.name);
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) throw new InputError('--ref', `reference name '${n}' is used twice`);
    seen.add(n);
  }
  const nE = energies.length;
  for (const r of refs) {
    if (r.mu.length !== nE) throw new RangeError(`reference ${r.name}: ${r.mu.length} values for ${nE} energies`);
  }
  if (options.window) {
    const [a, b] = options.window;
    if (!(Number.isFinite(a) && Number.isFinite(b) && a < b)) throw new InputError('--window', `expected a,b with a < b (eV), got ${a},${b}`);
  }
  const { i0, i1 } = windowRange(energies, options.window);
  const nW = i1 - i0;
  const bgNames = backgroundTerms(background);
  const M = K + bgNames.length;
  if (nW <= M) {
    const w = options.window ? `the window ${options.window[0]}..${options.window[1]} eV holds` : 'the stack has';
    throw new InputError(options.window ? '--window' : 'energies', `${w} ${nW} energies; a fit of ${M} terms needs at least ${M + 1}`);
  }
  for (const r of refs) {
    for (let i = i0; i < i1; i++) {
      if (!Number.isFinite(r.mu[i])) {
        throw new InputError(r.name, `reference has no finite value at ${energies[i]} eV (inside the fit window)`);
      }
    }
  }
  const eLo = energies[i0];
  const eHi = energies[i1 - 1];
  const bgRefEnergy = (eLo + eHi) / 2;
  const bgHalfWidth = Math.max((eHi - eLo) / 2, 1e-9);

  // Design matrix over the window, then column scaling to unit norm.
  const X = new Float64Array(nW * M);
  for (let i = 0; i < nW; i++) {
    for (let j = 0; j < K; j++) X[i * M + j] = refs[j].mu[i0 + i];
    if (bgNames.length >= 1) X[i * M + K] = 1;
    if (bgNames.length === 2) X[i * M + K + 1] = (energies[i0 + i] - bgRefEnergy) / bgHalfWidth;
  }
  const d = new Float64Array(M);
  for (let j = 0; j < M; j++) {
    let s = 0;
    for (let i = 0; i < nW; i++) s += X[i * M + j] ** 2;
    if (!(s > 0)) throw new InputError('--ref', `reference ${describeColumn({ names, K }, j)} is zero everywhere in the fit window`);
    d[j] = 1 / Math.sqrt(s);
    for (let i = 0; i < nW; i++) X[i * M + j] *= d[j];
  }

  // Givens QR, row by row (the same sequence every pixel's spectrum goes through).
  const R = new Float64Array(M * M);
  const rot = new Float64Array(nW * M * 2);
  const row = new Float64Array(M);
  for (let i = 0; i < nW; i++) {
    for (let j = 0; j < M; j++) row[j] = X[i * M + j];
    for (let k = 0; k < M; k++) {
      const r = R[k * M + k];
      const a = row[k];
      let c = 1, s = 0;
      if (a !== 0) {
        const h = Math.hypot(r, a);
        c = r / h;
        s = a / h;
      }
      rot[(i * M + k) * 2] = c;
      rot[(i * M + k) * 2 + 1] = s;
      for (let j = k; j < M; j++) {
        const rj = R[k * M + j];
        R[k * M + j] = c * rj + s * row[j];
        row[j] = c * row[j] - s * rj;
      }
    }
  }

  // Linear dependence: singular values of R (those of the scaled X).
  const { sigma, V } = jacobiSvd(R, M);
  const smax = Math.max(...sigma);
  const rcond = smax > 0 ? Math.min(...sigma) / smax : 0;
  if (!(rcond >= LCF_DEPENDENT_RCOND)) {
    const involved = new Set<number>();
    for (let k = 0; k < M; k++) {
      if (sigma[k] >= LCF_DEPENDENT_RCOND * smax) continue;
      let vmax = 0;
      for (let j = 0; j < M; j++) vmax = Math.max(vmax, Math.abs(V[j * M + k]));
      for (let j = 0; j < M; j++) if (Math.abs(V[j * M + k]) >= 0.05 * vmax) involved.add(j);
    }
    const list = [...involved].sort((a, b) => a - b).map((j) => describeColumn({ names, K }, j));
    const bgNote = background === 'none' ? '' : ` (with --background ${background})`;
    throw new InputError(
      '--ref',
      `${list.join(', ')} are linearly dependent over the fit window${bgNote}: one is a combination of the others ` +
        `(smallest singular value ${rcond.toExponential(1)} of the largest, limit ${LCF_DEPENDENT_RCOND}); drop one of them`,
    );
  }
  const warnings: string[] = [];
  if (rcond < LCF_WARN_RCOND) {
    warnings.push(
      `the references are nearly dependent (reciprocal condition number ${rcond.toExponential(1)}): weights are sensitive to noise, ` +
        `and float32 arithmetic (the webgpu backend) keeps only about ${Math.max(0, 7.2 + Math.log10(rcond)).toFixed(0)} significant digits of them`,
    );
  }

  // R in user units (theta = D theta'), for the residual ||z - R theta||.
  const ru = new Float64Array(M * M);
  for (let i = 0; i < M; i++) for (let j = i; j < M; j++) ru[i * M + j] = R[i * M + j] / d[j];

  const nonneg = mode === 'nnls' || mode === 'nnls-sum1';
  const sum1 = mode === 'sum1' || mode === 'nnls-sum1';
  const fullMask = (1 << K) - 1;
  const popcount = (m: number) => { let c = 0; for (let x = m; x; x &= x - 1) c++; return c; };
  const masks = Int32Array.from(
    !nonneg ? [fullMask] : Array.from({ length: fullMask + 1 }, (_, i) => fullMask - i).filter((m) => mode === 'nnls' || m !== 0),
  ).sort((a, b) => popcount(b) - popcount(a) || b - a);
  const nSubsets = masks.length;
  const L = subsetLayout(M, K);
  const subStride = L.stride;
  const sub = new Float64Array(nSubsets * subStride);
  const Pb = new Float64Array(M * M + M);
  for (let s = 0; s < nSubsets; s++) {
    const mask = masks[s];
    const free: number[] = [];
    for (let j = 0; j < M; j++) if (j >= K || (mask >> j) & 1) free.push(j);
    subsetOperator(R, M, K, d, free, sum1, Pb);
    const blk = sub.subarray(s * subStride, (s + 1) * subStride);
    blk[L.mask] = mask; // exact in float32 (< 2^6)
    // theta = P z - h (sum_refs(P z) - 1) = A z + b.
    for (let i = 0; i < M; i++) {
      const h = sum1 ? Pb[M * M + i] : 0;
      for (let j = 0; j < M; j++) {
        let colSum = 0;
        for (let k = 0; k < K; k++) colSum += Pb[k * M + j];
        blk[L.A + i * M + j] = Pb[i * M + j] - h * colSum;
      }
      blk[L.b + i] = h;
    }
    // r = z - Ru theta = (I - Ru A) z - Ru b.
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < M; j++) {
        let acc = i === j ? 1 : 0;
        for (let k = i; k < M; k++) acc -= ru[i * M + k] * blk[L.A + k * M + j];
        blk[L.E + i * M + j] = acc;
      }
      let acc = 0;
      for (let k = i; k < M; k++) acc -= ru[i * M + k] * blk[L.b + k];
      blk[L.e + i] = acc;
    }
    // Every column free and no sum-to-one: A = Ru^{-1}, b = 0, so r = 0 exactly; the E just
    // computed holds only rounding (entries <= ~1e-15, adding ~(1e-15 |z|)^2 to rss). Zeros
    // make F exactly 0 (the unconstrained fit's residual is rho2 alone) and let the CPU
    // kernel leave F's terms out (lcf-wasm.ts); ls, and the first subset of nnls.
    if (free.length === M && !sum1) {
      blk.fill(0, L.E, L.E + M * M);
      blk.fill(0, L.e, L.e + M);
    }
    if (!nonneg) continue;
    // (g_j - nu) = u_j . r, u_j = Ru[:, j] - mean of Ru[:, k] over free references (sum1).
    const freeRefs = free.filter((j) => j < K);
    for (let j = 0; j < K; j++) {
      if ((mask >> j) & 1) continue;
      const u = new Float64Array(M);
      for (let i = 0; i < M; i++) {
        let mean = 0;
        if (sum1) for (const k of freeRefs) mean += ru[i * M + k] / freeRefs.length;
        u[i] = ru[i * M + j] - mean;
      }
      for (let col = 0; col < M; col++) {
        let acc = 0;
        for (let i = 0; i < M; i++) acc += u[i] * blk[L.E + i * M + col];
        blk[L.W + j * M + col] = d[j] * acc;
      }
      let acc = 0;
      for (let i = 0; i < M; i++) acc += u[i] * blk[L.e + i];
      blk[L.c + j] = d[j] * acc;
    }
  }

  return {
    mode, background, names, K, M, nE, i0, i1, nW, bgRefEnergy, bgHalfWidth,
    rot, ru, xs: X, rs: R, nSubsets, masks, sub, subStride, nonneg, sum1, rcond, warnings,
  };
}

/**
 * Fills out = [P (M x M) | h (M)] for the free columns F: P z is the least-squares solution
 * of min ||z - R_F theta'_F|| in user units; h (sum1 only) the correction direction of the
 * equality constraint sum_refs theta = 1, scaled so that theta = P z - h (sum_refs(P z) - 1).
 * Solved by Householder QR of R_F (n x f) in float64.
 */
function subsetOperator(R: Float64Array, M: number, K: number, d: Float64Array, free: number[], sum1: boolean, out: Float64Array): void {
  out.fill(0);
  const f = free.length;
  if (f === 0) return;
  // A = R[:, free], M x f; Householder QR: A = Q T, T f x f upper triangular.
  const A = new Float64Array(M * f);
  for (let i = 0; i < M; i++) for (let c = 0; c < f; c++) A[i * f + c] = R[i * M + free[c]];
  // Q^T applied to the identity gives the operator rows: theta' = T^-1 (Q^T)[:f] z.
  const Qt = new Float64Array(M * M);
  for (let i = 0; i < M; i++) Qt[i * M + i] = 1;
  for (let c = 0; c < f; c++) {
    let norm = 0;
    for (let i = c; i < M; i++) norm += A[i * f + c] ** 2;
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    const alpha = A[c * f + c] > 0 ? -norm : norm;
    const v = new Float64Array(M);
    for (let i = c; i < M; i++) v[i] = A[i * f + c];
    v[c] -= alpha;
    let vv = 0;
    for (let i = c; i < M; i++) vv += v[i] * v[i];
    if (vv === 0) continue;
    const apply = (mat: Float64Array, cols: number) => {
      for (let col = 0; col < cols; col++) {
        let dot = 0;
        for (let i = c; i < M; i++) dot += v[i] * mat[i * cols + col];
        const g = (2 * dot) / vv;
        for (let i = c; i < M; i++) mat[i * cols + col] -= g * v[i];
      }
    };
    apply(A, f);
    apply(Qt, M);
  }
  // Back substitution: T theta' = (Q^T z)[:f], for each unit z (columns of Qt[:f]).
  const Pf = new Float64Array(f * M); // theta'_F = Pf z
  for (let col = 0; col < M; col++) {
    for (let r = f - 1; r >= 0; r--) {
      let acc = Qt[r * M + col];
      for (let c = r + 1; c < f; c++) acc -= A[r * f + c] * Pf[c * M + col];
      Pf[r * M + col] = acc / A[r * f + r];
    }
  }
  for (let r = 0; r < f; r++) {
    const j = free[r];
    for (let col = 0; col < M; col++) out[j * M + col] = d[j] * Pf[r * M + col];
  }
  if (!sum1) return;
  // h = D G^-1 a' / (a'^T G^-1 a'), G = T^T T, a'_r = d_j for free references.
  const a = new Float64Array(f);
  for (let r = 0; r < f; r++) a[r] = free[r] < K ? d[free[r]] : 0;
  // Solve T^T u = a, then T x = u: x = G^-1 a.
  const u = new Float64Array(f);
  for (let r = 0; r < f; r++) {
    let acc = a[r];
    for (let c = 0; c < r; c++) acc -= A[c * f + r] * u[c];
    u[r] = acc / A[r * f + r];
  }
  const x = new Float64Array(f);
  for (let r = f - 1; r >= 0; r--) {
    let acc = u[r];
    for (let c = r + 1; c < f; c++) acc -= A[r * f + c] * x[c];
    x[r] = acc / A[r * f + r];
  }
  let den = 0;
  for (let r = 0; r < f; r++) den += a[r] * x[r];
  if (!(den > 0)) return; // no free reference: the subset cannot satisfy the constraint (never enumerated)
  for (let r = 0; r < f; r++) out[M * M + free[r]] = (d[free[r]] * x[r]) / den;
}

/**
 * One-sided Jacobi SVD of a small square matrix (row-major n x n): singular values and
 * right singular vectors (V, column k for sigma[k]). Accurate for small singular values,
 * which is what the dependence test needs.
 */
export function jacobiSvd(A0: Float64Array, n: number): { sigma: Float64Array; V: Float64Array } {
  const A = Float64Array.from(A0);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        let alpha = 0, beta = 0, gamma = 0;
        for (let i = 0; i < n; i++) {
          alpha += A[i * n + p] ** 2;
          beta += A[i * n + q] ** 2;
          gamma += A[i * n + p] * A[i * n + q];
        }
        if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
        off = Math.max(off, Math.abs(gamma) / Math.sqrt(alpha * beta));
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < n; i++) {
          const ap = A[i * n + p], aq = A[i * n + q];
          A[i * n + p] = c * ap - s * aq;
          A[i * n + q] = s * ap + c * aq;
          const vp = V[i * n + p], vq = V[i * n + q];
          V[i * n + p] = c * vp - s * vq;
          V[i * n + q] = s * vp + c * vq;
        }
      }
    }
    if (off <= 1e-15) break;
  }
  const sigma = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += A[i * n + k] ** 2;
    sigma[k] = Math.sqrt(s);
  }
  return { sigma, V };
}

/** Per-pixel status of the lcf kernel and step (the `status` map). */
export const LcfStatus = {
  OK: 0,
  /** A non-finite value (NaN: masked transmission, missing data) inside the fit window. */
  NO_DATA: 1,
  /** The weights do not sum to a positive total, so fractions are undefined (NaN). */
  NO_TOTAL: 2,
  /**
   * The total is not significantly above zero (total < mask-sigma x its standard error):
   * nothing of the references is there, fractions are noise (NaN); weights and total kept.
   */
  LOW_TOTAL: 3,
} as const;
export const LCF_STATUS_NAMES = ['ok', 'no_data', 'no_total', 'low_total'] as const;

/**
 * Rows of the kernel output ([row][pixel]): the M coefficients (references, then
 * background terms in user units: c0, and c1 per unit of the scaled abscissa), then
 * residual_rms, rfactor, status.
 */
export function lcfRows(M: number): { THETA0: number; RMS: number; RFACTOR: number; STATUS: number; ROWS: number } {
  return { THETA0: 0, RMS: M, RFACTOR: M + 1, STATUS: M + 2, ROWS: M + 3 };
}

/**
 * CPU twin of the lcf kernel. `cube` holds the window's energies only: [nW][P] (the caller
 * passes cube.subarray(i0 * P, i1 * P) of a full tile). Returns float64 rows, lcfRows(M).
 */
export function lcfCpu(plan: LcfPlan, cube: Float32Array, P: number): Float64Array {
  const { M, K, nW, rot } = plan;
  const rows = lcfRows(M);
  const out = new Float64Array(rows.ROWS * P);
  if (cube.length < nW * P) throw new RangeError(`lcfCpu: cube holds ${cube.length} values, need ${nW * P}`);
  // Streaming pass: energy outer, pixel inner (memory order), per-pixel state in z/rho2/sumsq.
  const z = new Float64Array(M * P);
  const rho2 = new Float64Array(P);
  const sumsq = new Float64Array(P);
  const bad = new Uint8Array(P);
  const cs = new Float64Array(2 * M);
  for (let e = 0; e < nW; e++) {
    for (let k = 0; k < 2 * M; k++) cs[k] = rot[e * 2 * M + k];
    const base = e * P;
    for (let p = 0; p < P; p++) {
      let t = cube[base + p];
      if (!Number.isFinite(t)) {
        bad[p] = 1;
        continue;
      }
      sumsq[p] += t * t;
      const zp = p * M;
      for (let k = 0; k < M; k++) {
        const c = cs[2 * k], s = cs[2 * k + 1];
        const zk = z[zp + k];
        z[zp + k] = c * zk + s * t;
        t = c * t - s * zk;
      }
      rho2[p] += t * t;
    }
  }
  const th = new Float64Array(M);
  const L = subsetLayout(M, K);
  for (let p = 0; p < P; p++) {
    if (bad[p]) lcfNoData(out, rows, P, p);
    else lcfSolvePixel(plan, L, z, p * M, rho2[p], sumsq[p], th, out, rows, P, p);
  }
  return out;
}

/** A pixel with a non-finite value in the window: every row NaN, status no_data. */
export function lcfNoData(out: Float64Array, rows: ReturnType<typeof lcfRows>, P: number, p: number): void {
  for (let k = 0; k < rows.STATUS; k++) out[k * P + p] = NaN;
  out[rows.STATUS * P + p] = LcfStatus.NO_DATA;
}

/**
 * One pixel's constrained problem from its projection z = Q^T y (z[zo .. zo + M)), the
 * unexplained part rho2 and ||y||^2: the subset search (exact NNLS / sum-to-one by KKT, see
 * the module header), then theta, residual_rms and rfactor into `out` (rows, column p).
 * The twin's search (z from the Givens rotations): every subset in order, largest first,
 * until the first exact KKT point. The CPU kernel (lcf-fast.ts, z from a projection table)
 * uses it for one-subset plans and as the fallback of its active-set search
 * (lcfSearchPixel), which finds the same KKT subset in a few steps; `th` is scratch of M
 * values.
 */
export function lcfSolvePixel(
  plan: LcfPlan, L: ReturnType<typeof subsetLayout>, z: Float64Array, zo: number, rho2: number, sumsq: number,
  th: Float64Array, out: Float64Array, rows: ReturnType<typeof lcfRows>, P: number, p: number,
): void {
  const { M, K, sub, subStride, nSubsets, masks, nonneg } = plan;
  let bestS = 0;
  let bestV = Infinity;
  for (let s = 0; s < nSubsets; s++) {
    const mask = masks[s];
    const off = s * subStride;
    // Primal feasibility of theta = A z + b.
    let ok = true;
    if (nonneg) {
      for (let i = 0; i < K; i++) {
        if (!((mask >> i) & 1)) continue;
        let acc = sub[off + L.b + i];
        for (let j = 0; j < M; j++) acc += sub[off + L.A + i * M + j] * z[zo + j];
        if (acc < 0) ok = false;
      }
    }
    if (!ok) continue;
    // Dual violation over the excluded references.
    let v = 0;
    for (let j = 0; j < K; j++) {
      if ((mask >> j) & 1) continue;
      let acc = sub[off + L.c + j];
      for (let k = 0; k < M; k++) acc += sub[off + L.W + j * M + k] * z[zo + k];
      if (acc > v) v = acc;
    }
    if (v < bestV) {
      bestV = v;
      bestS = s;
    }
    // v >= 0 always, so the first exact KKT point (v = 0) is also what the full search
    // would keep (ties go to the first): stopping here changes nothing but the time.
    if (bestV === 0) break;
  }
  lcfWriteSubset(plan, L, bestS, z, zo, rho2, sumsq, th, out, rows, P, p);
}

/**
 * Pixel p's outputs for subset s of the plan: theta = A_s z + b_s, the reduced residual
 * F = ||E_s z + e_s||^2, rss = rho2 + F, residual_rms, rfactor, status OK. The twin's
 * exhaustive search (lcfSolvePixel) and the CPU kernel's active-set search (lcf-fast.ts)
 * both end here, so a pixel for which both pick the same subset gets the same bytes.
 */
export function lcfWriteSubset(
  plan: LcfPlan, L: ReturnType<typeof subsetLayout>, s: number, z: Float64Array, zo: number, rho2: number, sumsq: number,
  th: Float64Array, out: Float64Array, rows: ReturnType<typeof lcfRows>, P: number, p: number,
): void {
  const { M, nW, sub, subStride } = plan;
  const off = s * subStride;
  for (let i = 0; i < M; i++) {
    let acc = sub[off + L.b + i];
    for (let j = 0; j < M; j++) acc += sub[off + L.A + i * M + j] * z[zo + j];
    th[i] = acc;
  }
  let bestF = 0;
  for (let i = 0; i < M; i++) {
    let acc = sub[off + L.e + i];
    for (let j = 0; j < M; j++) acc += sub[off + L.E + i * M + j] * z[zo + j];
    bestF += acc * acc;
  }
  const rss = rho2 + bestF;
  for (let k = 0; k < M; k++) out[(rows.THETA0 + k) * P + p] = th[k];
  out[rows.RMS * P + p] = Math.sqrt(Math.max(rss, 0) / nW);
  out[rows.RFACTOR * P + p] = sumsq > 0 ? rss / sumsq : NaN;
  out[rows.STATUS * P + p] = LcfStatus.OK;
}

/**
 * The model the LCF fit minimises over its window, per energy: sum_k w_k mu_k(E) + bg(E),
 * bg(E) = bg_const + bg_slope (E - bgRefEnergy) (the design matrix of makeLcfPlan, with its
 * column scaling undone). The report draws these from the weight and background maps.
 */
export function lcfCurves(
  refs: readonly LcfReference[], energies: ArrayLike<number>, weights: readonly number[],
  background: { const?: number; slope?: number; refEnergy: number },
): { contributions: Float64Array[]; background: Float64Array; total: Float64Array } {
  const nE = energies.length;
  const contributions = refs.map((r, k) => Float64Array.from({ length: nE }, (_, i) => weights[k] * r.mu[i]));
  const bg = Float64Array.from({ length: nE }, (_, i) => (background.const ?? 0) + (background.slope ?? 0) * (energies[i] - background.refEnergy));
  const total = Float64Array.from(bg);
  for (const c of contributions) for (let i = 0; i < nE; i++) total[i] += c[i];
  return { contributions, background: bg, total };
}
