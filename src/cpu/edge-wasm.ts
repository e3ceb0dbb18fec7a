/**
 * The first half of the CPU normalize + edge kernel (edge-fused.ts) in WebAssembly SIMD, one
 * block of EDGE_WASM_BLOCK pixels at a time: the block's spectra, staged energy-major in the
 * heap (wasm-heap.ts), are
 *  - transposed to pixel-major float32 (y[j * nE + i]) for the per-pixel rest of the kernel
 *    (windows that depend on each pixel's own e0), and
 *  - searched for the own-e0 derivative maximum two pixels per f64x2 vector, straight from
 *    the energy-major rows (the same energy indices for every pixel): the central differences
 *    d(i) = (y(i+1) - y(i-1)) / (x(i+1) - x(i-1)), their moving average
 *    ((0 + d(i-h)) + ... + d(i+h)) / (2h + 1) over the edge window, and the first index of the
 *    largest finite value (-1 if none), and the smoothed values at its two neighbours (the
 *    parabola's other two points), kept as the search passes them.
 * Every value is a float32 promoted to float64 and every operation a float64 IEEE operation
 * in the twin's order (normalizeCpu's derivative, edge-plan.ts), so the index and value are
 * the twin's bits. The module is generated per plan: energies, window and smoothing unrolled,
 * the denominators constants.
 */
import type { EdgePlan } from '../pipeline/edge-plan.js';
import { heapAlloc, heapFree, inHeap, wasmHeap } from './wasm-heap.js';
import { assemble, F64, Fn, I32, instantiate, uleb, V128, wasmSimd } from './wasm.js';

/** Pixels per block (even: the search takes pairs). */
export const EDGE_WASM_BLOCK = 128;

/** White-line screen tolerance relative to the pixel's scale (see edge-fused.ts): ~500x the ~8 eps rounding bound. */
export const EDGE_SCREEN_REL = 1e-12;

/** Rounding slack of the crossing search's distance bound, relative to |anchor| + max|x| (a crossing computed in [x[i], x[i+1]] can land a few ulps outside it). */
export const XCROSS_SLACK = 1e-12;

interface Exports {
  stage: (src: number, stride: number, bytes: number) => void;
  prep: (pairs: number) => void;
  edge: (nb: number) => void;
}

interface Layout {
  S: number; rowStride: number; Y: number; BEST: number; BV: number; DL: number; DR: number;
  /** Grid tables (f64 per energy): x, x - pre.centre, (x - pre.centre) / pre.scale. */
  X: number; XC: number; XS: number;
  /** The white line's screen values of the current pixel (f64 per energy, nE + 2). */
  A: number;
  /** Per pixel of the block (f64): the edge search's inputs preA, preB, step, anchor and outputs xHalf, wl energy, wl height; FLAG (i32): 1 = search this pixel. */
  PA: number; PB: number; ST: number; AN: number; XH: number; XW: number; HW: number; FLAG: number;
  bytes: number;
}

