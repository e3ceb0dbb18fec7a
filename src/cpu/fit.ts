/**
 * CPU twin of shaders/fit.wgsl, in float64: per pixel, start values from the data and the
 * normalize/edge results, then a bounded Levenberg-Marquardt fit of the plan's model, then
 * standard errors. Same rules, same order, same constants (src/models/layout.ts) as the
 * kernel; only the arithmetic is wider.
 *
 * Input: a tile of P pixels, energy-major (cube[i * P + p]), and the normalize/edge rows of
 * the same tile (src/cpu/normalize.ts, src/cpu/edge.ts). Output: rows [fitRows(np).count][P]
 * in internal units (src/pipeline/fit-step.ts converts them to maps).
 *
 * Start values (startValues), per pixel (a pixel with fewer finite points than free
 * parameters + 1, or without pre-/post-edge data for the normalize kernel, is masked-input):
 *  - yScale = the largest |value| of the pixel's finite points (1 if all are 0); every
 *    amplitude is fitted in units of it.
 *  - baseline ('level'): the pre-edge line of the normalize kernel at the middle of its window,
 *    or at eRef when the model has a linear component, whose 'slope' is that line's slope.
 *  - steps: height = the normalize kernel's edge step; centre = the edge kernel's e0_half,
 *    unless the normalised spectrum falls below EDGE_LOW again after it (a pre-edge peak
 *    above half the step, as V5+ has, crossed 0.5 first): then the first 0.5 crossing after
 *    the last point below EDGE_LOW; the middle of the range if there is none. Width: half
 *    the distance between the 0.25 and 0.75 crossings about the centre (the 0.25 one not
 *    below the last point under EDGE_LOW, whose energy it takes if the spectrum never falls
 *    to 0.25 there; one-sided if one is missing; at least half a grid step), times the
 *    component's startFactor (25-75 % spans 2 x 0.477 erf widths); STEP_WIDTH_STEPS local
 *    grid steps if neither crossing is found. Several steps share the height and sit one
 *    width apart.
 *  - peaks, in model order: at the largest residual of the data minus the components started
 *    so far, at least PEAK_EXCLUDE_WIDTHS widths from the peaks started before (two peaks
 *    started on one feature fight for it and leave another unfitted). In a model with a step
 *    the first peak looks only below (step centre - step width): the pre-edge peak; the
 *    second only above (step centre + step width): the white line. (If no point qualifies,
 *    anywhere.) Height = that residual (at least PEAK_MIN_HEIGHT x the step height: a zero
 *    height would leave its centre and width without influence); width = the half width at
 *    half maximum of the residual peak (one-sided if one side never falls to half; at least
 *    half the smaller neighbouring grid step), else PEAK_WIDTH_STEPS x that step.
 *    Widths are measured on the data, with the grid only as the fallback: on a ptychography
 *    grid, widths from the grid alone (a few local steps) started edges and white lines up
 *    to 3x too narrow or wide. In development runs on 2,000 synthetic spectra at noise 0.01,
 *    grid-only widths left 12 % of the fits at max-iterations or singular, measured widths
 *    5 %, and with the peak placement rules above none.
 *  - then the global --init values (applied component by component, so a peak search sees
 *    an overridden edge), and every free parameter is clamped into its bounds.
 *
 * LM (lmPixel): chi2, J^T J and J^T r in one pass over the energies (non-finite points
 * skipped); the system (J^T J + lambda diag(J^T J)) dp = J^T r is Jacobi-scaled to a unit
 * diagonal and solved by Cholesky, with the parameters that sit on a bound and are pushed
 * outwards by the gradient held for the step (else the clamped step crawls); the trial
 * point is clamped into the bounds (a width's default lower bound follows the local energy
 * step at its centre: lowerAt); one pass at the trial point gives its chi2, J^T J and J^T r
 * (kept if it is accepted). Stopping (MINPACK lmder's tests, FitStop in
 * src/models/layout.ts): ftol on the step just tried (accepted or not), xtol on its size,
 * gtol at the current point, chi2 at the float32 floor, or --max-iter solves; ftol and xtol
 * only where the undamped Gauss-Newton step would gain at most FTOL chi2 (gnPredicted), so
 * a small damped step in a flat valley does not end the fit. Standard errors from the
 * undamped J^T J with every parameter on a bound held (an active bound: status at-bound,
 * its error NaN); singular only if what is left is. Lambda schedule and the reasons for
 * each constant: FIT_TUNING.
 */
