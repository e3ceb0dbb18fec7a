/**
 * The CPU backend's normalize + edge kernel: one fused sweep per pixel over the float32 tile
 * (read directly, no float64 copy of the cube), writing the float32 rows of normalize and
 * edge (src/kernels/layout.ts) without float64 intermediates. It follows the twins
 * (normalizeCpu in normalize.ts, edgeCpu in edge.ts: Athena/larch pre_edge conventions, see
 * there) operation for operation and in the same order, so its rows are bit-identical to
 * Float32Array.from(twin rows) (test/kernels/edge.test.ts checks this); what changes is only
 * the machine work:
 *  - everything that depends on the grid alone is tabulated once per plan: for every grid
 *    index a pixel's own e0 can take, the larch windows [a0, a1), [b0, b1), their bases
 *    (pc, ps, qc, qs) and the basis values u, t of every window point; the central-difference
 *    denominators; the plan-basis offsets (x - pre.centre);
 *  - the smoothed derivative is formed from one array of central differences per pixel
 *    (each difference computed once, not once per smoothing window);
 *  - sums are scalars in registers (no per-point arrays, no closures per pixel); the twin's
 *    post-edge sums that add the same values (m[1] and m[3], m[2], m[4] and m[6], m[5] and
 *    m[7]) are one running sum each;
 *  - with WebAssembly SIMD, each block's gather and the derivative search (the same energy
 *    indices for every pixel) run in edge-wasm.ts, two pixels per vector, same operations;
 *  - the white-line window on an increasing grid is an index range found by bisection.
 * Arithmetic is float64 throughout, as in the twins.
 */
import type { EdgePlan } from '../pipeline/edge-plan.js';
import { parabolaVertex } from '../pipeline/edge-plan.js';
import { EdgeRow, EdgeStatus, EDGE_ROWS, NormRow, NORM_ROWS, SINGULAR_REL, STEP_MIN_REL } from '../kernels/layout.js';
import { rebase, solve1, solve2, solve3, window } from './normalize.js';
import { EDGE_WASM_BLOCK, edgeWasm, edgeWasmAvailable } from './edge-wasm.js';

/** Per-plan tables (see the module header). */
interface Tables {
  /** Per own-e0 index k: a0, a1, b0, b1. */
  win: Int32Array;
  /** Per k: pc, ps, qc, qs. */
  basis: Float64Array;
  /** u[k * nE + i] = (x[i] - pc) / ps, t[k * nE + i] = (x[i] - qc) / qs. */
  u: Float64Array;
  t: Float64Array;
  /** x[i + 1] - x[i - 1]. */
  dx: Float64Array;
  /** x[i] - pre.centre. */
  xc: Float64Array;
  /** max |x| (the crossing search's slack). */
  xAbsMax: number;
  /** xc[i] / pre.scale and max |xs| (the white-line screen). */
  xs: Float64Array;
  xsAbsMax: number;
  /** x strictly increasing (then the white-line search stops past its window). */
  increasing: boolean;
}

/** White-line screen tolerance relative to the pixel's scale (see edgeTileFused): ~500x the ~8 eps rounding bound. */
export const EDGE_SCREEN_REL = 1e-12;

/** Rounding slack of the crossing search's distance bound, relative to |anchor| + max|x| (a crossing computed in [x[i], x[i+1]] can land a few ulps outside it). */
export const XCROSS_SLACK = 1e-12;

/** Pixels per gathered block (see edgeTileFused). */
export const EDGE_BLOCK = 32;

const tableCache = new WeakMap<EdgePlan, Tables>();

