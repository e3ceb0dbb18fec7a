/**
 * The CPU backend's lcf pass in WebAssembly SIMD: the same per-pixel projections as
 * lcfFast (lcf-fast.ts), z = Qt y (the plan's projection table, lcfProjection) and ||y||^2,
 * four pixels at a time (two f64x2 vectors), then the same per-pixel solve (lcfFinishPixel:
 * ||z||^2, the weights, and in the nnls modes the active-set search lcfSearchPixel, in the
 * module too), so the output bytes equal lcfFast's:
 * - each float32 value is promoted to float64 (f64x2.promote_low_f32x4) and every product
 *   and sum is a float64 multiply and add (WebAssembly SIMD has no fused multiply-add), in
 *   energy order per pixel, exactly as lcfFast's scalar loop: float64 accumulation is what
 *   the cross-check tolerances of the lcf tests rely on;
 * - the module is generated for (nW, M): columns (the M projection columns and the sum of
 *   squares) are taken in balanced sweeps of up to 4 (8 accumulators, 2 pixel vectors, the
 *   splatted table values: 15 xmm registers, what V8 allocates; a sweep of 5 spilled one
 *   accumulator, whose store and reload then sat in its chain of additions).
 * Bytes and flops per pixel: 4 nW read (the float32 spectrum), 8 (M + 3) written (the rows);
 * nW (M + 1) float64 multiply-adds in the pass, ~M + M (M + 1) / 2 in the finish (||z||^2,
 * weights, residual terms). Measured (1 thread, 2^20 pixels x 101 energies,
 * constant background, 6 references: M = 7): pass ~120 ms of CPU, the same with the tile in
 * cache (~3.7 cycles per pixel and energy, ~0.9 per f64x2 multiply-add pair where the core
 * sustains two pairs per cycle with operands in registers: the table splats and the y
 * promotes feeding them cost about as much again; measured and rejected: 5 + 3, 3 + 3 + 2
 * and 2 x 4 column sweeps, 3 or 4 pixel vectors, pre-splatted tables, one 16-byte load per 4
 * pixels, two energies per table load, energies unrolled, 16 or 34 energies per chunk,
 * y held over 4-6 energies with sums in G, all within noise or slower); finish ~15 ms
 * (buildFinishSplit; ~6-8 ms of it is writing the 80 MB of rows); the whole kernel 130-140 ms
 * of CPU (load 1.5; was ~205 two sessions ago, ~150 before the projection table).
 * The tile (energy-major [nW][P]) is read in place when it lies in the WebAssembly heap
 * (wasm-heap.ts, which this instance's memory is), a block of C pixels at a time and CHUNK
 * energies at a time: each of the chunk's rows is read sequentially over the block (CHUNK
 * streams the prefetcher follows; 4P apart, a power of two for the usual tiles, so they share
 * cache sets, and CHUNK = 8 fits the 8 ways), the running sums go back to G between chunks
 * (in L1/L2). Reading all nW rows per pixel quad in place thrashed those sets (measured 2x
 * slower), which is why this pass used to copy each block out first (memory.copy, ~20 % of
 * the kernel's time). Any other Float32Array, and a block whose last unit is partial, is
 * staged (TypedArray.set or memory.copy; rows YS bytes apart) and read the same way.
 * The output rows go straight into an `out` in the heap (lcf-step.ts passes one, reused tile
 * after tile); otherwise they are copied from the scratch rows. Scratch (projection table, staged block,
 * projections, tables, rows) is one heap block per plan, returned when the plan is collected.
 */
import { LcfStatus, lcfRows, subsetLayout, type LcfPlan } from './lcf.js';
import { LCF_SEARCH_MAX_STEPS, lcfFinishPixel, lcfProjection, lcfSearchTable } from './lcf-fast.js';
import { assemble, F64, Fn, I32, instantiate, V128, wasmSimd, type WasmMemory } from './wasm.js';
import { heapAlloc, heapGrowthBytes, heapFree, inHeap, wasmHeap } from './wasm-heap.js';

/** Pixels per block (the block's running sums, (M + 1) x C float64, stay in L2). */
const BLOCK_PIXELS = 2048;
/**
 * Energies per chunk: the pass reads CHUNK rows of the tile at a time, each sequentially
 * over the block's pixels (CHUNK streams the prefetcher follows), and keeps the running
 * sums in G between chunks.
 */
const CHUNK = 8;

interface Exports {
  pass: (units: number, y: number, stride: number) => void;
  stage: (y: number, stride: number, bytes: number) => void;
  finish: (pairs: number, dst: number, rowStride: number) => void;
}

/**
 * C pixels per block; G: M + 4 rows of C float64 (row j at G + j * GS: the projections z,
 * then ||y||^2, a spare row, and for buildFinishSplit the no-data mask and F), Y: the staged block
 * (nW rows of C float32, YS bytes apart), O: scratch output rows (C float64 each). The row
 * strides are padded off powers of two (cache sets).
 */
interface Layout { C: number; X: number; Y: number; YS: number; G: number; GS: number; T: number; O: number; bytes: number }

/** Offsets from `base` (a 64-byte aligned heap block of `bytes`). */
function layout(nW: number, M: number, tables: number, base = 0): Layout {
  const al = (x: number) => Math.ceil(x / 64) * 64;
  const C = BLOCK_PIXELS;
  const YS = 4 * C + 64, GS = 8 * C + 64;
  const X = base;
  const Y = al(X + 8 * nW * M);
  const G = al(Y + YS * nW);
  const T = al(G + GS * (M + 4));
  const O = al(T + 8 * tables);
  return { C, X, Y, YS, G, GS, T, O, bytes: al(O + 8 * (M + 3) * C) - base };
}

