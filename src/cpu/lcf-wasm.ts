/**
 * The CPU backend's lcf pass in WebAssembly SIMD: the same per-pixel projections as
 * lcfFast (lcf-fast.ts), g = Xs^T y and ||y||^2, four pixels at a time (two f64x2 vectors),
 * then the same per-pixel solve (lcfFinishPixel: forward substitution and the shared subset
 * search lcfSolvePixel), so the output bytes equal lcfFast's:
 * - each float32 value is promoted to float64 (f64x2.promote_low_f32x4) and every product
 *   and sum is a float64 multiply and add (WebAssembly SIMD has no fused multiply-add), in
 *   energy order per pixel, exactly as lcfFast's scalar loop: float64 accumulation is what
 *   the cross-check tolerances of the lcf tests rely on;
 * - the module is generated for (nW, M, C): the energy loop is unrolled with constant
 *   offsets, columns are taken in sweeps of up to 4 (accumulators in registers: 4 columns +
 *   the sum of squares, x 2 vectors), more columns re-read the staged block (then in cache).
 * The tile (energy-major [nW][P]) is staged one block of C pixels at a time (nW row pieces
 * of C floats, ~256 KiB, so the block stays in L2 for the pass): a tile in the WebAssembly
 * heap (wasm-heap.ts, which this instance's memory is) by memory.copy inside the module, any
 * other Float32Array by TypedArray.set. The pass does not read the tile in place: its rows are
 * 4P bytes apart, a power of two for the usual tiles (rows x 1024, the benchmark's 2^20),
 * so all nW rows of a quad fall in the same cache sets and evict each other (measured 2x
 * slower than staging); the staged rows are 4C bytes apart. The output rows go straight into
 * an `out` in the heap (lcf-step.ts passes one, reused tile after tile); otherwise they are
 * copied from the scratch rows. Scratch (design, staged block, projections, tables, rows) is
 * one heap block per plan, returned when the plan is collected.
 */
import { LcfStatus, lcfRows, subsetLayout, type LcfPlan } from './lcf.js';
import { LCF_ENUMERATE_MAX_SUBSETS, lcfFinishPixel, lcfSearchTable } from './lcf-fast.js';
import { assemble, Fn, I32, instantiate, V128, wasmSimd, type WasmMemory } from './wasm.js';
import { heapAlloc, heapFree, inHeap, wasmHeap } from './wasm-heap.js';

/** Columns per sweep (two f64x2 accumulators each, plus two for the sum of squares). */
const SWEEP = 4;
/** Bytes of one staged block of float32 rows. */
const BLOCK_BYTES = 1 << 18;

interface Exports {
  pass: (quads: number, y: number, stride: number) => void;
  stage: (y: number, stride: number, bytes: number) => void;
  finish: (pairs: number, dst: number, rowStride: number) => void;
}

interface Layout { C: number; X: number; Y: number; G: number; T: number; O: number; bytes: number }

/** Offsets from `base` (a 64-byte aligned heap block of `bytes`). */
function layout(nW: number, M: number, tables: number, base = 0): Layout {
  const al = (x: number) => Math.ceil(x / 64) * 64;
  const C = Math.max(4, Math.floor(BLOCK_BYTES / (4 * nW)) & ~3);
  const X = base;
  const Y = al(X + 8 * nW * M);
  const G = al(Y + 4 * nW * C);
  const T = al(G + 8 * (M + 1) * C);
  const O = al(T + 8 * tables);
  return { C, X, Y, G, T, O, bytes: al(O + 8 * (M + 3) * C) - base };
}

/**
 * pass(quads, y, stride): for quad q < quads, the pixels at byte address y + 16q (energy e at
 * + e * stride) -> G[j * C + 4q + i] (j = M: the sum of squares). y is the staged block
 * (stride 4C) or the caller's tile itself where it lies in the heap (stride 4P).
 */