function tables(plan: EdgePlan): Tables {
  let T = tableCache.get(plan);
  if (T) return T;
  const { x, nE, larch } = plan;
  const win = new Int32Array(4 * nE);
  const basis = new Float64Array(4 * nE);
  const u = new Float64Array(nE * nE);
  const t = new Float64Array(nE * nE);
  for (let k = 0; k < nE; k++) {
    const x0 = x[k];
    const [a0, a1] = window(x, x0, Math.max(larch.pre1, x[0] - x0), larch.pre2);
    let lo = larch.norm1, hi = Math.min(larch.norm2, x[nE - 1] - x0);
    if (lo > hi) [lo, hi] = [hi, lo];
    const [b0, b1] = window(x, x0, lo, hi);
    const pc = (x[a0] + x[a1 - 1]) / 2, ps = Math.max((x[a1 - 1] - x[a0]) / 2, 1e-6);
    const qc = (x[b0] + x[b1 - 1]) / 2, qs = Math.max((x[b1 - 1] - x[b0]) / 2, 1e-6);
    win.set([a0, a1, b0, b1], 4 * k);
    basis.set([pc, ps, qc, qs], 4 * k);
    for (let i = 0; i < nE; i++) {
      u[k * nE + i] = (x[i] - pc) / ps;
      t[k * nE + i] = (x[i] - qc) / qs;
    }
  }
  const dx = new Float64Array(nE);
  for (let i = 1; i <= nE - 2; i++) dx[i] = x[i + 1] - x[i - 1];
  const xc = x.map((v) => v - plan.pre.centre);
  const xAbsMax = x.reduce((a: number, v: number) => Math.max(a, Math.abs(v)), 0);
  let increasing = true;
  for (let i = 1; i < nE; i++) if (!(x[i] > x[i - 1])) increasing = false;
  const xs = xc.map((v) => v / plan.pre.scale);
  const xsAbsMax = xs.reduce((a: number, v: number) => Math.max(a, Math.abs(v)), 0);
  T = { win, basis, u, t, dx, xc, xAbsMax, xs, xsAbsMax, increasing };
  tableCache.set(plan, T);
  return T;
}

