/**
 * The CPU backend's normalize + edge kernel: one fused sweep per pixel over the float32 tile
 * (read directly, no float64 copy of the cube), writing the float32 rows of normalize and
 * edge (src/kernels/layout.ts) without float64 intermediates. It follows the twins
 * (normalizeCpu in normalize.ts, edgeCpu in edge.ts: Athena/larch pre_edge conventions, see
 * there) operation for operation and in the same order, so its rows are bit-identical to
 * Float32Array.from(twin rows) (test/kernels/edge.test.ts checks this); what changes is only
 * the machine work.
 *
 * What runs where. With WebAssembly SIMD (every supported Node), the whole per-pixel work
 * of the usual pixel runs in edge-wasm.ts, generated per plan, and JavaScript only dispatches
 * blocks of EDGE_WASM_BLOCK pixels and copies their rows out:
 *  - stage: EDGE_WASM_GROUP blocks of the energy-major tile copied into the heap (one copy
 *    per energy row; a tile already in the heap by memory.copy);
 *  - prep: a block searched for each pixel's own-e0 derivative maximum, two pixels per
 *    vector (every pass reads the staged energy-major rows);
 *  - fit: the own e0, the pre-edge line and post-edge polynomial (the grid-only parts from
 *    the tables below), noise, step, rebase and status, scalar float64 with two window
 *    points per vector where a point's work is independent (the sums stay point by point);
 *  - edge: the 0.5 crossing nearest the anchor and the white line with its parabola.
 *  A pixel with a non-finite value in its pre- or post-edge window, and every pixel of a
 *  grid that is not strictly increasing, runs the JavaScript path below instead (the twin's
 *  full loops for such windows; the general crossing scan and white-line screen).
 * Without WebAssembly SIMD the JavaScript path does everything.
 *
 * Why the bits are the twins': WebAssembly f64 arithmetic is IEEE binary64 like JavaScript's
 * (no fused multiply-add, no reassociation), f32 loads promote exactly and f32.demote rounds
 * to nearest like a Float32Array store, and every written value is computed by the twin's
 * expression with the twin's operation order (sums added in the twin's index order, even
 * where the per-point products run two per vector). Only sqrt and IEEE operations are used;
 * no Math function is reimplemented. Where a cheaper form is used, it only decides which
 * points to skip or where to start, never a written value:
 *  - everything that depends on the grid alone is tabulated once per plan: for every grid
 *    index a pixel's own e0 can take, the larch windows [a0, a1), [b0, b1), their bases
 *    (pc, ps, qc, qs) and the basis values u, t of every window point; the central-difference
 *    denominators; the plan-basis offsets (x - pre.centre); and the parts of the two fits
 *    that need no pixel value when every window point is finite (the usual case): the
 *    pre-edge line's s0, s1, s2 and determinant, the post-edge normal matrix's Cholesky
 *    factor (degree 2; its determinant at 1, its count at 0) with the twin's singularity
 *    tests, each formed by the twin's own loop and order, so the same bits;
 *  - the crossing: the intervals nearest the anchor first (WebAssembly: the 15 around it,
 *    screened by multiplications as the white line below, the exact crossing only on the
 *    candidates, usually one), then outward from the anchor until every
 *    unvisited interval lies farther than the best crossing (less XCROSS_SLACK): the twin's
 *    choice (the nearest, the lowest index on ties) at a few intervals' cost;
 *  - the derivative maximum (WebAssembly, edge-wasm.ts screenedSearch): screened by
 *    multiplications with tabulated reciprocals (bound DERIV_SCREEN_REL), the twin's
 *    divisions only where the maximum can be and at its two neighbours;
 *  - the white line: screened by multiplications (xs = xc / sc and 1 / step tabulated) with a
 *    proven bound of ~500x the rounding error (EDGE_SCREEN_REL), so only points that may be
 *    the maximum pay the two divisions of the exact n(i);
 *  - in JavaScript, n(i) is computed at most once per index and pixel, shared by the
 *    crossing search and the white line; sums are scalars in registers (no arrays, closures
 *    or objects per pixel).
 * Arithmetic is float64 throughout, as in the twins (the twins are the reference the GPU and
 * the larch cross-checks are measured against; the float32 rows are rounded once at the end).
 * Tried and not kept (measured, no gain): a multiplication screen in the JavaScript crossing
 * search; blocks of 512-1024 pixels in JavaScript; copying the block out of the WebAssembly
 * heap into ordinary arrays; in WebAssembly, three instead of five near intervals (more
 * outward searches), the white line and the crossing in two passes over a block, and the
 * derivative maximum found on the moving sums before dividing by the window width; reading a
 * heap tile in place instead of staging it (its rows 4 P bytes apart: prep 23 -> 33-66 ms per
 * 262k pixels, by 4 x 4 transposes or by runs of four rows), staging 2 or 4 blocks at once
 * or blocks of 128 or 512 pixels, the post-edge solve two pixels per vector, and the white
 * line's maximum and second largest screen value tracked per lane to skip its exact pass
 * (as much added to the screen pass as taken from the exact one).
 */
