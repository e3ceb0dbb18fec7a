/**
 * The CPU normalize + edge kernel (edge-fused.ts) in WebAssembly, one module generated per
 * plan (energies, windows and smoothing unrolled or in tables, the denominators constants),
 * working on blocks of EDGE_WASM_BLOCK pixels in the shared heap (wasm-heap.ts):
 *  - stage: EDGE_WASM_GROUP blocks' spectra copied energy-major into the heap (from a tile in
 *    the heap by memory.copy; other tiles by one JavaScript copy per energy row), the rows
 *    rowStride bytes apart; every pass below reads the spectra there (pixel j's value at
 *    energy i at S + 4 j + i rowStride; a pair of energies of one pixel by two lane loads; the
 *    lines of 16 neighbouring pixels are shared, so the block's working set stays in cache:
 *    no transposed copy, measured faster than transposing to pixel-major rows);
 *  - prep (SIMD): the block searched for the own-e0 derivative maximum two pixels per f64x2
 *    vector, straight from the energy-major rows (the same energy indices for every pixel):
 *    the central differences
 *    d(i) = (y(i+1) - y(i-1)) / (x(i+1) - x(i-1)), their moving average
 *    ((0 + d(i-h)) + ... + d(i+h)) / (2h + 1) over the edge window, the first index of the
 *    largest finite value (-1 if none), and the smoothed values at its two neighbours (the
 *    parabola's other two points). On the usual grid the search is screened
 *    (screenedSearch): the same sums with reciprocals multiplied in, two pixels per vector,
 *    and the twin's divisions only at the points within the screen's rounding bound of its
 *    maximum (one or two per pixel instead of two per window point);
 *  - fit (scalar float64, two window points per vector where a point's work is independent):
 *    normalizeCpu's own e0, pre-edge line, post-edge polynomial, noise, step, rebase and
 *    status, with the grid-only parts from edge-fused.ts's tables; a pixel with a non-finite
 *    value in its windows is left to JavaScript (CODE 0);
 *  - edge (scalar float64, SIMD screens): edgeCpu's 0.5 crossing and white line.
 * fit and edge write the block's float32 rows, which JavaScript copies out row by row (or
 * straight into rows in the heap). JavaScript gathers the spectrum of a pixel it takes
 * (CODE 0) from the staged rows.
 * Every value is a float32 promoted to float64 and every operation a float64 IEEE operation
 * (no fused multiply-add in WebAssembly; sqrt is IEEE; f32.demote rounds to nearest like a
 * Float32Array store) in the twin's order, sums added point by point in the twin's index
 * order, so every written value is the twin's bits (test/kernels/edge.test.ts). Cheaper
 * forms (the white-line and crossing screens, the crossing's near intervals, the start
 * index) only decide which points are evaluated exactly; see edge-fused.ts.
 */
import type { EdgePlan } from '../pipeline/edge-plan.js';
import { heapAlloc, heapGrowthBytes, heapFree, inHeap, wasmHeap } from './wasm-heap.js';
import { EdgeRow, EdgeStatus, EDGE_ROWS, NormRow, NORM_ROWS, SINGULAR_REL, STEP_MIN_REL } from '../kernels/layout.js';
import { assemble, F64, Fn, I32, instantiate, uleb, V128, wasmSimd, type WasmMemory } from './wasm.js';

/** Pixels per block (even: the search takes pairs). */
export const EDGE_WASM_BLOCK = 256;

/** Blocks staged at once (one copy call per energy row for EDGE_WASM_GROUP blocks: fewer calls from JavaScript). */
export const EDGE_WASM_GROUP = 8;

/** White-line screen tolerance relative to the pixel's scale (see edge-fused.ts): ~500x the ~8 eps rounding bound. */
export const EDGE_SCREEN_REL = 1e-12;

/** Rounding slack of the crossing search's distance bound, relative to |anchor| + max|x| (a crossing computed in [x[i], x[i+1]] can land a few ulps outside it). */
export const XCROSS_SLACK = 1e-12;

interface Exports {
  stage: (src: number, stride: number, bytes: number) => void;
  prep: (off: number, pairs: number) => void;
  fit: (nb: number, no: number, eo: number, rs: number, off: number) => void;
  edge: (nb: number, no: number, eo: number, rs: number, off: number) => void;
}

interface Layout {
  S: number; rowStride: number; BEST: number; BV: number; DL: number; DR: number;
  /** Grid tables (f64 per energy): x, x - pre.centre, (x - pre.centre) / pre.scale. */
  X: number; XC: number; XS: number;
  /** The white line's screen values of the current pixel (f64 per energy, nE + 4). */
  A: number;
  /** Per pixel of the block (f64): the edge search's inputs preA, preB, step, anchor; FLAG (i32): 1 = search this pixel; CODE (i32): 1 = done here, 0 = for the JavaScript kernel. */
  PA: number; PB: number; ST: number; AN: number; FLAG: number; CODE: number;
  /** fit()'s state between its two passes (f64: la, lb, xd; i32: ie0, GO 1 = continue). */
  LA: number; LB: number; XD: number; IE0: number; GO: number;
  /** fit()'s state between its phases 2 and 3 (f64: c0, cf1, cf2). */
  C0: number; C1: number; C2: number;
  /** edge()'s state between its two passes: the white line's maximum index (i32, -1: none) and n there (f64). */
  WK: number; WKV: number;
  /** The block's float32 output rows: [NORM_ROWS][EDGE_WASM_BLOCK], [EDGE_ROWS][EDGE_WASM_BLOCK]. */
  NOUT: number; EOUT: number;
  /** Per own-e0 index tables (edge-fused.ts Tables): win (i32 x 4), basis (x 4), pre (x 4), chol (x 8), u and t (x nE). */
  WIN: number; BASIS: number; TPRE: number; TCHOL: number; TU: number; TT: number;
  /** prep's screened search: x(i+1) - x(i-1) at DXT + 8 (i + DXT_PAD) (NaN outside 1 .. nE - 2). */
  DXT: number;
  /** Per own-e0 index k (32 bytes): the step's t0 = (x[k] - qc) / qs and the rebase's alpha = post.scale / qs, beta = (post.centre - qc) / qs (grid only: the twin's expressions, evaluated once per plan). */
  TQ: number;
  bytes: number;
}

function layout(nE: number, base: number): Layout {
  const al = (x: number) => Math.ceil(x / 64) * 64;
  // Staged rows 4B + 64 bytes apart (not a power of two: the rows do not share cache sets).
  const rowStride = 4 * EDGE_WASM_BLOCK * EDGE_WASM_GROUP + 64;
  // The staged rows after a guard of STAGE_GUARD rows: addresses computed down to
  // STAGE_GUARD rows before a pixel's first value stay inside the memory (the values read
  // there are never used).
  const S = al(base + STAGE_GUARD * rowStride);
  const BEST = al(S + rowStride * (nE + STAGE_GUARD) + 16);
  const BV = al(BEST + 8 * EDGE_WASM_BLOCK);
  const DL = al(BV + 8 * EDGE_WASM_BLOCK);
  const DR = al(DL + 8 * EDGE_WASM_BLOCK);
  const X = al(DR + 8 * EDGE_WASM_BLOCK), XC = al(X + 8 * (nE + 2)), XS = al(XC + 8 * nE), A = al(XS + 8 * (nE + 2));
  const blk = (a: number) => al(a + 8 * EDGE_WASM_BLOCK);
  const PA = al(A + 8 * (nE + 4)), PB = blk(PA), ST = blk(PB), AN = blk(ST), FLAG = blk(AN), CODE = blk(FLAG);
  const LA = blk(CODE), LB = blk(LA), XD = blk(LB), IE0 = blk(XD), GO = blk(IE0);
  const C0 = blk(GO), C1 = blk(C0), C2 = blk(C1), WK = blk(C2), WKV = blk(WK);
  const NOUT = blk(WKV), EOUT = al(NOUT + 4 * NORM_ROWS * EDGE_WASM_BLOCK);
  const WIN = al(EOUT + 4 * EDGE_ROWS * EDGE_WASM_BLOCK), BASIS = al(WIN + 16 * nE), TPRE = al(BASIS + 32 * nE), TCHOL = al(TPRE + 32 * nE);
  const TU = al(TCHOL + 64 * nE), TT = al(TU + 8 * nE * nE);
  const DXT = al(TT + 8 * nE * nE);
  const TQ = al(DXT + 8 * (nE + 2 * DXT_PAD));
  return { S, rowStride, BEST, BV, DL, DR, X, XC, XS, A, PA, PB, ST, AN, FLAG, CODE, LA, LB, XD, IE0, GO, C0, C1, C2, WK, WKV, NOUT, EOUT, WIN, BASIS, TPRE, TCHOL, TU, TT, DXT, TQ, bytes: al(TQ + 32 * nE) - base };
}

function buildStage(nE: number, L: Layout): Fn {
  const f = new Fn('stage', [['src', I32], ['stride', I32], ['bytes', I32]]);
  const d = f.local('d', I32), e = f.local('e', I32);
  f.i32(L.S).set(d);
  f.i32(0).set(e);
  f.block().loop();
  f.get(d).get('src').get('bytes').op(0xfc, 10, 0, 0); // memory.copy
  f.get('src').get('stride').add().set('src');
  f.get(d).i32(L.rowStride).add().set(d);
  f.get(e).i32(1).add().tee(e).i32(nE).ltS().brIf(0);
  f.end().end();
  return f;
}

/**
 * fit() and edge() take the block's pixel count and where its float32 rows go: the address
 * of the norm rows' and the edge rows' first pixel and the bytes between rows (the block's
 * own NOUT / EOUT, 4 EDGE_WASM_BLOCK apart; or the tile's rows in the heap, 4 P apart, which
 * they then write in place: no copy out).
 */
const OUT_PARAMS: [string, typeof I32][] = [['nb', I32], ['no', I32], ['eo', I32], ['rs', I32], ['off', I32]];

/** Per-row base addresses (locals set once per call); nA(row) / eA(row) push pixel jo's address in that norm / edge row (store offset 0). */
function outRows(f: Fn, jo: string): { nA: (row: number) => void; eA: (row: number) => void } {
  const nr = Array.from({ length: NORM_ROWS }, (_, r) => f.local(`nr${r}`, I32));
  const er = Array.from({ length: EDGE_ROWS }, (_, r) => f.local(`er${r}`, I32));
  for (let r = 0; r < NORM_ROWS; r++) f.get('no').get('rs').i32(r).mul().add().set(nr[r]);
  for (let r = 0; r < EDGE_ROWS; r++) f.get('eo').get('rs').i32(r).mul().add().set(er[r]);
  return { nA: (row) => { f.get(nr[row]).get(jo).add(); }, eA: (row) => { f.get(er[row]).get(jo).add(); } };
}