function layout(nE: number, base: number): Layout {
  const al = (x: number) => Math.ceil(x / 64) * 64;
  // Staged rows 4B + 64 bytes apart (not a power of two: the rows do not share cache sets).
  const rowStride = 4 * EDGE_WASM_BLOCK + 64;
  const S = base;
  const Y = al(S + rowStride * nE + 16);
  const BEST = al(Y + 4 * nE * EDGE_WASM_BLOCK);
  const BV = al(BEST + 8 * EDGE_WASM_BLOCK);
  const DL = al(BV + 8 * EDGE_WASM_BLOCK);
  const DR = al(DL + 8 * EDGE_WASM_BLOCK);
  const X = al(DR + 8 * EDGE_WASM_BLOCK), XC = al(X + 8 * (nE + 2)), XS = al(XC + 8 * nE), A = al(XS + 8 * (nE + 2));
  const blk = (a: number) => al(a + 8 * EDGE_WASM_BLOCK);
  const PA = al(A + 8 * (nE + 2)), PB = blk(PA), ST = blk(PB), AN = blk(ST), XH = blk(AN), XW = blk(XH), HW = blk(XW), FLAG = blk(HW);
  return { S, rowStride, Y, BEST, BV, DL, DR, X, XC, XS, A, PA, PB, ST, AN, XH, XW, HW, FLAG, bytes: blk(FLAG) - base };
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

function buildPrep(plan: EdgePlan, L: Layout): Fn {
  const { nE, x, smoothHalf: h } = plan;
  const ei0 = plan.edge.i0, ei1 = plan.edge.i1;
  const f = new Fn('prep', [['pairs', I32]]);
  const j = f.local('j', I32), src = f.local('src', I32), dst = f.local('dst', I32), t = f.local('t', I32);
  const acc = f.local('acc', V128), v = f.local('v', V128), upd = f.local('upd', V128);
  const best = f.local('best', V128), bestV = f.local('bestV', V128), nan = f.local('nan', V128), zero = f.local('zero', V128);
  const prevV = f.local('prevV', V128), updPrev = f.local('updPrev', V128), left = f.local('left', V128), right = f.local('right', V128);
  // 1. Transpose: pixel j's nE values to Y + 4 nE j, four pixels at a time: 4 x 4 blocks
  // (four energies of four pixels) by shuffles, the nE % 4 last energies one value at a time.
  // A block's pixels past the last pair (up to the next multiple of 4, within the block's
  // EDGE_WASM_BLOCK rows) get stale values that nothing reads.
  const lanes = (l: number[]) => l.flatMap((k) => [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3]);
  const r = [0, 1, 2, 3].map((k) => f.local(`r${k}`, V128));
  const tq = [0, 1, 2, 3].map((k) => f.local(`tq${k}`, V128));
  f.i32(0).set(j);
  f.block().loop();
  f.get(j).get('pairs').i32(1).shl().geS().brIf(1);
  f.get(j).i32(2).shl().i32(L.S).add().set(src);
  f.get(j).i32(4 * nE).mul().i32(L.Y).add().set(dst);
  const n4 = nE - (nE % 4);
  for (let e = 0; e < n4; e += 4) {
    for (let k = 0; k < 4; k++) f.get(src).vLoad((e + k) * L.rowStride).set(r[k]);
    f.get(r[0]).get(r[1]).shuffle(lanes([0, 4, 1, 5])).set(tq[0]); // e, e+1 of pixels 0, 1
    f.get(r[0]).get(r[1]).shuffle(lanes([2, 6, 3, 7])).set(tq[1]); // e, e+1 of pixels 2, 3
    f.get(r[2]).get(r[3]).shuffle(lanes([0, 4, 1, 5])).set(tq[2]); // e+2, e+3 of pixels 0, 1
    f.get(r[2]).get(r[3]).shuffle(lanes([2, 6, 3, 7])).set(tq[3]); // e+2, e+3 of pixels 2, 3
    for (let px = 0; px < 4; px++) {
      const [a, b] = px < 2 ? [tq[0], tq[2]] : [tq[1], tq[3]];
      f.get(dst).get(a).get(b).shuffle(lanes(px % 2 === 0 ? [0, 1, 4, 5] : [2, 3, 6, 7])).vStore(4 * nE * px + 4 * e);
    }
  }
  for (let e = n4; e < nE; e++) {
    for (let px = 0; px < 4; px++) f.get(dst).get(src).op(0x2a, 2, ...uleb(e * L.rowStride + 4 * px)).f32Store(4 * nE * px + 4 * e); // f32.load
  }
  f.get(j).i32(4).add().set(j);
  f.br(0);
  f.end().end();
  // 2. Derivative maximum, pixel pairs.
  const dLo = Math.max(1, ei0 - h), dHi = Math.min(nE - 2, ei1 - 1 + h); // d(i) needed for i in [ei0 - h, ei1 - 1 + h]
  const d = new Map<number, string>();
  for (let i = dLo; i <= dHi; i++) d.set(i, f.local(`d${i}`, V128));
  f.f64(NaN).f64x2Splat().set(nan);
  f.f64(0).f64x2Splat().set(zero);
  f.i32(0).set(t);
  f.block().loop();
  f.get(t).get('pairs').geS().brIf(1);
  f.get(t).i32(3).shl().i32(L.S).add().set(src); // 2 floats per pair
  const y = (i: number) => f.get(src).vLoad64Zero(i * L.rowStride).f64x2PromoteLow();
  for (let i = dLo; i <= dHi; i++) {
    y(i + 1);
    y(i - 1);
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

const F64_ABS = 0x99, F64_NEG = 0x9a, F64_DIV = 0xa3, F64_MIN = 0xa4, F64_MAX = 0xa5;
const F64_EQ = 0x61, F64_LT = 0x63, F64_GT = 0x64, F64_LE = 0x65, F64_GE = 0x66;
const I32_LE_S = 0x4c, I32_AND = 0x71, I32_OR = 0x72, I32_SHR_S = 0x75, SELECT = 0x1b;

/**
 * The edge half (edgeCpu's choices, edge-fused.ts's search order) for the block's pixels
 * with FLAG 1, on an increasing grid: the 0.5 crossing nearest the anchor (intervals
 * visited outward from it, stopping once every unvisited interval lies farther than the
 * best crossing), then the white line's maximum in [xHalf, xHalf + width] screened against
 * the running maximum (EDGE_SCREEN_REL) and its parabola. Scalar float64, every value the
 * twin's expression in the twin's order (n(i) = (y(i) - (preA + (preB xc(i)) / sc)) / step
 * is recomputed where the JavaScript kernel reused it: the same bits). Writes XH (xHalf,
 * not finite: no edge), XW (NaN: no white line) and HW.
 */
function buildEdge(plan: EdgePlan, L: Layout): Fn {
  const { nE, x } = plan;
  const sc = plan.pre.scale, wlWidth = plan.whitelineWidth;
  let xAbsMax = 0, xsAbsMax = 0;
  for (let i = 0; i < nE; i++) {
    xAbsMax = Math.max(xAbsMax, Math.abs(x[i]));
    xsAbsMax = Math.max(xsAbsMax, Math.abs((x[i] - plan.pre.centre) / sc));
  }
  const f = new Fn('edge', [['nb', I32]]);
  const j = f.local('j', I32), yo = f.local('yo', I32), po = f.local('po', I32);
  const lo = f.local('lo', I32), hi = f.local('hi', I32), mid = f.local('mid', I32);
  const Li = f.local('Li', I32), Ri = f.local('Ri', I32), i = f.local('i', I32), i1 = f.local('i1', I32), iHalf = f.local('iHalf', I32), k = f.local('k', I32);
  const [preA, preB, step, anchor, slack, bestDist, xHalf, dL, dR, nPrev, nNext, xcross, dist] =
    ['preA', 'preB', 'step', 'anchor', 'slack', 'bestDist', 'xHalf', 'dL', 'dR', 'nPrev', 'nNext', 'xcross', 'dist'].map((n) => f.local(n, F64));
  const [wlHi, inv, cTol, thr, n, kV, xw, hw, nm, np, t0, t2, s0, s2, beta, alpha, tv] =
    ['wlHi', 'inv', 'cTol', 'thr', 'n', 'kV', 'xw', 'hw', 'nm', 'np', 't0', 't2', 's0', 's2', 'beta', 'alpha', 'tv'].map((q) => f.local(q, F64));
  const wl0 = f.local('wl0', I32);
  const [aMaxV, absV, preAv, preBv, invV, wlHiV, ninfV, vv, mV, av, aV] = ['aMaxV', 'absV', 'preAv', 'preBv', 'invV', 'wlHiV', 'ninfV', 'vv', 'mV', 'av', 'aV'].map((q) => f.local(q, V128));
  const X = (idx: string) => f.get(idx).i32(3).shl().f64Load(L.X);
  const Y = (idx: string) => f.get(yo).get(idx).i32(2).shl().add().f32Load(0).promote();
  // n(idx) = (y(idx) - (preA + (preB * xc(idx)) / sc)) / step (edgeCpu's n with preEdgeLine).
  const nOf = (idx: string) => {
    Y(idx);
    f.get(preA).get(preB).get(idx).i32(3).shl().f64Load(L.XC).fmul().f64(sc).op(F64_DIV).fadd();
    f.fsub().get(step).op(F64_DIV);
  };
  const finite = (q: string) => f.get(q).get(q).fsub().f64(0).op(F64_EQ);
  f.i32(0).set(j);
  f.block().loop();
  f.get(j).get('nb').geS().brIf(1);
  f.block(); // per pixel: br 0 = next pixel
  f.get(j).i32(2).shl().i32Load(L.FLAG).eqz().brIf(0);
  f.get(j).i32(3).shl().set(po);
  f.get(j).i32(4 * nE).mul().i32(L.Y).add().set(yo);
  f.get(po).f64Load(L.PA).set(preA);
  f.get(po).f64Load(L.PB).set(preB);
  f.get(po).f64Load(L.ST).set(step);
  f.get(po).f64Load(L.AN).set(anchor);
  f.get(po).f64(NaN).f64Store(L.XW);
  // lo: the first grid index with x[lo] >= anchor.
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
  // Intervals L, L-1, ... (x < anchor) and R, R+1, ... (x >= anchor).
  f.get(lo).i32(1).sub().i32(nE - 2).get(lo).i32(1).sub().i32(nE - 2).ltS().op(SELECT).set(Li);
  f.get(lo).set(Ri);
  f.f64(XCROSS_SLACK).get(anchor).op(F64_ABS).f64(xAbsMax).fadd().fmul().set(slack);
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
  f.block(); // crossAt(i): br 0 = next interval
  nOf(i);
  f.tee(nPrev).f64(0.5).op(F64_LT).eqz().brIf(0);
  f.get(i).i32(1).add().set(i1);
  nOf(i1);
  f.tee(nNext).f64(0.5).op(F64_GE).eqz().brIf(0);
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
  f.br(0);
  f.end().end();
  f.get(po).get(xHalf).f64Store(L.XH);
  finite(xHalf).eqz().brIf(0);
  // The white line on [wl0, wl1): from the crossing's interval to the first x past wlHi
  // (x[nE] = +Infinity ends it). Two passes: (1) the screen a(i) = (mu(i) - (preA + preB
  // xs(i))) / step by multiplications, two points per vector, into A, with its maximum aMax
  // and the window's max |mu(i)| (NaN ignored, as the JavaScript kernel's general path);
  // (2) the exact n(i) (the twin's expression) of the points with a(i) >= aMax - 2 tol, in
  // index order, the first maximum kept (strict >). |a(i) - n(i)| <= tol (edge-fused.ts),
  // so every point that can be the twin's maximum is evaluated exactly: the twin's choice and
  // bits. A non-finite tol or aMax screens nothing out.
  f.get(xHalf).f64(wlWidth).fadd().set(wlHi);
  f.f64(1).get(step).op(F64_DIV).set(inv);
  f.f64(-Infinity).set(kV);
  f.i32(-1).set(k);
  f.get(iHalf).set(i);
  f.block().loop();
  f.get(i).i32(nE).geS().brIf(1);
  X(i).get(xHalf).op(F64_LT).eqz().brIf(1);
  f.get(i).i32(1).add().set(i);
  f.br(0);
  f.end().end();
  f.get(i).set(wl0);
  f.f64(-Infinity).f64x2Splat().set(aMaxV);
  f.f64(0).f64x2Splat().set(absV);
  f.get(preA).f64x2Splat().set(preAv);
  f.get(preB).f64x2Splat().set(preBv);
  f.get(inv).f64x2Splat().set(invV);
  f.get(wlHi).f64x2Splat().set(wlHiV);
  f.f64(-Infinity).f64x2Splat().set(ninfV);
  f.block().loop();
  f.get(i).i32(nE).geS().brIf(1);
  X(i).get(wlHi).op(F64_GT).brIf(1);
  f.get(yo).get(i).i32(2).shl().add().vLoad64Zero(0).f64x2PromoteLow().set(vv);
  f.get(i).i32(3).shl().vLoad(L.X).get(wlHiV).op(0xfd, 0x4b).set(mV); // f64x2.le: lanes inside the window
  f.get(vv).f64x2Abs().set(av);
  f.get(av).get(absV).get(av).get(absV).f64x2Gt().get(mV).vAnd().vBitselect().set(absV);
  f.get(vv).get(preAv).get(preBv).get(i).i32(3).shl().vLoad(L.XS).f64x2Mul().f64x2Add().f64x2Sub().get(invV).f64x2Mul();
  f.get(ninfV).get(mV).vBitselect().set(aV);
  f.get(i).i32(3).shl().get(aV).vStore(L.A);
  f.get(aV).get(aMaxV).get(aV).get(aMaxV).f64x2Gt().vBitselect().set(aMaxV);
  f.get(i).i32(2).add().set(i);
  f.br(0);
  f.end().end();
  f.get(aMaxV).f64x2Extract(0).get(aMaxV).f64x2Extract(1).op(F64_MAX).set(thr);
  f.get(absV).f64x2Extract(0).get(absV).f64x2Extract(1).op(F64_MAX);
  f.get(preA).op(F64_ABS).fadd().get(preB).op(F64_ABS).f64(xsAbsMax).fmul().fadd();
  f.f64(EDGE_SCREEN_REL).fmul().get(inv).fmul().set(cTol); // tol
  finite(cTol).get(thr).get(thr).fsub().f64(0).op(F64_EQ).op(I32_AND).if_();
  f.get(thr).f64(2).get(cTol).fmul().fsub().set(thr); // aLo
  f.else_();
  f.f64(-Infinity).set(thr);
  f.end();
  f.get(wl0).set(i);
  f.block().loop();
  f.get(i).i32(nE).geS().brIf(1);
  X(i).get(wlHi).op(F64_GT).brIf(1);
  f.block(); // br 0 = next point
  f.get(i).i32(3).shl().f64Load(L.A).get(thr).op(F64_LT).brIf(0);
  nOf(i);
  f.set(n);
  finite(n).eqz().brIf(0);
  f.get(n).get(kV).op(F64_GT).if_();
  f.get(n).set(kV);
  f.get(i).set(k);
  f.end();
  f.end();
  f.get(i).i32(1).add().set(i);
  f.br(0);
  f.end().end();
  f.get(k).i32(0).ltS().brIf(0);
  X(k).set(xw);
  f.get(kV).set(hw);
  f.get(k).i32(0).op(0x4a).get(k).i32(nE - 1).ltS().op(I32_AND).if_(); // i32.gt_s
  f.get(k).i32(1).sub().set(i);
  nOf(i);
  f.set(nm);
  f.get(k).i32(1).add().set(i1);
  nOf(i1);
  f.set(np);
  // parabolaVertex(x[k-1] - x[k], x[k+1] - x[k], nm, kV, np), same operations and order.
  X(i); X(k); f.fsub().set(t0);
  X(i1); X(k); f.fsub().set(t2);
  f.get(nm).get(kV).fsub().get(t0).op(F64_DIV).set(s0);
  f.get(np).get(kV).fsub().get(t2).op(F64_DIV).set(s2);
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
  f.get(po).get(xw).f64Store(L.XW);
  f.get(po).get(hw).f64Store(L.HW);
  f.end(); // per pixel
  f.get(j).i32(1).add().set(j);
  f.br(0);
  f.end().end();
  return f;
}

/** One plan's module and scratch: stage a block, run prep, read y / best / bestV. */
export class EdgeWasm {
  private readonly L: Layout;
  private readonly ex: Exports;
  /** Pixel-major spectra of the block: y[j * nE + i]. */
  readonly y: Float32Array;
  /** Per pixel of the block: the derivative maximum's index (-1: none) and value. */
  readonly best: Float64Array;
  readonly bestV: Float64Array;
  /** Per pixel: the smoothed derivative at best - 1 and best + 1 (meaningful where best - 1 and best + 1 lie in the edge window). */
  readonly dsL: Float64Array;
  readonly dsR: Float64Array;
  private readonly staged: Float32Array;
  /** The edge search (edge()): per pixel of the block, its inputs (flag 1: search it) and outputs. */
  readonly preA: Float64Array;
  readonly preB: Float64Array;
  readonly step: Float64Array;
  readonly anchor: Float64Array;
  readonly flag: Int32Array;
  readonly xHalf: Float64Array;
  readonly wlE: Float64Array;
  readonly wlH: Float64Array;

  constructor(readonly plan: EdgePlan) {
    const { nE } = plan;
    const base = heapAlloc(layout(nE, 0).bytes);
    this.L = layout(nE, base);
    const mem = wasmHeap().mem;
    this.ex = instantiate<Exports>(assemble([buildStage(nE, this.L), buildPrep(plan, this.L), buildEdge(plan, this.L)], { pages: 1, maxPages: 65536, shared: true }), mem);
    const buf = wasmHeap().buffer;
    const { x } = plan;
    const f64 = (a: number, n: number) => new Float64Array(buf, a, n);
    f64(this.L.X, nE + 2).set([...x, Infinity, Infinity]);
    f64(this.L.XC, nE).set(x.map((v) => v - plan.pre.centre));
    f64(this.L.XS, nE + 2).set([...x.map((v) => v - plan.pre.centre).map((v) => v / plan.pre.scale), 0, 0]);
    this.preA = f64(this.L.PA, EDGE_WASM_BLOCK);
    this.preB = f64(this.L.PB, EDGE_WASM_BLOCK);
    this.step = f64(this.L.ST, EDGE_WASM_BLOCK);
    this.anchor = f64(this.L.AN, EDGE_WASM_BLOCK);
    this.xHalf = f64(this.L.XH, EDGE_WASM_BLOCK);
    this.wlE = f64(this.L.XW, EDGE_WASM_BLOCK);
    this.wlH = f64(this.L.HW, EDGE_WASM_BLOCK);
    this.flag = new Int32Array(buf, this.L.FLAG, EDGE_WASM_BLOCK);
    this.y = new Float32Array(buf, this.L.Y, nE * EDGE_WASM_BLOCK);
    this.best = new Float64Array(buf, this.L.BEST, EDGE_WASM_BLOCK);
    this.bestV = new Float64Array(buf, this.L.BV, EDGE_WASM_BLOCK);
    this.dsL = new Float64Array(buf, this.L.DL, EDGE_WASM_BLOCK);
    this.dsR = new Float64Array(buf, this.L.DR, EDGE_WASM_BLOCK);
    this.staged = new Float32Array(buf, this.L.S, (this.L.rowStride / 4) * nE);
    scratch.register(this, base);
  }

  /** Pixels p0 .. p0 + nb (nb <= EDGE_WASM_BLOCK) of the energy-major tile: transposed into y, searched into best / bestV. */
  run(cube: Float32Array, P: number, p0: number, nb: number): void {
    const { nE } = this.plan;
    if (inHeap(cube)) this.ex.stage(cube.byteOffset + 4 * p0, 4 * P, 4 * nb);
    else {
      const rs = this.L.rowStride / 4;
      for (let i = 0; i < nE; i++) this.staged.set(cube.subarray(i * P + p0, i * P + p0 + nb), i * rs);
    }
    // An odd last pixel's partner lane reads stale staged values: computed and ignored.
    this.ex.prep((nb + 1) >> 1);
  }

  /** The edge search for the block's pixels with flag 1 (increasing grids only): xHalf, wlE (NaN: none), wlH. */
  edge(nb: number): void {
    this.ex.edge(nb);
  }
}

const scratch = new FinalizationRegistry<number>((a) => heapFree(a));
const cache = new WeakMap<EdgePlan, EdgeWasm>();

/** True where the WebAssembly half of the kernel can run. */
export const edgeWasmAvailable = wasmSimd;

/** The plan's EdgeWasm (built once per plan and thread). */
export function edgeWasm(plan: EdgePlan): EdgeWasm {
  let w = cache.get(plan);
  if (!w) cache.set(plan, (w = new EdgeWasm(plan)));
  return w;
}