/** normalize + edge over one tile: float32 rows [NORM_ROWS][P] and [EDGE_ROWS][P]. */
export function edgeTileFused(plan: EdgePlan, cube: Float32Array, P: number): { norm: Float32Array; edge: Float32Array } {
  const { x, nE, pre, post, maskSigma, larch, smoothHalf } = plan;
  const deg = post.degree;
  const T = tables(plan);
  const { dx: Tdx, xc: Txc, xs: Txs, xsAbsMax, u: Tu, t: Tt, win: Twin, basis: Tbasis, xAbsMax, increasing } = T;
  const norm = new Float32Array(NORM_ROWS * P);
  const edge = new Float32Array(EDGE_ROWS * P).fill(NaN);
  const w = 2 * smoothHalf + 1;
  const ei0 = plan.edge.i0, ei1 = plan.edge.i1;
  // Central differences for i in [lo, hi) (NaN outside 1..nE-2, as in the twin).
  const dLo = ei0 - smoothHalf - 1, dHi = ei1 + smoothHalf + 1;
  const dArr = new Float64Array(Math.max(0, dHi - dLo));
  const dsArr = new Float64Array(nE);
  const m = new Float64Array(9);
  const aArr = new Float64Array(nE);
  const r = new Float64Array(3);
  const noData = (p: number) => {
    norm[NormRow.STATUS * P + p] = EdgeStatus.NO_DATA;
    for (let k = 1; k < NORM_ROWS; k++) norm[k * P + p] = NaN;
  };
  // Pixels are taken in blocks of EDGE_BLOCK: the block's spectra are first gathered from the
  // energy-major tile (nE short runs of contiguous float32, read in memory order) into a
  // pixel-major block y[j * nE + i], so every per-pixel pass below walks contiguous memory
  // instead of striding P floats per energy (a TLB miss and a new stream per energy).
  // With WebAssembly SIMD (edge-wasm.ts) the gather and the derivative search of each block
  // run there (the same operations, so the same bits); dsArr then holds only the two values
  // the parabola needs, recomputed here by the same expressions.
  const W = edgeWasmAvailable ? edgeWasm(plan) : null;
  const B = W ? EDGE_WASM_BLOCK : EDGE_BLOCK;
  const y = W ? W.y : new Float32Array(B * nE);
  const smoothed = (yo: number, i: number): number => {
    let acc = 0;
    for (let j = -smoothHalf; j <= smoothHalf; j++) {
      const k = i + j;
      acc += k >= 1 && k <= nE - 2 ? (y[yo + k + 1] - y[yo + k - 1]) / Tdx[k] : NaN;
    }
    return acc / w;
  };
  // n(i) = (mu - pre) / step (edgeCpu's expression), and the 0.5 crossing in interval i (NaN if none).
  const sc = pre.scale;
  const niAt = (yo: number, i: number, preA: number, preB: number, step: number): number => (y[yo + i] - (preA + (preB * Txc[i]) / sc)) / step;
  const crossAt = (yo: number, i: number, preA: number, preB: number, step: number): number => {
    const nPrev = niAt(yo, i, preA, preB, step), nNext = niAt(yo, i + 1, preA, preB, step);
    return nPrev < 0.5 && nNext >= 0.5 ? x[i] + ((0.5 - nPrev) * (x[i + 1] - x[i])) / (nNext - nPrev) : NaN;
  };
  for (let p0 = 0; p0 < P; p0 += B) {
   const nb = Math.min(B, P - p0);
   if (W) W.run(cube, P, p0, nb);
   else {
     for (let i = 0; i < nE; i++) {
       const src = i * P + p0;
       for (let j = 0; j < nb; j++) y[j * nE + i] = cube[src + j];
     }
   }
   for (let j = 0; j < nb; j++) {
    const p = p0 + j;
    const yo = j * nE;
    // 1. Own e0: smoothed derivative maximum in the edge window.
    let best = -1, bestV = -Infinity;
    if (W) {
      best = W.best[j];
      bestV = W.bestV[j];
      if (best > ei0 && best < ei1 - 1) {
        dsArr[best - 1] = smoothed(yo, best - 1);
        dsArr[best + 1] = smoothed(yo, best + 1);
      }
    } else {
      for (let i = dLo; i < dHi; i++) {
        dArr[i - dLo] = i >= 1 && i <= nE - 2 ? (y[yo + i + 1] - y[yo + i - 1]) / Tdx[i] : NaN;
      }
      for (let i = ei0; i < ei1; i++) {
        let acc = 0;
        for (let j = -smoothHalf; j <= smoothHalf; j++) acc += dArr[i + j - dLo];
        const v = acc / w;
        dsArr[i] = v;
        if (!Number.isFinite(v)) continue;
        if (v > bestV) { bestV = v; best = i; }
      }
    }
    let xd = NaN;
    if (best >= 0) {
      xd = x[best];
      if (best > ei0 && best < ei1 - 1) {
        const rv = parabolaVertex(x[best - 1] - x[best], x[best + 1] - x[best], dsArr[best - 1], bestV, dsArr[best + 1]);
        if (Number.isFinite(rv.t)) xd = x[best] + rv.t;
      }
    }
    let ie0 = larch.ie0;
    if (Number.isFinite(xd) && !larch.fixed) {
      const k = best;
      ie0 = k;
      if (k > 0 && Math.abs(x[k - 1] - xd) <= Math.abs(x[k] - xd)) ie0 = k - 1;
      if (k + 1 < nE && Math.abs(x[k + 1] - xd) < Math.abs(x[ie0] - xd)) ie0 = k + 1;
    }
    const x0 = x[ie0];

    // 2.-3. Windows from the own e0 (tabulated); the pre-edge line.
    const a0 = Twin[4 * ie0], a1 = Twin[4 * ie0 + 1], b0 = Twin[4 * ie0 + 2], b1 = Twin[4 * ie0 + 3];
    const pc = Tbasis[4 * ie0], ps = Tbasis[4 * ie0 + 1], qc = Tbasis[4 * ie0 + 2], qs = Tbasis[4 * ie0 + 3];
    const uo = ie0 * nE;
    let s0 = 0, s1 = 0, s2 = 0, sy = 0, suy = 0;
    for (let i = a0; i < a1; i++) {
      const v = y[yo + i];
      if (!Number.isFinite(v)) continue;
      const u = Tu[uo + i];
      s0 += 1; s1 += u; s2 += u * u; sy += v; suy += u * v;
    }
    const det = s0 * s2 - s1 * s1;
    if (s0 < 3 || !(det > SINGULAR_REL * s0 * s0)) {
      noData(p);
      continue;
    }
    const la = (s2 * sy - s1 * suy) / det;
    const lb = (s0 * suy - s1 * sy) / det;
    // Post-edge polynomial of mu - pre; products formed as the twin forms b[a] * b[c]. The
    // twin's m[3] (t * 1), m[2] and m[6] (1 * tt), m[7] (tt * t) add the same values in the
    // same order as m[1], m[4] and m[5]: one running sum each, in locals.
    let m0 = 0, m1 = 0, m4 = 0, m5 = 0, m8 = 0, r0 = 0, r1 = 0, r2 = 0;
    let nPost = 0;
    for (let i = b0; i < b1; i++) {
      const v = y[yo + i];
      if (!Number.isFinite(v)) continue;
      const d = v - (la + (lb * (x[i] - pc)) / ps);
      const t = Tt[uo + i];
      const tt = t * t;
      r0 += 1 * d;
      m0 += 1 * 1;
      if (deg >= 1) {
        m1 += 1 * t;
        r1 += t * d;
        m4 += t * t;
      }
      if (deg >= 2) {
        m5 += t * tt;
        r2 += tt * d;
        m8 += tt * tt;
      }
      nPost++;
    }
    m[0] = m0; m[1] = m1; m[3] = m1; m[4] = m4; r[0] = r0; r[1] = r1;
    m[2] = deg >= 2 ? m4 : 0; m[6] = m[2]; m[5] = m5; m[7] = m5; m[8] = m8; r[2] = r2;
    const coef = deg === 2 ? solve3(m, r) : deg === 1 ? solve2(m, r) : solve1(m, r);
    if (nPost < deg + 1 || coef === null) {
      noData(p);
      continue;
    }
    let rss = 0;
    for (let i = a0; i < a1; i++) {
      const v = y[yo + i];
      if (!Number.isFinite(v)) continue;
      const res = v - (la + (lb * (x[i] - pc)) / ps);
      rss += res * res;
    }
    const noise = Math.sqrt(rss / (s0 - 2));
    const t0 = (x0 - qc) / qs;
    const step = coef[0] + coef[1] * t0 + coef[2] * t0 * t0;
    const preA = la + (lb * (pre.centre - pc)) / ps;
    const preB = (lb * pre.scale) / ps;
    const [c0, c1, c2] = rebase(coef, post.centre, post.scale, qc, qs);
    const ok = step > maskSigma * noise && step > STEP_MIN_REL * Math.abs(la + (lb * (x0 - pc)) / ps);
    norm[NormRow.PRE_A * P + p] = preA;
    norm[NormRow.PRE_B * P + p] = preB;
    norm[NormRow.POST_C0 * P + p] = c0;
    norm[NormRow.POST_C1 * P + p] = c1;
    norm[NormRow.POST_C2 * P + p] = c2;
    norm[NormRow.STEP * P + p] = step;
    norm[NormRow.NOISE * P + p] = noise;
    norm[NormRow.E0_DERIV * P + p] = xd;
    norm[NormRow.E0_OWN * P + p] = x0;
    if (!ok) {
      norm[NormRow.STATUS * P + p] = EdgeStatus.LOW_STEP;
      continue;
    }
    norm[NormRow.STATUS * P + p] = EdgeStatus.OK;

    // Edge (edgeCpu) on n(i) = (mu - pre) / step with the float64 pre line and step.
    const ni = (i: number) => niAt(yo, i, preA, preB, step);
    if (Number.isFinite(xd)) edge[EdgeRow.E0_DERIV * P + p] = plan.e0 + xd;
    const anchor = Number.isFinite(xd) ? xd : 0;
    // The 0.5 crossing nearest the anchor (ties: the lowest index, as the twin's forward
    // scan keeps the first). On an increasing grid the intervals are visited outward from the
    // anchor and the search stops once every unvisited interval lies farther away than the
    // best crossing found (a crossing in [x[i], x[i+1]] is at least that interval's distance
    // from the anchor, less XCROSS_SLACK for rounding): the twin's choice, its bits (same
    // expressions), at a few intervals' cost instead of all nE. Otherwise: the twin's scan.
    let xHalf = NaN, bestDist = Infinity, iHalf = 0;
    const cross = (i: number): void => {
      const xcross = crossAt(yo, i, preA, preB, step);
      if (xcross === xcross) { // not NaN: a crossing in interval i
        const dist = Math.abs(xcross - anchor);
        if (dist < bestDist || (dist === bestDist && i < iHalf)) { bestDist = dist; xHalf = xcross; iHalf = i; }
      }
    };
    if (increasing) {
      // lo: the first grid index with x[lo] >= anchor.
      let lo = 0, hi = nE;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (x[mid] < anchor) lo = mid + 1; else hi = mid;
      }
      // Intervals i = L, L-1, ... (x[i] < anchor) and R, R+1, ... (x[i] >= anchor).
      let L = Math.min(lo - 1, nE - 2), R = lo;
      const slack = XCROSS_SLACK * (Math.abs(anchor) + xAbsMax);
      while (L >= 0 || R <= nE - 2) {
        const dL = L >= 0 ? Math.max(0, anchor - x[L + 1]) - slack : Infinity;
        const dR = R <= nE - 2 ? x[R] - anchor - slack : Infinity;
        if (!(dL <= bestDist) && !(dR <= bestDist)) break;
        if (dL <= dR) cross(L--); else cross(R++);
      }
    } else {
      for (let i = 0; i < nE - 1; i++) cross(i);
    }
    if (!Number.isFinite(xHalf)) {
      norm[NormRow.STATUS * P + p] = EdgeStatus.NO_EDGE;
      edge[EdgeRow.E0_DERIV * P + p] = NaN;
      continue;
    }
    edge[EdgeRow.E0_HALF * P + p] = plan.e0 + xHalf;
    const wlHi = xHalf + plan.whitelineWidth;
    // On an increasing grid the indices with xHalf <= x[i] <= wlHi are one range [wl0, wl1):
    // it starts at or after the crossing's interval (xHalf >= x[iHalf], up to rounding) and
    // ends at the first x past wlHi (found by bisection); inside it no index needs the test.
    // Otherwise every index is tested.
    let wl0 = increasing ? iHalf : 0;
    let wl1 = nE;
    if (increasing) {
      while (wl0 < nE && x[wl0] < xHalf) wl0++;
      let lo = wl0, hi = nE;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (x[mid] > wlHi) hi = mid; else lo = mid + 1;
      }
      wl1 = lo;
    }
    const test = !increasing;
    // Screen the window with a[i] ~ n(i) by multiplications only (xs = xc / sc, 1 / step):
    // both are a few roundings of terms no larger than S = (max|mu| + |preA| + |preB| max|xs|)
    // / step, so |a - n| <= ~8 eps S <= tol = EDGE_SCREEN_REL S; only points within 2 tol of
    // the screen's maximum can hold the exact maximum, and only they are evaluated exactly
    // (ni, the twin's expression, in the twin's order): the twin's choice, its bits.
    const inv = 1 / step;
    let aMax = -Infinity, maxAbs = 0;
    for (let i = wl0; i < wl1; i++) {
      if (test && (x[i] < xHalf || x[i] > wlHi)) continue;
      const v = y[yo + i];
      const av = v < 0 ? -v : v;
      if (av > maxAbs) maxAbs = av; // NaN never compares greater: ignored
      const a = (v - (preA + preB * Txs[i])) * inv;
      aArr[i] = a;
      if (a > aMax) aMax = a;
    }
    const tol = EDGE_SCREEN_REL * (maxAbs + Math.abs(preA) + Math.abs(preB) * xsAbsMax) * inv;
    // A non-finite bound (overflow, step ~ 0) screens nothing out.
    const aLo = Number.isFinite(tol) ? aMax - 2 * tol : -Infinity;
    let k = -1, kV = -Infinity;
    for (let i = wl0; i < wl1; i++) {
      if (aArr[i] < aLo) continue;
      if (test && (x[i] < xHalf || x[i] > wlHi)) continue;
      const v = ni(i);
      if (!Number.isFinite(v)) continue;
      if (v > kV) { kV = v; k = i; }
    }
    if (k < 0) continue;
    let xw = x[k], hw = kV;
    if (k > 0 && k < nE - 1) {
      const rv = parabolaVertex(x[k - 1] - x[k], x[k + 1] - x[k], ni(k - 1), kV, ni(k + 1));
      if (Number.isFinite(rv.t) && Number.isFinite(rv.y)) { xw = x[k] + rv.t; hw = rv.y; }
    }
    edge[EdgeRow.WL_ENERGY * P + p] = plan.e0 + xw;
    edge[EdgeRow.WL_HEIGHT * P + p] = hw;
   }
  }
  return { norm, edge };
}