import type { FitPlan } from '../models/plan.js';
import { FIT_TUNING, FitStatus, FitStop, fitRows, InitRoleCode } from '../models/layout.js';
import { EdgeRow, EdgeStatus, NormRow } from '../kernels/layout.js';

const T = FIT_TUNING;

/** Scratch arrays of one pixel's fit, allocated once per tile. */
interface Scratch {
  y: Float64Array;
  p: Float64Array;
  pt: Float64Array;
  d: Float64Array;
  A: Float64Array;
  At: Float64Array;
  g: Float64Array;
  gt: Float64Array;
  M: Float64Array;
  s: Float64Array;
  keep: Float64Array;
  jf: Float64Array;
  z: Float64Array;
  lo: Float64Array;
  hi: Float64Array;
}

function scratch(plan: FitPlan): Scratch {
  const nf = plan.free.length;
  const nt = (nf * (nf + 1)) / 2;
  const np = plan.np;
  return {
    y: new Float64Array(plan.nE),
    p: new Float64Array(np),
    pt: new Float64Array(np),
    d: new Float64Array(np),
    A: new Float64Array(nt),
    At: new Float64Array(nt),
    g: new Float64Array(nf),
    gt: new Float64Array(nf),
    M: new Float64Array(nt),
    s: new Float64Array(nf),
    keep: new Float64Array(nf),
    jf: new Float64Array(nf),
    z: new Float64Array(nf),
    lo: new Float64Array(np),
    hi: new Float64Array(np),
  };
}

/** Value of component k alone (start values). */
function componentValue(plan: FitPlan, k: number, t: number, p: Float64Array, d: Float64Array): number {
  const c = plan.model.components[k];
  return c.def.evaluate(t, p, c.offset, d);
}

export function fitCpu(plan: FitPlan, cube: Float32Array, P: number, norm: Float64Array, edge: Float64Array): Float64Array {
  const L = fitRows(plan.np);
  const out = new Float64Array(L.count * P);
  const sc = scratch(plan);
  for (let pix = 0; pix < P; pix++) fitPixel(plan, cube, P, pix, norm, edge, sc, out);
  return out;
}

function fitPixel(plan: FitPlan, cube: Float32Array, P: number, pix: number, norm: Float64Array, edge: Float64Array, sc: Scratch, out: Float64Array): void {
  const { nE, np, free } = plan;
  const nf = free.length;
  const L = fitRows(np);
  const put = (row: number, v: number) => (out[row * P + pix] = v);
  const y = sc.y;
  let nFin = 0;
  let ymax = 0;
  for (let i = 0; i < nE; i++) {
    const v = cube[i * P + pix];
    y[i] = v;
    if (Number.isFinite(v)) {
      nFin++;
      ymax = Math.max(ymax, Math.abs(v));
    } else y[i] = NaN;
  }
  const ysc = ymax > 0 ? ymax : 1;
  put(L.yScale, ysc);
  put(L.nFinite, nFin);
  const empty = (status: number) => {
    for (let k = 0; k < np; k++) {
      put(L.param0 + k, NaN);
      put(L.stderr0 + k, NaN);
    }
    put(L.chi2, NaN);
    put(L.iterations, 0);
    put(L.status, status);
    put(L.stop, FitStop.NONE);
  };
  if (nFin < nf + 1 || norm[NormRow.STATUS * P + pix] === EdgeStatus.NO_DATA) return empty(FitStatus.MASKED_INPUT);

  const pt = sc.pt;
  for (let k = 0; k < np; k++) {
    sc.lo[k] = scaledBound(plan.lower[k], plan.yScaled[k], ysc);
    sc.hi[k] = scaledBound(plan.upper[k], plan.yScaled[k], ysc);
  }
  // One fit from the data-driven start; with a global --init on free parameters, a second
  // one from the --init start, kept if better (fitBetter). Same order as the kernel.
  let kept: { status: number; chi2: number } | null = null;
  for (let run = 0; run < (plan.initOnFree ? 2 : 1); run++) {
    startValues(plan, y, ysc, norm[NormRow.PRE_A * P + pix], norm[NormRow.PRE_B * P + pix], norm[NormRow.STEP * P + pix], edge[EdgeRow.E0_HALF * P + pix], pt, sc.d, run === 1);
    clampFree(plan, pt, sc.lo, sc.hi);
    let finite = true;
    for (let k = 0; k < np; k++) if (!Number.isFinite(pt[k])) finite = false;
    const r = finite ? lmPixel(plan, y, ysc, nFin, sc) : { status: FitStatus.NON_FINITE, stop: FitStop.NONE, chi2: NaN, iterations: 0, stderr: new Float64Array(nf) };
    const cand = { status: r.status, chi2: r.chi2 };
    if (kept && !fitBetter(cand, kept)) continue;
    kept = cand;
    if (r.status === FitStatus.NON_FINITE) {
      empty(FitStatus.NON_FINITE);
      continue;
    }
    const p = sc.p;
    for (let k = 0; k < np; k++) {
      put(L.param0 + k, p[k]);
      put(L.stderr0 + k, 0);
    }
    for (let a = 0; a < nf; a++) put(L.stderr0 + free[a], r.stderr[a]);
    put(L.chi2, r.chi2);
    put(L.iterations, r.iterations);
    put(L.status, r.status);
    put(L.stop, r.stop);
  }
}

