/**
 * The PCA covariance block kernel in WebAssembly SIMD, float32 products (f32x4) with float64
 * sums: the augmented Gram matrix G = sum a a^T, a = [x - centre, 1], the same matrix as
 * gramBlocks' JavaScript path in pca-gram.ts (float64 throughout) and pcaGramCpu (the
 * readable twin), to within GRAM_F32_BOUND below; ~1.4x the float64 SIMD kernel it replaces
 * (bench/README.md), as WebAssembly has 4 float32 lanes but only 2 float64 lanes and no FMA.
 *
 * Per block of pixels (pca-gram.ts PCA_CPU_BLOCK): a tile that lies in this thread's
 * WebAssembly heap (wasm-heap.ts heapF32) is read where it lies, every full panel straight
 * from the tile's rows; any other tile's block is first copied into staging rows in the heap
 * (one copy per row). A last partial panel is always staged (its missing pixels NaN, i.e.
 * excluded), so the kernel never reads past a block. Then per panel of WPANEL pixels:
 * - the panel A (mp rows of WPANEL float32): x - centre[e] computed in float64 and rounded
 *   once to float32, the constant row 1, zero rows up to mp (a multiple of BQ), while the same
 *   sweep checks that every value is usable (|v| < PCA_MAX_ABS: usableValue; NaN fails the
 *   comparison), four pixels per f32x4;
 * - only if some value of the panel is not usable (rare): the exclusion mask, per pixel over
 *   every energy, and A again with every excluded pixel a zero column (and 0 in the constant
 *   row), the same values the first sweep wrote for the others;
 * - G's upper BR x BQ blocks += A A^T over the panel: BR * BQ f32x4 accumulators (lane l sums
 *   the products of pixels 4 i + l), the BR + BQ rows loaded once per four pixels; after every
 *   F32_RUN quads (4 F32_RUN pixels, F32_RUN products per lane) the four lanes are widened to
 *   float64 and added to two float64 partial sums per entry of G: G2[i][j] += (l0 + l2,
 *   l1 + l3) (one f64x2 add); at the end of the block G[i][j] = G2[i][j].lo + G2[i][j].hi.
 *
 * Arithmetic and error bound (u = 2^-24, float32 rounding): the centred value carries <= u
 * relative error, its product <= 3u, and a lane's float32 sum of F32_RUN products <= (F32_RUN
 * - 1) u of the sum of their magnitudes; everything after is float64. So
 *   |G_computed[i][j] - G[i][j]| <= (F32_RUN + 2) u sum_p |a_i(p) a_j(p)|
 *                                <= (F32_RUN + 2) u sqrt(G[i][i] G[j][j])   (Cauchy-Schwarz),
 * 2.0e-6 of the diagonal for F32_RUN = 32 (GRAM_F32_BOUND), float32 data's own precision
 * (scikit-learn's PCA of float32 data works in float32 throughout). The covariance then carries
 * the same relative error; eigenvalues move by at most that times the largest one (Weyl).
 * The order of every sum depends only on the pixel index within the block, never on the
 * thread. The module is generated for each d (mp constant).
 */
import { PCA_MAX_ABS } from './pca.js';
import { assemble, Fn, I32, instantiate, V128, wasmSimd } from './wasm.js';
import { heapAlloc, heapFree, inHeap, wasmHeap } from './wasm-heap.js';
import type { SweepTarget } from './kmeans-wasm.js';

/** Pixels per panel of the WebAssembly path (A: mp x WPANEL float32, 104 KiB for d = 101: L2). */
export const WPANEL = 256;

/** Register block of the Gram kernel: BR rows x BQ columns of G, BR * BQ f32x4 accumulators (x64 has 16 vector registers). */
const BR = 2;
const BQ = 4;
/** Quads of pixels summed per float32 lane before the float64 sum (WPANEL / 4 must be a multiple). */
export const F32_RUN = 32;
/** The error bound above, relative to sqrt(G[i][i] G[j][j]): (F32_RUN + 2) u. */
export const GRAM_F32_BOUND = (F32_RUN + 2) * 2 ** -24;

/** Rows of the WebAssembly panel: d + 1 rounded up to a multiple of BQ (BR divides BQ). */
export function wasmRows(d: number): number {
  return Math.ceil((d + 1) / BQ) * BQ;
}