/** Accumulator columns per sweep at most (the sum of squares counts as one; it needs no table value). */
const SWEEP = 4;

/**
 * The pass's register blocking: V f64x2 vectors of pixels (2V pixels) per unit, and the
 * accumulator columns (0 .. M - 1 the projections, M the sum of squares) in balanced sweeps;
 * a sweep holds V x its columns accumulators, the V pixel vectors, its splatted table
 * values (V8 loads them all at the top of the energy loop) and a product in registers:
 * 15 xmm for V = 2 and 4 columns, what V8 allocates. Measured at 6 references (8 columns):
 * sweeps 4 + 4 ~6 % faster than 5 + 3 (which spilled), 1 vector x 8 columns ~20 % slower
 * (spills), 1 x (4 + 4) ~15 % slower (twice the table loads); at 4 references 3 + 3 beat
 * 4 + 2 and 1 x 6 by a few % (within the noise of a shared machine).
 */
function blocking(M: number): { V: number; sweeps: number[][] } {
  const cols = [M, ...Array.from({ length: M }, (_, j) => j)]; // the sum of squares first
  const n = Math.ceil((M + 1) / SWEEP);
  const per = Math.ceil((M + 1) / n);
  return { V: 2, sweeps: Array.from({ length: n }, (_, i) => cols.slice(i * per, (i + 1) * per)) };
}

/**
 * pass(units, y, stride): for unit t < units (2V pixels: V vectors of 2), the pixels at byte
 * address y + 8Vt (energy e at + e * stride) -> G[j][2Vt + i] (j = M: the sum of squares).
 * y is the block in the tile itself where it lies in the heap (stride 4P) or the staged
 * block (stride YS). The energies are taken CHUNK rows at a time: for each unit, the running
 * sums are loaded from G (zero in the first chunk), the chunk's energies added in order, and
 * stored back, so every sum is the same float64 additions in energy order as lcfFast's.
 */
function buildPass(nW: number, M: number, L: Layout): Fn {
  const f = new Fn('pass', [['units', I32], ['y', I32], ['stride', I32]]);
  const { V, sweeps } = blocking(M);
  const t = f.local('t', I32), yc = f.local('yc', I32), xc = f.local('xc', I32), yp = f.local('yp', I32), g = f.local('g', I32);
  const xp = f.local('xp', I32), ye = f.local('ye', I32);
  const left = f.local('left', I32);
  const xj = f.local('xj', V128), zero = f.local('zero', V128);
  const yv = Array.from({ length: V }, (_, v) => f.local(`y${v}`, V128));
  const acc = Array.from({ length: M + 1 }, (_, j) => Array.from({ length: V }, (_, v) => f.local(`a${j}_${v}`, V128)));
  f.f64(0).f64x2Splat().set(zero);
  f.get('y').set(yc);
  f.i32(L.X).set(xc);
  const chunk = (E: number, first: boolean) => {
    f.i32(0).set(t);
    f.block().loop();
    f.get(t).get('units').geS().brIf(1);
    f.get(t).i32(16 * V).mul().set(g);                // 16V bytes of each G row per unit
    for (const cols of sweeps) {
      for (const j of cols) {
        for (let v = 0; v < V; v++) {
          if (first) f.get(zero).set(acc[j][v]);
          else f.get(g).vLoad(L.G + j * L.GS + 16 * v).set(acc[j][v]);
        }
      }
      // The energy loop: yp walks the tile rows (stride bytes), xp the table rows (8M bytes).
      // (A loop, not unrolled code: V8 hoists loads at constant offsets from an address the
      // unit loop does not change, and spills them.)
      f.get(t).i32(8 * V).mul().get(yc).add().tee(yp).get('stride').i32(E).mul().add().set(ye);
      f.get(xc).set(xp);
      f.block().loop();
      for (let v = 0; v < V; v++) f.get(yp).vLoad64Zero(8 * v).f64x2PromoteLow().set(yv[v]);
      for (const j of cols) {
        if (j === M) {
          for (let v = 0; v < V; v++) f.get(acc[j][v]).get(yv[v]).get(yv[v]).f64x2Mul().f64x2Add().set(acc[j][v]);
          continue;
        }
        f.get(xp).vLoad64Splat(8 * j).set(xj);
        for (let v = 0; v < V; v++) f.get(acc[j][v]).get(xj).get(yv[v]).f64x2Mul().f64x2Add().set(acc[j][v]);
      }
      f.get(xp).i32(8 * M).add().set(xp);
      f.get(yp).get('stride').add().tee(yp).get(ye).op(0x49).brIf(0); // i32.lt_u (heap addresses reach 4 GiB)
      f.end().end();
      for (const j of cols) for (let v = 0; v < V; v++) f.get(g).get(acc[j][v]).vStore(L.G + j * L.GS + 16 * v);
    }
    f.get(t).i32(1).add().set(t);
    f.br(0);
    f.end().end();
    f.get(yc).get('stride').i32(E).mul().add().set(yc);
    f.get(xc).i32(8 * M * E).add().set(xc);
  };
  const full = Math.floor(nW / CHUNK), rem = nW % CHUNK;
  if (full === 0) chunk(rem, true);
  else {
    chunk(CHUNK, true);
    if (full > 1) {
      f.i32(full - 1).set(left);
      f.block().loop();
      chunk(CHUNK, false);
      f.get(left).i32(1).sub().tee(left).eqz().brIf(1);
      f.br(0);
      f.end().end();
    }
    if (rem > 0) chunk(rem, false);
  }
  return f;
}