/**
 * Whether fit b is better than fit a: a usable fit (converged, or converged on a bound)
 * beats one that is not; between two of the same kind the lower chi-square wins.
 */
export function fitBetter(b: { status: number; chi2: number }, a: { status: number; chi2: number }): boolean {
  const ok = (s: number) => s === FitStatus.CONVERGED || s === FitStatus.AT_BOUND;
  if (ok(b.status) !== ok(a.status)) return ok(b.status);
  if (!Number.isFinite(b.chi2)) return false;
  return !Number.isFinite(a.chi2) || b.chi2 < a.chi2;
}

function scaledBound(b: number, yScaled: number, ysc: number): number {
  if (!Number.isFinite(b)) return b;
  return yScaled ? b / ysc : b;
}

/** The smaller of the grid steps on either side of energy index i (internal units). */
function minStep(plan: FitPlan, i: number): number {
  const { t, nE } = plan;
  const l = i > 0 ? t[i] - t[i - 1] : Infinity;
  const r = i < nE - 1 ? t[i + 1] - t[i] : Infinity;
  return Math.min(l, r);
}

/** Local grid step (internal units) at the energy nearest to t (the first of equals). */
function dtNear(plan: FitPlan, tc: number): number {
  let best = 0;
  let bd = Infinity;
  for (let i = 0; i < plan.nE; i++) {
    const dd = Math.abs(plan.t[i] - tc);
    if (dd < bd) {
      bd = dd;
      best = i;
    }
  }
  return plan.dt[best];
}

/** Energy (internal units) where the line through (i1, v1), (i2, v2) reaches `level`. */
function crossing(t: Float64Array, i1: number, v1: number, i2: number, v2: number, level: number): number {
  return t[i1] + ((level - v1) * (t[i2] - t[i1])) / (v2 - v1);
}

/**
 * Where the values v(i) (NaN = skip) reach `level` walking from index `from` down (dir -1)
 * or up (dir +1) within [lo, hi], interpolated with the previous finite point; the first
 * point itself if it is already there; NaN if never. `above`: looking for v <= level (else
 * v >= level).
 */
function walkTo(t: Float64Array, v: (i: number) => number, from: number, dir: number, level: number, above: boolean, lo: number, hi: number): number {
  let prevI = -1;
  let prevV = NaN;
  for (let i = from; i >= lo && i <= hi; i += dir) {
    const vi = v(i);
    if (Number.isNaN(vi)) continue;
    if (above ? vi <= level : vi >= level) return prevI < 0 ? t[i] : crossing(t, prevI, prevV, i, vi, level);
    prevI = i;
    prevV = vi;
  }
  return NaN;
}

/**
 * Whether t lies within PEAK_EXCLUDE_WIDTHS widths of a peak started already: a later peak
 * started on the same feature would leave another feature unfitted and fight for this one.
 */
