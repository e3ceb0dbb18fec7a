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
import { assemble, Fn, I32, instantiate, uleb, V128, wasmSimd } from './wasm.js';

/** Pixels per block (even: the search takes pairs). */
export const EDGE_WASM_BLOCK = 128;

interface Exports {
  stage: (src: number, stride: number, bytes: number) => void;
  prep: (pairs: number) => void;
}

interface Layout { S: number; rowStride: number; Y: number; BEST: number; BV: number; DL: number; DR: number; bytes: number }

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
  return { S, rowStride, Y, BEST, BV, DL, DR, bytes: al(DR + 8 * EDGE_WASM_BLOCK) - base };
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

  constructor(readonly plan: EdgePlan) {
    const { nE } = plan;
    const base = heapAlloc(layout(nE, 0).bytes);
    this.L = layout(nE, base);
    const mem = wasmHeap().mem;
    this.ex = instantiate<Exports>(assemble([buildStage(nE, this.L), buildPrep(plan, this.L)], { pages: 1, maxPages: 65536, shared: true }), mem);
    const buf = wasmHeap().buffer;
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