/**
 * stage(y, stride, bytes): copies the block's nW row pieces (bytes long, stride apart) of a
 * tile in the heap into the staged block (rows YS bytes apart) with memory.copy: only for a
 * block that ends in a partial unit (whole blocks are read in place, CHUNK rows at a time).
 */
function buildStage(nW: number, L: Layout): Fn {
  const f = new Fn('stage', [['y', I32], ['stride', I32], ['bytes', I32]]);
  const d = f.local('d', I32), e = f.local('e', I32);
  f.i32(L.Y).set(d);
  f.i32(0).set(e);
  f.block().loop();
  f.get(d).get('y').get('bytes').op(0xfc, 10, 0, 0); // memory.copy
  f.get('y').get('stride').add().set('y');
  f.get(d).i32(L.YS).add().set(d);
  f.get(e).i32(1).add().tee(e).i32(nW).ltS().brIf(0);
  f.end().end();
  return f;
}

/**
 * Status the finish writes for a pixel whose unconstrained weights are not all >= 0; the
 * module's search (emitSearch) overwrites it, or, for the rare pixel it gives up on, lcfWasm
 * solves the pixel again with lcfFinishPixel: the value never reaches the caller.
 */
const NEEDS_SEARCH = -1;

/** Float64 slots after the subset table: mask -> subset index (int32), lane scratch, count. */
function searchTables(K: number, M: number): number {
  return (1 << K) / 2 + 1 + 2 * (M + 4) + 2;
}

/**
 * finish(pairs): the per-pixel solve of lcfFinishPixel, two pixels per f64x2 vector, with its
 * operations in its order (so the same bytes):
 * z from the pass (rows 0 .. M - 1), zz = ||z||^2, rho2 = max(0, ||y||^2 - zz); then
 * subset 0, every reference free: theta = A z + b and F = ||E z + e||^2. That is the whole
 * solve of the one-subset plans (ls, sum1, and nnls-sum1 with one reference, where the
 * exhaustive search has nothing else to try). In the sign-constrained plans (`search`) it is
 * the first step of lcfSearchPixel, which stops there when no weight is < 0 (no reference is
 * excluded, so there is no dual violation): most pixels of a typical map, 71-98 % of the
 * benchmark's; the others go through emitSearch, one lane at a time.
 * (Until this change the module evaluated every subset of plans up to 16 subsets for both
 * lanes, lane-selecting the winner, and left larger plans to JavaScript: 4 references cost
 * 16 subsets a pixel where the search needs 1.1-2.9.)
 * rss = rho2 + F, rms = sqrt(max(rss, 0) / nW), rfactor = rss / ||y||^2 (NaN unless
 * ||y||^2 > 0), status OK; a pixel whose ||y||^2 is not finite gets NaN rows and status
 * NO_DATA. Rows to O[row * C + p] (lcfRows(M) order). Tables at T: the plan's subset table
 * (plan.sub), then searchTables.
 */