function nearPeak(plan: FitPlan, done: number[], p: Float64Array, tv: number): boolean {
  for (const j of done) {
    if (plan.compRole[j] !== InitRoleCode.peak) continue;
    const c = plan.model.components[j];
    const ic = c.def.params.findIndex((q) => q.start === 'centre');
    const iw = c.def.params.findIndex((q) => q.start === 'width');
    if (ic < 0 || iw < 0) continue;
    if (Math.abs(tv - p[c.offset + ic]) < T.PEAK_EXCLUDE_WIDTHS * Math.abs(p[c.offset + iw])) return true;
  }
  return false;
}

/** Half the distance between two crossings, or the one-sided distance from the centre, or NaN. */
function halfWidth(lo: number, hi: number, centre: number): number {
  const w = Number.isFinite(lo) && Number.isFinite(hi) ? (hi - lo) / 2 : Number.isFinite(lo) ? centre - lo : hi - centre;
  return w > 0 ? w : NaN;
}

/**
 * Start values into p (internal units); the rules are in the header of this file.
 * y: the pixel's values (NaN where not finite).
 */
export function startValues(plan: FitPlan, y: Float64Array, ysc: number, preA: number, preB: number, step: number, e0Half: number, p: Float64Array, d: Float64Array, useInit = true): void {
  const { nE, t, edge: ep } = plan;
  const pre = (i: number) => preA + (preB * (ep.x[i] - ep.pre.centre)) / ep.pre.scale;
  const xRef = plan.eRef - ep.e0;
  const level = plan.hasSlope ? (preA + (preB * (xRef - ep.pre.centre)) / ep.pre.scale) / ysc : preA / ysc;
  const slope = ((preB / ep.pre.scale) * plan.eScale) / ysc;
  const height = Number.isFinite(step) ? step / ysc : 0;
  const stepUp = Number.isFinite(step) && step > 0;
  // The normalised spectrum (NaN where the point is missing).
  const nrm = (i: number) => (Number.isNaN(y[i]) ? NaN : (y[i] - pre(i)) / step);

  // Step centre: e0_half, guarded against a crossing that the spectrum falls back from.
  let hasC = Number.isFinite(e0Half);
  let centre = hasC ? (e0Half - plan.eRef) / plan.eScale : 0;
  let lastLow = -1;
  if (stepUp) {
    for (let i = 0; i < nE; i++) if (nrm(i) < T.EDGE_LOW) lastLow = i;
    if (lastLow >= 0 && (!hasC || t[lastLow] >= centre)) {
      let prevN = nrm(lastLow);
      let prevI = lastLow;
      for (let i = lastLow + 1; i < nE; i++) {
        const n = nrm(i);
        if (Number.isNaN(n)) continue;
        if (prevN < 0.5 && n >= 0.5) {
          centre = crossing(t, prevI, prevN, i, n, 0.5);
          hasC = true;
          break;
        }
        prevN = n;
        prevI = i;
      }
    }
  }
  if (!hasC) centre = 0;
  // Step width: half the distance between the 0.25 and 0.75 crossings about the centre.
  let width = NaN;
  if (stepUp) {
    let k = -1;
    for (let i = 0; i < nE; i++) if (!Number.isNaN(y[i]) && t[i] <= centre) k = i;
    // Not below the last low point: beyond it lies the pre-edge peak, not the edge.
    const stop = Math.max(lastLow, 0);
    let lo25 = walkTo(t, nrm, k, -1, 0.25, true, stop, nE - 1);
    if (Number.isNaN(lo25) && lastLow >= 0 && lastLow <= k) lo25 = t[lastLow];
    width = halfWidth(lo25, walkTo(t, nrm, k + 1, 1, 0.75, false, 0, nE - 1), centre);
  }
  const dtc = dtNear(plan, centre);
  width = Number.isFinite(width) ? Math.max(width, 0.5 * dtc) : T.STEP_WIDTH_STEPS * dtc;
  const href = Math.abs(height) > 0 ? Math.abs(height) : 1;

  let stepIndex = 0;
  let peakIndex = 0;
  const done: number[] = [];
  const residual = (i: number) => {
    if (Number.isNaN(y[i])) return NaN;
    let f = 0;
    for (const j of done) f += componentValue(plan, j, t[i], p, d);
    return y[i] / ysc - f;
  };
  for (const k of plan.initOrder) {
    const role = plan.compRole[k];
    let h = { level, slope, height, centre, width };
    if (role === InitRoleCode.step) {
      h = { ...h, height: height / plan.nSteps, centre: centre + (stepIndex - 0.5 * (plan.nSteps - 1)) * width };
      stepIndex++;
    } else if (role === InitRoleCode.peak) {
      // With a step: the first peak below it (the pre-edge peak), the second above it (the
      // white line); others anywhere. Peaks started already are kept clear of.
      let lo = -Infinity;
      let hi = Infinity;
      if (plan.nSteps > 0 && peakIndex === 0) hi = p[plan.stepCentre] - p[plan.stepWidth];
      if (plan.nSteps > 0 && peakIndex === 1) lo = p[plan.stepCentre] + p[plan.stepWidth];
      let best = -1;
      let bestR = -Infinity;
      for (let pass = 0; pass < 2 && best < 0; pass++) {
        for (let i = 0; i < nE; i++) {
          if (pass === 0 && (!(t[i] < hi && t[i] > lo) || nearPeak(plan, done, p, t[i]))) continue;
          const r = residual(i);
          if (r > bestR) {
            bestR = r;
            best = i;
          }
        }
      }
      // Width: the half width at half maximum of the residual peak.
      let w = NaN;
      if (bestR > 0) w = halfWidth(walkTo(t, residual, best - 1, -1, bestR / 2, true, 0, nE - 1), walkTo(t, residual, best + 1, 1, bestR / 2, false, 0, nE - 1), t[best]);
      const ms = minStep(plan, best);
      w = Number.isFinite(w) ? Math.max(w, 0.5 * ms) : T.PEAK_WIDTH_STEPS * ms;
      h = { ...h, height: Math.max(bestR, T.PEAK_MIN_HEIGHT * href), centre: t[best], width: w };
      peakIndex++;
    }
    const c = plan.model.components[k];
    c.def.params.forEach((q, j) => {
      const idx = c.offset + j;
      p[idx] = typeof q.start === 'number' ? q.start : h[q.start] * (q.startFactor ?? 1);
      // --init: always for a fixed parameter; for a free one only in the --init start.
      if (!Number.isNaN(plan.init[idx]) && (useInit || !plan.isFree[idx])) p[idx] = plan.yScaled[idx] ? plan.init[idx] / ysc : plan.init[idx];
    });
    done.push(k);
  }
}

