/**
 * CPU twin of shaders/normalize.wgsl, in float64. Per pixel, following xraylarch 0.9.58
 * `pre_edge` (larch/xafs/pre_edge.py `preedge`) as each spectrum would be normalised on its
 * own:
 *  1. its own e0: the maximum of the smoothed derivative of mu inside the edge window,
 *     refined by a parabola (e0_deriv), moved to the nearest grid energy (larch's
 *     index_nearest); the plan's nominal e0 when the pixel has no finite derivative there;
 *  2. its windows measured from that energy with larch's point rules (larchWindows in
 *     src/pipeline/edge-plan.ts: from the point at or below the start up to, not including,
 *     the point nearest the end); the post-edge degree is the plan's (one per stack, so
 *     neighbouring pixels never switch polynomial);
 *  3. the pre-edge line and the post-edge polynomial by least squares over the finite points
 *     of the windows (a non-finite point is dropped for this pixel only), the edge step
 *     post - pre at the pixel's own e0, the pre-edge noise (n - 2 degrees of freedom) and the
 *     status.
 * The pre-edge line and the post-edge difference D = post - pre are written in the plan's
 * basis variables (u, v; see NormRow), so every consumer evaluates them the same way
 * whatever the pixel's windows were. As in larch, D is fitted to mu - pre (so with nnorm 0
 * the post-edge line runs parallel to the pre-edge line).
 *
 * Input: a tile of P pixels, energy-major (cube[i * P + p]). Output: rows [NORM_ROWS][P].
 * Optional `margins.deriv`: the relative gap between the best and second-best derivative,
 * so tests may excuse GPU/CPU differences only at near-ties.
 */
import type { EdgePlan } from '../pipeline/edge-plan.js';
import { parabolaVertex } from '../pipeline/edge-plan.js';
import { EdgeStatus, NormRow, NORM_ROWS, SINGULAR_REL, STEP_MIN_REL } from '../kernels/layout.js';

/** larch's index_of on x (relative energies): the last index at or below v, 0 below the grid. */
function indexOf(x: Float64Array, v: number): number {
  if (!(v >= x[0])) return 0;
  let i = 0;
  while (i + 1 < x.length && x[i + 1] <= v) i++;
  return i;
}

/** larch's index_nearest: the first index of the smallest |x - v|. */
function indexNearest(x: Float64Array, v: number): number {
  let k = 0;
  for (let i = 1; i < x.length; i++) if (Math.abs(x[i] - v) < Math.abs(x[k] - v)) k = i;
  return k;
}

/** [i0, i1) of a window [lo, hi] measured from x0, larch's rules (widened to 2 points). */
export function window(x: Float64Array, x0: number, lo: number, hi: number): [number, number] {
  const i0 = indexOf(x, lo + x0);
  let i1 = indexNearest(x, hi + x0);
  if (i1 - i0 < 2) i1 = Math.min(x.length, i0 + 2);
  return [i0, i1];
}

/**
 * The pixel's own e0 (relative to plan.e0): maximum of the derivative of y (central
 * differences on the real grid, moving average over 2 smoothHalf + 1 points) inside the
 * edge window, refined by a parabola. NaN when there is no finite derivative.
 */
export function derivativeMax(plan: EdgePlan, y: (i: number) => number, margin?: { value: number }): { x: number; i: number } {
  const { x, nE, smoothHalf } = plan;
  const w = 2 * smoothHalf + 1;
  const d = (i: number) => (i >= 1 && i <= nE - 2 ? (y(i + 1) - y(i - 1)) / (x[i + 1] - x[i - 1]) : NaN);
  const ds = (i: number) => {
    let acc = 0;
    for (let j = -smoothHalf; j <= smoothHalf; j++) acc += d(i + j);
    return acc / w;
  };
  let best = -1, bestV = -Infinity, secondV = -Infinity;
  for (let i = plan.edge.i0; i < plan.edge.i1; i++) {
    const v = ds(i);
    if (!Number.isFinite(v)) continue;
    if (v > bestV) { secondV = bestV; bestV = v; best = i; } else if (v > secondV) secondV = v;
  }
  if (best < 0) return { x: NaN, i: -1 };
  if (margin) margin.value = (bestV - secondV) / Math.abs(bestV);
  let xd = x[best];
  if (best > plan.edge.i0 && best < plan.edge.i1 - 1) {
    const r = parabolaVertex(x[best - 1] - x[best], x[best + 1] - x[best], ds(best - 1), bestV, ds(best + 1));
    if (Number.isFinite(r.t)) xd = x[best] + r.t;
  }
  return { x: xd, i: best };
}

