/**
 * CPU twin of shaders/normalize.wgsl, in float64: per pixel, the pre-edge line and the
 * post-edge polynomial by least squares over the finite points of their windows, the edge
 * step at e0, the pre-edge noise and the status.
 *
 * Input: a tile of P pixels, energy-major (cube[i * P + p]). Output: rows [NORM_ROWS][P].
 */
import type { EdgePlan } from '../pipeline/edge-plan.js';
import { EdgeStatus, NormRow, NORM_ROWS, SINGULAR_REL } from '../kernels/layout.js';

/** The pre-edge line at x = E - e0 from a pixel's PRE_A, PRE_B (the formula the kernels use). */
export function preEdgeLine(plan: Pick<EdgePlan, 'pre'>, a: number, b: number, x: number): number {
  return a + b * (x - plan.pre.centre) / plan.pre.scale;
}

/** The post-edge polynomial at x = E - e0 from a pixel's POST_C0..C2 (c2 = 0 for a line). */
export function postEdgeCurve(plan: Pick<EdgePlan, 'post'>, c0: number, c1: number, c2: number, x: number): number {
  const v = (x - plan.post.centre) / plan.post.scale;
  return c0 + c1 * v + c2 * v * v;
}

export function normalizeCpu(plan: EdgePlan, cube: Float32Array, P: number): Float64Array {
  const out = new Float64Array(NORM_ROWS * P);
  const { x, pre, post, maskSigma } = plan;
  const deg = post.degree;
  for (let p = 0; p < P; p++) {
    // Pre-edge line: normal equations in u in [-1, 1].
    let s0 = 0, s1 = 0, s2 = 0, sy = 0, suy = 0;
    for (let i = pre.i0; i < pre.i1; i++) {
      const y = cube[i * P + p];
      if (!Number.isFinite(y)) continue;
      const u = (x[i] - pre.centre) / pre.scale;
      s0 += 1; s1 += u; s2 += u * u; sy += y; suy += u * y;
    }
    // Post-edge polynomial (degree 1 or 2), normal equations in v in [-1, 1].
    const m = new Float64Array(9);
    const r = new Float64Array(3);
    let nPost = 0;
    for (let i = post.i0; i < post.i1; i++) {
      const y = cube[i * P + p];
      if (!Number.isFinite(y)) continue;
      const v = (x[i] - post.centre) / post.scale;
      const b = [1, v, v * v];
      for (let a = 0; a <= deg; a++) {
        r[a] += b[a] * y;
        for (let c = 0; c <= deg; c++) m[a * 3 + c] += b[a] * b[c];
      }
      nPost++;
    }
    const det = s0 * s2 - s1 * s1;
    const coef = deg === 2 ? solve3(m, r) : solve2(m, r);
    const row = (k: number) => k * P + p;
    if (s0 < 3 || nPost < deg + 2 || !(det > SINGULAR_REL * s0 * s0) || coef === null) {
      out[row(NormRow.STATUS)] = EdgeStatus.NO_DATA;
      for (let k = 1; k < NORM_ROWS; k++) out[row(k)] = NaN;
      continue;
    }
    const a = (s2 * sy - s1 * suy) / det;
    const b = (s0 * suy - s1 * sy) / det;
    // Noise: standard deviation of the pre-edge residuals, n - 2 degrees of freedom.
    let rss = 0;
    for (let i = pre.i0; i < pre.i1; i++) {
      const y = cube[i * P + p];
      if (!Number.isFinite(y)) continue;
      const res = y - preEdgeLine(plan, a, b, x[i]);
      rss += res * res;
    }
    const noise = Math.sqrt(rss / (s0 - 2));
    const preAtE0 = preEdgeLine(plan, a, b, 0);
    const postAtE0 = postEdgeCurve(plan, coef[0], coef[1], coef[2], 0);
    const step = postAtE0 - preAtE0;
    out[row(NormRow.PRE_A)] = a;
    out[row(NormRow.PRE_B)] = b;
    out[row(NormRow.POST_C0)] = coef[0];
    out[row(NormRow.POST_C1)] = coef[1];
    out[row(NormRow.POST_C2)] = coef[2];
    out[row(NormRow.STEP)] = step;
    out[row(NormRow.NOISE)] = noise;
    out[row(NormRow.STATUS)] = step > maskSigma * noise ? EdgeStatus.OK : EdgeStatus.LOW_STEP;
  }
  return out;
}

/** 2x2 symmetric solve (top-left block of the 3x3 row-major m); null when singular. */
function solve2(m: Float64Array, r: Float64Array): [number, number, number] | null {
  const det = m[0] * m[4] - m[1] * m[3];
  if (!(Math.abs(det) > SINGULAR_REL * m[0] * m[0])) return null;
  return [(m[4] * r[0] - m[1] * r[1]) / det, (m[0] * r[1] - m[3] * r[0]) / det, 0];
}

/** 3x3 symmetric positive-definite solve by Cholesky; null when not positive definite. */
function solve3(m: Float64Array, r: Float64Array): [number, number, number] | null {
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