import type { EdgePlan } from '../pipeline/edge-plan.js';
import { EdgeRow, EdgeStatus, EDGE_ROWS, NormRow, NORM_ROWS, SINGULAR_REL, STEP_MIN_REL } from '../kernels/layout.js';
import { window } from './normalize.js';
import { EDGE_SCREEN_REL, EDGE_WASM_BLOCK, EDGE_WASM_GROUP, XCROSS_SLACK, edgeWasm, edgeWasmAvailable, edgeWasmScratchBytes, type EdgeTarget } from './edge-wasm.js';

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
  /**
   * Per own-e0 index k, the parts of the fits that depend on the grid alone when every point
   * of the pixel's windows is finite (the usual case), computed by the twin's loops in the
   * twin's order, so the same bits: pre[4k..]: s0, s1, s2, det of the pre-edge line;
   * chol[8k..]: the post-edge normal matrix's Cholesky factor l00, l10, l20, l11, l21, l22 at
   * degree 2 (solve3), or det at degree 1 (solve2), or m0 (solve1), then 1 where that solve
   * succeeds (else 0).
   */
  pre: Float64Array;
  chol: Float64Array;
}

export { EDGE_SCREEN_REL, XCROSS_SLACK };

/** The kernel's float32 rows: norm [NORM_ROWS][P], edge [EDGE_ROWS][P] (src/kernels/layout.ts). */
export interface EdgeRowsOut {
  norm: Float32Array;
  edge: Float32Array;
}

/** Pixels per gathered block (see edgeTileFused). */
export const EDGE_BLOCK = 32;

const tableCache = new WeakMap<EdgePlan, Tables>();

/**
 * Bytes the fused kernel keeps per plan and thread whatever the tile: its tables (u and t,
 * 16 nE^2 bytes, and small per-energy arrays) and, where WebAssembly runs, the plan's
 * EdgeWasm heap block (edgeWasmScratchBytes: a copy of the tables and the staging rows).
 * The edge step's memory plan counts it once per thread running tiles (each worker has
 * its own heap and tables).
 */