function buildPass(nW: number, M: number, L: Layout): Fn {
  const f = new Fn('pass', [['quads', I32], ['y', I32], ['stride', I32]]);
  const q = f.local('q', I32), yb = f.local('yb', I32), gb = f.local('gb', I32);
  const yp = f.local('yp', I32), xp = f.local('xp', I32), ye = f.local('ye', I32);
  const lo = f.local('lo', V128), hi = f.local('hi', V128), xj = f.local('xj', V128), zero = f.local('zero', V128);
  const acc = Array.from({ length: SWEEP + 1 }, (_, j) => [f.local(`a${j}l`, V128), f.local(`a${j}h`, V128)]);
  f.f64(0).f64x2Splat().set(zero);
  f.i32(0).set(q);
  f.block().loop();
  f.get(q).get('quads').geS().brIf(1);
  f.get(q).i32(4).shl().get('y').add().set(yb); // 16 bytes per quad
  f.get(q).i32(5).shl().set(gb);             // 4 float64 per quad
  for (let c0 = 0; c0 < M; c0 += SWEEP) {
    const cols = Math.min(SWEEP, M - c0);
    const sq = c0 === 0;                       // the sum of squares rides with the first sweep
    const used = [...Array(cols).keys()].map((k) => acc[k]);
    if (sq) used.push(acc[SWEEP]);
    for (const [a, b] of used) f.get(zero).set(a).get(zero).set(b);
    // The energy loop: yp walks the staged rows (stride 4C bytes), xp the design rows (8M bytes).
    f.get(yb).set(yp);
    f.i32(8 * c0).set(xp);
    f.get(yb).get('stride').i32(nW).mul().add().set(ye);
    f.block().loop();
    f.get(yp).vLoad64Zero(0).f64x2PromoteLow().set(lo);
    f.get(yp).vLoad64Zero(8).f64x2PromoteLow().set(hi);
    if (sq) {
      const [a, b] = acc[SWEEP];
      f.get(a).get(lo).get(lo).f64x2Mul().f64x2Add().set(a);
      f.get(b).get(hi).get(hi).f64x2Mul().f64x2Add().set(b);
    }
    for (let k = 0; k < cols; k++) {
      const [a, b] = acc[k];
      f.get(xp).vLoad64Splat(L.X + 8 * k).set(xj);
      f.get(a).get(xj).get(lo).f64x2Mul().f64x2Add().set(a);
      f.get(b).get(xj).get(hi).f64x2Mul().f64x2Add().set(b);
    }
    f.get(xp).i32(8 * M).add().set(xp);
    f.get(yp).get('stride').add().tee(yp).get(ye).op(0x49).brIf(0); // i32.lt_u (heap addresses reach 4 GiB)
    f.end().end();
    const store = (j: number, [a, b]: string[]) => {
      f.get(gb).get(a).vStore(L.G + 8 * j * L.C);
      f.get(gb).get(b).vStore(L.G + 8 * j * L.C + 16);
    };
    for (let k = 0; k < cols; k++) store(c0 + k, acc[k]);
    if (sq) store(M, acc[SWEEP]);
  }
  f.get(q).i32(1).add().set(q);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * stage(y, stride, bytes): copies the block's nW row pieces (bytes long, stride apart) of a
 * tile in the heap into the staged block (rows 4C apart) with memory.copy. The pass reads 4
 * pixels down nW rows: straight from a tile whose row stride is a power of two (P = 2^20 in
 * the benchmark, rows x 1024 in a run) every row maps to the same cache sets and the pass
 * thrashes them (measured: slower than the copy); the staged rows are 4C bytes apart instead.
 */
function buildStage(nW: number, L: Layout): Fn {
  const f = new Fn('stage', [['y', I32], ['stride', I32], ['bytes', I32]]);
  const d = f.local('d', I32), e = f.local('e', I32);
  f.i32(L.Y).set(d);
  f.i32(0).set(e);
  f.block().loop();
  f.get(d).get('y').get('bytes').op(0xfc, 10, 0, 0); // memory.copy
  f.get('y').get('stride').add().set('y');
  f.get(d).i32(4 * L.C).add().set(d);
  f.get(e).i32(1).add().tee(e).i32(nW).ltS().brIf(0);
  f.end().end();
  return f;
}

/**
 * Status the first-subset finish writes for a pixel whose unconstrained weights are not all
 * >= 0: lcfWasm solves that pixel again with lcfFinishPixel (the active-set search), which
 * overwrites every row, so the value never reaches the caller.
 */
const NEEDS_SEARCH = -1;

/**
 * finish(pairs): the per-pixel solve of lcfFinishPixel, two pixels per f64x2 vector, with its
 * operations in its order (so the same bytes):
 * z = Rs^{-T} g by forward substitution, zz = ||z||^2, rho2 = max(0, ||y||^2 - zz); then
 * - plans of <= LCF_ENUMERATE_MAX_SUBSETS subsets (`first` false): the exhaustive search
 *   (lcfSolvePixel): subset s is feasible unless some included weight (A_s z + b_s)_i < 0
 *   (nnls modes only), its violation v_s = max(0, max over excluded j of (W_s z + c_s)_j),
 *   and the first feasible subset with the least v wins (what the scalar search's early stop
 *   at v = 0 also returns; subset 0 if none is feasible); every subset is evaluated for both
 *   lanes and the winner's theta = A z + b and F = ||E z + e||^2 kept by lane selects;
 * - larger nnls / nnls-sum1 plans (`first` true): subset 0 only, every reference free (the
 *   first step of lcfSearchPixel, which stops there when no weight is < 0: no reference is
 *   excluded, so no violation); a pixel with a weight < 0 gets status NEEDS_SEARCH and is
 *   solved by lcfWasm in JavaScript. Why: most pixels of a typical map (71-98 % of the
 *   benchmark's) have all references present, and their solve then costs one subset,
 *   vectorised, instead of a scalar search each.
 * rss = rho2 + F, rms = sqrt(max(rss, 0) / nW), rfactor = rss / ||y||^2 (NaN unless
 * ||y||^2 > 0), status OK; a pixel whose ||y||^2 is not finite gets NaN rows and status
 * NO_DATA. Rows to O[row * C + p] (lcfRows(M) order). Tables at T: Rs (M x M), then the
 * plan's subset table (plan.sub).
 */
function buildFinish(plan: LcfPlan, L: Layout, first: boolean): Fn {
  const { M, K, nW, nSubsets, masks, subStride, nonneg } = plan;
  const SL = subsetLayout(M, K);
  const f = new Fn('finish', [['pairs', I32], ['dst', I32], ['rowStride', I32]]);
  const t = f.local('t', I32), o = f.local('o', I32);
  const ss = f.local('ss', V128), ok = f.local('ok', V128), zz = f.local('zz', V128), acc = f.local('acc', V128);
  const rss = f.local('rss', V128), nan = f.local('nan', V128), zero = f.local('zero', V128), Fv = f.local('F', V128);
  const inf = f.local('inf', V128), bestV = f.local('bestV', V128), bestF = f.local('bestF', V128);
  const feas = f.local('feas', V128), v = f.local('v', V128), upd = f.local('upd', V128);
  const z = Array.from({ length: M }, (_, k) => f.local(`z${k}`, V128));
  const th = Array.from({ length: M }, (_, k) => f.local(`th${k}`, V128));
  const best = Array.from({ length: M }, (_, k) => f.local(`b${k}`, V128));
  const rsO = L.T, subO = L.T + 8 * M * M;
  const c = (off: number) => f.i32(0).vLoad64Splat(off);
  // Output row r of pair t at dst + r * rowStride + 16 t.
  const rowAt = Array.from({ length: M + 3 }, (_, r) => f.local(`row${r}`, I32));
  for (let r = 0; r < M + 3; r++) f.get('dst').get('rowStride').i32(r).mul().add().set(rowAt[r]);
  const out = (row: number) => f.get(rowAt[row]).get(o).add();
  f.f64(NaN).f64x2Splat().set(nan);
  f.f64(0).f64x2Splat().set(zero);
  f.f64(Infinity).f64x2Splat().set(inf);
  f.i32(0).set(t);
  f.block().loop();
  f.get(t).get('pairs').geS().brIf(1);
  f.get(t).i32(4).shl().set(o);                // 16 bytes per pair
  f.get(o).vLoad(L.G + 8 * M * L.C).set(ss);
  f.get(ss).get(ss).f64x2Sub().get(zero).f64x2Eq().set(ok);
  f.get(zero).set(zz);
  for (let k = 0; k < M; k++) {
    f.get(o).vLoad(L.G + 8 * k * L.C).set(acc);
    for (let j = 0; j < k; j++) {
      f.get(acc);
      c(rsO + 8 * (j * M + k)).get(z[j]).f64x2Mul().f64x2Sub().set(acc);
    }
    f.get(acc);
    c(rsO + 8 * (k * M + k)).f64x2Div().set(z[k]);
    f.get(zz).get(z[k]).get(z[k]).f64x2Mul().f64x2Add().set(zz);
  }
  // acc = base[i] + sum_j mat[i * M + j] z_j, in j order (lcfSolvePixel's loops).
  const affine = (bOff: number, mOff: number, i: number) => {
    c(bOff + 8 * i).set(acc);
    for (let j = 0; j < M; j++) {
      f.get(acc);
      c(mOff + 8 * (i * M + j)).get(z[j]).f64x2Mul().f64x2Add().set(acc);
    }
  };
  f.get(inf).set(bestV);
  for (let s = 0; s < (first ? 1 : nSubsets); s++) {
    const off = subO + 8 * s * subStride;
    const mask = masks[s];
    // theta of this subset, and feasibility (all lanes true unless an included weight < 0).
    f.i32(-1).op(0xfd, 0x11).set(feas); // i32x4.splat(-1): all ones
    for (let i = 0; i < M; i++) {
      affine(off + 8 * SL.b, off + 8 * SL.A, i);
      f.get(acc).set(th[i]);
      if (nonneg && i < K && (mask >> i) & 1) f.get(feas).get(acc).get(zero).f64x2Lt().vAndNot().set(feas);
    }
    f.get(zero).set(v);
    for (let j = 0; j < K; j++) {
      if ((mask >> j) & 1) continue;
      affine(off + 8 * SL.c, off + 8 * SL.W, j);
      f.get(acc).get(v).get(acc).get(v).f64x2Gt().vBitselect().set(v);
    }
    f.get(zero).set(Fv);
    // F's terms are all +0 where E and e are zero (the unconstrained subset: every ls pixel):
    // then F stays +0, and rss = max(0, .) + 0 has the same bits without them.
    const base = s * subStride;
    const zeroF = plan.sub.subarray(base + SL.E, base + SL.E + M * M).every((x) => x === 0) && plan.sub.subarray(base + SL.e, base + SL.e + M).every((x) => x === 0);
    for (let i = 0; i < M && !zeroF; i++) {
      affine(off + 8 * SL.e, off + 8 * SL.E, i);
      f.get(Fv).get(acc).get(acc).f64x2Mul().f64x2Add().set(Fv);
    }
    // Subset 0 is the default (taken unless a later feasible subset improves on it).
    if (s === 0) {
      f.get(v).get(inf).get(feas).vBitselect().set(bestV);
      for (let i = 0; i < M; i++) f.get(th[i]).set(best[i]);
      f.get(Fv).set(bestF);
      continue;
    }
    f.get(feas).get(v).get(bestV).f64x2Lt().vAnd().set(upd);
    f.get(v).get(bestV).get(upd).vBitselect().set(bestV);
    for (let i = 0; i < M; i++) f.get(th[i]).get(best[i]).get(upd).vBitselect().set(best[i]);
    f.get(Fv).get(bestF).get(upd).vBitselect().set(bestF);
  }
  // rss = max(0, sumsq - zz) + F
  f.get(ss).get(zz).f64x2Sub().get(zero).f64x2Max().get(bestF).f64x2Add().set(rss);
  for (let k = 0; k < M; k++) out(k).get(best[k]).get(nan).get(ok).vBitselect().vStore();
  out(M).get(rss).get(zero).f64x2Max().f64(nW).f64x2Splat().f64x2Div().f64x2Sqrt().get(nan).get(ok).vBitselect().vStore();
  out(M + 1).get(rss).get(ss).f64x2Div().get(nan).get(ss).get(zero).f64x2Gt().vBitselect().get(nan).get(ok).vBitselect().vStore();
  // Status: OK, or NEEDS_SEARCH where subset 0 was not feasible (first-subset finish; bestV is
  // then still infinite); NO_DATA where ||y||^2 is not finite.
  out(M + 2).f64(LcfStatus.OK).f64x2Splat();
  if (first) f.f64(NEEDS_SEARCH).f64x2Splat().get(bestV).get(inf).f64x2Lt().vBitselect();
  f.f64(LcfStatus.NO_DATA).f64x2Splat().get(ok).vBitselect().vStore();
  f.get(t).i32(1).add().set(t);
  f.br(0);
  f.end().end();
  return f;
}

class Instance {
  readonly L: Layout;
  readonly mem: WasmMemory;
  readonly ex: Exports;
  /** Subset 0 only in the module (larger nnls plans); its NEEDS_SEARCH pixels are solved in JavaScript. */
  readonly first: boolean;
  constructor(readonly plan: LcfPlan) {
    const { nW, M } = plan;
    const tables = M * M + plan.nSubsets * plan.subStride;
    // The scratch (design, staged block, projections, tables, output rows) is one heap block.
    this.L = layout(nW, M, tables, heapAlloc(layout(nW, M, tables).bytes));
    this.mem = wasmHeap().mem;
    this.first = plan.nSubsets > LCF_ENUMERATE_MAX_SUBSETS;
    const fns = [buildPass(nW, M, this.L), buildStage(nW, this.L), buildFinish(plan, this.L, this.first)];
    this.ex = instantiate<Exports>(assemble(fns, { pages: 1, maxPages: 65536, shared: true }), this.mem);
    new Float64Array(this.mem.buffer, this.L.X, nW * M).set(plan.xs.subarray(0, nW * M));
    const T = new Float64Array(this.mem.buffer, this.L.T, M * M + plan.nSubsets * plan.subStride);
    T.set(plan.rs.subarray(0, M * M), 0);
    T.set(plan.sub.subarray(0, plan.nSubsets * plan.subStride), M * M);
  }
}

const instances = new WeakMap<LcfPlan, Instance>();
/** A plan's scratch goes back to the heap when the plan is collected. */
const scratch = new FinalizationRegistry<number>((a) => heapFree(a));

/** True where lcfWasm can run (WebAssembly with fixed-width SIMD). */
export const lcfWasmAvailable = wasmSimd;

/**
 * Rows as lcfCpu / lcfFast return them (lcfRows(M)), for `cube` = the window's energies
 * [nW][P]; the same bytes as lcfFast. `out` (optional, at least lcfRows(M).ROWS x P values):
 * where the rows go; one in the heap (heapF64) is written by the kernel directly, any other
 * is filled from the kernel's scratch. Without it a new array is returned.
 */
export function lcfWasm(plan: LcfPlan, cube: Float32Array, P: number, out?: Float64Array): Float64Array {
  const { M, K, nW } = plan;
  if (cube.length < nW * P) throw new RangeError(`lcfWasm: cube holds ${cube.length} values, need ${nW * P}`);
  let w = instances.get(plan);
  if (!w) {
    instances.set(plan, (w = new Instance(plan)));
    scratch.register(plan, w.L.X);
  }
  const { L, mem, ex } = w;
  const C = L.C;
  const rows = lcfRows(M);
  if (out && out.length < rows.ROWS * P) throw new RangeError(`lcfWasm: out holds ${out.length} values, need ${rows.ROWS * P}`);
  out ??= new Float64Array(rows.ROWS * P);
  const Y = new Float32Array(mem.buffer, L.Y, nW * C);
  const G = new Float64Array(mem.buffer, L.G, (M + 1) * C);
  const O = new Float64Array(mem.buffer, L.O, (M + 3) * C);
  const g = new Float64Array(M);
  const z = new Float64Array(M);
  const th = new Float64Array(M);
  const SL = subsetLayout(M, K);
  const search = lcfSearchTable(plan);
  // A tile in the heap (wasm-heap.ts) is staged by memory.copy, any other by TypedArray.set
  // (one call per row piece). The rows go straight to an `out` in the heap.
  const tileInHeap = inHeap(cube);
  const outInHeap = inHeap(out);
  for (let a = 0; a < P; a += C) {
    const n = Math.min(C, P - a);
    if (tileInHeap) ex.stage(cube.byteOffset + 4 * a, 4 * P, 4 * n);
    else for (let e = 0; e < nW; e++) Y.set(cube.subarray(e * P + a, e * P + a + n), e * C);
    // A last partial quad reads the staged block's stale floats past n: its extra lanes are
    // computed and dropped.
    ex.pass((n + 3) >> 2, L.Y, 4 * C);
    // Pairs write two pixels: an odd last block goes through the scratch rows (its extra
    // pixel would land on the next output row).
    if (outInHeap && n % 2 === 0) ex.finish(n >> 1, out.byteOffset + 8 * a, 8 * P);
    else {
      ex.finish((n + 1) >> 1, L.O, 8 * C);
      for (let r = 0; r < rows.ROWS; r++) out.set(O.subarray(r * C, r * C + n), r * P + a);
    }
    if (!w.first) continue;
    // Pixels with a negative unconstrained weight: the active-set search, from the block's
    // projections (still in G), as lcfFast would solve them.
    const st = rows.STATUS * P + a;
    for (let i = 0; i < n; i++) {
      if (out[st + i] !== NEEDS_SEARCH) continue;
      for (let j = 0; j < M; j++) g[j] = G[j * C + i];
      lcfFinishPixel(plan, SL, g, 0, G[M * C + i], z, th, out, rows, P, a + i, search);
    }
  }
  return out;
}