interface Exports {
  /** Adds nPanels panels to G; panel p's row e (WPANEL float32) starts at byte x + e * stride + p * 4 * WPANEL. */
  block: (x: number, stride: number, nPanels: number) => void;
}

/** Scratch layout for d energies and `stage` staged pixels per row (offsets from an aligned base). */
function gramLayout(d: number, stage: number): { offA: number; offG: number; offC: number; offOk: number; bytes: number } {
  const mp = wasmRows(d);
  const al = (x: number) => Math.ceil(x / 64) * 64;
  const offA = al(4 * d * stage);
  const offG = al(offA + 4 * mp * WPANEL);
  const offC = al(offG + 16 * mp * mp);
  const offOk = al(offC + 8 * d);
  // + 64: room to align the base to a cache line.
  return { offA, offG, offC, offOk, bytes: offOk + 16 * (WPANEL / 4) + 64 };
}

/**
 * Bytes of the scratch block an owner allocates for one worker's target (wasmGram(d, S,
 * target)): a target's tiles lie in its memory, read in place, so only a last partial panel
 * is staged (WPANEL pixels per row, not a whole block).
 */
export function wasmGramTargetBytes(d: number): number {
  return gramLayout(d, WPANEL).bytes;
}

/** Whether wasmGram runs (WebAssembly SIMD). */
export function wasmGramRuns(): boolean {
  return wasmSimd;
}

/**
 * One instance per (thread, d, block size[, target]): its scratch in this thread's heap,
 * reused for every block; or, with a target (kmeans-wasm.ts SweepTarget: the same mechanism
 * as the k-means and edge workers), in another thread's heap: the module runs on that
 * memory, in the scratch block its owner allocated there for this worker (wasmGramTargetBytes),
 * and every tile handed to gram() lies in that memory and is read in place at its byteOffset.
 */
export class WasmGram {
  readonly mp: number;
  private readonly exp: Exports;
  /** Heap addresses: the block allocation, staging rows, panel, G, centre, mask. */
  private readonly base: number;
  private readonly offX: number;
  private readonly offA: number;
  private readonly offG: number;
  private readonly offC: number;

  /** `S`: the staging row length (pixels per block, a multiple of WPANEL); `target`: run in another thread's heap. */
  constructor(readonly d: number, readonly S: number, private readonly target: SweepTarget | null = null) {
    if (S % WPANEL !== 0) throw new RangeError('WasmGram: block size must be a multiple of the panel');
    const mp = (this.mp = wasmRows(d));
    const L = gramLayout(d, target ? WPANEL : S);
    this.base = target ? target.base : heapAlloc(L.bytes);
    const b = Math.ceil(this.base / 64) * 64;
    this.offX = b;
    this.offA = b + L.offA;
    this.offG = b + L.offG;
    this.offC = b + L.offC;
    this.exp = instantiate<Exports>(buildModule(d, mp, this.offA, this.offG, this.offC, b + L.offOk), target ? target.mem : wasmHeap().mem);
    // Rows d + 1 .. mp - 1 of A stay zero (never written by the kernel); the heap block holds whatever it last held.
    new Float32Array(this.buffer(), this.offA, mp * WPANEL).fill(0);
  }

  /** Returns the scratch to the heap (the instance must not be used after); a target's scratch stays with its owner. */
  free(): void {
    if (!this.target) heapFree(this.base);
  }

  private buffer(): ArrayBuffer {
    return this.target ? this.target.mem.buffer : wasmHeap().buffer;
  }