function buildFinish(plan: LcfPlan, L: Layout, search: boolean): Fn {
  const { M, K, nW, subStride } = plan;
  const SL = subsetLayout(M, K);
  const f = new Fn('finish', [['pairs', I32], ['dst', I32], ['rowStride', I32]]);
  const t = f.local('t', I32), o = f.local('o', I32);
  const ss = f.local('ss', V128), ok = f.local('ok', V128), zz = f.local('zz', V128), acc = f.local('acc', V128);
  const rss = f.local('rss', V128), nan = f.local('nan', V128), zero = f.local('zero', V128), Fv = f.local('F', V128);
  const feas = f.local('feas', V128);
  const z = Array.from({ length: M }, (_, k) => f.local(`z${k}`, V128));
  const th = Array.from({ length: M }, (_, k) => f.local(`th${k}`, V128));
  const subO = L.T;
  const c = (off: number) => f.i32(0).vLoad64Splat(off);
  // Output row r of pair t at dst + r * rowStride + 16 t.
  const rowAt = Array.from({ length: M + 3 }, (_, r) => f.local(`row${r}`, I32));
  for (let r = 0; r < M + 3; r++) f.get('dst').get('rowStride').i32(r).mul().add().set(rowAt[r]);
  const out = (row: number) => f.get(rowAt[row]).get(o).add();
  f.f64(NaN).f64x2Splat().set(nan);
  f.f64(0).f64x2Splat().set(zero);
  f.i32(0).set(t);
  f.block().loop();
  f.get(t).get('pairs').geS().brIf(1);
  f.get(t).i32(4).shl().set(o);                // 16 bytes per pair
  f.get(o).vLoad(L.G + M * L.GS).set(ss);
  f.get(ss).get(ss).f64x2Sub().get(zero).f64x2Eq().set(ok);
  // z (the pass's rows 0 .. M - 1) and zz = ||z||^2 in k order from +0 (lcfFinishPixel's sum).
  f.get(zero).set(zz);
  for (let k = 0; k < M; k++) f.get(zz).get(o).vLoad(L.G + k * L.GS).tee(z[k]).get(z[k]).f64x2Mul().f64x2Add().set(zz);
  // acc = base[i] + sum_j mat[i * M + j] z_j, in j order (lcfWriteSubset's loops).
  const affine = (bOff: number, mOff: number, i: number) => {
    c(bOff + 8 * i).set(acc);
    for (let j = 0; j < M; j++) {
      f.get(acc);
      c(mOff + 8 * (i * M + j)).get(z[j]).f64x2Mul().f64x2Add().set(acc);
    }
  };
  // Subset 0: theta, and feasibility (all lanes true unless a weight < 0).
  f.i32(-1).op(0xfd, 0x11).set(feas); // i32x4.splat(-1): all ones
  for (let i = 0; i < M; i++) {
    affine(subO + 8 * SL.b, subO + 8 * SL.A, i);
    f.get(acc).set(th[i]);
    if (search && i < K) f.get(feas).get(acc).get(zero).f64x2Lt().vAndNot().set(feas);
  }
  f.get(zero).set(Fv);
  // F's terms are all +0 where E and e are zero: then F stays +0, and rss = max(0, .) + 0 has
  // the same bits without them.
  const zeroF = plan.sub.subarray(SL.E, SL.E + M * M).every((x) => x === 0) && plan.sub.subarray(SL.e, SL.e + M).every((x) => x === 0);
  for (let i = 0; i < M && !zeroF; i++) {
    affine(subO + 8 * SL.e, subO + 8 * SL.E, i);
    f.get(Fv).get(acc).get(acc).f64x2Mul().f64x2Add().set(Fv);
  }
  // rss = max(0, sumsq - zz) + F
  f.get(ss).get(zz).f64x2Sub().get(zero).f64x2Max().get(Fv).f64x2Add().set(rss);
  for (let k = 0; k < M; k++) out(k).get(th[k]).get(nan).get(ok).vBitselect().vStore();
  out(M).get(rss).get(zero).f64x2Max().f64(nW).f64x2Splat().f64x2Div().f64x2Sqrt().get(nan).get(ok).vBitselect().vStore();
  out(M + 1).get(rss).get(ss).f64x2Div().get(nan).get(ss).get(zero).f64x2Gt().vBitselect().get(nan).get(ok).vBitselect().vStore();
  // Status: OK, or NEEDS_SEARCH where subset 0 is not feasible (replaced by emitSearch's
  // rows, or left to lcfWasm); NO_DATA where ||y||^2 is not finite.
  out(M + 2).f64(LcfStatus.OK).f64x2Splat();
  if (search) f.f64(NEEDS_SEARCH).f64x2Splat().get(feas).vBitselect();
  f.f64(LcfStatus.NO_DATA).f64x2Splat().get(ok).vBitselect().vStore();
  if (search) emitSearch(f, plan, L, { z, th, ss, zz, zero, ok, feas, rowAt, o });
  f.get(t).i32(1).add().set(t);
  f.br(0);
  f.end().end();
  return f;
}

/**
 * finish(pairs) for the one-subset plans (ls, sum1, nnls-sum1 with one reference): the same
 * operations as buildFinish without a search, in the same order per pixel (so the same
 * bytes), as loops over the block's pairs instead of one loop doing all of a pair. Why: V8
 * loaded the ~2M^2 table constants of a pair at the top of its iteration and spilled most of
 * them. So: for each weight row and each residual-term row, one loop over the pairs with that
 * row's M + 1 constants in locals (z in G's rows 0 .. M - 1, F accumulates in row M + 3, the
 * no-data mask sits in row M + 2); a last loop forms ||z||^2 (k order) and writes rms,
 * rfactor and status. Measured at 6 references (CPU, tile in cache): the kernel 205 -> 149 ms
 * with these loops (then with a per-pixel forward substitution, since removed: lcf-fast.ts);
 * terms with a zero constant left out (below), 6 refs ~5 % less.
 */