export function edgeFusedKernelBytes(nE: number): number {
  // u, t; basis, dx, xc, xs, pre, chol (float64); win (int32).
  const tables = 16 * nE * nE + 8 * (4 + 1 + 1 + 1 + 4 + 8) * nE + 4 * 4 * nE;
  return tables + (edgeWasmAvailable ? edgeWasmScratchBytes(nE) : 0);
}

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
  const pre = new Float64Array(4 * nE);
  const chol = new Float64Array(8 * nE);
  const deg = plan.post.degree;
  for (let k = 0; k < nE; k++) {
    const [a0, a1, b0, b1] = win.subarray(4 * k, 4 * k + 4);
    let s0 = 0, s1 = 0, s2 = 0;
    for (let i = a0; i < a1; i++) { const uu = u[k * nE + i]; s0 += 1; s1 += uu; s2 += uu * uu; }
    pre.set([s0, s1, s2, s0 * s2 - s1 * s1], 4 * k);
    let m0 = 0, m1 = 0, m4 = 0, m5 = 0, m8 = 0;
    for (let i = b0; i < b1; i++) {
      const tv = t[k * nE + i], tt = tv * tv;
      m0 += 1 * 1;
      if (deg >= 1) { m1 += 1 * tv; m4 += tv * tv; }
      if (deg >= 2) { m5 += tv * tt; m8 += tt * tt; }
    }
    const c = chol.subarray(8 * k, 8 * k + 8);
    if (deg === 2) {
      const l00 = Math.sqrt(m0);
      if (l00 > 0) {
        const l10 = m1 / l00, l20 = m4 / l00;
        const d1 = m4 - l10 * l10;
        if (d1 > SINGULAR_REL * m0) {
          const l11 = Math.sqrt(d1);
          const l21 = (m5 - l20 * l10) / l11;
          const d2 = m8 - l20 * l20 - l21 * l21;
          if (d2 > SINGULAR_REL * m0) c.set([l00, l10, l20, l11, l21, Math.sqrt(d2), 1]);
        }
      }
    } else if (deg === 1) {
      const dt = m0 * m4 - m1 * m1;
      c.set([dt, m0, m1, m4, 0, 0, Math.abs(dt) > SINGULAR_REL * m0 * m0 ? 1 : 0]);
    } else c.set([m0, 0, 0, 0, 0, 0, m0 > 0 ? 1 : 0]);
  }
  T = { win, basis, u, t, dx, xc, xAbsMax, xs, xsAbsMax, increasing, pre, chol };
  tableCache.set(plan, T);
  return T;
}

/** parabolaVertex (edge-plan.ts) without the returned object: the vertex t, its height in pvY. Same operations, same order. */
let pvY = 0;
function vertexT(t0: number, t2: number, y0: number, y1: number, y2: number): number {
  const s0 = (y0 - y1) / t0;
  const s2 = (y2 - y1) / t2;
  const beta = (s2 - s0) / (t2 - t0);
  const alpha = s0 - beta * t0;
  if (!(beta < 0)) { pvY = y1; return NaN; }
  const t = Math.min(Math.max(-alpha / (2 * beta), t0), t2);
  pvY = y1 + alpha * t + beta * t * t;
  return t;
}

/**
 * Pixels p0 .. p1 - 1 of a tile only (a worker thread's part, edge-threads.ts), and with
 * `target` the WebAssembly half run in another thread's heap (EdgeTarget: the tile and the
 * output rows lie there). Every pixel is computed alone, so the rows do not depend on how a
 * tile is cut into parts.
 */
export interface EdgePart {
  p0: number;
  p1: number;
  target?: EdgeTarget | null;
}

/**
 * normalize + edge over one tile (or `part` of it): float32 rows [NORM_ROWS][P] and
 * [EDGE_ROWS][P], into `out` where given (every value of its rows is written, of the part's
 * pixels with `part`; rows in this thread's WebAssembly heap, wasm-heap.ts, or in a part's
 * target, are written in place by edge-wasm.ts, with no copy per block), else into new arrays.
 */