function buildPrep(plan: EdgePlan, L: Layout): Fn {
  const { nE, x, smoothHalf: h } = plan;
  const ei0 = plan.edge.i0, ei1 = plan.edge.i1;
  const f = new Fn('prep', [['off', I32], ['pairs', I32]]);
  const src = f.local('src', I32), dst = f.local('dst', I32), t = f.local('t', I32);
  const acc = f.local('acc', V128), v = f.local('v', V128), upd = f.local('upd', V128);
  const best = f.local('best', V128), bestV = f.local('bestV', V128), nan = f.local('nan', V128), zero = f.local('zero', V128);
  const prevV = f.local('prevV', V128), updPrev = f.local('updPrev', V128), left = f.local('left', V128), right = f.local('right', V128);
  // 2. Derivative maximum, pixel pairs.
  const dLo = Math.max(1, ei0 - h), dHi = Math.min(nE - 2, ei1 - 1 + h); // d(i) needed for i in [ei0 - h, ei1 - 1 + h]
  const d = new Map<number, string>();
  for (let i = dLo; i <= dHi; i++) d.set(i, f.local(`d${i}`, V128));
  f.f64(NaN).f64x2Splat().set(nan);
  f.f64(0).f64x2Splat().set(zero);
  if (derivScreen(plan)) {
    screenedSearch(f, plan, L, { src, t, dst, acc, v, nan, zero, d });
    return f;
  }
  f.i32(0).set(t);
  f.block().loop();
  f.get(t).get('pairs').geS().brIf(1);
  f.get(t).i32(3).shl().i32(L.S).add().get('off').add().set(src); // 2 floats per pair
  // Each y(i) loaded and promoted once.
  const yl = new Map<number, string>();
  for (let i = dLo - 1; i <= dHi + 1; i++) {
    yl.set(i, f.local(`y${i}`, V128));
    f.get(src).vLoad64Zero(i * L.rowStride).f64x2PromoteLow().set(yl.get(i)!);
  }
  for (let i = dLo; i <= dHi; i++) {
    f.get(yl.get(i + 1)!).get(yl.get(i - 1)!);
    f.f64x2Sub().f64(x[i + 1] - x[i - 1]).f64x2Splat().f64x2Div().set(d.get(i)!);
  }
  f.f64(-1).f64x2Splat().set(best);
  f.f64(-Infinity).f64x2Splat().set(bestV);
  // The smoothed values beside the maximum (the parabola's y0, y2), kept as they pass:
  // left = the value before the latest update, right = the value after it.
  f.get(nan).set(prevV);
  f.get(nan).set(left);
  f.get(nan).set(right);
  f.get(zero).set(updPrev);
  for (let i = ei0; i < ei1; i++) {
    f.get(zero).set(acc);
    for (let k = -h; k <= h; k++) {
      const di = d.get(i + k);
      f.get(acc);
      if (di) f.get(di); else f.get(nan); // outside 1 .. nE - 2: NaN, as in the twin
      f.f64x2Add().set(acc);
    }
    f.get(acc).f64(2 * h + 1).f64x2Splat().f64x2Div().set(v);
    // Finite (v - v == 0) and larger than the best so far (the first maximum is kept).
    f.get(v).get(v).f64x2Sub().get(zero).f64x2Eq().get(v).get(bestV).f64x2Gt().vAnd().set(upd);
    f.get(v).get(right).get(updPrev).vBitselect().set(right);
    f.get(prevV).get(left).get(upd).vBitselect().set(left);
    f.get(v).get(bestV).get(upd).vBitselect().set(bestV);
    f.f64(i).f64x2Splat().get(best).get(upd).vBitselect().set(best);
    f.get(upd).set(updPrev);
    f.get(v).set(prevV);
  }
  f.get(t).i32(4).shl().set(dst);
  f.get(dst).get(best).vStore(L.BEST);
  f.get(dst).get(bestV).vStore(L.BV);
  f.get(dst).get(left).vStore(L.DL);
  f.get(dst).get(right).vStore(L.DR);
  f.get(t).i32(1).add().set(t);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * The derivative search screened (see prep's step 2): true where every grid denominator
 * x(i+1) - x(i-1) it uses is finite and at least DERIV_SCREEN_MIN_DX in size, so its
 * reciprocal is finite and no product of it with a float32 difference overflows.
 */
function derivScreen(plan: EdgePlan): boolean {
  const { nE, x, smoothHalf: h } = plan;
  const dLo = Math.max(1, plan.edge.i0 - h), dHi = Math.min(nE - 2, plan.edge.i1 - 1 + h);
  for (let i = dLo; i <= dHi; i++) {
    const dx = x[i + 1] - x[i - 1];
    if (!(Math.abs(dx) >= DERIV_SCREEN_MIN_DX) || !Number.isFinite(dx)) return false;
  }
  return h < DXT_PAD;
}

/**
 * prep's derivative search with the divisions only where the maximum can be, for a pixel
 * pair (two lanes). Pass 1, two pixels per vector: the screen values a(i) = (e(i-h) + ...)
 * + e(i+h), in units of w (the twin divides the sum by w; the screen compares w ds(i)), with
 * e(k) = (y(k+1) - y(k-1)) * (1 / dx(k)) (reciprocals tabulated): multiplications where the
 * twin divides; each of the few roundings that differ is relative to a term no larger than
 * max |e(k)|, so |a(i) - w ds(i)| <= ~25 w eps max|d(k)|, far inside w tol, tol =
 * DERIV_SCREEN_REL max|e(k)| (a NaN e ignored there, as a NaN a in the maximum). Pass 2,
 * per pixel in index order: the twin's ds(i) = (((0 + d(i-h)) + ...) + d(i+h)) / w with
 * d(k) = (y(k+1) - y(k-1)) / dx(k) (NaN outside 1 .. nE - 2), only where a(i) >= max a -
 * 2 w tol or a(i) is NaN (every point when the bound is not finite), the first largest
 * finite one kept: a point screened out lies below the exact value at the screen's
 * maximum, so the twin's index and value; the values beside it computed by the same
 * expression.
 */
function screenedSearch(
  f: Fn,
  plan: EdgePlan,
  L: Layout,
  q: { src: string; t: string; dst: string; acc: string; v: string; nan: string; zero: string; d: Map<number, string> },
): void {
  const { nE, x, smoothHalf: h } = plan;
  const ei0 = plan.edge.i0, ei1 = plan.edge.i1, w = 2 * h + 1;
  const dLo = Math.max(1, ei0 - h), dHi = Math.min(nE - 2, ei1 - 1 + h);
  const { src, t, dst, acc, v, nan, zero, d } = q;
  const absM = f.local('absM', V128), aMax = f.local('aMax', V128), thr = f.local('thr', V128);
  const ii = f.local('ii', I32);
  const lane = [0, 1].map((l) => ({
    yo: f.local(`syo${l}`, I32), yb: f.local(`syb${l}`, I32), th: f.local(`sth${l}`, F64), bi: f.local(`sbi${l}`, I32), bv: f.local(`sbv${l}`, F64), sv: f.local(`ssv${l}`, F64),
  }));
  f.i32(0).set(t);
  f.block().loop();
  f.get(t).get('pairs').geS().brIf(1);
  f.get(t).i32(3).shl().i32(L.S).add().get('off').add().set(src); // 2 floats per pair
  // Pass 1.
  const yl = new Map<number, string>();
  for (let i = dLo - 1; i <= dHi + 1; i++) {
    yl.set(i, f.local(`y${i}`, V128));
    f.get(src).vLoad64Zero(i * L.rowStride).f64x2PromoteLow().set(yl.get(i)!);
  }
  f.get(zero).set(absM);
  for (let i = dLo; i <= dHi; i++) {
    f.get(yl.get(i + 1)!).get(yl.get(i - 1)!);
    f.f64x2Sub().f64(1 / (x[i + 1] - x[i - 1])).f64x2Splat().f64x2Mul().set(d.get(i)!);
    f.get(absM).get(d.get(i)!).f64x2Abs().op(0xfd, 0xf7, 0x01).set(absM); // f64x2.pmax: NaN ignored
  }
  f.f64(-Infinity).f64x2Splat().set(aMax);
  const av = Array.from({ length: ei1 - ei0 }, (_, k) => f.local(`av${k}`, V128));
  for (let i = ei0; i < ei1; i++) {
    for (let k = -h; k <= h; k++) {
      const di = d.get(i + k);
      if (di) f.get(di); else f.get(nan);
      if (k > -h) f.f64x2Add();
    }
    f.set(av[i - ei0]);
    f.get(aMax).get(av[i - ei0]).op(0xfd, 0xf7, 0x01).set(aMax);
  }
  // thr = aMax - 2 w tol (the screen in units of w); not finite (no finite a, an infinite e):
  // -Infinity (every point exact).
  f.get(aMax).f64(2 * w * DERIV_SCREEN_REL).f64x2Splat().get(absM).f64x2Mul().f64x2Sub().set(thr);
  f.get(thr).f64(-Infinity).f64x2Splat().get(thr).get(thr).f64x2Sub().get(zero).f64x2Eq().vBitselect().set(thr);
  // Pass 2.
  for (let l = 0; l < 2; l++) {
    const S = lane[l];
    f.get(t).i32(1).shl().i32(l).add().i32(2).shl().i32(L.S).add().get('off').add().set(S.yo);
    f.get(thr).f64x2Extract(l).set(S.th);
    f.i32(-1).set(S.bi);
    f.f64(-Infinity).set(S.bv);
  }
  // ds(idx) of lane l onto the stack: the twin's expression. y(k) read from the staged rows,
  // RS bytes apart (outside the grid only where dx is NaN: a NaN either way).
  const RS = L.rowStride;
  const dsOf = (l: number, idx: string) => {
    const S = lane[l];
    // Addressed from y(idx - h - 1), at yo + RS idx - RS (h + 1): offsets RS (k + h + 2) and RS (k + h).
    f.get(S.yo).get(idx).i32(RS).mul().add().i32(RS * (h + 1)).sub().set(q.dst);
    f.f64(0);
    for (let k = -h; k <= h; k++) {
      f.get(q.dst).op(0x2a, 2, ...uleb(RS * (k + h + 2))).promote();
      f.get(q.dst).op(0x2a, 2, ...uleb(RS * (k + h))).promote().fsub();
      // dx(idx + k) at DXT + 8 (idx + k + DXT_PAD), NaN outside 1 .. nE - 2.
      f.get(idx).i32(3).shl().f64Load(L.DXT + 8 * (k + DXT_PAD)).op(F64_DIV);
      f.fadd();
    }
    f.f64(w).op(F64_DIV);
  };
  // ds(i) of lane l for a constant i: y from yb = yo - RS (h + 1), the grid's dx a constant
  // (x(i+1) - x(i-1), NaN outside 1 .. nE - 2, as the twin's d).
  for (let l = 0; l < 2; l++) f.get(lane[l].yo).i32(RS * (h + 1)).sub().set(lane[l].yb);
  const dsAt = (l: number, i: number) => {
    const yb = lane[l].yb;
    f.f64(0);
    for (let k = i - h; k <= i + h; k++) {
      f.get(yb).op(0x2a, 2, ...uleb(RS * (k + h + 2))).promote();
      f.get(yb).op(0x2a, 2, ...uleb(RS * (k + h))).promote().fsub();
      f.f64(k >= 1 && k <= nE - 2 ? x[k + 1] - x[k - 1] : NaN).op(F64_DIV);
      f.fadd();
    }
    f.f64(w).op(F64_DIV);
  };
  // Four window points (both lanes) per test: skipped together where all lie below thr.
  for (let g = ei0; g < ei1; g += 4) {
    const ge = Math.min(g + 4, ei1);
    for (let i = g; i < ge; i++) {
      f.get(av[i - ei0]).get(thr).f64x2Lt();
      if (i > g) f.vAnd();
    }
    f.i64x2AllTrue().eqz().if_();
    for (let i = g; i < ge; i++) {
      for (let l = 0; l < 2; l++) {
        const S = lane[l];
        f.get(av[i - ei0]).f64x2Extract(l).get(S.th).op(F64_LT).eqz().if_();
        dsAt(l, i);
        f.set(S.sv);
        f.get(S.sv).get(S.sv).fsub().f64(0).op(F64_EQ).get(S.sv).get(S.bv).op(F64_GT).op(I32_AND).if_();
        f.get(S.sv).set(S.bv);
        f.i32(i).set(S.bi);
        f.end();
        f.end();
      }
    }
    f.end();
  }
  // BEST, BV, and (best inside the window's interior) the smoothed values beside it.
  for (let l = 0; l < 2; l++) {
    const S = lane[l];
    f.get(t).i32(4).shl().i32(8 * l).add().set(ii);
    f.get(ii).get(S.bi).op(0xb7).f64Store(L.BEST); // f64.convert_i32_s
    f.get(ii).get(S.bv).f64Store(L.BV);
    f.get(ii).f64(NaN).f64Store(L.DL);
    f.get(ii).f64(NaN).f64Store(L.DR);
    f.get(S.bi).i32(ei0).op(0x4a).get(S.bi).i32(ei1 - 1).ltS().op(I32_AND).if_(); // i32.gt_s
    f.get(S.bi).i32(1).sub().set(ii);
    dsOf(l, ii);
    f.set(S.sv);
    f.get(t).i32(4).shl().i32(8 * l).add().get(S.sv).f64Store(L.DL);
    f.get(S.bi).i32(1).add().set(ii);
    dsOf(l, ii);
    f.set(S.sv);
    f.get(t).i32(4).shl().i32(8 * l).add().get(S.sv).f64Store(L.DR);
    f.end();
  }
  f.get(t).i32(1).add().set(t);
  f.br(0);
  f.end().end();
}

/**
 * The loop over a block's pixels j = 0 .. nb - 1 that every pass of prep, fit and edge runs:
 * `body` emits one pixel's work inside a block: a branch to that block (`br 0` at the body's
 * own depth) goes on to the next pixel. The bytes are those of the loops written out in each
 * pass before (same module, checked by hash).
 */
function pixelLoop(f: Fn, j: string, body: () => void): void {
  f.i32(0).set(j);
  f.block().loop();
  f.get(j).get('nb').geS().brIf(1);
  f.block(); // per pixel: br 0 = next pixel
  body();
  f.end(); // per pixel
  f.get(j).i32(1).add().set(j);
  f.br(0);
  f.end().end();
}

/**
 * Two consecutive energies of one pixel in the staged rows (at addr + off and addr + off +
 * rs) as lanes 0 and 1 of an f32x4 (lanes 2, 3 zero) on the stack: v128.load32_zero, then
 * v128.load32_lane 1.
 */
function pairAt(f: Fn, addr: string, off: number, rs: number): void {
  f.get(addr).get(addr).vLoad32Zero(off).op(0xfd, 0x56, 2, ...uleb(off + rs), 1);
}

/** Staged rows before the first that addresses may be computed from (the crossing window's NW / 2 = 8 and the derivative's h + 1 <= DXT_PAD): never negative. */
const STAGE_GUARD = 10;

/** Guard entries of the DXT table on each side (indices idx + k down to -DXT_PAD). */
const DXT_PAD = 8;

/** The derivative screen's tolerance relative to max |e(k)| (~25 eps is the rounding bound; see screenedSearch). */
export const DERIV_SCREEN_REL = 1e-12;

/** Smallest |x(i+1) - x(i-1)| the screen takes (its reciprocal times a float32 difference stays far from overflow). */
const DERIV_SCREEN_MIN_DX = 1e-100;

const F64_ABS = 0x99, F64_NEG = 0x9a, F64_DIV = 0xa3, F64_MIN = 0xa4, F64_MAX = 0xa5;
const F64_EQ = 0x61, F64_LT = 0x63, F64_GT = 0x64, F64_LE = 0x65, F64_GE = 0x66;
const I32_LE_S = 0x4c, I32_AND = 0x71, I32_OR = 0x72, I32_SHR_S = 0x75, SELECT = 0x1b;

/**
 * The edge half (edgeCpu's choices, edge-fused.ts's search order) for the block's pixels
 * with FLAG 1, on an increasing grid: the 0.5 crossing nearest the anchor (the 15 intervals
 * around it first, screened by multiplications, the exact crossing only on the candidates;
 * when another interval could be as near, the intervals outward from the anchor until every
 * unvisited one lies farther than the best crossing), then the white line's maximum in
 * [xHalf, xHalf + width] (a screen by multiplications with its maximum, two points per
 * vector, then the exact n(i) only where the maximum can be; EDGE_SCREEN_REL) and, in a
 * second pass over the block, its parabola. Float64, every value the twin's
 * expression in the twin's order (n(i) = (y(i) - (preA + (preB xc(i)) / sc)) / step is
 * recomputed where the JavaScript kernel reused it: the same bits). Writes the float32
 * edge rows E0_HALF, WL_ENERGY, WL_HEIGHT into EOUT, or (no finite crossing) status NO_EDGE
 * into NOUT and NaN as E0_DERIV.
 */
function buildEdge(plan: EdgePlan, L: Layout): Fn {
  const { nE, x } = plan;
  const sc = plan.pre.scale, wlWidth = plan.whitelineWidth;
  let xAbsMax = 0, xsAbsMax = 0;
  for (let i = 0; i < nE; i++) {
    xAbsMax = Math.max(xAbsMax, Math.abs(x[i]));
    xsAbsMax = Math.max(xsAbsMax, Math.abs((x[i] - plan.pre.centre) / sc));
  }
  const f = new Fn('edge', OUT_PARAMS);
  const j = f.local('j', I32), yo = f.local('yo', I32), po = f.local('po', I32), jo = f.local('jo', I32);
  const { nA, eA } = outRows(f, jo);
  const lo = f.local('lo', I32), hi = f.local('hi', I32), mid = f.local('mid', I32);
  const Li = f.local('Li', I32), Ri = f.local('Ri', I32), i = f.local('i', I32), i1 = f.local('i1', I32), iHalf = f.local('iHalf', I32), k = f.local('k', I32);
  const [preA, preB, step, anchor, slack, bestDist, xHalf, dL, dR, nPrev, nNext, xcross, dist] =
    ['preA', 'preB', 'step', 'anchor', 'slack', 'bestDist', 'xHalf', 'dL', 'dR', 'nPrev', 'nNext', 'xcross', 'dist'].map((n) => f.local(n, F64));
  const [wlHi, inv, cTol, thr, n, kV, xw, hw, t0, t2, s0, s2, beta, alpha, tv] =
    ['wlHi', 'inv', 'cTol', 'thr', 'n', 'kV', 'xw', 'hw', 't0', 't2', 's0', 's2', 'beta', 'alpha', 'tv'].map((q) => f.local(q, F64));
  const wl0 = f.local('wl0', I32), wl1 = f.local('wl1', I32);
  const [aMaxV, absV, preAv, preBv, invV, vv, aV, stepV, nv] = ['aMaxV', 'absV', 'preAv', 'preBv', 'invV', 'vv', 'aV', 'stepV', 'nv'].map((q) => f.local(q, V128));
  const ya = f.local('ya', I32);
  const X = (idx: string) => f.get(idx).i32(3).shl().f64Load(L.X);
  const Y = (idx: string) => f.get(yo).get(idx).i32(L.rowStride).mul().add().f32Load(0).promote();
  // n(idx) = (y(idx) - (preA + (preB * xc(idx)) / sc)) / step (edgeCpu's n with preEdgeLine).
  const nOf = (idx: string) => {
    Y(idx);
    f.get(preA).get(preB).get(idx).i32(3).shl().f64Load(L.XC).fmul().f64(sc).op(F64_DIV).fadd();
    f.fsub().get(step).op(F64_DIV);
  };
  const finite = (q: string) => f.get(q).get(q).fsub().f64(0).op(F64_EQ);
  // n(idx) and n(idx + gap) as one f64x2 on the stack: nOf's operations in each lane (preAv,
  // preBv, stepV set).
  const nPair = (idx: string, gap: number) => {
    f.get(yo).get(idx).i32(L.rowStride).mul().add().set(ya);
    pairAt(f, ya, 0, gap * L.rowStride);
    f.f64x2PromoteLow();
    f.get(preAv).get(preBv);
    f.get(idx).i32(3).shl().set(ya);
    if (gap === 1) f.get(ya).vLoad(L.XC);
    else f.get(ya).get(ya).vLoad64Zero(L.XC).op(0xfd, 0x57, 3, ...uleb(L.XC + 8 * gap), 1); // v128.load64_lane 1
    f.f64x2Mul().f64(sc).f64x2Splat().f64x2Div().f64x2Add().f64x2Sub().get(stepV).f64x2Div();
  };
  // The crossing window: the NW points lo - NW / 2 .. lo + NW / 2 - 1 around the anchor, the
  // NW - 1 intervals c0 .. c0 + NW - 2 (c0 = lo - NW / 2).
  const NW = 16;
  const c0 = f.local('c0', I32), r = f.local('r', I32), cand = f.local('cand', I32), geB = f.local('geB', I32), ltB = f.local('ltB', I32);
  const [relV, ctV, tolV, halfV] = ['relV', 'ctV', 'tolV', 'halfV'].map((q) => f.local(q, V128));
  // x[c0 + q], addressed from lo = c0 + NW / 2 >= 0 (a negative base address would leave
  // the memory: wasm addresses are unsigned); c0 + q outside the grid reads a neighbouring
  // table, a value no result uses.
  const Xq = (q: number) => f.get(lo).i32(3).shl().f64Load(L.X + 8 * (q - NW / 2));
  // crossAt(i) (edgeCpu): n(i) < 0.5 <= n(i + 1), the crossing by linear interpolation, kept
  // when nearer than the best so far (the lowest index on ties).
  const crossAt = () => {
    f.block(); // br 0 = next interval
    nPair(i, 1);
    f.tee(nv).f64x2Extract(0).set(nPrev);
    f.get(nv).f64x2Extract(1).set(nNext);
    f.get(nPrev).f64(0.5).op(F64_LT).eqz().brIf(0);
    f.get(i).i32(1).add().set(i1);
    f.get(nNext).f64(0.5).op(F64_GE).eqz().brIf(0);
    X(i);
    f.f64(0.5).get(nPrev).fsub();
    X(i1);
    X(i);
    f.fsub().fmul().get(nNext).get(nPrev).fsub().op(F64_DIV).fadd().set(xcross);
    f.get(xcross).get(xcross).op(F64_EQ).eqz().brIf(0);
    f.get(xcross).get(anchor).fsub().op(F64_ABS).set(dist);
    f.get(dist).get(bestDist).op(F64_LT).get(dist).get(bestDist).op(F64_EQ).get(i).get(iHalf).ltS().op(I32_AND).op(I32_OR).if_();
    f.get(dist).set(bestDist);
    f.get(xcross).set(xHalf);
    f.get(i).set(iHalf);
    f.end();
    f.end();
  };
  pixelLoop(f, j, () => {
    f.get(j).i32(2).shl().i32Load(L.FLAG).eqz().brIf(0);
    f.get(j).i32(3).shl().set(po);
    f.get(j).i32(2).shl().i32(L.S).add().get('off').add().set(yo);
    f.get(po).f64Load(L.PA).set(preA);
    f.get(po).f64Load(L.PB).set(preB);
    f.get(po).f64Load(L.ST).set(step);
    f.get(po).f64Load(L.AN).set(anchor);
    f.get(j).i32(2).shl().set(jo);
    // lo: the first grid index with x[lo] >= anchor. Tried first: the pixel's own e0 index
    // (fit()'s nearest grid point to the anchor, IE0) or the next one, accepted when
    // x[lo - 1] < anchor <= x[lo]; else a binary search.
    f.get(j).i32(2).shl().i32Load(L.IE0).set(mid);
    f.get(mid).get(mid).i32(1).add();
    X(mid).get(anchor).op(F64_GE);
    f.op(SELECT).set(lo);
    f.i32(0).set(hi); // 0: search
    f.get(lo).eqz().get(lo).i32(3).shl().f64Load(L.X - 8).get(anchor).op(F64_LT).op(I32_OR);
    f.get(lo).i32(3).shl().f64Load(L.X).get(anchor).op(F64_GE).op(I32_AND).if_();
    f.i32(1).set(hi);
    f.end();
    f.get(hi).eqz().if_();
    f.i32(0).set(lo);
    f.i32(nE).set(hi);
    f.block().loop();
    f.get(lo).get(hi).geS().brIf(1);
    f.get(lo).get(hi).add().i32(1).op(I32_SHR_S).set(mid);
    X(mid).get(anchor).op(F64_LT).if_();
    f.get(mid).i32(1).add().set(lo);
    f.else_();
    f.get(mid).set(hi);
    f.end();
    f.br(0);
    f.end().end();
    f.end();
    // Intervals L, L-1, ... (x < anchor) and R, R+1, ... (x >= anchor).
    f.get(lo).i32(1).sub().i32(nE - 2).get(lo).i32(1).sub().i32(nE - 2).ltS().op(SELECT).set(Li);
    f.get(lo).set(Ri);
    f.f64(XCROSS_SLACK).get(anchor).op(F64_ABS).f64(xAbsMax).fadd().fmul().set(slack);
    // The window's intervals first. A screen by multiplications (as the white line's below):
    // a(i) = (mu(i) - (preA + preB xs(i))) / step with xs = xc / sc and 1 / step tabulated,
    // |a(i) - n(i)| <= ~8 eps S(i) <= tol(i) = EDGE_SCREEN_REL S(i), S(i) = (|mu(i)| + |preA| +
    // |preB| max|xs|) / step (edge-fused.ts), two points per vector. Interval i can hold a
    // crossing only where n(i) < 0.5 may hold (not a(i) - tol(i) >= 0.5) and n(i + 1) >= 0.5
    // may hold (not a(i + 1) + tol(i + 1) < 0.5); a NaN or infinite a or tol leaves both
    // possible. Those candidates (as a bit mask, usually one interval) get the twin's exact
    // crossAt, in index order (the nearest crossing, the lowest index on ties: the outward
    // search's choice). When that crossing is nearer than every interval outside the window
    // can be (less XCROSS_SLACK, strictly, so a tie outside cannot exist), it is the search's
    // result; otherwise the outward search.
    f.get(preA).f64x2Splat().set(preAv);
    f.get(preB).f64x2Splat().set(preBv);
    f.get(step).f64x2Splat().set(stepV);
    f.f64(1).get(step).op(F64_DIV).set(inv);
    f.get(inv).f64x2Splat().set(invV);
    f.f64(EDGE_SCREEN_REL).get(inv).fmul().f64x2Splat().set(relV);
    f.get(preA).op(F64_ABS).get(preB).op(F64_ABS).f64(xsAbsMax).fmul().fadd().f64(EDGE_SCREEN_REL).fmul().get(inv).fmul().f64x2Splat().set(ctV);
    f.f64(0.5).f64x2Splat().set(halfV);
    f.get(lo).i32(NW / 2).sub().set(c0);
    f.get(yo).get(c0).i32(L.rowStride).mul().add().set(r); // y(c0): c0 >= -NW / 2 and the staged rows' guard (STAGE_GUARD rows), so never negative
    f.i32(0).set(geB);
    f.i32(0).set(ltB);
    for (let q = 0; q < NW; q += 2) {
      pairAt(f, r, q * L.rowStride, L.rowStride);
      f.f64x2PromoteLow().set(vv);
      f.get(vv).get(preAv).get(preBv).get(lo).i32(3).shl().vLoad(L.XS + 8 * (q - NW / 2)).f64x2Mul().f64x2Add().f64x2Sub().get(invV).f64x2Mul().set(aV);
      f.get(vv).f64x2Abs().get(relV).f64x2Mul().get(ctV).f64x2Add().set(tolV);
      f.get(aV).get(tolV).f64x2Sub().get(halfV).op(0xfd, 0x4c).op(0xfd, 0xc4, 0x01); // f64x2.ge, i64x2.bitmask
      if (q) f.i32(q).shl();
      f.get(geB).op(I32_OR).set(geB);
      f.get(aV).get(tolV).f64x2Add().get(halfV).f64x2Lt().op(0xfd, 0xc4, 0x01);
      if (q) f.i32(q).shl();
      f.get(ltB).op(I32_OR).set(ltB);
    }
    f.get(geB).get(ltB).i32(1).op(0x76).op(I32_OR).i32(-1).op(0x73).i32((1 << (NW - 1)) - 1).op(I32_AND).set(cand); // i32.shr_u, i32.xor
    // Only intervals 0 .. nE - 2.
    f.get(c0).i32(0).ltS().if_();
    f.get(cand).i32(-1).i32(0).get(c0).sub().shl().op(I32_AND).set(cand);
    f.end();
    f.get(c0).i32(NW - 2).add().i32(nE - 2).op(0x4a).if_(); // i32.gt_s
    f.get(cand).i32(1).i32(nE - 1).get(c0).sub().shl().i32(1).sub().op(I32_AND).set(cand);
    f.end();
    f.block(); // br 0: crossing found
    f.f64(Infinity).set(bestDist);
    f.f64(NaN).set(xHalf);
    f.i32(0).set(iHalf);
    f.block().loop();
    f.get(cand).eqz().brIf(1);
    f.get(cand).op(0x68).get(c0).add().set(i); // i32.ctz
    f.get(cand).get(cand).i32(1).sub().op(I32_AND).set(cand);
    crossAt();
    f.br(0);
    f.end().end();
    f.f64(Infinity).set(dL);
    f.get(c0).i32(1).op(0x4e).if_(); // i32.ge_s: intervals left of c0 exist
    f.get(anchor);
    Xq(0);
    f.fsub().get(slack).fsub().set(dL);
    f.end();
    f.f64(Infinity).set(dR);
    f.get(c0).i32(NW - 1).add().i32(nE - 2).op(I32_LE_S).if_();
    Xq(NW - 1);
    f.get(anchor).fsub().get(slack).fsub().set(dR);
    f.end();
    f.get(bestDist).get(dL).op(F64_LT).get(bestDist).get(dR).op(F64_LT).op(I32_AND).brIf(0);
    f.f64(Infinity).set(bestDist);
    f.f64(NaN).set(xHalf);
    f.i32(0).set(iHalf);
    f.block().loop();
    f.get(Li).i32(0).geS().get(Ri).i32(nE - 2).op(I32_LE_S).op(I32_OR).eqz().brIf(1);
    f.get(Li).i32(0).geS().if_();
    f.f64(0).get(anchor).get(Li).i32(1).add().i32(3).shl().f64Load(L.X).fsub().op(F64_MAX).get(slack).fsub().set(dL);
    f.else_();
    f.f64(Infinity).set(dL);
    f.end();
    f.get(Ri).i32(nE - 2).op(I32_LE_S).if_();
    X(Ri).get(anchor).fsub().get(slack).fsub().set(dR);
    f.else_();
    f.f64(Infinity).set(dR);
    f.end();
    f.get(dL).get(bestDist).op(F64_LE).get(dR).get(bestDist).op(F64_LE).op(I32_OR).eqz().brIf(1);
    f.get(dL).get(dR).op(F64_LE).if_();
    f.get(Li).set(i);
    f.get(Li).i32(1).sub().set(Li);
    f.else_();
    f.get(Ri).set(i);
    f.get(Ri).i32(1).add().set(Ri);
    f.end();
    crossAt();
    f.br(0);
    f.end().end();
    f.end(); // crossing found
    finite(xHalf).eqz().if_();
    nA(NormRow.STATUS); f.f64(EdgeStatus.NO_EDGE).demote().f32Store(0);
    eA(EdgeRow.E0_DERIV); f.i32(0x7fc00000).i32Store(0);
    f.get(jo).i32(-1).i32Store(L.WK);
    f.br(1);
    f.end();
    eA(EdgeRow.E0_HALF); f.f64(plan.e0).get(xHalf).fadd().demote().f32Store(0);
    // The white line on [wl0, wl1): from the crossing's interval to the first x past wlHi
    // (x[nE] = +Infinity ends it). Two passes: (1) the screen a(i) = (mu(i) - (preA + preB
    // xs(i))) / step by multiplications, two points per vector, into A, with its maximum aMax
    // and the window's max |mu(i)| (NaN ignored, as the JavaScript kernel's general path);
    // (2) the exact n(i) (the twin's expression) of the points with a(i) >= aMax - 2 tol, in
    // index order, the first maximum kept (strict >). |a(i) - n(i)| <= tol (edge-fused.ts),
    // so every point that can be the twin's maximum is evaluated exactly: the twin's choice and
    // bits. A non-finite tol or aMax screens nothing out.
    f.get(xHalf).f64(wlWidth).fadd().set(wlHi);
    f.f64(-Infinity).set(kV);
    f.i32(-1).set(k);
    f.get(iHalf).set(i);
    f.block().loop();
    X(i).get(xHalf).op(F64_LT).eqz().brIf(1); // x[nE] = +Infinity ends it
    f.get(i).i32(1).add().set(i);
    f.br(0);
    f.end().end();
    f.get(i).set(wl0);
    f.f64(-Infinity).f64x2Splat().set(aMaxV);
    f.f64(0).f64x2Splat().set(absV);
    // Points i, i + 1: a into A, the maxima by pmax (a NaN never replaces the maximum, as the
    // JavaScript kernel's `if (a > aMax)`). |mu| of a point past the window may enter absV:
    // that only widens tol (more points evaluated exactly).
    const pair = (tail: boolean) => {
      f.get(yo).get(i).i32(L.rowStride).mul().add().set(r);
      pairAt(f, r, 0, L.rowStride);
      f.f64x2PromoteLow().set(vv);
      f.get(absV).get(vv).f64x2Abs().op(0xfd, 0xf7, 0x01).set(absV); // f64x2.pmax
      f.get(vv).get(preAv).get(preBv).get(i).i32(3).shl().vLoad(L.XS).f64x2Mul().f64x2Add().f64x2Sub().get(invV).f64x2Mul().set(aV);
      f.get(i).i32(3).shl().get(aV).vStore(L.A);
      if (tail) f.get(aV).f64(-Infinity).op(0xfd, 0x22, 1).set(aV); // f64x2.replace_lane 1: past the window
      f.get(aMaxV).get(aV).op(0xfd, 0xf7, 0x01).set(aMaxV);
    };
    f.block().loop();
    f.get(i).i32(3).shl().f64Load(L.X + 8).get(wlHi).op(F64_GT).brIf(1); // x[nE] = +Infinity ends it
    pair(false);
    f.get(i).i32(2).add().set(i);
    f.br(0);
    f.end().end();
    X(i).get(wlHi).op(F64_GT).eqz().if_();
    pair(true);
    f.get(i).i32(1).add().set(i);
    f.end();
    f.get(i).set(wl1);
    f.get(aMaxV).f64x2Extract(0).get(aMaxV).f64x2Extract(1).op(F64_MAX).set(thr);
    f.get(absV).f64x2Extract(0).get(absV).f64x2Extract(1).op(F64_MAX);
    f.get(preA).op(F64_ABS).fadd().get(preB).op(F64_ABS).f64(xsAbsMax).fmul().fadd();
    f.f64(EDGE_SCREEN_REL).fmul().get(inv).fmul().set(cTol); // tol
    finite(cTol).get(thr).get(thr).fsub().f64(0).op(F64_EQ).op(I32_AND).if_();
    f.get(thr).f64(2).get(cTol).fmul().fsub().set(thr); // aLo
    f.else_();
    f.f64(-Infinity).set(thr);
    f.end();
    f.get(thr).f64x2Splat().set(aV);
    // Pass 2: four points at a time, skipped by one test where all lie below aLo (the three
    // after the window hold -Infinity, below every aLo: never evaluated).
    const exact = (q: string) => {
      f.block(); // br 0 = next point
      f.get(q).i32(3).shl().f64Load(L.A).get(thr).op(F64_LT).brIf(0);
      nOf(q);
      f.set(n);
      finite(n).eqz().brIf(0);
      f.get(n).get(kV).op(F64_GT).if_();
      f.get(n).set(kV);
      f.get(q).set(k);
      f.end();
      f.end();
    };
    for (let q = 0; q < 3; q++) f.get(wl1).i32(3).shl().f64(-Infinity).f64Store(L.A + 8 * q);
    f.get(wl0).set(i);
    f.block().loop();
    f.get(i).get(wl1).geS().brIf(1);
    f.get(i).i32(3).shl().vLoad(L.A).get(aV).f64x2Lt();
    f.get(i).i32(3).shl().vLoad(L.A + 16).get(aV).f64x2Lt().vAnd().i64x2AllTrue().eqz().if_();
    exact(i);
    for (let q = 1; q < 4; q++) {
      f.get(i).i32(q).add().set(i1);
      exact(i1);
    }
    f.end();
    f.get(i).i32(4).add().set(i);
    f.br(0);
    f.end().end();
    // The white line's parabola in a second pass over the block (below), so one pixel's chain
    // of divisions there overlaps the next pixel's.
    f.get(jo).get(k).i32Store(L.WK);
    f.get(po).get(kV).f64Store(L.WKV);
  });
  pixelLoop(f, j, () => {
    f.get(j).i32(2).shl().set(jo);
    f.get(jo).i32Load(L.FLAG).eqz().brIf(0);
    f.get(jo).i32Load(L.WK).tee(k).i32(0).ltS().brIf(0);
    f.get(j).i32(3).shl().set(po);
    f.get(j).i32(2).shl().i32(L.S).add().get('off').add().set(yo);
    f.get(po).f64Load(L.PA).set(preA);
    f.get(po).f64Load(L.PB).set(preB);
    f.get(po).f64Load(L.ST).set(step);
    f.get(po).f64Load(L.WKV).set(kV);
    X(k).set(xw);
    f.get(kV).set(hw);
    f.get(k).i32(0).op(0x4a).get(k).i32(nE - 1).ltS().op(I32_AND).if_(); // i32.gt_s
    f.get(k).i32(1).sub().set(i);
    // nm, np (nPair), then parabolaVertex(x[k-1] - x[k], x[k+1] - x[k], nm, kV, np), same
    // operations and order, its t0, t2 and s0, s2 two per vector.
    f.get(preA).f64x2Splat().set(preAv);
    f.get(preB).f64x2Splat().set(preBv);
    f.get(step).f64x2Splat().set(stepV);
    nPair(i, 2);
    f.set(nv);
    f.get(i).i32(3).shl().set(ya);
    f.get(ya).get(ya).vLoad64Zero(L.X).op(0xfd, 0x57, 3, ...uleb(L.X + 16), 1); // x[k-1], x[k+1]
    X(k);
    f.f64x2Splat().f64x2Sub().set(vv);
    f.get(vv).f64x2Extract(0).set(t0);
    f.get(vv).f64x2Extract(1).set(t2);
    f.get(nv).get(kV).f64x2Splat().f64x2Sub().get(vv).f64x2Div().set(aV);
    f.get(aV).f64x2Extract(0).set(s0);
    f.get(aV).f64x2Extract(1).set(s2);
    f.get(s2).get(s0).fsub().get(t2).get(t0).fsub().op(F64_DIV).set(beta);
    f.get(s0).get(beta).get(t0).fmul().fsub().set(alpha);
    f.get(beta).f64(0).op(F64_LT).if_();
    f.get(alpha).op(F64_NEG).f64(2).get(beta).fmul().op(F64_DIV).get(t0).op(F64_MAX).get(t2).op(F64_MIN).set(tv);
    f.get(kV).get(alpha).get(tv).fmul().fadd().get(beta).get(tv).fmul().get(tv).fmul().fadd().set(n);
    finite(tv).get(n).get(n).fsub().f64(0).op(F64_EQ).op(I32_AND).if_();
    X(k).get(tv).fadd().set(xw);
    f.get(n).set(hw);
    f.end();
    f.end();
    f.end();
    eA(EdgeRow.WL_ENERGY); f.f64(plan.e0).get(xw).fadd().demote().f32Store(0);
    eA(EdgeRow.WL_HEIGHT); f.get(hw).demote().f32Store(0);
  });
  return f;
}

/**
 * The normalize half (normalizeCpu's fits, edge-fused.ts's tabulated grid parts) for every
 * pixel of the block, after prep(): the parabola through the derivative maximum, the own-e0
 * index, the pre-edge line and post-edge polynomial from the plan's tables (TPRE, TCHOL: the
 * grid-only sums and factor, made by the twin's loops), the noise, the step, the rebase, the
 * status, written as float32 rows into NOUT (and E0_DERIV into EOUT); the edge search's
 * inputs (PA, PB, ST, AN, FLAG 1) for pixels with status OK. A pixel with a non-finite value
 * in its pre- or post-edge window gets CODE 0 and nothing else: the JavaScript kernel runs
 * the twin's loops for it (CODE 1: done here). Scalar float64, the twin's expressions in the
 * twin's order, so the same bits.
 */
function buildFit(plan: EdgePlan, L: Layout): Fn {
  const { nE, larch, maskSigma } = plan;
  const deg = plan.post.degree;
  const ei0 = plan.edge.i0, ei1 = plan.edge.i1;
  const B = EDGE_WASM_BLOCK;
  const f = new Fn('fit', OUT_PARAMS);
  const [j, yo, po, jo, best, ie0, k, a0, a1, b0, b1, uo, i] = ['j', 'yo', 'po', 'jo', 'best', 'ie0', 'k', 'a0', 'a1', 'b0', 'b1', 'uo', 'i'].map((q) => f.local(q, I32));
  const [bestV, xd, t0, t2, s0, s2, beta, alpha, tv, x0, pc, ps, qc, qs, sy, suy, p0, p1, p2, det, la, lb, r0, r1, r2, c0, cf1, cf2, l00, l10, l20, l11, l21, l22, z0, z1, z2, rss, noise, step, v, d, tt, al, be] =
    ['bestV', 'xd', 't0', 't2', 's0', 's2', 'beta', 'alpha', 'tv', 'x0', 'pc', 'ps', 'qc', 'qs', 'sy', 'suy', 'p0', 'p1', 'p2', 'det', 'la', 'lb', 'r0', 'r1', 'r2', 'c0', 'cf1', 'cf2', 'l00', 'l10', 'l20', 'l11', 'l21', 'l22', 'z0', 'z1', 'z2', 'rss', 'noise', 'step', 'v', 'd', 'tt', 'al', 'be'].map((q) => f.local(q, F64));
  const solved = f.local('solved', I32), ya = f.local('ya', I32);
  const [vv, dV, tV, p2V, laV, lbV, pcV, psV, finV] = ['vv', 'dV', 'tV', 'p2V', 'laV', 'lbV', 'pcV', 'psV', 'finV'].map((q) => f.local(q, V128));
  // Two points per vector, i and i + 1 while i + 1 < end: the per-point work (the residual's
  // division, the products) in f64x2 lanes, each sum still added point by point in index
  // order (lane 0, then lane 1): the twin's bits. `body` leaves the pair's values in locals.
  const pairs = (end: string, body: () => void) => {
    f.block().loop();
    f.get(i).i32(1).add().get(end).geS().brIf(1);
    f.get(yo).get(i).i32(L.rowStride).mul().add().set(ya);
    pairAt(f, ya, 0, L.rowStride);
    f.f64x2PromoteLow().set(vv);
    body();
    f.get(i).i32(2).add().set(i);
    f.br(0);
    f.end().end();
  };
  // Whether every value of a window's pairs is finite: the differences v - v (+0 where v is
  // finite, else NaN) summed over the pairs (finiteAdd), tested once after them
  // (finiteTest, at the pixel's block depth + 1): a pixel with a non-finite value gets CODE 0
  // and the JavaScript kernel's loops (what it summed meanwhile is not used).
  const finiteAdd = () => {
    f.get(finV).get(vv).get(vv).f64x2Sub().f64x2Add().set(finV);
  };
  const finiteTest = () => {
    f.get(finV).f64(0).f64x2Splat().f64x2Eq().i64x2AllTrue().eqz().if_();
    f.get(jo).i32(0).i32Store(L.CODE);
    f.br(1); // next pixel
    f.end();
  };
  // residual pair: mu - (la + (lb * (x - pc)) / ps) into dV.
  const residualPair = () => {
    f.get(vv).get(laV).get(lbV).get(i).i32(3).shl().vLoad(L.X).get(pcV).f64x2Sub().f64x2Mul().get(psV).f64x2Div().f64x2Add().f64x2Sub().set(dV);
  };
  const addLanes = (acc: string, vec: () => void) => {
    for (let l = 0; l < 2; l++) { f.get(acc); vec(); f.f64x2Extract(l).fadd().set(acc); }
  };
  const X = (idx: string) => f.get(idx).i32(3).shl().f64Load(L.X);
  const Xk = (idx: string, dk: number) => f.get(idx).i32(3).shl().f64Load(L.X + 8 * dk);
  const Y = (idx: string) => f.get(yo).get(idx).i32(L.rowStride).mul().add().f32Load(0).promote();
  const finite = (q: string) => f.get(q).get(q).fsub().f64(0).op(F64_EQ);
  const { nA, eA } = outRows(f, jo);
  const normOut = (row: number, value: () => void) => { nA(row); value(); f.demote().f32Store(0); };
  const nanBits = 0x7fc00000; // float32 NaN as JavaScript stores NaN
  // A pixel's norm rows as no_data (status, then NaN in every other row); used by two passes.
  const noData = () => {
    nA(NormRow.STATUS); f.f64(EdgeStatus.NO_DATA).demote().f32Store(0);
    for (let r = 1; r < NORM_ROWS; r++) { nA(r); f.i32(nanBits).i32Store(0); }
  };
  // The pixel's own-e0 grid value and its windows and bases, from the per-index tables (ie0 set).
  const ownE0Tables = () => {
    X(ie0).set(x0);
    f.get(ie0).i32(4).shl().set(k); // 16 bytes per index (WIN)
    f.get(k).i32Load(L.WIN).set(a0);
    f.get(k).i32Load(L.WIN + 4).set(a1);
    f.get(k).i32Load(L.WIN + 8).set(b0);
    f.get(k).i32Load(L.WIN + 12).set(b1);
    f.get(ie0).i32(5).shl().set(k); // 32 bytes per index (BASIS, TPRE)
    f.get(k).f64Load(L.BASIS).set(pc);
    f.get(k).f64Load(L.BASIS + 8).set(ps);
    f.get(k).f64Load(L.BASIS + 16).set(qc);
    f.get(k).f64Load(L.BASIS + 24).set(qs);
    f.get(k).f64Load(L.TPRE).set(p0);
  };
  // A later pass's start on pixel j: its addresses, the pre-edge line and own e0 an earlier
  // pass stored, and the tables again.
  const reloadPixel = () => {
    f.get(j).i32(3).shl().set(po);
    f.get(j).i32(2).shl().i32(L.S).add().get('off').add().set(yo);
    f.get(po).f64Load(L.LA).set(la);
    f.get(po).f64Load(L.LB).set(lb);
    f.get(po).f64Load(L.XD).set(xd);
    f.get(jo).i32Load(L.IE0).set(ie0);
    ownE0Tables();
  };
  // Phase 0 (its own pass over the block, so one pixel's chain of divisions overlaps the
  // next pixel's): the own e0 (derivative maximum from prep, its parabola) and its index.
  pixelLoop(f, j, () => {
    f.get(j).i32(3).shl().set(po);
    f.get(po).f64Load(L.BEST).op(0xaa).set(best); // i32.trunc_f64_s: -1 or an index
    f.get(po).f64Load(L.BV).set(bestV);
    f.f64(NaN).set(xd);
    f.get(best).i32(0).geS().if_();
    X(best).set(xd);
    f.get(best).i32(ei0).op(0x4a).get(best).i32(ei1 - 1).ltS().op(I32_AND).if_();
    Xk(best, -1); X(best); f.fsub().set(t0);
    Xk(best, 1); X(best); f.fsub().set(t2);
    f.get(po).f64Load(L.DL).get(bestV).fsub().get(t0).op(F64_DIV).set(s0);
    f.get(po).f64Load(L.DR).get(bestV).fsub().get(t2).op(F64_DIV).set(s2);
    f.get(s2).get(s0).fsub().get(t2).get(t0).fsub().op(F64_DIV).set(beta);
    f.get(s0).get(beta).get(t0).fmul().fsub().set(alpha);
    f.get(beta).f64(0).op(F64_LT).if_();
    f.get(alpha).op(F64_NEG).f64(2).get(beta).fmul().op(F64_DIV).get(t0).op(F64_MAX).get(t2).op(F64_MIN).set(tv);
    finite(tv).if_();
    X(best).get(tv).fadd().set(xd);
    f.end();
    f.end();
    f.end();
    f.end();
    f.i32(larch.ie0).set(ie0);
    if (!larch.fixed) {
      finite(xd).if_();
      f.get(best).set(k);
      f.get(k).set(ie0);
      if (nE > 1) {
        f.get(k).i32(0).op(0x4a).if_();
        Xk(k, -1).get(xd).fsub().op(F64_ABS);
        X(k).get(xd).fsub().op(F64_ABS);
        f.op(F64_LE).if_();
        f.get(k).i32(1).sub().set(ie0);
        f.end();
        f.end();
        f.get(k).i32(1).add().i32(nE).ltS().if_();
        Xk(k, 1).get(xd).fsub().op(F64_ABS);
        X(ie0).get(xd).fsub().op(F64_ABS);
        f.op(F64_LT).if_();
        f.get(k).i32(1).add().set(ie0);
        f.end();
        f.end();
      }
      f.end();
    }
    f.get(po).get(xd).f64Store(L.XD);
    f.get(j).i32(2).shl().get(ie0).i32Store(L.IE0);
  });
  pixelLoop(f, j, () => {
    f.get(j).i32(2).shl().set(jo);
    f.get(j).i32(3).shl().set(po);
    f.get(j).i32(2).shl().i32(L.S).add().get('off').add().set(yo);
    f.get(jo).i32(1).i32Store(L.CODE);
    f.get(jo).i32(0).i32Store(L.FLAG);
    f.get(jo).i32(0).i32Store(L.GO);
    for (let r = 0; r < EDGE_ROWS; r++) { eA(r); f.i32(nanBits).i32Store(0); }
    // 1. Own e0 and its index (phase 0).
    f.get(po).f64Load(L.XD).set(xd);
    f.get(jo).i32Load(L.IE0).set(ie0);
    // 2.-3. Windows and bases from the tables; the pre-edge sums (every point finite, else CODE 0).
    ownE0Tables();
    f.get(k).f64Load(L.TPRE + 8).set(p1);
    f.get(k).f64Load(L.TPRE + 16).set(p2);
    f.get(k).f64Load(L.TPRE + 24).set(det);
    f.get(ie0).i32(8 * nE).mul().set(uo);
    f.f64(0).set(sy);
    f.f64(0).set(suy);
    f.get(a0).set(i);
    f.f64(0).f64x2Splat().set(finV);
    pairs(a1, () => {
      finiteAdd();
      f.get(uo).get(i).i32(3).shl().add().vLoad(L.TU).get(vv).f64x2Mul().set(tV);
      for (let l = 0; l < 2; l++) {
        f.get(sy).get(vv).f64x2Extract(l).fadd().set(sy);
        f.get(suy).get(tV).f64x2Extract(l).fadd().set(suy);
      }
    });
    finiteTest();
    f.block().loop();
    f.get(i).get(a1).geS().brIf(1);
    Y(i).set(v);
    f.get(v).get(v).fsub().f64(0).op(F64_EQ).if_();
    f.else_();
    f.get(jo).i32(0).i32Store(L.CODE);
    f.br(3); // next pixel
    f.end();
    f.get(sy).get(v).fadd().set(sy);
    f.get(suy).get(uo).get(i).i32(3).shl().add().f64Load(L.TU).get(v).fmul().fadd().set(suy);
    f.get(i).i32(1).add().set(i);
    f.br(0);
    f.end().end();
    // The post-edge right-hand side (every point finite, else CODE 0).
    f.get(p0).f64(3).op(F64_LT).get(det).f64(SINGULAR_REL).get(p0).fmul().get(p0).fmul().op(F64_GT).eqz().op(I32_OR).if_();
    noData();
    f.br(1);
    f.end();
    f.get(p2).get(sy).fmul().get(p1).get(suy).fmul().fsub().get(det).op(F64_DIV).set(la);
    f.get(p0).get(suy).fmul().get(p1).get(sy).fmul().fsub().get(det).op(F64_DIV).set(lb);
    // Phase 1 ends: the pixel's state for phase 2 (a second pass over the block, so the
    // long dependent chains of one pixel's fits overlap with the next pixel's).
    f.get(po).get(la).f64Store(L.LA);
    f.get(po).get(lb).f64Store(L.LB);
    f.get(po).get(xd).f64Store(L.XD);
    f.get(jo).get(ie0).i32Store(L.IE0);
    f.get(jo).i32(1).i32Store(L.GO);
  });
  pixelLoop(f, j, () => {
    f.get(j).i32(2).shl().set(jo);
    f.get(jo).i32Load(L.GO).eqz().brIf(0);
    reloadPixel();
    f.get(ie0).i32(8 * nE).mul().set(uo);
    f.f64(0).set(r0);
    f.f64(0).set(r1);
    f.f64(0).set(r2);
    f.get(la).f64x2Splat().set(laV);
    f.get(lb).f64x2Splat().set(lbV);
    f.get(pc).f64x2Splat().set(pcV);
    f.get(ps).f64x2Splat().set(psV);
    f.get(b0).set(i);
    f.f64(0).f64x2Splat().set(finV);
    pairs(b1, () => {
      finiteAdd();
      residualPair();
      f.get(uo).get(i).i32(3).shl().add().vLoad(L.TT).set(tV);
      // r0 += 1 * d (1 * d is d exactly); r1 += t * d; r2 += t * t * d: the twin's products,
      // two per vector, added lane by lane in index order.
      if (deg >= 2) f.get(tV).get(tV).f64x2Mul().get(dV).f64x2Mul().set(p2V);
      if (deg >= 1) f.get(tV).get(dV).f64x2Mul().set(tV);
      for (let l = 0; l < 2; l++) {
        f.get(r0).get(dV).f64x2Extract(l).fadd().set(r0);
        if (deg >= 1) f.get(r1).get(tV).f64x2Extract(l).fadd().set(r1);
        if (deg >= 2) f.get(r2).get(p2V).f64x2Extract(l).fadd().set(r2);
      }
    });
    finiteTest();
    f.block().loop();
    f.get(i).get(b1).geS().brIf(1);
    Y(i).set(v);
    f.get(v).get(v).fsub().f64(0).op(F64_EQ).if_();
    f.else_();
    f.get(jo).i32(0).i32Store(L.CODE);
    f.br(3);
    f.end();
    f.get(v).get(la).get(lb);
    X(i);
    f.get(pc).fsub().fmul().get(ps).op(F64_DIV).fadd().fsub().set(d);
    f.get(uo).get(i).i32(3).shl().add().f64Load(L.TT).set(tt);
    f.get(r0).f64(1).get(d).fmul().fadd().set(r0);
    if (deg >= 1) f.get(r1).get(tt).get(d).fmul().fadd().set(r1);
    if (deg >= 2) f.get(r2).get(tt).get(tt).fmul().get(d).fmul().fadd().set(r2);
    f.get(i).i32(1).add().set(i);
    f.br(0);
    f.end().end();
    // The right-hand side for the solve, in a pass of its own over the block (below), so one
    // pixel's chain of divisions there overlaps the next pixel's (C0, C1, C2 hold r0, r1, r2
    // until the solve replaces them with the coefficients).
    f.get(po).get(r0).f64Store(L.C0);
    f.get(po).get(r1).f64Store(L.C1);
    f.get(po).get(r2).f64Store(L.C2);
  });
  pixelLoop(f, j, () => {
    f.get(j).i32(2).shl().set(jo);
    f.get(jo).i32Load(L.GO).eqz().brIf(0);
    f.get(jo).i32Load(L.CODE).eqz().brIf(0); // left to JavaScript
    f.get(j).i32(3).shl().set(po);
    f.get(po).f64Load(L.C0).set(r0);
    f.get(po).f64Load(L.C1).set(r1);
    f.get(po).f64Load(L.C2).set(r2);
    f.get(jo).i32Load(L.IE0).set(ie0);
    f.get(ie0).i32(4).shl().set(k); // 16 bytes per index (WIN)
    f.get(k).i32Load(L.WIN + 8).set(b0);
    f.get(k).i32Load(L.WIN + 12).set(b1);
    // solve3 / solve2 / solve1 with the tabulated factor (TCHOL), the twin's operations.
    f.get(ie0).i32(6).shl().set(k); // 64 bytes per index (TCHOL)
    f.f64(0).set(c0);
    f.f64(0).set(cf1);
    f.f64(0).set(cf2);
    f.i32(0).set(solved);
    if (deg === 2) {
      f.get(k).f64Load(L.TCHOL + 48).f64(1).op(F64_EQ).if_();
      f.get(k).f64Load(L.TCHOL).set(l00);
      f.get(k).f64Load(L.TCHOL + 8).set(l10);
      f.get(k).f64Load(L.TCHOL + 16).set(l20);
      f.get(k).f64Load(L.TCHOL + 24).set(l11);
      f.get(k).f64Load(L.TCHOL + 32).set(l21);
      f.get(k).f64Load(L.TCHOL + 40).set(l22);
      f.get(r0).get(l00).op(F64_DIV).set(z0);
      f.get(r1).get(l10).get(z0).fmul().fsub().get(l11).op(F64_DIV).set(z1);
      f.get(r2).get(l20).get(z0).fmul().fsub().get(l21).get(z1).fmul().fsub().get(l22).op(F64_DIV).set(z2);
      f.get(z2).get(l22).op(F64_DIV).set(cf2);
      f.get(z1).get(l21).get(cf2).fmul().fsub().get(l11).op(F64_DIV).set(cf1);
      f.get(z0).get(l10).get(cf1).fmul().fsub().get(l20).get(cf2).fmul().fsub().get(l00).op(F64_DIV).set(c0);
      f.i32(1).set(solved);
      f.end();
    } else if (deg === 1) {
      // dt = TCHOL[0], m0 = [1], m1 = [2], m4 = [3] (l00.. reused as m0, m1, m4, dt)
      f.get(k).f64Load(L.TCHOL).set(z0);
      f.get(k).f64Load(L.TCHOL + 8).set(l00);
      f.get(k).f64Load(L.TCHOL + 16).set(l10);
      f.get(k).f64Load(L.TCHOL + 24).set(l20);
      f.get(z0).op(F64_ABS).f64(SINGULAR_REL).get(l00).fmul().get(l00).fmul().op(F64_GT).if_();
      f.get(l20).get(r0).fmul().get(l10).get(r1).fmul().fsub().get(z0).op(F64_DIV).set(c0);
      f.get(l00).get(r1).fmul().get(l10).get(r0).fmul().fsub().get(z0).op(F64_DIV).set(cf1);
      f.i32(1).set(solved);
      f.end();
    } else {
      f.get(k).f64Load(L.TCHOL).set(l00);
      f.get(l00).f64(0).op(F64_GT).if_();
      f.get(r0).get(l00).op(F64_DIV).set(c0);
      f.i32(1).set(solved);
      f.end();
    }
    f.get(b1).get(b0).sub().i32(deg + 1).ltS().get(solved).eqz().op(I32_OR).if_();
    noData();
    f.get(jo).i32(0).i32Store(L.GO);
    f.br(1);
    f.end();
    // Phase 2 ends: the polynomial's coefficients for phase 3 (noise, step, rebase, status, rows).
    f.get(po).get(c0).f64Store(L.C0);
    f.get(po).get(cf1).f64Store(L.C1);
    f.get(po).get(cf2).f64Store(L.C2);
  });
  pixelLoop(f, j, () => {
    f.get(j).i32(2).shl().set(jo);
    f.get(jo).i32Load(L.GO).eqz().brIf(0);
    f.get(jo).i32Load(L.CODE).eqz().brIf(0); // left to JavaScript in phase 2
    reloadPixel();
    f.get(po).f64Load(L.C0).set(c0);
    f.get(po).f64Load(L.C1).set(cf1);
    f.get(po).f64Load(L.C2).set(cf2);
    f.get(la).f64x2Splat().set(laV);
    f.get(lb).f64x2Splat().set(lbV);
    f.get(pc).f64x2Splat().set(pcV);
    f.get(ps).f64x2Splat().set(psV);
    f.f64(0).set(rss);
    f.get(a0).set(i);
    pairs(a1, () => {
      residualPair();
      f.get(dV).get(dV).f64x2Mul().set(tV);
      addLanes(rss, () => f.get(tV));
    });
    f.block().loop();
    f.get(i).get(a1).geS().brIf(1);
    Y(i);
    f.get(la).get(lb);
    X(i);
    f.get(pc).fsub().fmul().get(ps).op(F64_DIV).fadd().fsub().set(d);
    f.get(rss).get(d).get(d).fmul().fadd().set(rss);
    f.get(i).i32(1).add().set(i);
    f.br(0);
    f.end().end();
    f.get(rss).get(p0).f64(2).fsub().op(F64_DIV).op(0x9f).set(noise); // f64.sqrt
    f.get(ie0).i32(5).shl().set(k); // 32 bytes per index (TQ)
    f.get(k).f64Load(L.TQ).set(t0);
    f.get(c0).get(cf1).get(t0).fmul().fadd().get(cf2).get(t0).fmul().get(t0).fmul().fadd().set(step);
    // preA = la + (lb * (pre.centre - pc)) / ps; preB = (lb * pre.scale) / ps.
    f.get(la).get(lb).f64(plan.pre.centre).get(pc).fsub().fmul().get(ps).op(F64_DIV).fadd().set(v);
    f.get(lb).f64(plan.pre.scale).fmul().get(ps).op(F64_DIV).set(d);
    f.get(po).get(v).f64Store(L.PA);
    f.get(po).get(d).f64Store(L.PB);
    f.get(po).get(step).f64Store(L.ST);
    normOut(NormRow.PRE_A, () => f.get(v));
    normOut(NormRow.PRE_B, () => f.get(d));
    // rebase: alpha = post.scale / qs, beta = (post.centre - qc) / qs.
    f.get(k).f64Load(L.TQ + 8).set(al);
    f.get(k).f64Load(L.TQ + 16).set(be);
    normOut(NormRow.POST_C0, () => f.get(c0).get(cf1).get(be).fmul().fadd().get(cf2).get(be).fmul().get(be).fmul().fadd());
    normOut(NormRow.POST_C1, () => f.get(cf1).f64(2).get(cf2).fmul().get(be).fmul().fadd().get(al).fmul());
    normOut(NormRow.POST_C2, () => f.get(cf2).get(al).fmul().get(al).fmul());
    normOut(NormRow.STEP, () => f.get(step));
    normOut(NormRow.NOISE, () => f.get(noise));
    normOut(NormRow.E0_DERIV, () => f.get(xd));
    normOut(NormRow.E0_OWN, () => f.get(x0));
    // ok = step > maskSigma * noise && step > STEP_MIN_REL * |la + (lb * (x0 - pc)) / ps|
    f.get(step).f64(maskSigma).get(noise).fmul().op(F64_GT);
    f.get(step).f64(STEP_MIN_REL).get(la).get(lb).get(x0).get(pc).fsub().fmul().get(ps).op(F64_DIV).fadd().op(F64_ABS).fmul().op(F64_GT);
    f.op(I32_AND).if_();
    nA(NormRow.STATUS); f.f64(EdgeStatus.OK).demote().f32Store(0);
    finite(xd).if_();
    eA(EdgeRow.E0_DERIV); f.f64(plan.e0).get(xd).fadd().demote().f32Store(0);
    f.get(po).get(xd).f64Store(L.AN);
    f.else_();
    f.get(po).f64(0).f64Store(L.AN);
    f.end();
    f.get(jo).i32(1).i32Store(L.FLAG);
    f.else_();
    nA(NormRow.STATUS); f.f64(EdgeStatus.LOW_STEP).demote().f32Store(0);
    f.end();
  });
  return f;
}

/** The plan's grid-only tables (edge-fused.ts builds them; copied into the heap for fit()). */
export interface EdgeTables {
  win: Int32Array;
  basis: Float64Array;
  u: Float64Array;
  t: Float64Array;
  pre: Float64Array;
  chol: Float64Array;
}

/**
 * Another thread's WebAssembly heap for an EdgeWasm run by a worker thread (edge-threads.ts):
 * `mem` is that heap's (shared) memory and `base` the address of a block of
 * edgeWasmTargetBytes(nE) its owner allocated there for this worker alone. The worker's
 * instance keeps its staging rows, block scratch and tables there, and every array handed to
 * it (the tile, the output rows) lies in `mem` at its byteOffset: read and written in place,
 * as on the owner's own thread. The owner frees the block after the worker's last run.
 */
export interface EdgeTarget {
  mem: WasmMemory;
  base: number;
}

/** Bytes of the block an owner allocates for one worker's EdgeTarget. */
export function edgeWasmTargetBytes(nE: number): number {
  return layout(nE, 0).bytes;
}

/** One plan's module and scratch: stage a block, run prep, then (increasing grids) fit + edge. */
export class EdgeWasm {
  private readonly L: Layout;
  private readonly ex: Exports;
  /** Per pixel of the block: the derivative maximum's index (-1: none) and value. */
  readonly best: Float64Array;
  readonly bestV: Float64Array;
  /** Per pixel: the smoothed derivative at best - 1 and best + 1 (meaningful where best - 1 and best + 1 lie in the edge window). */
  readonly dsL: Float64Array;
  readonly dsR: Float64Array;
  private readonly staged: Float32Array;
  /** After finish(): per pixel of the block, 1 = its rows are in normOut / edgeOut, 0 = the JavaScript kernel does this pixel. */
  readonly code: Int32Array;
  /** After finish(): the block's float32 rows, normOut[k] and edgeOut[k] of EDGE_WASM_BLOCK pixels each. */
  readonly normOut: Float32Array[];
  readonly edgeOut: Float32Array[];

  /** `target`: run in another thread's heap (EdgeTarget), else in this thread's. */
  constructor(readonly plan: EdgePlan, T: EdgeTables, private readonly target: EdgeTarget | null = null) {
    const { nE } = plan;
    const base = target ? target.base : heapAlloc(layout(nE, 0).bytes);
    const L = (this.L = layout(nE, base));
    const mem = target ? target.mem : wasmHeap().mem;
    this.ex = instantiate<Exports>(assemble([buildStage(nE, L), buildPrep(plan, L), buildFit(plan, L), buildEdge(plan, L)], { pages: 1, maxPages: 65536, shared: true }), mem);
    const buf = target ? target.mem.buffer : wasmHeap().buffer;
    const { x } = plan;
    const f64 = (a: number, n: number) => new Float64Array(buf, a, n);
    f64(L.X, nE + 2).set([...x, Infinity, Infinity]);
    f64(L.XC, nE).set(x.map((v) => v - plan.pre.centre));
    f64(L.XS, nE + 2).set([...x.map((v) => v - plan.pre.centre).map((v) => v / plan.pre.scale), 0, 0]);
    new Int32Array(buf, L.WIN, 4 * nE).set(T.win);
    f64(L.BASIS, 4 * nE).set(T.basis);
    f64(L.TPRE, 4 * nE).set(T.pre);
    f64(L.TCHOL, 8 * nE).set(T.chol);
    f64(L.TU, nE * nE).set(T.u);
    f64(L.TT, nE * nE).set(T.t);
    const tq = f64(L.TQ, 4 * nE);
    for (let k = 0; k < nE; k++) {
      const qc = T.basis[4 * k + 2], qs = T.basis[4 * k + 3];
      tq.set([(x[k] - qc) / qs, plan.post.scale / qs, (plan.post.centre - qc) / qs, 0], 4 * k);
    }
    const dxt = f64(L.DXT, nE + 2 * DXT_PAD).fill(NaN);
    for (let i = 1; i <= nE - 2; i++) dxt[i + DXT_PAD] = x[i + 1] - x[i - 1];
    const B = EDGE_WASM_BLOCK;
    this.code = new Int32Array(buf, L.CODE, B);
    this.normOut = Array.from({ length: NORM_ROWS }, (_, k) => new Float32Array(buf, L.NOUT + 4 * k * B, B));
    this.edgeOut = Array.from({ length: EDGE_ROWS }, (_, k) => new Float32Array(buf, L.EOUT + 4 * k * B, B));
    this.best = new Float64Array(buf, L.BEST, B);
    this.bestV = new Float64Array(buf, L.BV, B);
    this.dsL = new Float64Array(buf, L.DL, B);
    this.dsR = new Float64Array(buf, L.DR, B);
    this.staged = new Float32Array(buf, L.S, (L.rowStride / 4) * nE);
    // A target's block stays with its owner.
    if (!target) scratch.register(this, base);
  }

  /** Whether `a` lies in the instance's memory (read or written in place at a.byteOffset): a target's views always do. */
  inMem(a: ArrayBufferView): boolean {
    return this.target !== null || inHeap(a);
  }

  /** Stages pixels p0 .. p0 + n (n <= EDGE_WASM_BLOCK * EDGE_WASM_GROUP) of the energy-major tile (read in place from a heap tile by memory.copy). */
  stage(cube: Float32Array, P: number, p0: number, n: number): void {
    const { nE } = this.plan;
    if (this.inMem(cube)) this.ex.stage(cube.byteOffset + 4 * p0, 4 * P, 4 * n);
    else {
      const rs = this.L.rowStride / 4;
      for (let i = 0; i < nE; i++) this.staged.set(cube.subarray(i * P + p0, i * P + p0 + n), i * rs);
    }
  }

  /** Block g (0 .. EDGE_WASM_GROUP - 1) of the staged pixels, nb <= EDGE_WASM_BLOCK of them: searched into best / bestV. */
  run(g: number, nb: number): void {
    // An odd last pixel's partner lane reads stale staged values: computed and ignored.
    this.ex.prep(4 * EDGE_WASM_BLOCK * g, (nb + 1) >> 1);
  }

  /** Pixel j of staged block g: its nE values, pixel-major, into out (the JavaScript kernel's pixels). */
  gather(g: number, j: number, out: Float32Array): void {
    const { nE } = this.plan;
    const rs = this.L.rowStride / 4, st = this.staged;
    for (let i = 0, a = EDGE_WASM_BLOCK * g + j; i < nE; i++, a += rs) out[i] = st[a];
  }

  /** After run(), on an increasing grid: normalize and edge of block g's pixels (fit(), edge()) into code / normOut / edgeOut. */
  finish(g: number, nb: number): void {
    const { NOUT, EOUT } = this.L;
    const rs = 4 * EDGE_WASM_BLOCK, off = 4 * EDGE_WASM_BLOCK * g;
    this.ex.fit(nb, NOUT, EOUT, rs, off);
    this.ex.edge(nb, NOUT, EOUT, rs, off);
  }

  /**
   * finish() writing the block's rows in place: pixels p0 .. p0 + nb of a tile's rows norm
   * [NORM_ROWS][P] and edge [EDGE_ROWS][P] that lie in the instance's memory (inMem), instead of
   * normOut / edgeOut.
   */
  finishInto(g: number, nb: number, norm: Float32Array, edge: Float32Array, P: number, p0: number): void {
    const no = norm.byteOffset + 4 * p0, eo = edge.byteOffset + 4 * p0, off = 4 * EDGE_WASM_BLOCK * g;
    this.ex.fit(nb, no, eo, 4 * P, off);
    this.ex.edge(nb, no, eo, 4 * P, off);
  }
}

const scratch = new FinalizationRegistry<number>((a) => heapFree(a));
const cache = new WeakMap<EdgePlan, EdgeWasm>();

/**
 * Heap bytes one plan's EdgeWasm takes in a thread's WebAssembly heap: the staging rows
 * (EDGE_WASM_BLOCK x EDGE_WASM_GROUP pixels a row, ~0.8 MB at 101 energies), the block's
 * scratch and the per own-e0 tables (u and t: 16 nE^2 bytes, 16 MB at 1000 energies); kept
 * while the plan lives and committed until the thread ends (the heap never shrinks).
 */
export function edgeWasmScratchBytes(nE: number): number {
  return heapGrowthBytes(layout(nE, 0).bytes);
}

/** True where the WebAssembly half of the kernel can run. */
export const edgeWasmAvailable = wasmSimd;

const targetCache = new WeakMap<EdgePlan, Map<number, EdgeWasm>>();

/**
 * The plan's EdgeWasm (built once per plan and thread); with `target`, the one in that heap
 * block (built once per plan and block: a worker serves one owner thread, so one memory).
 */
export function edgeWasm(plan: EdgePlan, T: EdgeTables, target: EdgeTarget | null = null): EdgeWasm {
  if (target) {
    let m = targetCache.get(plan);
    if (!m) targetCache.set(plan, (m = new Map()));
    let w = m.get(target.base);
    if (!w) m.set(target.base, (w = new EdgeWasm(plan, T, target)));
    return w;
  }
  let w = cache.get(plan);
  if (!w) cache.set(plan, (w = new EdgeWasm(plan, T)));
  return w;
}