/** chi2 at p, with J^T J (packed lower triangle over the free parameters) and J^T r. */
function accumulate(plan: FitPlan, y: Float64Array, ysc: number, p: Float64Array, A: Float64Array, g: Float64Array, d: Float64Array, jf: Float64Array): number {
  const { nE, t, free } = plan;
  const nf = free.length;
  const comps = plan.model.components;
  const nc = comps.length;
  A.fill(0);
  g.fill(0);
  let chi2 = 0;
  for (let i = 0; i < nE; i++) {
    const yi = y[i];
    if (Number.isNaN(yi)) continue;
    let f = 0;
    for (let c = 0; c < nc; c++) f += comps[c].def.evaluate(t[i], p, comps[c].offset, d);
    const r = yi / ysc - f;
    chi2 += r * r;
    // The free parameters' derivatives, gathered once: the triangle reads each nf times.
    for (let a = 0; a < nf; a++) jf[a] = d[free[a]];
    let row = 0;
    for (let a = 0; a < nf; a++) {
      const ja = jf[a];
      g[a] += ja * r;
      for (let b = 0; b <= a; b++) A[row + b] += ja * jf[b];
      row += a + 1;
    }
  }
  return chi2;
}

/**
 * In-place Cholesky of the packed lower triangle (row a starts at a(a+1)/2); false when a
 * pivot is not finite or at or below SINGULAR_PIVOT (the matrix has a unit diagonal).
 */