function buildFinishSplit(plan: LcfPlan, L: Layout): Fn {
  const { M, nW } = plan;
  const SL = subsetLayout(M, plan.K);
  const f = new Fn('finish', [['pairs', I32], ['dst', I32], ['rowStride', I32]]);
  const t = f.local('t', I32), o = f.local('o', I32);
  const ss = f.local('ss', V128), ok = f.local('ok', V128), zz = f.local('zz', V128), acc = f.local('acc', V128);
  const rss = f.local('rss', V128), nan = f.local('nan', V128), zero = f.local('zero', V128), Fv = f.local('F', V128);
  const zk = f.local('zk', V128);
  const subO = L.T;
  const gRow = (j: number) => L.G + j * L.GS;
  const c = (off: number) => f.i32(0).vLoad64Splat(off);
  f.f64(NaN).f64x2Splat().set(nan);
  f.f64(0).f64x2Splat().set(zero);
  // Loops 2: per row of the weights and of the residual terms, the block's pairs in turn,
  // so the row's constants stay in locals (one loop over all of them per pair: V8 loaded its
  // ~2M^2 constants at the top and spilled most of them).
  const rowAt = Array.from({ length: M + 3 }, (_, r) => f.local(`row${r}`, I32));
  for (let r = 0; r < M + 3; r++) f.get('dst').get('rowStride').i32(r).mul().add().set(rowAt[r]);
  const out = (row: number) => f.get(rowAt[row]).get(o).add();
  const k = Array.from({ length: M + 1 }, (_, j) => f.local(`k${j}`, V128));
  const pairs = (body: () => void) => {
    f.i32(0).set(t);
    f.block().loop();
    f.get(t).get('pairs').geS().brIf(1);
    f.get(t).i32(4).shl().set(o);
    body();
    f.get(t).i32(1).add().set(t);
    f.br(0);
    f.end().end();
  };
  // acc = base[i] + sum_j mat[i * M + j] z_j, in j order (lcfWriteSubset's loops); k = the row's
  // constants. Terms whose constant is +-0 are left out (ls: A is triangular, ~60 % of E is
  // zero): with z finite such a term is +-0, and a sum that starts at a base other than -0
  // is never -0 (an exact cancellation rounds to +0), so adding +-0 leaves its bits as they
  // are. z is finite wherever ||y||^2 is (finite float32 values times a finite table); elsewhere
  // every row is replaced by NaN.
  const terms = (bOff: number, mOff: number, i: number) => {
    const base = plan.sub[bOff + i];
    return Array.from({ length: M }, (_, j) => j).filter((j) => Object.is(base, -0) || plan.sub[mOff + i * M + j] !== 0);
  };
  let used: number[] = [];
  const row = (bOff: number, mOff: number, i: number) => {
    used = terms(bOff, mOff, i);
    c(subO + 8 * (bOff + i)).set(k[M]);
    for (const j of used) c(subO + 8 * (mOff + i * M + j)).set(k[j]);
  };
  const affine = () => {
    f.get(k[M]).set(acc);
    for (const j of used) f.get(acc).get(k[j]).get(o).vLoad(gRow(j)).f64x2Mul().f64x2Add().set(acc);
  };
  // ok (||y||^2 finite) per pair, row M + 2.
  pairs(() => {
    f.get(o).vLoad(gRow(M)).tee(ss).get(ss).f64x2Sub().get(zero).f64x2Eq().set(ok);
    f.get(o).get(ok).vStore(gRow(M + 2));
  });
  for (let i = 0; i < M; i++) {
    row(SL.b, SL.A, i);
    pairs(() => {
      affine();
      out(i).get(acc).get(nan).get(o).vLoad(gRow(M + 2)).vBitselect().vStore();
    });
  }
  // F's terms are all +0 where E and e are zero: then F stays +0, and rss = max(0, .) + 0 has
  // the same bits without them.
  const zeroF = plan.sub.subarray(SL.E, SL.E + M * M).every((x) => x === 0) && plan.sub.subarray(SL.e, SL.e + M).every((x) => x === 0);
  for (let i = 0; i < M && !zeroF; i++) {
    row(SL.e, SL.E, i);
    pairs(() => {
      affine();
      f.get(o);
      if (i === 0) f.get(zero);
      else f.get(o).vLoad(gRow(M + 3));
      f.get(acc).get(acc).f64x2Mul().f64x2Add().vStore(gRow(M + 3));
    });
  }
  pairs(() => {
    f.get(o).vLoad(gRow(M)).set(ss);
    f.get(o).vLoad(gRow(M + 2)).set(ok);
    // zz = ||z||^2 in k order from +0 (lcfFinishPixel's sum).
    f.get(zero).set(zz);
    for (let k = 0; k < M; k++) f.get(zz).get(o).vLoad(gRow(k)).tee(zk).get(zk).f64x2Mul().f64x2Add().set(zz);
    if (zeroF) f.get(zero).set(Fv);
    else f.get(o).vLoad(gRow(M + 3)).set(Fv);
    f.get(ss).get(zz).f64x2Sub().get(zero).f64x2Max().get(Fv).f64x2Add().set(rss);
    out(M).get(rss).get(zero).f64x2Max().f64(nW).f64x2Splat().f64x2Div().f64x2Sqrt().get(nan).get(ok).vBitselect().vStore();
    out(M + 1).get(rss).get(ss).f64x2Div().get(nan).get(ss).get(zero).f64x2Gt().vBitselect().get(nan).get(ok).vBitselect().vStore();
    out(M + 2).f64(LcfStatus.OK).f64x2Splat().f64(LcfStatus.NO_DATA).f64x2Splat().get(ok).vBitselect().vStore();
  });
  return f;
}

/**
 * The active-set search of lcfSearchPixel (lcf-fast.ts), in scalar WebAssembly, for each
 * lane of the pair that needs it (finite data, a weight < 0 in subset 0): the same steps
 * (block principal pivoting from subset 0, the same switching rule and step limit) and, for
 * the subset found, lcfWriteSubset's arithmetic in its order, so the same bytes as lcfFast.
 * Why: in JavaScript this search was about a third of the 6-reference nnls time on the
 * benchmark (29 % of its pixels need it) and most of it on sparse mixtures. A lane that
 * reaches the step limit or a subset the plan does not hold keeps status NEEDS_SEARCH and
 * is counted; lcfWasm then solves it with lcfFinishPixel, whose search fails the same way
 * and falls back to the exhaustive one, as lcfFast does.
 */