export function edgeTileFused(plan: EdgePlan, cube: Float32Array, P: number, out?: EdgeRowsOut, part?: EdgePart): EdgeRowsOut {
  const { x, nE, pre, post, maskSigma, larch, smoothHalf } = plan;
  const deg = post.degree;
  const T = tables(plan);
  const { dx: Tdx, xc: Txc, xs: Txs, xsAbsMax, u: Tu, t: Tt, win: Twin, basis: Tbasis, xAbsMax, increasing, pre: Tpre, chol: Tchol } = T;
  if (out && (out.norm.length !== NORM_ROWS * P || out.edge.length !== EDGE_ROWS * P)) {
    throw new RangeError(`edgeTileFused: out rows hold ${out.norm.length} + ${out.edge.length} values, the tile needs ${NORM_ROWS * P} + ${EDGE_ROWS * P}`);
  }
  const norm = out?.norm ?? new Float32Array(NORM_ROWS * P);
  const edge = out?.edge ?? new Float32Array(EDGE_ROWS * P);
  const w = 2 * smoothHalf + 1;
  const ei0 = plan.edge.i0, ei1 = plan.edge.i1;
  const fixed = larch.fixed, ie0Nominal = larch.ie0, e0 = plan.e0, wlWidth = plan.whitelineWidth;
  const preCentre = pre.centre, preScale = pre.scale, postCentre = post.centre, postScale = post.scale;
  // Central differences for i in [lo, hi) (NaN outside 1..nE-2, as in the twin).
  const dLo = ei0 - smoothHalf - 1, dHi = ei1 + smoothHalf + 1;
  const dArr = new Float64Array(Math.max(0, dHi - dLo));
  const dsArr = new Float64Array(nE);
  const aArr = new Float64Array(nE);
  // n(i) of the current pixel, computed at most once per index (nStamp[i] === the pixel's
  // stamp): the crossing search and the white line's exact points share them.
  const nVal = new Float64Array(nE);
  const nStamp = new Int32Array(nE).fill(-1);
  const rPre = NormRow.PRE_A * P, rPreB = NormRow.PRE_B * P, rC0 = NormRow.POST_C0 * P, rC1 = NormRow.POST_C1 * P, rC2 = NormRow.POST_C2 * P;
  const rStep = NormRow.STEP * P, rNoise = NormRow.NOISE * P, rDeriv = NormRow.E0_DERIV * P, rOwn = NormRow.E0_OWN * P, rStatus = NormRow.STATUS * P;
  const rEDeriv = EdgeRow.E0_DERIV * P, rEHalf = EdgeRow.E0_HALF * P, rWlE = EdgeRow.WL_ENERGY * P, rWlH = EdgeRow.WL_HEIGHT * P;
  // Pixels are taken in blocks of EDGE_BLOCK: the block's spectra are first gathered from the
  // energy-major tile (nE short runs of contiguous float32, read in memory order) into a
  // pixel-major block y[j * nE + i], so every per-pixel pass below walks contiguous memory
  // instead of striding P floats per energy (a TLB miss and a new stream per energy).
  // With WebAssembly SIMD (edge-wasm.ts) the derivative search of each block runs there (the
  // same operations, so the same bits), including the two smoothed values beside the maximum
  // that the parabola needs, on the staged energy-major rows (EDGE_WASM_GROUP blocks at a
  // time); a pixel this loop takes is gathered from them (EdgeWasm.gather).
  const W = edgeWasmAvailable ? edgeWasm(plan, T, part?.target ?? null) : null;
  if (part?.target && !W) throw new Error('edgeTileFused: a part in another thread\'s heap needs WebAssembly SIMD');
  const pStart = part ? part.p0 : 0, pEnd = part ? part.p1 : P;
  if (!(pStart >= 0 && pStart <= pEnd && pEnd <= P)) throw new RangeError(`edgeTileFused: part ${pStart} .. ${pEnd} of a tile of ${P} pixels`);
  const B = W ? EDGE_WASM_BLOCK : EDGE_BLOCK;
  // With WebAssembly, y holds one pixel's spectrum (gathered from the staged rows for the
  // pixels the JavaScript loop below takes); without, the block's spectra.
  const y = W ? new Float32Array(nE) : new Float32Array(B * nE);
  // On an increasing grid every pixel whose windows hold only finite values (the usual
  // case) is done in edge-wasm.ts (finish(): fit() and edge()), its float32 rows copied out
  // per block; the loop below then runs only for the others (code 0).
  const WF = W && increasing ? W : null;
  // Without it the edge rows start NaN (the loop below writes only what it finds); with it
  // every block's edge rows are copied in whole (NaN where nothing was found).
  if (!WF) for (let k = 0; k < EDGE_ROWS; k++) edge.fill(NaN, k * P + pStart, k * P + pEnd);
  // Rows in the heap (or the target's): fit() and edge() write them in place.
  const inPlace = WF !== null && WF.inMem(norm) && WF.inMem(edge);
  const sc = pre.scale;
  for (let p0 = pStart; p0 < pEnd; p0 += B) {
   const nb = Math.min(B, pEnd - p0);
   const g = ((p0 - pStart) / B) % EDGE_WASM_GROUP;
   if (W) {
     if (g === 0) W.stage(cube, P, p0, Math.min(B * EDGE_WASM_GROUP, pEnd - p0));
     W.run(g, nb);
   }
   else {
     for (let i = 0; i < nE; i++) {
       const src = i * P + p0;
       for (let j = 0; j < nb; j++) y[j * nE + i] = cube[src + j];
     }
   }
   if (inPlace) WF!.finishInto(g, nb, norm, edge, P, p0);
   else if (WF) {
     WF.finish(g, nb);
     const full = nb === B;
     for (let k = 0; k < NORM_ROWS; k++) norm.set(full ? WF.normOut[k] : WF.normOut[k].subarray(0, nb), k * P + p0);
     for (let k = 0; k < EDGE_ROWS; k++) edge.set(full ? WF.edgeOut[k] : WF.edgeOut[k].subarray(0, nb), k * P + p0);
   }
   for (let j = 0; j < nb; j++) {
    const p = p0 + j;
    if (WF && WF.code[j] !== 0) continue;
    let yo = j * nE;
    if (W) {
      W.gather(g, j, y);
      yo = 0;
    }
    // 1. Own e0: smoothed derivative maximum in the edge window.
    let best = -1, bestV = -Infinity, dsPrev = NaN, dsNext = NaN;
    if (W) {
      best = W.best[j];
      bestV = W.bestV[j];
      dsPrev = W.dsL[j];
      dsNext = W.dsR[j];
    } else {
      for (let i = dLo; i < dHi; i++) {
        dArr[i - dLo] = i >= 1 && i <= nE - 2 ? (y[yo + i + 1] - y[yo + i - 1]) / Tdx[i] : NaN;
      }
      for (let i = ei0; i < ei1; i++) {
        let acc = 0;
        for (let jj = -smoothHalf; jj <= smoothHalf; jj++) acc += dArr[i + jj - dLo];
        const v = acc / w;
        dsArr[i] = v;
        if (!Number.isFinite(v)) continue;
        if (v > bestV) { bestV = v; best = i; }
      }
      if (best > ei0 && best < ei1 - 1) { dsPrev = dsArr[best - 1]; dsNext = dsArr[best + 1]; }
    }
    let xd = NaN;
    if (best >= 0) {
      xd = x[best];
      if (best > ei0 && best < ei1 - 1) {
        const rt = vertexT(x[best - 1] - x[best], x[best + 1] - x[best], dsPrev, bestV, dsNext);
        if (Number.isFinite(rt)) xd = x[best] + rt;
      }
    }
    let ie0 = ie0Nominal;
    if (Number.isFinite(xd) && !fixed) {
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
    // Pre-edge sums: with every window point finite (clean), s0, s1, s2 and det are the
    // plan's (tabulated by the same loop); else the twin's loop over the finite points.
    let s0 = 0, s1 = 0, s2 = 0, sy = 0, suy = 0, det: number;
    let clean = true;
    for (let i = a0; i < a1; i++) {
      const v = y[yo + i];
      if (v - v !== 0) { clean = false; break; } // not finite
      sy += v; suy += Tu[uo + i] * v;
    }
    if (clean) {
      s0 = Tpre[4 * ie0]; s1 = Tpre[4 * ie0 + 1]; s2 = Tpre[4 * ie0 + 2]; det = Tpre[4 * ie0 + 3];
    } else {
      sy = 0; suy = 0;
      for (let i = a0; i < a1; i++) {
        const v = y[yo + i];
        if (v - v !== 0) continue;
        const u = Tu[uo + i];
        s0 += 1; s1 += u; s2 += u * u; sy += v; suy += u * v;
      }
      det = s0 * s2 - s1 * s1;
    }
    if (s0 < 3 || !(det > SINGULAR_REL * s0 * s0)) {
      noData(norm, P, p);
      continue;
    }
    const la = (s2 * sy - s1 * suy) / det;
    const lb = (s0 * suy - s1 * sy) / det;
    // Post-edge polynomial of mu - pre; products formed as the twin forms b[a] * b[c]. The
    // twin's m[3] (t * 1), m[2] and m[6] (1 * tt), m[7] (tt * t) add the same values in the
    // same order as m[1], m[4] and m[5]: one running sum each, in locals. With every window
    // point finite the normal matrix and its factor are the plan's (Tchol, the same
    // operations on the same values); only the right-hand side r depends on the pixel.
    let m0 = 0, m1 = 0, m4 = 0, m5 = 0, m8 = 0, r0 = 0, r1 = 0, r2 = 0;
    let nPost = 0;
    clean = true;
    for (let i = b0; i < b1; i++) {
      const v = y[yo + i];
      if (v - v !== 0) { clean = false; break; }
      const d = v - (la + (lb * (x[i] - pc)) / ps);
      const t = Tt[uo + i];
      r0 += 1 * d;
      if (deg >= 1) r1 += t * d;
      if (deg >= 2) r2 += t * t * d;
    }
    const co = 8 * ie0;
    if (clean) nPost = b1 - b0;
    else {
      r0 = 0; r1 = 0; r2 = 0;
      for (let i = b0; i < b1; i++) {
        const v = y[yo + i];
        if (v - v !== 0) continue;
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
    }
    // solve1 / solve2 / solve3 (normalize.ts) on m = [m0 m1 m2; m1 m4 m5; m2 m5 m8] (m2 = m4
    // at degree 2, else 0), r = [r0 r1 r2], written out in locals: the same operations in
    // the same order (no arrays per pixel).
    let c0 = 0, cf1 = 0, cf2 = 0, solved = false;
    if (deg === 2) {
      let l00 = 0, l10 = 0, l20 = 0, l11 = 0, l21 = 0, l22 = 0;
      if (clean) {
        if (Tchol[co + 6] === 1) {
          l00 = Tchol[co]; l10 = Tchol[co + 1]; l20 = Tchol[co + 2]; l11 = Tchol[co + 3]; l21 = Tchol[co + 4]; l22 = Tchol[co + 5];
          solved = true;
        }
      } else {
        l00 = Math.sqrt(m0);
        if (l00 > 0) {
          l10 = m1 / l00;
          l20 = m4 / l00;
          const d1 = m4 - l10 * l10;
          if (d1 > SINGULAR_REL * m0) {
            l11 = Math.sqrt(d1);
            l21 = (m5 - l20 * l10) / l11;
            const d2 = m8 - l20 * l20 - l21 * l21;
            if (d2 > SINGULAR_REL * m0) {
              l22 = Math.sqrt(d2);
              solved = true;
            }
          }
        }
      }
      if (solved) {
        const z0 = r0 / l00;
        const z1 = (r1 - l10 * z0) / l11;
        const z2 = (r2 - l20 * z0 - l21 * z1) / l22;
        cf2 = z2 / l22;
        cf1 = (z1 - l21 * cf2) / l11;
        c0 = (z0 - l10 * cf1 - l20 * cf2) / l00;
      }
    } else if (deg === 1) {
      let dt: number;
      if (clean) { dt = Tchol[co]; m0 = Tchol[co + 1]; m1 = Tchol[co + 2]; m4 = Tchol[co + 3]; } else dt = m0 * m4 - m1 * m1;
      if (Math.abs(dt) > SINGULAR_REL * m0 * m0) {
        c0 = (m4 * r0 - m1 * r1) / dt;
        cf1 = (m0 * r1 - m1 * r0) / dt;
        solved = true;
      }
    } else {
      if (clean) m0 = Tchol[co];
      if (m0 > 0) {
        c0 = r0 / m0;
        solved = true;
      }
    }
    if (nPost < deg + 1 || !solved) {
      noData(norm, P, p);
      continue;
    }
    let rss = 0;
    for (let i = a0; i < a1; i++) {
      const v = y[yo + i];
      if (v - v !== 0) continue;
      const res = v - (la + (lb * (x[i] - pc)) / ps);
      rss += res * res;
    }
    const noise = Math.sqrt(rss / (s0 - 2));
    const t0 = (x0 - qc) / qs;
    const step = c0 + cf1 * t0 + cf2 * t0 * t0;
    const preA = la + (lb * (preCentre - pc)) / ps;
    const preB = (lb * preScale) / ps;
    // rebase (normalize.ts), written out.
    const alpha = postScale / qs, beta = (postCentre - qc) / qs;
    const ok = step > maskSigma * noise && step > STEP_MIN_REL * Math.abs(la + (lb * (x0 - pc)) / ps);
    norm[rPre + p] = preA;
    norm[rPreB + p] = preB;
    norm[rC0 + p] = c0 + cf1 * beta + cf2 * beta * beta;
    norm[rC1 + p] = (cf1 + 2 * cf2 * beta) * alpha;
    norm[rC2 + p] = cf2 * alpha * alpha;
    norm[rStep + p] = step;
    norm[rNoise + p] = noise;
    norm[rDeriv + p] = xd;
    norm[rOwn + p] = x0;
    if (!ok) {
      norm[rStatus + p] = EdgeStatus.LOW_STEP;
      continue;
    }
    norm[rStatus + p] = EdgeStatus.OK;

    // Edge (edgeCpu) on n(i) = (mu - pre) / step with the float64 pre line and step:
    // n(i) = (y[i] - (preA + (preB * xc[i]) / sc)) / step, edgeCpu's expression, each index
    // computed once per pixel (nVal / nStamp).
    if (Number.isFinite(xd)) edge[rEDeriv + p] = e0 + xd;
    const anchor = Number.isFinite(xd) ? xd : 0;
    // The 0.5 crossing nearest the anchor (ties: the lowest index, as the twin's forward
    // scan keeps the first). On an increasing grid the intervals are visited outward from the
    // anchor and the search stops once every unvisited interval lies farther away than the
    // best crossing found (a crossing in [x[i], x[i+1]] is at least that interval's distance
    // from the anchor, less XCROSS_SLACK for rounding): the twin's choice, its bits (same
    // expressions), at a few intervals' cost instead of all nE. Otherwise: the twin's scan.
    let xHalf = NaN, bestDist = Infinity, iHalf = 0;
    let L = 0, R = nE - 1;
    if (increasing) {
      // lo: the first grid index with x[lo] >= anchor.
      let lo = 0, hi = nE;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (x[mid] < anchor) lo = mid + 1; else hi = mid;
      }
      // Intervals i = L, L-1, ... (x[i] < anchor) and R, R+1, ... (x[i] >= anchor).
      L = Math.min(lo - 1, nE - 2);
      R = lo;
    }
    const slack = XCROSS_SLACK * (Math.abs(anchor) + xAbsMax);
    for (;;) {
      let i: number;
      if (increasing) {
        if (!(L >= 0 || R <= nE - 2)) break;
        const dL = L >= 0 ? Math.max(0, anchor - x[L + 1]) - slack : Infinity;
        const dR = R <= nE - 2 ? x[R] - anchor - slack : Infinity;
        if (!(dL <= bestDist) && !(dR <= bestDist)) break;
        if (dL <= dR) i = L--; else i = R++;
      } else {
        if (L >= nE - 1) break;
        i = L++;
      }
      // crossAt: n(i) < 0.5 <= n(i + 1), linear interpolation.
      let nPrev: number, nNext: number;
      if (nStamp[i] === p) nPrev = nVal[i];
      else { nPrev = (y[yo + i] - (preA + (preB * Txc[i]) / sc)) / step; nVal[i] = nPrev; nStamp[i] = p; }
      if (!(nPrev < 0.5)) continue;
      const i1 = i + 1;
      if (nStamp[i1] === p) nNext = nVal[i1];
      else { nNext = (y[yo + i1] - (preA + (preB * Txc[i1]) / sc)) / step; nVal[i1] = nNext; nStamp[i1] = p; }
      if (!(nNext >= 0.5)) continue;
      const xcross = x[i] + ((0.5 - nPrev) * (x[i1] - x[i])) / (nNext - nPrev);
      if (xcross === xcross) { // not NaN: a crossing in interval i
        const dist = Math.abs(xcross - anchor);
        if (dist < bestDist || (dist === bestDist && i < iHalf)) { bestDist = dist; xHalf = xcross; iHalf = i; }
      }
    }
    if (!Number.isFinite(xHalf)) {
      norm[rStatus + p] = EdgeStatus.NO_EDGE;
      edge[rEDeriv + p] = NaN;
      continue;
    }
    edge[rEHalf + p] = e0 + xHalf;
    const wlHi = xHalf + wlWidth;
    // The white line: the first index of the largest finite n(i) with xHalf <= x[i] <= wlHi.
    // Screened by multiplications only: a(i) = (mu(i) - (preA + preB xs(i))) / step with
    // xs = xc / sc and 1 / step tabulated; a and n are a few roundings of terms no larger than
    // S(i) = (|mu(i)| + |preA| + |preB| max|xs|) / step, so |a - n| <= ~8 eps S(i) <=
    // tol(i) = EDGE_SCREEN_REL S(i) (step > 0 here: status OK). Only points that may beat the
    // running maximum are evaluated exactly (n(i), the twin's expression, in the twin's order):
    // the twin's choice, its bits.
    const inv = 1 / step, cAbs = Math.abs(preA) + Math.abs(preB) * xsAbsMax;
    let k = -1, kV = -Infinity;
    if (increasing) {
      // On an increasing grid the window is one index range [wl0, wl1): it starts at or after
      // the crossing's interval (xHalf >= x[iHalf], up to rounding) and ends at the first x
      // past wlHi; inside it no index needs the test. One pass: a point whose bound
      // a(i) + tol(i) lies below the exact maximum so far cannot replace it (the twin keeps the
      // first maximum, strict >); every other point (NaN, infinite bounds: comparisons false)
      // is evaluated exactly.
      // The test a(i) + tol(i) < kV is evaluated as a(i) + |mu(i)| relInv < thr with
      // relInv = EDGE_SCREEN_REL / step and thr = kV - EDGE_SCREEN_REL cAbs / step (updated
      // with kV); the regrouping's roundings are ~eps of the terms, far inside the bound's
      // margin.
      const relInv = EDGE_SCREEN_REL * inv, cTol = relInv * cAbs;
      let thr = -Infinity;
      let i = iHalf;
      while (i < nE && x[i] < xHalf) i++;
      for (; i < nE && !(x[i] > wlHi); i++) {
        const v = y[yo + i];
        if ((v - (preA + preB * Txs[i])) * inv + (v < 0 ? -v : v) * relInv < thr) continue;
        let n: number;
        if (nStamp[i] === p) n = nVal[i];
        else { n = (v - (preA + (preB * Txc[i]) / sc)) / step; nVal[i] = n; nStamp[i] = p; }
        if (!Number.isFinite(n)) continue;
        if (n > kV) { kV = n; k = i; thr = kV - cTol; }
      }
    } else {
      // Any grid: screen every point of the window against the screen's maximum (within
      // 2 tol of it, tol from the window's max |mu|), then the exact test on the rest.
      let aMax = -Infinity, maxAbs = 0;
      for (let i = 0; i < nE; i++) {
        if (x[i] < xHalf || x[i] > wlHi) { aArr[i] = -Infinity; continue; }
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
      for (let i = 0; i < nE; i++) {
        if (aArr[i] < aLo) continue;
        if (x[i] < xHalf || x[i] > wlHi) continue;
        let n: number;
        if (nStamp[i] === p) n = nVal[i];
        else { n = (y[yo + i] - (preA + (preB * Txc[i]) / sc)) / step; nVal[i] = n; nStamp[i] = p; }
        if (!Number.isFinite(n)) continue;
        if (n > kV) { kV = n; k = i; }
      }
    }
    if (k < 0) continue;
    let xw = x[k], hw = kV;
    if (k > 0 && k < nE - 1) {
      const km = k - 1, kp = k + 1;
      let nm: number, np: number;
      if (nStamp[km] === p) nm = nVal[km];
      else nm = (y[yo + km] - (preA + (preB * Txc[km]) / sc)) / step;
      if (nStamp[kp] === p) np = nVal[kp];
      else np = (y[yo + kp] - (preA + (preB * Txc[kp]) / sc)) / step;
      const rt = vertexT(x[km] - x[k], x[kp] - x[k], nm, kV, np);
      if (Number.isFinite(rt) && Number.isFinite(pvY)) { xw = x[k] + rt; hw = pvY; }
    }
    edge[rWlE + p] = e0 + xw;
    edge[rWlH + p] = hw;
   }
  }
  return { norm, edge };
}

function noData(norm: Float32Array, P: number, p: number): void {
  norm[NormRow.STATUS * P + p] = EdgeStatus.NO_DATA;
  for (let k = 1; k < NORM_ROWS; k++) norm[k * P + p] = NaN;
}