  /**
   * The block's Gram matrix into G (full symmetric (d + 1)^2, row-major): pixels
   * [p0, p1) of the energy-major tile cube (d rows of P).
   */
  gram(cube: Float32Array, P: number, p0: number, p1: number, centre: Float64Array, G: Float64Array): void {
    const { d, S, mp } = this;
    const n = p1 - p0;
    if (n > S) throw new RangeError('WasmGram: block larger than the staging area');
    const nPanels = Math.ceil(n / WPANEL);
    if (nPanels === 0) {
      G.fill(0);
      return;
    }
    const buf = this.buffer();
    new Float64Array(buf, this.offC, d).set(centre);
    // G2: two float64 partial sums per entry (see the header)
    const Gp = new Float64Array(buf, this.offG, 2 * mp * mp);
    Gp.fill(0);
    const full = Math.floor(n / WPANEL);
    if (this.target !== null || inHeap(cube)) {
      const X = new Float32Array(buf, this.offX, d * WPANEL);
      // Full panels in place; a partial last one staged below.
      if (full > 0) this.exp.block(cube.byteOffset + 4 * p0, 4 * P, full);
      const tail = n - full * WPANEL;
      if (tail > 0) {
        const q0 = p0 + full * WPANEL;
        for (let e = 0; e < d; e++) {
          X.set(cube.subarray(e * P + q0, e * P + p1), e * WPANEL);
          // Pixels past the block's end: NaN, i.e. excluded (zero columns).
          X.fill(NaN, e * WPANEL + tail, (e + 1) * WPANEL);
        }
        this.exp.block(this.offX, 4 * WPANEL, 1);
      }
    } else {
      const X = new Float32Array(buf, this.offX, d * S);
      for (let e = 0; e < d; e++) {
        X.set(cube.subarray(e * P + p0, e * P + p1), e * S);
        // Pixels past the block's end in its last panel: NaN, i.e. excluded (zero columns).
        X.fill(NaN, e * S + n, e * S + nPanels * WPANEL);
      }
      this.exp.block(this.offX, 4 * S, nPanels);
    }
    const m = d + 1;
    for (let i = 0; i < m; i++) {
      for (let j = i; j < m; j++) {
        const v = Gp[2 * (i * mp + j)] + Gp[2 * (i * mp + j) + 1];
        G[i * m + j] = v;
        G[j * m + i] = v;
      }
    }
  }
}

const instances = new Map<string, WasmGram>();

/**
 * This thread's WasmGram for (d, S), or null where WebAssembly SIMD is missing or the staging
 * area would not fit. With `target`, the instance works in another thread's heap (see
 * WasmGram); instances are kept by (d, S, target.base): a worker serves one owner thread.
 */
export function wasmGram(d: number, S: number, target: SweepTarget | null = null): WasmGram | null {
  if (!wasmSimd || 4 * d * (target ? WPANEL : S) > 1 << 30) return null;
  const key = `${d}:${S}${target ? `@${target.base}` : ''}`;
  let g = instances.get(key);
  if (!g) {
    if (instances.size > 4) {
      for (const w of instances.values()) w.free();
      instances.clear();
    }
    g = new WasmGram(d, S, target);
    instances.set(key, g);
  }
  return g;
}