/** A pixel's pre- and post-edge windows [i0, i1) measured from its own e0 x0 (larch's rules). */
export function pixelWindows(plan: EdgePlan, x0: number): { pre: [number, number]; post: [number, number] } {
  const { x, nE, larch } = plan;
  const pre = window(x, x0, Math.max(larch.pre1, x[0] - x0), larch.pre2);
  let lo = larch.norm1, hi = Math.min(larch.norm2, x[nE - 1] - x0);
  if (lo > hi) [lo, hi] = [hi, lo];
  return { pre, post: window(x, x0, lo, hi) };
}

/** The pre-edge line at x = E - plan.e0 from a pixel's PRE_A, PRE_B (the plan's basis, see NormRow). */
export function preEdgeLine(plan: Pick<EdgePlan, 'pre'>, a: number, b: number, x: number): number {
  return a + (b * (x - plan.pre.centre)) / plan.pre.scale;
}

/** post - pre at x = E - plan.e0 from a pixel's POST_C0..C2 (the plan's basis, see NormRow). */
export function postMinusPre(plan: Pick<EdgePlan, 'post'>, c0: number, c1: number, c2: number, x: number): number {
  const v = (x - plan.post.centre) / plan.post.scale;
  return c0 + c1 * v + c2 * v * v;
}