function emitSearch(
  f: Fn, plan: LcfPlan, L: Layout,
  v: { z: string[]; th: string[]; ss: string; zz: string; zero: string; ok: string; feas: string; rowAt: string[]; o: string },
): void {
  const { M, K, nW, nSubsets, subStride } = plan;
  const SL = subsetLayout(M, K);
  const subO = L.T;
  const IDX = subO + 8 * nSubsets * subStride;
  const LANE = IDX + 8 * ((1 << K) / 2 + 1); // z_k at LANE + 16k (+ 8 lane); rho2, sumsq, needs, negative weights after
  const COUNT = LANE + 16 * (M + 4);
  const zs = Array.from({ length: M }, (_, k) => f.local(`zs${k}`, F64));
  const ths = Array.from({ length: K }, (_, k) => f.local(`ths${k}`, F64));
  const mask = f.local('smask', I32), best = f.local('sbest', I32), tries = f.local('stries', I32);
  const step = f.local('sstep', I32), off = f.local('soff', I32), flip = f.local('sflip', I32), count = f.local('scount', I32);
  const acc = f.local('sacc', F64), F = f.local('sF', F64), rss = f.local('srss', F64), rho2 = f.local('srho2', F64), sumsq = f.local('ssum', F64);
  // Lanes that need the search: data (ok) and subset 0 infeasible.
  f.get(v.ok).get(v.feas).vAndNot().vAnyTrue().if_();
  for (let k = 0; k < M; k++) f.i32(0).get(v.z[k]).vStore(LANE + 16 * k);
  f.i32(0).get(v.ss).get(v.zz).f64x2Sub().get(v.zero).f64x2Max().vStore(LANE + 16 * M);
  f.i32(0).get(v.ss).vStore(LANE + 16 * (M + 1));
  f.i32(0).get(v.ok).get(v.feas).vAndNot().vStore(LANE + 16 * (M + 2));
  // The search's first step is subset 0, already evaluated: its references with a weight < 0
  // as a bit mask per lane (int64 lanes).
  f.i32(0);
  for (let i = 0; i < K; i++) {
    f.get(v.th[i]).get(v.zero).f64x2Lt().i64x2Const(1 << i).vAnd();
    if (i > 0) f.vOr();
  }
  f.vStore(LANE + 16 * (M + 3));
  // acc = base_i + sum_j mat_ij z_j of the subset at `off` (lcfWriteSubset's order).
  const affine = (bOff: number, mOff: number, i: number) => {
    f.get(off).f64Load(subO + 8 * (bOff + i)).set(acc);
    for (let j = 0; j < M; j++) f.get(acc).get(off).f64Load(subO + 8 * (mOff + i * M + j)).get(zs[j]).fmul().fadd().set(acc);
  };
  for (let lane = 0; lane < 2; lane++) {
    f.block(); // skip
    f.i32(0).i32Load(LANE + 16 * (M + 2) + 8 * lane).eqz().brIf(0);
    for (let k = 0; k < M; k++) f.i32(0).f64Load(LANE + 16 * k + 8 * lane).set(zs[k]);
    f.i32(0).f64Load(LANE + 16 * M + 8 * lane).set(rho2);
    f.i32(0).f64Load(LANE + 16 * (M + 1) + 8 * lane).set(sumsq);
    // Step 0 (subset 0) done: switch its negative weights' references (a first count always
    // sets a new low).
    f.i32(0).i32Load(LANE + 16 * (M + 3) + 8 * lane).tee(flip).op(0x69).set(best); // i32.popcnt
    f.i32((1 << K) - 1).get(flip).op(0x73).set(mask);
    f.i32(3).set(tries);
    f.i32(1).set(step);
    f.block(); // done
    f.block(); // fail
    f.loop();
    f.get(step).i32(LCF_SEARCH_MAX_STEPS).geS().brIf(1);
    f.get(mask).i32(2).shl().i32Load(IDX).tee(off).i32(0).ltS().brIf(1);
    f.get(off).i32(8 * subStride).mul().set(off);
    f.i32(0).set(flip).i32(0).set(count);
    for (let i = 0; i < K; i++) {
      f.get(mask).i32(1 << i).op(0x71).op(0x04, I32); // i32.and: reference i free; if -> i32 (infeasible)
      affine(SL.b, SL.A, i);
      f.get(acc).tee(ths[i]).f64(0).op(0x63); // f64.lt: weight < 0 (the weight kept for the rows)
      f.else_();
      affine(SL.c, SL.W, i);
      f.get(acc).f64(0).op(0x64); // f64.gt: violation > 0
      f.end();
      f.if_();
      f.get(flip).i32(1 << i).op(0x72).set(flip); // i32.or
      f.get(count).i32(1).add().set(count);
      f.end();
    }
    // KKT: write the rows of this subset and leave.
    f.get(count).eqz().if_();
    const store = (r: number) => f.get(v.rowAt[r]).get(v.o).add();
    // Weights: those of the free references as the check just computed them, +0 for the
    // excluded ones (their rows of A and b are zero, so A z + b is +0 exactly: the same bits
    // as lcfWriteSubset's sum), the background terms' rows now.
    for (let i = 0; i < K; i++) store(i).get(ths[i]).f64(0).get(mask).i32(1 << i).op(0x71).op(0x1b).f64Store(8 * lane); // select
    for (let i = K; i < M; i++) {
      affine(SL.b, SL.A, i);
      store(i).get(acc).f64Store(8 * lane);
    }
    f.f64(0).set(F);
    for (let i = 0; i < M; i++) {
      affine(SL.e, SL.E, i);
      f.get(F).get(acc).get(acc).fmul().fadd().set(F);
    }
    f.get(rho2).get(F).fadd().set(rss);
    store(M).get(rss).f64(0).op(0xa5).f64(nW).op(0xa3).op(0x9f).f64Store(8 * lane); // sqrt(max(rss, 0) / nW)
    store(M + 1).get(rss).get(sumsq).op(0xa3).f64(NaN).get(sumsq).f64(0).op(0x64).op(0x1b).f64Store(8 * lane); // sumsq > 0 ? rss / sumsq : NaN
    store(M + 2).f64(LcfStatus.OK).f64Store(8 * lane);
    f.br(3); // if, loop, fail, done
    f.end();
    // Switch every infeasible reference while their count falls (3 tries without a fall),
    // else only the highest-numbered one.
    f.get(count).get(best).ltS().if_();
    f.get(count).set(best).i32(3).set(tries).get(mask).get(flip).op(0x73).set(mask); // i32.xor
    f.else_();
    f.get(tries).i32(0).op(0x4a).if_(); // i32.gt_s
    f.get(tries).i32(1).sub().set(tries).get(mask).get(flip).op(0x73).set(mask);
    f.else_();
    f.get(mask).i32(1).i32(31).get(flip).op(0x67).sub().shl().op(0x73).set(mask); // mask ^= 1 << (31 - clz(flip))
    f.end();
    f.end();
    f.get(step).i32(1).add().set(step);
    f.br(0);
    f.end(); // loop
    f.end(); // fail: left to lcfWasm
    f.i32(0).i32(0).i32Load(COUNT).i32(1).add().i32Store(COUNT);
    f.end(); // done
    f.end(); // skip
  }
  f.end(); // if any lane
}