export function cholesky(m: Float64Array, n: number): boolean {
  for (let a = 0; a < n; a++) {
    const ra = (a * (a + 1)) / 2;
    for (let b = 0; b <= a; b++) {
      const rb = (b * (b + 1)) / 2;
      let s = m[ra + b];
      for (let k = 0; k < b; k++) s -= m[ra + k] * m[rb + k];
      if (a === b) {
        if (!Number.isFinite(s) || s <= T.SINGULAR_PIVOT) return false;
        m[ra + a] = Math.sqrt(s);
      } else {
        m[ra + b] = s / m[rb + b];
      }
    }
  }
  return true;
}

/** Solves L L^T x = z in place (L from cholesky). */
function choleskySolve(m: Float64Array, n: number, z: Float64Array): void {
  for (let a = 0; a < n; a++) {
    const ra = (a * (a + 1)) / 2;
    let s = z[a];
    for (let k = 0; k < a; k++) s -= m[ra + k] * z[k];
    z[a] = s / m[ra + a];
  }
  for (let a = n - 1; a >= 0; a--) {
    let s = z[a];
    for (let k = a + 1; k < n; k++) s -= m[(k * (k + 1)) / 2 + a] * z[k];
    z[a] = s / m[(a * (a + 1)) / 2 + a];
  }
}

/**
 * Jacobi scaling of A: s = 1/sqrt(diag A) into `s`, M = S A S with diagonal 1 + lambda, rows
 * and columns of parameters with keep[a] = 0 (held on a bound) zeroed off the diagonal.
 * False when the diagonal entry of a parameter not held is not positive and finite (a
 * parameter without influence); a held one takes scale 1 then (its step is 0 anyway).
 */
function scaledSystem(A: Float64Array, n: number, lambda: number, s: Float64Array, M: Float64Array, keep: Float64Array): boolean {
  for (let a = 0; a < n; a++) {
    const dg = A[(a * (a + 1)) / 2 + a];
    const ok = Number.isFinite(dg) && dg > 0;
    if (!ok && keep[a]) return false;
    s[a] = ok ? 1 / Math.sqrt(dg) : 1;
  }
  let row = 0;
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < a; b++) M[row + b] = A[row + b] * s[a] * s[b] * keep[a] * keep[b];
    M[row + a] = 1 + lambda;
    row += a + 1;
  }
  return true;
}

/**
 * Lower bound of parameter k at the parameters q: a width with the default bound follows the
 * local grid step at its component's centre (FitPlan.widthCentre), never below its floor.
 */
function lowerAt(plan: FitPlan, lo: Float64Array, k: number, q: Float64Array): number {
  const c = plan.widthCentre[k];
  return c >= 0 ? Math.max(lo[k], T.WIDTH_LOCAL_STEPS * localStep(plan, q[c])) : lo[k];
}

/**
 * The local grid step at tc (internal units): at each grid energy the smaller of its two
 * neighbouring steps (minStep), interpolated linearly between the two grid energies around
 * tc, constant beyond the ends. Continuous in tc: a step function would jump where the grid
 * coarsens (4.5 to 16 eV at 5494 eV on the 40-energy V grid) and trap a width that its
 * centre carries across that point. Twin: local_step in shaders/fit.wgsl.
 */
export function localStep(plan: FitPlan, tc: number): number {
  const { t, nE } = plan;
  if (tc <= t[0]) return minStep(plan, 0);
  if (tc >= t[nE - 1]) return minStep(plan, nE - 1);
  let i = 0;
  while (i + 2 < nE && t[i + 1] <= tc) i++;
  const f = (tc - t[i]) / (t[i + 1] - t[i]);
  return minStep(plan, i) + f * (minStep(plan, i + 1) - minStep(plan, i));
}

/**
 * Clamps the free parameters of q into their bounds: first those with fixed bounds, then the
 * widths whose lower bound follows their (already clamped) centre.
 */
function clampFree(plan: FitPlan, q: Float64Array, lo: Float64Array, hi: Float64Array): void {
  for (let pass = 0; pass < 2; pass++) {
    for (const k of plan.free) {
      if ((plan.widthCentre[k] >= 0) !== (pass === 1)) continue;
      q[k] = Math.min(Math.max(q[k], lowerAt(plan, lo, k, q)), hi[k]);
    }
  }
}