export function normalizeCpu(plan: EdgePlan, cube: Float32Array | Float64Array, P: number, margins?: { deriv: Float64Array }): Float64Array {
  const out = new Float64Array(NORM_ROWS * P);
  const { x, pre, post, maskSigma, nE, larch } = plan;
  const deg = post.degree;
  const margin = { value: Infinity };
  for (let p = 0; p < P; p++) {
    const row = (k: number) => k * P + p;
    const y = (i: number) => cube[i * P + p];

    // 1. Own e0.
    margin.value = Infinity;
    const dm = derivativeMax(plan, y, margin);
    if (margins) margins.deriv[p] = margin.value;
    let ie0 = larch.ie0;
    if (Number.isFinite(dm.x) && !larch.fixed) {
      const k = dm.i;
      ie0 = k;
      if (k > 0 && Math.abs(x[k - 1] - dm.x) <= Math.abs(x[k] - dm.x)) ie0 = k - 1;
      if (k + 1 < nE && Math.abs(x[k + 1] - dm.x) < Math.abs(x[ie0] - dm.x)) ie0 = k + 1;
    }
    const x0 = x[ie0];

    // 2. Windows from the own e0.
    const { pre: [a0, a1], post: [b0, b1] } = pixelWindows(plan, x0);

    // 3. Pre-edge line in the pixel's basis u' in [-1, 1].
    const pc = (x[a0] + x[a1 - 1]) / 2, ps = Math.max((x[a1 - 1] - x[a0]) / 2, 1e-6);
    let s0 = 0, s1 = 0, s2 = 0, sy = 0, suy = 0;
    for (let i = a0; i < a1; i++) {
      const v = y(i);
      if (!Number.isFinite(v)) continue;
      const u = (x[i] - pc) / ps;
      s0 += 1; s1 += u; s2 += u * u; sy += v; suy += u * v;
    }
    const det = s0 * s2 - s1 * s1;
    if (s0 < 3 || !(det > SINGULAR_REL * s0 * s0)) {
      noData(out, P, p);
      continue;
    }
    const la = (s2 * sy - s1 * suy) / det;
    const lb = (s0 * suy - s1 * sy) / det;
    const preAt = (xx: number) => la + (lb * (xx - pc)) / ps;
    // Post-edge: a polynomial D of mu - pre (larch's presub), in the pixel's basis t in [-1, 1].
    const qc = (x[b0] + x[b1 - 1]) / 2, qs = Math.max((x[b1 - 1] - x[b0]) / 2, 1e-6);
    const m = new Float64Array(9);
    const r = new Float64Array(3);
    let nPost = 0;
    for (let i = b0; i < b1; i++) {
      const v = y(i);
      if (!Number.isFinite(v)) continue;
      const d = v - preAt(x[i]);
      const t = (x[i] - qc) / qs;
      const b = [1, t, t * t];
      for (let a = 0; a <= deg; a++) {
        r[a] += b[a] * d;
        for (let c = 0; c <= deg; c++) m[a * 3 + c] += b[a] * b[c];
      }
      nPost++;
    }
    const coef = deg === 2 ? solve3(m, r) : deg === 1 ? solve2(m, r) : solve1(m, r);
    if (nPost < deg + 1 || coef === null) {
      noData(out, P, p);
      continue;
    }
    let rss = 0;
    for (let i = a0; i < a1; i++) {
      const v = y(i);
      if (!Number.isFinite(v)) continue;
      const res = v - preAt(x[i]);
      rss += res * res;
    }
    const noise = Math.sqrt(rss / (s0 - 2));
    const t0 = (x0 - qc) / qs;
    const step = coef[0] + coef[1] * t0 + coef[2] * t0 * t0;

    // Rewrite both in the plan's bases: u = (x - pre.centre) / pre.scale, v likewise.
    out[row(NormRow.PRE_A)] = preAt(pre.centre);
    out[row(NormRow.PRE_B)] = (lb * pre.scale) / ps;
    const [c0, c1, c2] = rebase(coef, post.centre, post.scale, qc, qs);
    out[row(NormRow.POST_C0)] = c0;
    out[row(NormRow.POST_C1)] = c1;
    out[row(NormRow.POST_C2)] = c2;
    out[row(NormRow.STEP)] = step;
    out[row(NormRow.NOISE)] = noise;
    out[row(NormRow.E0_DERIV)] = dm.x;
    out[row(NormRow.E0_OWN)] = x0;
    const ok = step > maskSigma * noise && step > STEP_MIN_REL * Math.abs(preAt(x0));
    out[row(NormRow.STATUS)] = ok ? EdgeStatus.OK : EdgeStatus.LOW_STEP;
  }
  return out;
}

/**
 * c0 + c1 t + c2 t^2 with t = (x - qc) / qs, rewritten in v = (x - C) / S:
 * t = alpha v + beta with alpha = S / qs, beta = (C - qc) / qs.
 */
function noData(out: Float64Array, P: number, p: number): void {
  out[NormRow.STATUS * P + p] = EdgeStatus.NO_DATA;
  for (let k = 1; k < NORM_ROWS; k++) out[k * P + p] = NaN;
}

export function rebase(c: [number, number, number], C: number, S: number, qc: number, qs: number): [number, number, number] {
  const alpha = S / qs, beta = (C - qc) / qs;
  return [c[0] + c[1] * beta + c[2] * beta * beta, (c[1] + 2 * c[2] * beta) * alpha, c[2] * alpha * alpha];
}

/** 1x1 solve: the mean; null without points. */
export function solve1(m: Float64Array, r: Float64Array): [number, number, number] | null {
  return m[0] > 0 ? [r[0] / m[0], 0, 0] : null;
}

/** 2x2 symmetric solve (top-left block of the 3x3 row-major m); null when singular. */
export function solve2(m: Float64Array, r: Float64Array): [number, number, number] | null {
  const det = m[0] * m[4] - m[1] * m[3];
  if (!(Math.abs(det) > SINGULAR_REL * m[0] * m[0])) return null;
  return [(m[4] * r[0] - m[1] * r[1]) / det, (m[0] * r[1] - m[3] * r[0]) / det, 0];
}