class Instance {
  readonly L: Layout;
  readonly mem: WasmMemory;
  readonly ex: Exports;
  /** A sign-constrained plan: the module runs the active-set search (emitSearch). */
  readonly search: boolean;
  /** Byte address of the module search's count of pixels it left NEEDS_SEARCH. */
  readonly countAt: number;
  /** f64x2 vectors of pixels per unit of the pass (blocking). */
  readonly V: number;
  /** `target`: the scratch is a block of another thread's heap (LcfTarget), else one of this thread's. */
  constructor(readonly plan: LcfPlan, readonly target: LcfTarget | null = null) {
    const { nW, M } = plan;
    const tables = scratchTables(plan);
    // The scratch (projection table, staged block, projections, tables, output rows) is one heap block.
    this.L = layout(nW, M, tables, target ? target.base : heapAlloc(layout(nW, M, tables).bytes));
    this.mem = target ? target.mem : wasmHeap().mem;
    this.search = lcfSearchTable(plan) !== null;
    this.V = blocking(M).V;
    this.countAt = this.L.T + 8 * (plan.nSubsets * plan.subStride + searchTables(plan.K, M) - 2);
    const fns = [buildPass(nW, M, this.L), buildStage(nW, this.L), this.search ? buildFinish(plan, this.L, this.search) : buildFinishSplit(plan, this.L)];
    this.ex = instantiate<Exports>(assemble(fns, { pages: 1, maxPages: 65536, shared: true }), this.mem);
    new Float64Array(this.mem.buffer, this.L.X, nW * M).set(lcfProjection(plan).subarray(0, nW * M));
    new Float64Array(this.mem.buffer, this.L.T, plan.nSubsets * plan.subStride).set(plan.sub.subarray(0, plan.nSubsets * plan.subStride));
    const index = lcfSearchTable(plan);
    if (index) new Int32Array(this.mem.buffer, this.L.T + 8 * plan.nSubsets * plan.subStride, index.length).set(index);
  }
}

/**
 * Tables (float64 units): the subset table, then for the active-set search the subset
 * index of each mask (2^K int32), the lane scratch of the search (M + 4 vectors) and its
 * count of pixels left to lcfWasm.
 */
function scratchTables(plan: LcfPlan): number {
  return plan.nSubsets * plan.subStride + searchTables(plan.K, plan.M);
}

/**
 * Heap bytes one plan's scratch takes in a thread's WebAssembly heap (projection table, the staged
 * block of BLOCK_PIXELS pixels, projections, tables, output rows; ~1 MiB at 100 energies),
 * kept while the plan lives and committed until the thread ends: the lcf step's memory plan
 * counts it per thread (LcfStep.cpuKernelBytes).
 */
export function lcfWasmScratchBytes(plan: LcfPlan): number {
  return heapGrowthBytes(layout(plan.nW, plan.M, scratchTables(plan)).bytes);
}

const instances = new WeakMap<LcfPlan, Instance>();
/** A plan's scratch goes back to the heap when the plan is collected. */
const scratch = new FinalizationRegistry<number>((a) => heapFree(a));

/**
 * Another thread's WebAssembly heap for lcfWasm run by a worker thread (lcf-threads.ts):
 * `mem` is that heap's (shared) memory, `base` the address of a block of
 * lcfWasmTargetBytes(plan) its owner allocated there for this worker alone (the instance's
 * scratch: projection table, staged block, projections, tables, rows), and the tile and the
 * output rows handed to lcfWasm lie in `mem`, at their byteOffset: read and written in place,
 * as on the owner's own thread (a worker with its own heap stages every block of a tile that
 * lies elsewhere: ~20 % of the kernel's time). The owner frees the block after the worker's
 * last run.
 */
export interface LcfTarget {
  mem: WasmMemory;
  base: number;
}

/** Bytes of the block an owner allocates for one worker's LcfTarget (one plan). */
export function lcfWasmTargetBytes(plan: LcfPlan): number {
  return layout(plan.nW, plan.M, scratchTables(plan)).bytes;
}

/**
 * Pixels p0 .. p1 - 1 of a tile only (a worker thread's part: lcf-threads.ts), with `target`
 * in another thread's heap. `key` names the plan among those its owner hands out (plans reach
 * a worker as copies, so a copy cannot key the instance): with the target's base, the instance
 * this thread keeps for it. Every pixel is solved alone, so the rows do not depend on how a
 * tile is cut into parts.
 */