function buildModule(d: number, mp: number, offA: number, offG: number, offC: number, offOk: number): Uint8Array<ArrayBuffer> {
  const f = new Fn('block', [['x', I32], ['stride', I32], ['nPanels', I32]]);
  const pnl = f.local('pnl', I32), e = f.local('e', I32);
  const row = f.local('row', I32), ok = f.local('ok', I32), arow = f.local('arow', I32);
  const x = f.local('xv', V128), c = f.local('c', V128), good = f.local('good', V128), lim = f.local('lim', V128), zero = f.local('zero', V128), ones = f.local('ones', V128), one = f.local('one', V128);
  const bi = f.local('bi', I32), bj = f.local('bj', I32), pa = f.local('pa', I32), pb = f.local('pb', I32), end = f.local('end', I32), g = f.local('g', I32), run = f.local('run', I32);
  const a = f.local('a', V128), b = Array.from({ length: BQ }, (_, q) => f.local(`b${q}`, V128));
  const acc = Array.from({ length: BR }, (_, r) => Array.from({ length: BQ }, (_, q) => f.local(`acc${r}${q}`, V128)));
  const RB = 4 * WPANEL; // bytes per panel row
  // Cache lines of the next panel's d rows, touched from the Gram loop (see there).
  const t = f.local('t', I32), tb = f.local('tb', I32), sink = f.local('sink', I32);
  const LPR = RB / 64;
  const TOUCH = d * LPR;
  const OKEND = offOk + 16 * (WPANEL / 4);
  // usable: |v| < PCA_MAX_ABS in float64 is |v| <= lim32 (or < lim32) for the float32 v.
  const lim32 = Math.fround(PCA_MAX_ABS);
  const le = lim32 < PCA_MAX_ABS;
  const HI = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]; // lanes 2, 3 to 0, 1
  const JOIN = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]; // low halves of two vectors
  f.f64(lim32).demote().f32x4Splat().set(lim);
  f.f64(0).f64x2Splat().set(zero);
  f.f64(1).demote().f32x4Splat().set(one);
  f.get(zero).get(zero).f64x2Eq().set(ones); // all bits set
  f.i32(0).set(pnl);
  f.block().loop();
  {
    // --- fast sweep: A = centred values (float64 difference, one rounding) of every pixel,
    // good = lanes where every value so far was usable
    f.get(ones).set(good);
    f.i32(0).set(e);
    f.block().loop();
    {
      f.get(e).get('stride').mul().get(pnl).i32(RB).mul().add().get('x').add().set(row);
      f.get(e).i32(3).shl().i32(offC).add().vLoad64Splat().set(c);
      f.get(e).i32(RB).mul().i32(offA).add().set(arow);
      f.get(arow).i32(RB).add().set(end);
      f.block().loop();
      f.get(row).vLoad().set(x);
      f.get(good).get(x).f32x4Abs().get(lim);
      if (le) f.f32x4Le();
      else f.f32x4Lt();
      f.vAnd().set(good);
      f.get(arow);
      f.get(x).f64x2PromoteLow().get(c).f64x2Sub().f32x4DemoteZero();
      f.get(x).get(x).shuffle(HI).f64x2PromoteLow().get(c).f64x2Sub().f32x4DemoteZero();
      f.shuffle(JOIN);
      f.vStore();
      f.get(row).i32(16).add().set(row);
      f.get(arow).i32(16).add().tee(arow).get(end).ltS().brIf(0);
      f.end().end();
      f.get(e).i32(1).add().tee(e).i32(d).ltS().brIf(0);
    }
    f.end().end();
    // the constant row d: 1
    f.i32(offA + d * RB).set(arow);
    f.block().loop();
    f.get(arow).get(one).vStore();
    f.get(arow).i32(16).add().tee(arow).i32(offA + (d + 1) * RB).ltS().brIf(0);
    f.end().end();
    // Some value not usable: mask and build the panel again (excluded pixels as zero columns).
    f.get(good).vNot().vAnyTrue().if_();
    // --- mask: ok[j] (pixel quad j of the panel) = all energies usable
    f.i32(offOk).set(ok);
    f.block().loop();
    f.get(ok).get(ones).vStore();
    f.get(ok).i32(16).add().tee(ok).i32(OKEND).ltS().brIf(0);
    f.end().end();
    f.i32(0).set(e);
    f.block().loop();
    {
      // row = byte address of pixel pnl * WPANEL of energy e
      f.get(e).get('stride').mul().get(pnl).i32(RB).mul().add().get('x').add().set(row);
      f.i32(offOk).set(ok);
      f.block().loop();
      f.get(ok);
      f.get(ok).vLoad();
      f.get(row).vLoad().f32x4Abs().get(lim);
      if (le) f.f32x4Le();
      else f.f32x4Lt();
      f.vAnd().vStore();
      f.get(row).i32(16).add().set(row);
      f.get(ok).i32(16).add().tee(ok).i32(OKEND).ltS().brIf(0);
      f.end().end();
      f.get(e).i32(1).add().tee(e).i32(d).ltS().brIf(0);
    }
    f.end().end();
    // --- panel A: centred values (float64 difference, one rounding) where usable, else 0
    f.i32(0).set(e);
    f.block().loop();
    {
      f.get(e).get('stride').mul().get(pnl).i32(RB).mul().add().get('x').add().set(row);
      f.get(e).i32(3).shl().i32(offC).add().vLoad64Splat().set(c);
      f.get(e).i32(RB).mul().i32(offA).add().set(arow);
      f.i32(offOk).set(ok);
      f.block().loop();
      f.get(row).vLoad().set(x);
      f.get(arow);
      f.get(x).f64x2PromoteLow().get(c).f64x2Sub().f32x4DemoteZero();
      f.get(x).get(x).shuffle(HI).f64x2PromoteLow().get(c).f64x2Sub().f32x4DemoteZero();
      f.shuffle(JOIN);
      f.get(zero).get(ok).vLoad().vBitselect().vStore();
      f.get(row).i32(16).add().set(row);
      f.get(arow).i32(16).add().set(arow);
      f.get(ok).i32(16).add().tee(ok).i32(OKEND).ltS().brIf(0);
      f.end().end();
      f.get(e).i32(1).add().tee(e).i32(d).ltS().brIf(0);
    }
    f.end().end();
    // the constant row d: 1 where usable
    f.i32(offA + d * RB).set(arow);
    f.i32(offOk).set(ok);
    f.block().loop();
    f.get(arow).get(one).get(zero).get(ok).vLoad().vBitselect().vStore();
    f.get(arow).i32(16).add().set(arow);
    f.get(ok).i32(16).add().tee(ok).i32(OKEND).ltS().brIf(0);
    f.end().end();
    f.end(); // if
    // --- G's upper triangle += A A^T, in BR x BQ blocks (rows bi.., columns bj..)
    // While it runs (arithmetic-bound), one load of each cache line of the next panel's rows
    // (two per float64 flush below) brings them from memory, so the next panel's sweep reads
    // from cache: WebAssembly has no prefetch instruction. Only within this call's panels.
    f.get(pnl).i32(1).add().tee(tb).get('nPanels').ltS().if_();
    f.i32(0).set(t);
    f.else_();
    f.i32(TOUCH).set(t);
    f.end();
    f.get(tb).i32(RB).mul().get('x').add().set(tb);
    f.i32(0).set(bi);
    f.block().loop();
    {
      // first column block that reaches the diagonal: bj = bi rounded down to a multiple of BQ
      f.get(bi).i32(BQ).divS().i32(BQ).mul().set(bj);
      f.block().loop();
      {
        f.get(bi).i32(RB).mul().i32(offA).add().set(pa);
        f.get(bj).i32(RB).mul().i32(offA).add().set(pb);
        f.get(bi).i32(mp).mul().get(bj).add().i32(4).shl().i32(offG).add().set(g);
        f.i32(0).set(run);
        f.block().loop();
        {
          for (const r of acc) for (const q of r) f.get(zero).set(q);
          f.get(pa).i32(16 * F32_RUN).add().set(end);
          f.loop();
          for (let q = 0; q < BQ; q++) f.get(pb).vLoad(q * RB).set(b[q]);
          for (let r = 0; r < BR; r++) {
            f.get(pa).vLoad(r * RB).set(a);
            for (let q = 0; q < BQ; q++) f.get(acc[r][q]).get(a).get(b[q]).f32x4Mul().f32x4Add().set(acc[r][q]);
          }
          f.get(pb).i32(16).add().set(pb);
          f.get(pa).i32(16).add().tee(pa).get(end).ltS().brIf(0);
          f.end();
          // G2[bi + r][bj + q] += (l0 + l2, l1 + l3), in float64
          for (let r = 0; r < BR; r++) {
            for (let q = 0; q < BQ; q++) {
              const o = 16 * (r * mp + q);
              const v = acc[r][q];
              f.get(g);
              f.get(g).vLoad(o);
              f.get(v).f64x2PromoteLow().get(v).get(v).shuffle(HI).f64x2PromoteLow().f64x2Add();
              f.f64x2Add().vStore(o);
            }
          }
          f.get(t).i32(TOUCH).ltS().if_();
          for (let k = 0; k < 2; k++) {
            // line t: row t / LPR, byte (t % LPR) * 64 (LPR = RB / 64 lines per row, a power of 2)
            f.get(sink);
            f.get(tb).get(t).i32(Math.log2(LPR)).op(0x76).get('stride').mul().add().get(t).i32(LPR - 1).op(0x71).i32(6).shl().add().i32Load();
            f.op(0x73).set(sink); // xor: the loaded value is used
            f.get(t).i32(1).add().set(t);
          }
          f.end();
          f.get(run).i32(1).add().tee(run).i32(WPANEL / (4 * F32_RUN)).ltS().brIf(0);
        }
        f.end().end();
        f.get(bj).i32(BQ).add().tee(bj).i32(mp).ltS().brIf(0);
      }
      f.end().end();
      f.get(bi).i32(BR).add().tee(bi).i32(mp).ltS().brIf(0);
    }
    f.end().end();
    f.get(pnl).i32(1).add().tee(pnl).get('nPanels').ltS().brIf(0);
  }
  f.end().end();
  f.i32(offOk).get(sink).i32Store();
  return assemble([f], { pages: 1, maxPages: 65536, shared: true });
}