/** Whether free parameter k sits on one of its bounds at q. */
function onBound(plan: FitPlan, lo: Float64Array, hi: Float64Array, k: number, q: Float64Array): boolean {
  return q[k] <= lowerAt(plan, lo, k, q) || q[k] >= hi[k];
}

/**
 * The chi-square reduction the undamped Gauss-Newton step from the current point predicts,
 * g^T (J^T J)^-1 g over the parameters not held (keep); NaN where J^T J is singular there.
 * Uses s, M and z as scratch.
 */
function gnPredicted(A: Float64Array, g: Float64Array, nf: number, s: Float64Array, M: Float64Array, keep: Float64Array, z: Float64Array): number {
  if (!scaledSystem(A, nf, 0, s, M, keep) || !cholesky(M, nf)) return NaN;
  for (let a = 0; a < nf; a++) z[a] = s[a] * g[a] * keep[a];
  choleskySolve(M, nf, z);
  let r = 0;
  for (let a = 0; a < nf; a++) r += z[a] * s[a] * g[a];
  return r;
}

interface LmResult {
  status: number;
  /** FitStop code. */
  stop: number;
  iterations: number;
  chi2: number;
  /** Standard errors of the free parameters (internal units); NaN for one held on a bound. */
  stderr: Float64Array;
}

/**
 * The LM iterations from the start values in sc.pt; the accepted values end in sc.p. Then
 * the standard errors. Mirrors lm_run() in shaders/fit.wgsl step by step.
 */