export interface LcfPart {
  p0: number;
  p1: number;
  target: LcfTarget | null;
  key: number;
}

/** Instances of parts (LcfPart.key @ target base, or 'own'), a few at a time. */
const partInstances = new Map<string, Instance>();

function partInstance(plan: LcfPlan, part: LcfPart): Instance {
  const key = `${part.key}@${part.target ? part.target.base : 'own'}`;
  let w = partInstances.get(key);
  if (!w) {
    if (partInstances.size >= 16) {
      // The scratch of a target's instance stays with its owner; this thread's own goes back.
      for (const old of partInstances.values()) if (!old.target) heapFree(old.L.X);
      partInstances.clear();
    }
    w = new Instance(plan, part.target);
    partInstances.set(key, w);
  }
  return w;
}

/** True where lcfWasm can run (WebAssembly with fixed-width SIMD). */
export const lcfWasmAvailable = wasmSimd;

/**
 * Rows as lcfCpu / lcfFast return them (lcfRows(M)), for `cube` = the window's energies
 * [nW][P]; the same bytes as lcfFast. `out` (optional, at least lcfRows(M).ROWS x P values):
 * where the rows go; one in the heap (heapF64) is written by the kernel directly, any other
 * is filled from the kernel's scratch. Without it a new array is returned.
 */
export function lcfWasm(plan: LcfPlan, cube: Float32Array, P: number, out?: Float64Array, part?: LcfPart): Float64Array {
  const { M, K, nW } = plan;
  if (cube.length < nW * P) throw new RangeError(`lcfWasm: cube holds ${cube.length} values, need ${nW * P}`);
  const pStart = part ? part.p0 : 0, pEnd = part ? part.p1 : P;
  if (!(pStart >= 0 && pStart <= pEnd && pEnd <= P)) throw new RangeError(`lcfWasm: part ${pStart} .. ${pEnd} of a tile of ${P} pixels`);
  let w = part ? partInstance(plan, part) : instances.get(plan);
  if (!w) {
    instances.set(plan, (w = new Instance(plan)));
    scratch.register(plan, w.L.X);
  }
  const { L, mem, ex } = w;
  const C = L.C;
  const rows = lcfRows(M);
  if (out && out.length < rows.ROWS * P) throw new RangeError(`lcfWasm: out holds ${out.length} values, need ${rows.ROWS * P}`);
  // With a target, the tile and `out` lie in its memory (LcfTarget).
  if (w.target && !out) throw new RangeError('lcfWasm: a part in another thread\'s heap needs its `out` there');
  out ??= new Float64Array(rows.ROWS * P);
  const Y = new Float32Array(mem.buffer, L.Y, (nW * L.YS) / 4);
  const G = new Float64Array(mem.buffer, L.G, ((M + 1) * L.GS) / 8);
  const GS = L.GS / 8;
  const O = new Float64Array(mem.buffer, L.O, (M + 3) * C);
  const z = new Float64Array(M);
  const th = new Float64Array(M);
  const SL = subsetLayout(M, K);
  const search = lcfSearchTable(plan);
  const count = new Int32Array(mem.buffer, w.countAt, 1);
  count[0] = 0;
  // A tile in the heap (wasm-heap.ts) is read in place, except a block that ends in a partial
  // unit (its last unit would read past the block: past the tile, at the last row), which is
  // staged by memory.copy; any other tile is staged by TypedArray.set (one call per row piece).
  // The rows go straight to an `out` in the heap.
  const tileInHeap = w.target !== null || inHeap(cube);
  const outInHeap = w.target !== null || inHeap(out);
  const unit = 2 * w.V;
  for (let a = pStart; a < pEnd; a += C) {
    const n = Math.min(C, pEnd - a);
    const units = Math.ceil(n / unit);
    if (tileInHeap && n % unit === 0) ex.pass(units, cube.byteOffset + 4 * a, 4 * P);
    else {
      if (tileInHeap) ex.stage(cube.byteOffset + 4 * a, 4 * P, 4 * n);
      else for (let e = 0; e < nW; e++) Y.set(cube.subarray(e * P + a, e * P + a + n), (e * L.YS) / 4);
      // A last partial unit reads the staged block's stale floats past n: its extra lanes are
      // computed and dropped.
      ex.pass(units, L.Y, L.YS);
    }
    // Pairs write two pixels: an odd last block goes through the scratch rows (its extra
    // pixel would land on the next output row).
    if (outInHeap && n % 2 === 0) ex.finish(n >> 1, out.byteOffset + 8 * a, 8 * P);
    else {
      ex.finish((n + 1) >> 1, L.O, 8 * C);
      for (let r = 0; r < rows.ROWS; r++) out.set(O.subarray(r * C, r * C + n), r * P + a);
    }
    if (!w.search || count[0] === 0) continue;
    // Pixels the module's search left (step limit, or a subset the plan does not hold):
    // lcfFinishPixel from the block's projections (still in G), as lcfFast solves them.
    count[0] = 0;
    const st = rows.STATUS * P + a;
    for (let i = 0; i < n; i++) {
      if (out[st + i] !== NEEDS_SEARCH) continue;
      for (let j = 0; j < M; j++) z[j] = G[j * GS + i];
      lcfFinishPixel(plan, SL, z, 0, G[M * GS + i], th, out, rows, P, a + i, search);
    }
  }
  return out;
}