/** 3x3 symmetric positive-definite solve by Cholesky; null when not positive definite. */
export function solve3(m: Float64Array, r: Float64Array): [number, number, number] | null {
  const l00 = Math.sqrt(m[0]);
  if (!(l00 > 0)) return null;
  const l10 = m[3] / l00;
  const l20 = m[6] / l00;
  const d1 = m[4] - l10 * l10;
  if (!(d1 > SINGULAR_REL * m[0])) return null;
  const l11 = Math.sqrt(d1);
  const l21 = (m[7] - l20 * l10) / l11;
  const d2 = m[8] - l20 * l20 - l21 * l21;
  if (!(d2 > SINGULAR_REL * m[0])) return null;
  const l22 = Math.sqrt(d2);
  const z0 = r[0] / l00;
  const z1 = (r[1] - l10 * z0) / l11;
  const z2 = (r[2] - l20 * z0 - l21 * z1) / l22;
  const c2 = z2 / l22;
  const c1 = (z1 - l21 * c2) / l11;
  const c0 = (z0 - l10 * c1 - l20 * c2) / l00;
  return [c0, c1, c2];
}

/**
 * Pixel p's normalised spectrum from the normalize rows, as larch's pre_edge gives it:
 * norm = (mu - pre) / step; with `flatten`, larch's `flat`: above the pixel's own e0 the
 * post-edge curve's departure from a constant is removed, flat = norm - (D(E) - D(e0)) / step
 * with D = post - pre (larch fits a polynomial of the same degree to norm over the post-edge
 * window, which is D / step exactly). Non-finite points stay NaN; a pixel without a
 * normalisation (status NO_DATA) is all NaN.
 */
export function normalizedSpectrum(plan: EdgePlan, cube: Float32Array | Float64Array, P: number, norm: ArrayLike<number>, p: number, flatten: boolean, out = new Float64Array(plan.nE)): Float64Array {
  const { x, pre, post } = plan;
  const a = norm[NormRow.PRE_A * P + p], b = norm[NormRow.PRE_B * P + p];
  const c0 = norm[NormRow.POST_C0 * P + p], c1 = norm[NormRow.POST_C1 * P + p], c2 = norm[NormRow.POST_C2 * P + p];
  const step = norm[NormRow.STEP * P + p];
  const x0 = norm[NormRow.E0_OWN * P + p];
  for (let i = 0; i < plan.nE; i++) {
    let v = (cube[i * P + p] - (a + (b * (x[i] - pre.centre)) / pre.scale)) / step;
    if (flatten && x[i] >= x0) {
      const t = (x[i] - post.centre) / post.scale;
      v -= (c0 + c1 * t + c2 * t * t) / step - 1;
    }
    out[i] = v;
  }
  return out;
}

/** One spectrum normalised by larch's conventions (references, region spectra). */
export interface NormalizedSpectrum {
  /** The grid energy the step and windows were taken from (eV). */
  e0: number;
  step: number;
  degree: 0 | 1 | 2;
  norm: Float64Array;
  flat: Float64Array;
}

/**
 * Normalises one spectrum exactly as a pixel: `plan` from makeEdgePlan on its own energies
 * (its nominal e0 only anchors the derivative search and stands in where no derivative
 * maximum is found). Returns null when the spectrum cannot be normalised (too few finite
 * points in a window).
 */
export function normalizeOne(plan: EdgePlan, mu: ArrayLike<number>): NormalizedSpectrum | null {
  const cube = Float64Array.from(mu);
  const rows = normalizeCpu(plan, cube, 1);
  if (rows[NormRow.STATUS] === EdgeStatus.NO_DATA) return null;
  return {
    e0: plan.e0 + rows[NormRow.E0_OWN],
    step: rows[NormRow.STEP],
    degree: plan.post.degree,
    norm: normalizedSpectrum(plan, cube, 1, rows, 0, false),
    flat: normalizedSpectrum(plan, cube, 1, rows, 0, true),
  };
}