function lmPixel(plan: FitPlan, y: Float64Array, ysc: number, nFin: number, sc: Scratch): LmResult {
  const { free } = plan;
  const nf = free.length;
  const { p, pt, A, At, g, gt, M, s, z, d, lo, hi, keep } = sc;
  const stderr = new Float64Array(nf).fill(NaN);
  const chi2Floor = nFin * T.CHI2_FLOOR_REL * T.CHI2_FLOOR_REL;
  let chi2 = 0;
  let lambda: number = T.LAMBDA_INIT;
  let it = 0;
  let status: number = FitStatus.MAX_ITERATIONS;
  let stop: number = FitStop.NONE;
  let first = true;
  let nu = 2;
  let predicted = 0;
  let xtolHit = false;
  const accept = (c: number) => {
    p.set(pt);
    A.set(At);
    g.set(gt);
    chi2 = c;
  };
  for (;;) {
    // One pass at the trial point (the start values on the first pass).
    const chi2t = accumulate(plan, y, ysc, pt, At, gt, d, sc.jf);
    let ftolHit = false;
    if (first) {
      if (!Number.isFinite(chi2t)) return { status: FitStatus.NON_FINITE, stop, iterations: 0, chi2: NaN, stderr };
      accept(chi2t);
      first = false;
    } else {
      // MINPACK lmder's ftol test, on an accepted or a rejected step: the actual and the
      // predicted relative reductions both at most FTOL, the actual at most twice the predicted.
      const actred = Number.isFinite(chi2t) ? (chi2 - chi2t) / chi2 : -Infinity;
      const prered = predicted / chi2;
      ftolHit = Math.abs(actred) <= T.FTOL && prered <= T.FTOL && actred <= 2 * prered;
      if (Number.isFinite(chi2t) && chi2t < chi2) {
        const rho = (chi2 - chi2t) / predicted;
        accept(chi2t);
        const q = 2 * rho - 1;
        lambda = Math.max(lambda * Math.max(1 / 3, 1 - q * q * q), T.LAMBDA_MIN);
        nu = 2;
      } else {
        lambda = Math.min(lambda * nu, T.LAMBDA_MAX);
        nu = Math.min(2 * nu, T.NU_MAX);
      }
    }
    // A parameter on a bound that the gradient pushes outwards is held there for the next
    // step (its clamped step would only spoil the others'), and left out of the tests.
    for (let a = 0; a < nf; a++) {
      const k = free[a];
      keep[a] = (p[k] <= lowerAt(plan, lo, k, p) && g[a] < 0) || (p[k] >= hi[k] && g[a] > 0) ? 0 : 1;
    }
    if (chi2 <= chi2Floor) {
      status = FitStatus.CONVERGED;
      stop = FitStop.EXACT;
    } else if (ftolHit || xtolHit) {
      // Only where the Gauss-Newton step has nothing left to gain either (not a flat valley).
      if (!(gnPredicted(A, g, nf, s, M, keep, z) > T.FTOL * chi2)) {
        status = FitStatus.CONVERGED;
        stop = (ftolHit ? FitStop.FTOL : 0) | (xtolHit ? FitStop.XTOL : 0);
      }
    }
    if (status === FitStatus.MAX_ITERATIONS) {
      // gtol: the largest cosine between the residual and a Jacobian column.
      let cos = 0;
      for (let a = 0; a < nf; a++) {
        const dg = A[(a * (a + 1)) / 2 + a];
        if (keep[a] && dg > 0) cos = Math.max(cos, Math.abs(g[a]) / Math.sqrt(dg * chi2));
      }
      if (cos <= T.GTOL) {
        status = FitStatus.CONVERGED;
        stop = FitStop.GTOL;
      }
    }
    // The next trial point: solve (J^T J + lambda diag J^T J) dp = J^T r, raising lambda
    // while the factorisation fails.
    let haveStep = false;
    for (;;) {
      if (status !== FitStatus.MAX_ITERATIONS || it >= plan.maxIter) break;
      it++;
      if (!scaledSystem(A, nf, lambda, s, M, keep)) {
        status = FitStatus.SINGULAR;
        break;
      }
      if (cholesky(M, nf)) {
        haveStep = true;
        break;
      }
      if (lambda >= T.LAMBDA_MAX) {
        status = FitStatus.SINGULAR;
        break;
      }
      lambda = Math.min(lambda * T.LAMBDA_UP, T.LAMBDA_MAX);
    }
    if (!haveStep) break;
    for (let a = 0; a < nf; a++) z[a] = s[a] * g[a] * keep[a];
    choleskySolve(M, nf, z);
    pt.set(p);
    for (let a = 0; a < nf; a++) pt[free[a]] = p[free[a]] + s[a] * z[a];
    clampFree(plan, pt, lo, hi);
    let dp2 = 0;
    let p2 = 0;
    predicted = 0;
    for (let a = 0; a < nf; a++) {
      const k = free[a];
      dp2 += (pt[k] - p[k]) ** 2;
      p2 += p[k] * p[k];
      // dp^T g + lambda dp^T D dp, with dp = S z and D = S^-2.
      predicted += z[a] * (s[a] * g[a] + lambda * z[a]);
    }
    // xtol (judged with the pass at the trial point, as lmder): the step against the parameters.
    xtolHit = Math.sqrt(dp2) <= T.XTOL * (T.XTOL + Math.sqrt(p2));
  }

  // Standard errors from the undamped J^T J at the solution, with every parameter on a bound
  // held (an active bound: no confidence interval; its error is NaN).
  let ok = status !== FitStatus.SINGULAR;
  let anyHeld = false;
  for (let a = 0; a < nf; a++) {
    keep[a] = onBound(plan, lo, hi, free[a], p) ? 0 : 1;
    if (!keep[a]) anyHeld = true;
  }
  if (ok) ok = scaledSystem(A, nf, 0, s, M, keep) && cholesky(M, nf);
  if (!ok) {
    status = FitStatus.SINGULAR;
    stop = FitStop.NONE;
  } else {
    // diag((S M S)^-1)_k = s_k^2 sum_i (L^-1)_ik^2: column k of L^-1 by forward substitution.
    const dof = nFin - nf;
    for (let k = 0; k < nf; k++) {
      let sum = 0;
      z.fill(0);
      for (let a = k; a < nf; a++) {
        const ra = (a * (a + 1)) / 2;
        let v = a === k ? 1 : 0;
        for (let j = k; j < a; j++) v -= M[ra + j] * z[j];
        z[a] = v / M[ra + a];
        sum += z[a] * z[a];
      }
      stderr[k] = keep[k] ? s[k] * Math.sqrt((sum * chi2) / dof) : NaN;
    }
    if (status === FitStatus.CONVERGED && anyHeld) status = FitStatus.AT_BOUND;
  }
  if (status !== FitStatus.CONVERGED && status !== FitStatus.AT_BOUND) stop = FitStop.NONE;
  return { status, stop, iterations: it, chi2, stderr };
}
