/**
 * The k-means fused sweep (kmeans-sweep.ts) in WebAssembly SIMD. Two kernels: for d <= 8
 * (WasmSweep, below) everything in float64; for d >= 9 (WasmScreen, at the end of the file)
 * a float32 screen whose labels are proven equal to the float64 twin's, float64 sums.
 *
 * WasmSweep (d <= 8): the same assignment and
 * cluster sums, two pixels per f64x2 vector, with the same float64 operations in the same
 * order as the JavaScript sweep and the twin kmeansAssignCpu, so labels, distances and sums
 * are bit-identical to them:
 * - z_f = (x_f - shift_f) * invScale_f (x the float32 value promoted to float64);
 * - s_j = sum over f in order of (z_f - c_jf)^2, the centres compared in index order with a
 *   strict <, so an exact tie keeps the lower index; done branch-free with lane masks, so the
 *   cost does not depend on how predictable the labels are;
 * - a pixel with a non-finite feature (x - x != 0) is excluded: label -1, distance NaN;
 * - per pixel, in pixel order, its z is added to its cluster's float64 sums (scalar adds in
 *   the order of the JavaScript sweep), with the count and the squared distance. Why float64
 *   here: the sums of ~10^4 values of z are compared with the twin's to 1e-9 of their scale
 *   (test/kernels/kmeans.test.ts), which float32 accumulation would not meet.
 * The pixels go in chunks of chunkPairs(d) pairs, two passes each: pass A forms the z and the
 *   winner of every pair (vectors, nothing carried from pair to pair) into an L1 scratch,
 *   pass B makes the scalar adds. In one pass the sums' addresses waited on each pair's whole
 *   distance and argmin chain (1M x 3: 12.5 -> 10.3 ms an iteration). The order of the adds
 *   is unchanged, so are the bytes.
 * The sweep reads feature-major float32 rows where they lie when the array is in this
 * thread's WebAssembly heap (wasm-heap.ts; an odd last pixel of a sub-block is staged with a
 * NaN padding pixel), else the caller stages each sub-block into the instance's scratch; the
 * module is generated for (d, active centres, labels wanted), the feature loops unrolled
 * (d <= UNROLL_D).
 */
import { assemble, F32, F64, Fn, I32, instantiate, V128, wasmSimd, type WasmMemory } from './wasm.js';
import { heapAlloc, heapFree, inHeap, wasmHeap } from './wasm-heap.js';

/** Largest d of the float64 WasmSweep (feature loops unrolled); larger d runs WasmScreen. */
const UNROLL_D = 8;
/** Centres whose distances are formed together in one pass over z (accumulators in registers). */
const GROUP = 6;

interface Exports {
  /** n pixels; feature f of pixel i at byte x0 + f rs + 4 i (the staged rows or a heap array in place). */
  sweep: (n: number, x0: number, rs: number) => void;
}

/** Memory map of one instance (byte offsets). */
interface Layout {
  S: number;
  X: number;
  sh: number;
  iv: number;
  C: number;
  act: number;
  sums: number;
  lab: number;
  dd: number;
  zc: number;
  Z: number;
  bytes: number;
}

/** Pairs of pixels per chunk of the float64 sweep (its z, offsets and distances stay in L1: 16 (d + 2) bytes a pair). */
function chunkPairs(d: number): number {
  return d <= 4 ? 256 : 128;
}

function layout(d: number, k: number, S: number, base: number): Layout {
  const al = (x: number) => Math.ceil(x / 64) * 64;
  const X = base; // a heap block, 64-byte aligned
  const sh = al(X + 4 * d * S);
  const iv = al(sh + 8 * d);
  const C = al(iv + 8 * d);
  const act = al(C + 8 * k * d);
  const sums = al(act + 4 * k);
  const lab = al(sums + 8 * (k + 1) * (d + 2)); // slot k: the spare that excluded pixels add into
  const dd = al(lab + 4 * S);
  const zc = al(dd + 4 * S); // an i32: the constants' base (see buildSweep)
  const P = chunkPairs(d);
  const Z = al(zc + 64); // per pair of a chunk: z (d vectors), then the winner's offset and distance
  return { S, X, sh, iv, C, act, sums, lab, dd, zc, Z, bytes: al(Z + 16 * (d + 2) * P) - base };
}

/** Pixels per staged sub-block: about 1 MiB of float32 rows, even (pixel pairs), at most `cap`. */
export function subBlockPixels(d: number, cap: number): number {
  return Math.max(2, Math.min(cap, Math.floor((1 << 18) / d))) & ~1;
}

/** The module instance for `key` (a set of active centres), built once; at most 64 kept per sweep. */
function cachedModule<E>(fns: Map<string, E>, key: string, build: () => E): E {
  let e = fns.get(key);
  if (!e) {
    if (fns.size > 64) fns.clear();
    e = build();
    fns.set(key, e);
  }
  return e;
}

/**
 * One instance per (thread, d, k, block size): scratch and compiled sweeps reused across
 * steps. The scratch is a block of this thread's WebAssembly heap (wasm-heap.ts), so a
 * feature array in the heap (heapF32) is read where it lies, without the staging copy (at
 * d = 3 the copy was ~10 % of an iteration).
 */
export class WasmSweep {
  readonly L: Layout;
  private readonly mem: WasmMemory;
  private readonly fns = new Map<string, Exports>();

  /** `target`: run in another thread's heap (SweepTarget), else in this thread's. */
  constructor(readonly d: number, readonly k: number, readonly S: number, private readonly target: SweepTarget | null = null) {
    const bytes = layout(d, k, S, 0).bytes;
    this.L = layout(d, k, S, target ? target.base : heapAlloc(bytes));
    this.mem = target ? target.mem : wasmHeap().mem;
  }

  /** Returns the scratch to the heap (the instance must not be used after); a target's scratch stays with its owner. */
  free(): void {
    if (!this.target) heapFree(this.L.X);
  }

  /** Whether `a` lies in the instance's memory (read in place at a.byteOffset): a target's views always do. */
  private inMem(a: ArrayBufferView): boolean {
    return this.target !== null || inHeap(a);
  }

  private buffer(): ArrayBuffer {
    return this.target ? this.mem.buffer : wasmHeap().buffer;
  }

  private sweepFn(act: number[], want: boolean): Exports {
    return cachedModule(this.fns, `${act.join(',')}:${want}`, () => instantiate<Exports>(buildSweep(this.d, this.k, act, want, this.L), this.mem));
  }

  /**
   * Sweeps pixels [g0, g1) of the concatenated views (global indices; `starts` = each view's
   * first global pixel), adding into `sums` (k x (d + 2): sum z, count, sum of squared
   * distances per cluster) and writing labels / dist2 at the global index when given.
   */
  run(
    views: { data: Float32Array; stride: number; offset: number; count: number }[], starts: number[], g0: number, g1: number,
    shift: Float64Array, invScale: Float64Array, centres: Float64Array, act: number[], sums: Float64Array,
    labels: Int32Array | null, dist2: Float32Array | null,
  ): void {
    const { d, k, L } = this;
    const buf = this.buffer();
    const want = labels !== null && dist2 !== null;
    const fn = this.sweepFn(act, want);
    new Float64Array(buf, L.sh, d).set(shift);
    new Float64Array(buf, L.iv, d).set(invScale);
    const C = new Float64Array(buf, L.C, act.length * d);
    act.forEach((j, q) => C.set(centres.subarray(j * d, (j + 1) * d), q * d));
    const S = new Float64Array(buf, L.sums, k * (d + 2));
    S.set(sums);
    const X = new Float32Array(buf, L.X, d * L.S);
    const lab = new Int32Array(buf, L.lab, L.S);
    const dd = new Float32Array(buf, L.dd, L.S);
    const out = (a: number, n: number) => {
      if (!want) return;
      labels!.set(lab.subarray(0, n), a);
      dist2!.set(dd.subarray(0, n), a);
    };
    // Stages pixels [a, a + n) from the views that hold them into X (rows of stride S); an
    // odd count gets a padding pixel (NaN: excluded, never written).
    const stage = (a: number, n: number) => {
      for (let vi = 0; vi < views.length; vi++) {
        const v = views[vi];
        const s = Math.max(a, starts[vi]);
        const e = Math.min(a + n, starts[vi] + v.count);
        if (s >= e) continue;
        const from = v.offset + s - starts[vi];
        for (let f = 0; f < d; f++) X.set(v.data.subarray(f * v.stride + from, f * v.stride + from + e - s), f * L.S + s - a);
      }
      if (n & 1) for (let f = 0; f < d; f++) X[f * L.S + n] = NaN;
      fn.sweep(n, L.X, 4 * L.S);
      out(a, n);
    };
    for (let a = g0; a < g1; a += L.S) {
      const n = Math.min(L.S, g1 - a);
      // A sub-block inside one view whose array lies in the heap is read in place (its even
      // part: pairs of pixels; a last odd pixel is staged with its padding pixel).
      let vi = 0;
      while (starts[vi] + views[vi].count <= a) vi++;
      const v = views[vi];
      const ne = n & ~1;
      if (a + n <= starts[vi] + v.count && this.inMem(v.data) && ne > 0) {
        fn.sweep(ne, v.data.byteOffset + 4 * (v.offset + a - starts[vi]), 4 * v.stride);
        out(a, ne);
        if (ne < n) stage(a + ne, n - ne);
      } else stage(a, n);
    }
    sums.set(S);
  }
}

const instances = new Map<string, WasmSweep | WasmScreen>();
/** Bytes of staged float32 rows per sub-block of the screened sweep. */
const SCREEN_STAGE_BYTES = 1 << 20;

/**
 * Another thread's WebAssembly heap for a sweep run by a worker thread: `mem` is that heap's
 * (shared) memory, `base` the address of a scratch block of sweepScratchBytes() its owner
 * allocated there for this worker alone, and every array handed to run() (the views' data,
 * the norms) lies in `mem`, at its byteOffset. So a worker reads the owner's heap features
 * in place and uses the norms formed once, as the owner's own thread does (without it, a
 * worker staged every sub-block into its own heap and formed the norms every step: at
 * 100k x 101 about a fifth more work per pixel than one thread). The owner frees the
 * scratch, after the worker's last run.
 */
export interface SweepTarget {
  mem: WasmMemory;
  base: number;
}

/** Pixels per sub-block of this thread's sweep for (d, block): the staging unit. */
function sweepSub(d: number, block: number): number {
  return d >= KM_SCREEN_MIN_D ? Math.max(4, Math.min(block, Math.floor(SCREEN_STAGE_BYTES / (4 * d))) & ~3) : subBlockPixels(d, block);
}

/** Bytes of the scratch block of wasmSweep(d, k, block, target): what the owner allocates for a SweepTarget. */
export function sweepScratchBytes(d: number, k: number, block: number): number {
  const S = sweepSub(d, block);
  return d >= KM_SCREEN_MIN_D ? screenLayout(d, k, S, 0).bytes : layout(d, k, S, 0).bytes;
}

/** Whether wasmSweep runs for d features (WebAssembly SIMD, d <= 4096). */
export function wasmSweepRuns(d: number): boolean {
  return wasmSimd && d <= 4096;
}

/**
 * This thread's sweep for (d, k, block size): the float64 WasmSweep for d <= UNROLL_D, the
 * screened WasmScreen above it; null without WebAssembly SIMD or when the staging would be too large.
 * With `target`, the instance works in another thread's heap (SweepTarget); instances are
 * kept by (d, k, block, target.base): a worker serves one owner thread, so one memory.
 */
export function wasmSweep(d: number, k: number, block: number, target: SweepTarget | null = null): WasmSweep | WasmScreen | null {
  if (!wasmSweepRuns(d)) return null;
  const screened = d >= KM_SCREEN_MIN_D;
  const S = sweepSub(d, block);
  const key = `${d}:${k}:${S}${target ? `@${target.base}` : ''}`;
  let w = instances.get(key);
  if (!w) {
    if (instances.size > 8) {
      // An instance's scratch is a heap block: back to the heap (none is running now).
      for (const old of instances.values()) old.free();
      instances.clear();
    }
    w = screened ? new WasmScreen(d, k, S, target) : new WasmSweep(d, k, S, target);
    instances.set(key, w);
  }
  return w;
}

function buildSweep(d: number, k: number, act: number[], want: boolean, L: Layout): Uint8Array<ArrayBuffer> {
  const na = act.length;
  const m = d + 2;
  const f = new Fn('sweep', [['n', I32], ['x0', I32], ['rs', I32]]);
  if (d > UNROLL_D) throw new RangeError(`kmeans-wasm: the float64 sweep takes d <= ${UNROLL_D} (larger d runs WasmScreen)`);
  const i = f.local('i', I32), base = f.local('base', I32);
  const x = f.local('x', V128), t = f.local('t', V128), ok = f.local('ok', V128), zero = f.local('zero', V128);
  const bv = f.local('bv', V128), bb = f.local('bb', V128), bl = f.local('bl', V128), msk = f.local('msk', V128);
  const s = Array.from({ length: Math.min(GROUP, na) }, (_, q) => f.local(`s${q}`, V128));
  // z of the pair in registers (the feature loops are unrolled).
  const zr = Array.from({ length: d }, (_, q) => f.local(`z${q}`, V128));
  // Row starts (bytes) of the d features.
  const rb = Array.from({ length: d }, (_, q) => f.local(`rb${q}`, I32));
  for (let fc = 0; fc < d; fc++) f.get('x0').get('rs').i32(fc).mul().add().set(rb[fc]);
  // cb: L.sh, loaded from memory each pair, is the base of every constant's address (shift,
  // scale, centres; small offsets from it). With constant addresses the compiler hoists ~20
  // addresses out of the loop and spills them to the stack (a reload before every constant);
  // from a value it cannot hoist, each constant is one load with the offset in the instruction.
  const cb = f.local('cb', I32);
  f.i32(L.zc).i32(L.sh).i32Store();
  const K = (addr: number) => addr - L.sh;
  // The pixels go in chunks of P pairs: pass A forms each pair's z and winner (vectors, no
  // dependence between pairs) into scratch; pass B adds them into the sums pixel by pixel.
  // (In one pass the sums' addresses waited on the whole distance and argmin chain of the
  // same pair, which the out-of-order window could not cover.)
  const P = chunkPairs(d);
  const e = f.local('e', I32), zp = f.local('zp', I32);
  const ZB = L.Z + 16 * d; // the pair's winner offsets (i64 lanes) after its z, then its distances
  const stride = 16 * (d + 2);
  f.f64(0).f64x2Splat().set(zero);
  f.i32(0).set(i);
  f.block().loop(); // chunks
  f.get(i).i32(2 * P).add().tee(e).get('n').get(e).get('n').ltS().op(0x1b).set(e); // e = min(i + 2P, n)
  const c0 = f.local('c0', I32);
  f.get(i).set(c0);
  f.i32(0).set(zp);
  f.block().loop(); // pass A
  {
    // --- z of the pair (pixels i, i + 1), and the finite mask
    f.i32(L.zc).i32Load().set(cb);
    f.get(zero).get(zero).f64x2Eq().set(ok);
    for (let fc = 0; fc < d; fc++) {
      // x = the two float32 values of feature fc, promoted
      f.get(i).i32(2).shl().get(rb[fc]).add().vLoad64Zero(0);
      f.f64x2PromoteLow().set(x);
      f.get(ok).get(x).get(x).f64x2Sub().get(zero).f64x2Eq().vAnd().set(ok);
      f.get(x).get(cb).vLoad64Splat(K(L.sh + 8 * fc)).f64x2Sub().get(cb).vLoad64Splat(K(L.iv + 8 * fc)).f64x2Mul().tee(zr[fc]);
      f.set(x);
      f.get(zp).get(x).vStore(L.Z + 16 * fc);
    }
    // --- squared distances to the active centres, in groups; running argmin in index order
    for (let g0 = 0; g0 < na; g0 += GROUP) {
      const gn = Math.min(GROUP, na - g0);
      for (let q = 0; q < gn; q++) f.get(zero).set(s[q]);
      for (let fc = 0; fc < d; fc++) {
        for (let q = 0; q < gn; q++) {
          const co = L.C + 8 * (g0 + q) * d;
          f.get(s[q]).get(zr[fc]).get(cb).vLoad64Splat(K(co + 8 * fc)).f64x2Sub().tee(t).get(t).f64x2Mul().f64x2Add().set(s[q]);
        }
      }
      for (let q = 0; q < gn; q++) {
        const idx = g0 + q;
        // bb: byte offset of the winner's sums (i64 lanes); bl: its label (wanted only)
        if (idx === 0) {
          f.get(s[0]).set(bv);
          f.f64Bits(act[0] * 8 * m).f64x2Splat().set(bb);
          if (want) f.f64Bits(act[0]).f64x2Splat().set(bl);
        } else {
          f.get(s[q]).get(bv).f64x2Lt().set(msk);
          f.get(s[q]).get(bv).get(msk).vBitselect().set(bv);
          f.f64Bits(act[idx] * 8 * m).f64x2Splat().get(bb).get(msk).vBitselect().set(bb);
          if (want) f.f64Bits(act[idx]).f64x2Splat().get(bl).get(msk).vBitselect().set(bl);
        }
      }
    }
    // Excluded pixels (and the padding pixel of an odd count) add into the spare slot k.
    f.get(zp).get(bb).f64Bits(k * 8 * m).f64x2Splat().get(ok).vBitselect().vStore(ZB);
    f.get(zp).get(bv).vStore(ZB + 16);
    if (want) {
      f.get(bl).f64Bits(-1).f64x2Splat().get(ok).vBitselect().set(bl);
      f.get(bv).f64(NaN).f64x2Splat().get(ok).vBitselect().set(msk);
      for (let ln = 0; ln < 2; ln++) {
        f.get(i).i32(ln).add().i32(2).shl().get(bl).i64x2Extract(ln).wrap().i32Store(L.lab);
        f.get(i).i32(ln).add().i32(2).shl().get(msk).f64x2Extract(ln).demote().f32Store(L.dd);
      }
    }
    f.get(zp).i32(stride).add().set(zp);
    f.get(i).i32(2).add().tee(i).get(e).ltS().brIf(0);
  }
  f.end().end();
  // --- pass B: per pixel in order (lane 0, lane 1 of each pair): its z, count and distance
  // into its winner's sums (the same adds in the same order as in one pass)
  f.i32(0).set(zp);
  f.get(c0).set(i);
  f.block().loop();
  for (let ln = 0; ln < 2; ln++) {
    f.get(zp).i32Load(ZB + 8 * ln).set(base);
    for (let q = 0; q < d; q++) {
      f.get(base).get(base).f64Load(L.sums + 8 * q).get(zp).f64Load(L.Z + 16 * q + 8 * ln).fadd().f64Store(L.sums + 8 * q);
    }
    f.get(base).get(base).f64Load(L.sums + 8 * d).f64(1).fadd().f64Store(L.sums + 8 * d);
    f.get(base).get(base).f64Load(L.sums + 8 * (d + 1)).get(zp).f64Load(ZB + 16 + 8 * ln).fadd().f64Store(L.sums + 8 * (d + 1));
  }
  f.get(zp).i32(stride).add().set(zp);
  f.get(i).i32(2).add().tee(i).get(e).ltS().brIf(0);
  f.end().end();
  f.get(e).get('n').ltS().brIf(0);
  f.end().end();
  return assemble([f], { pages: 1, maxPages: 65536, shared: true });
}

// ---------------------------------------------------------------------------------------
// d > UNROLL_D: a float32 screen that decides the label where it is certain, the float64
// twin where it is not, and the float64 sums.
//
// Why: at d = 101 the float64 sweep above forms (z - c)^2 for every centre in float64, two
// pixels a vector; scikit-learn forms x.c in float32 through a GEMM. Here the labels come
// from a float32 screen, four pixels a vector, and are nevertheless EXACTLY the labels of the
// float64 twin (kmeansAssignCpu), because the screen only decides where its rounding cannot
// change the outcome; every other pixel is decided by the twin's own float64 arithmetic.
//
// 1. Screen (float32, pixels i..i+3 in one f32x4, read from the staged rows):
//      y_f = fl32(x_f - sh_f)            (sh is the shift rounded to float32 by standardization())
//      D_q = sum_f y_f * w_qf,  w_qf = fl32(iv_f * c_qf)  (sequential per lane, f in order)
//      v_q = fl32(K_q - 2 D_q), K_q = fl32(|c_q|^2)      ( = s_q - |z|^2 up to rounding)
//      nrm = sum_f y_f^2                                   (float32, for the error bound)
//    The smallest v (lower index on ties) and the second smallest are kept.
// 2. Certainty: with z_f = (x_f - sh_f) iv_f and T_q = |c_q|^2 - 2 z.c_q (real numbers),
//    |v_q - T_q| <= (2d + 12) u |y| |w_q| + 2.1 u K_q (u = 2^-24: the float32 dot product's
//    gamma_d bound, the rounding of y, w, K and of the subtraction, |D| <= |y||w|), and the
//    twin's float64 distance s64_q differs from the real |z|^2 + T_q by at most
//    e64 (3 maxIv^2 |y|^2 + 2 K_q), e64 = (d + 4) 2^-49 (its summation and the rounding of
//    z). So if second - best > G = A sqrt(nrm) + B + Gam nrm, with A, B, Gam the bounds
//    above for the largest |w_q| and K_q doubled (both centres err) and inflated by 2.5 %
//    (the float32 evaluation of G, sqrt and |y| <= sqrt(nrm)(1 + d u)), every other centre's
//    s64 exceeds the winner's: the twin picks the same centre. B also carries 1e-36 for
//    float32 underflow in D and K, and A sqrt(d 2^-148) + Gam d 2^-148 for nrm falling
//    short of |y|^2 where its terms underflow. A pixel with a non-finite value has nrm NaN
//    or Inf and is never certain; nrm < NRM_LIMIT keeps D and G far from overflow. On
//    N(0, 1) data at d = 101, k = 6 about 1 pixel in 7,000 is uncertain.
// 2b. Without the shift (screenShiftFree: |sh|^2 <= SHIFT_FREE_MAX sum_f scale_f^2, a shift
//    small against the spread): the screen uses x in place of y, D'_q = sum_f x_f w_qf
//    (float32), K'_q = fl32(|c_q|^2 + 2 sh.w_q) (sh.w_q in float64), nrm = sum_f x_f^2; in
//    exact arithmetic K'_q - 2 D'_q = |c_q|^2 - 2 y.w_q, the screened value above. Its error
//    against T_q: the dot product 2 gamma_d |x||w_q|, the rounding of w 2.01 u |y||w_q| with
//    |y| <= |x| + |sh|, of K' u (K_q + 2 |sh||w_q|), of the subtraction
//    1.01 u (K_q + 2 |sh||w_q| + 2 |x||w_q|), float64 terms below 1e-13 of these: within
//    (2d + 12) u |x||w_q| + 6.1 u |sh||w_q| + 2.1 u K_q. The twin's error uses
//    |y|^2 <= 2 |x|^2 + 2 |sh|^2: Gam doubles (6.1 e64 maxIv^2 on nrm) and B gains
//    6.1 u |sh| max|w| + 6.1 e64 maxIv^2 |sh|^2, each doubled and inflated as above. So A,
//    B and Gam keep the form of 2 with |x| for |y|; one float32 subtraction per feature and
//    vector less. The labels are still exactly the twin's (only which pixels the twin decides
//    changes).
// 3. Uncertain pixels (near-ties, non-finite values) get the twin's label in the same pass
//    (float64, centres in index order, strict <; exactLabel is its JavaScript form, used by
//    the reference sweep in kmeans-sweep.ts).
// 4. Sums (float64, pixels in order, two features a vector after a 4 x 4 transpose of each
//    group of 4 pixels, whose rows are still in L1 from the screen):
//    z_f = (f64(x_f) - sh_f) * iv_f (as the twin), cluster sums of z, the count, and the
//    winner's squared distance s = (P0 + P1) + (P2 + P3), P_r = sum over f = r (mod 4) of
//    (z_f - c_f)^2 in f order (float64: the tests compare the sums with the twin's to 1e-9 of
//    their scale, which float32 sums of ~10^4 pixels would not meet). Same bytes as the
//    JavaScript reference sweep (kmeans-sweep.ts, screenedSweepJs).
// ---------------------------------------------------------------------------------------

/** Features from which the screened path runs. */
export const KM_SCREEN_MIN_D = UNROLL_D + 1;
/**
 * The screen skips the shift (x in place of y = x - sh, see 2b in the header) when
 * |sh|^2 <= SHIFT_FREE_MAX x sum_f scale_f^2: a shift small against the spread of the data
 * widens the certainty bound by at most ~1.5x (a few more pixels go to the float64 twin) and
 * saves one float32 subtraction per feature and vector.
 */
const SHIFT_FREE_MAX = 0.25;

/** Whether the screen runs without the shift for this standardisation (SHIFT_FREE_MAX). */
export function screenShiftFree(shift: Float64Array, invScale: Float64Array): boolean {
  let sh2 = 0, sc2 = 0;
  for (let f = 0; f < shift.length; f++) {
    sh2 += shift[f] * shift[f];
    sc2 += 1 / (invScale[f] * invScale[f]);
  }
  return sh2 <= SHIFT_FREE_MAX * sc2;
}

/** Largest squared pixel norm (float32, shifted units) the screen trusts. */
const NRM_LIMIT = 1e30;
/**
 * How many 64-byte lines of each feature row ahead the screen touches. Measured at 100k x 101:
 * 0.4 ms of 17 when added; since the screen lost its norm and subtraction, 0, 1, 2 and 4 lines
 * are within the machine's noise (~0.5 ms).
 */
const PREFETCH_LINES = 2;
/** Centres screened together (accumulators in registers). */
const SGROUP = 6;

interface ScreenLayout {
  S: number;
  dp: number;
  ms: number;
  X: number;
  W: number;
  K: number;
  SH32: number;
  SH64: number;
  IV64: number;
  C64: number;
  ACC: number;
  T: number;
  LAB: number;
  DD: number;
  PAR: number;
  bytes: number;
}

function screenLayout(d: number, k: number, S: number, base: number): ScreenLayout {
  const al = (x: number) => Math.ceil(x / 64) * 64;
  // Features padded to a multiple of 8 (zero rows, zero shift, scale and centres).
  const dp = Math.ceil(d / 8) * 8;
  // Per cluster: float64 sums of z (dp), count, squared distances, 2 spare, then the centre (dp).
  const ms = 2 * dp + 4;
  const X = base; // a heap block, 64-byte aligned
  const W = al(X + 4 * dp * S);
  const K = al(W + 4 * k * dp);
  const SH32 = al(K + 4 * k);
  const SH64 = al(SH32 + 4 * dp);
  const IV64 = al(SH64 + 8 * dp);
  const ACC = al(IV64 + 8 * dp);
  const C64 = ACC + 8 * (dp + 4); // centre j at C64 + 8 j ms
  const T = al(ACC + 8 * k * ms);
  const LAB = al(T + 16 * dp);
  const DD = al(LAB + 4 * S);
  const PAR = al(DD + 4 * S);
  return { S, dp, ms, X, W, K, SH32, SH64, IV64, C64, ACC, T, LAB, DD, PAR, bytes: al(PAR + 64) - base };
}

interface ScreenExports {
  /**
   * n pixels; feature f of pixel i at byte x0 + f rs + 4 i (the staged rows or a heap array in
   * place); nr: byte address of the pixels' norms (screenNorms) or 0 to form them here.
   */
  sweep: (n: number, x0: number, rs: number, nr: number) => void;
}

/**
 * The twin's label of pixel i (kmeansAssignCpu's float64 arithmetic and order): -1 if a
 * value is not finite; value of feature f at X[f * S + i].
 */
export function exactLabel(
  X: Float32Array, S: number, i: number, d: number, sh: Float64Array, iv: Float64Array, C: Float64Array, act: number[],
): number {
  for (let f = 0; f < d; f++) {
    const x = X[f * S + i];
    if (x - x !== 0) return -1;
  }
  let best = -1, bv = 0;
  for (const j of act) {
    let s = 0;
    const c = j * d;
    for (let f = 0; f < d; f++) {
      const t = (X[f * S + i] - sh[f]) * iv[f] - C[c + f];
      s += t * t;
    }
    if (best < 0 || s < bv) {
      best = j;
      bv = s;
    }
  }
  return best;
}

const f32bits = (v: number) => new Int32Array(Float32Array.of(v).buffer)[0];

/**
 * The screened sweep for d > UNROLL_D: one instance per (thread, d, k, sub-block size). Its
 * scratch is a block of this thread's WebAssembly heap (wasm-heap.ts), so a feature array
 * allocated in the heap (heapF32) is read where it lies, without the staging copy.
 */
export class WasmScreen {
  readonly L: ScreenLayout;
  private readonly mem: WasmMemory;
  private readonly fns = new Map<string, ScreenExports>();

  /** `target`: run in another thread's heap (SweepTarget), else in this thread's. */
  constructor(readonly d: number, readonly k: number, readonly S: number, private readonly target: SweepTarget | null = null) {
    const bytes = screenLayout(d, k, S, 0).bytes;
    this.L = screenLayout(d, k, S, target ? target.base : heapAlloc(bytes));
    this.mem = target ? target.mem : wasmHeap().mem;
    // Zero: the padding features (d..dp) of the shift, scale, centres and transposed rows
    // must be 0 (heap blocks hold whatever they last held).
    new Uint8Array(this.buffer(), this.L.X, bytes).fill(0);
  }

  /** Returns the scratch to the heap (the instance must not be used after); a target's scratch stays with its owner. */
  free(): void {
    if (!this.target) heapFree(this.L.X);
  }

  /** Whether `a` lies in the instance's memory (read in place at a.byteOffset): a target's views always do. */
  private inMem(a: ArrayBufferView): boolean {
    return this.target !== null || inHeap(a);
  }

  private buffer(): ArrayBuffer {
    return this.target ? this.mem.buffer : wasmHeap().buffer;
  }

  private exports(act: number[], normsIn: boolean, free: boolean): ScreenExports {
    return cachedModule(this.fns, `${act.join(',')}:${normsIn}:${free}`, () => instantiate<ScreenExports>(buildScreen(this.d, act, this.L, normsIn, free), this.mem));
  }

  /**
   * The screen's squared norm nrm = sum over f in order of fl32(x_f - sh_f)^2 (float32, the
   * screen's own operations, so the same bits) of every pixel of the views, into `out` (a heap
   * array, global pixel order); the views' data must lie in the heap. Formed once per engine:
   * the data and the shift do not change between Lloyd steps (scikit-learn likewise computes
   * its squared row norms once per fit).
   */
  norms(views: { data: Float32Array; stride: number; offset: number; count: number }[], shift: Float64Array, invScale: Float64Array, out: Float32Array): void {
    const { d, L } = this;
    const buf = this.buffer();
    new Float32Array(buf, L.SH32, d).set(shift);
    const free = screenShiftFree(shift, invScale);
    const fn = cachedModule(this.fns, `norms:${free}`, () => instantiate<ScreenExports>(buildNorms(d, L, free), this.mem));
    let g = 0;
    for (const v of views) {
      if (!this.inMem(v.data)) throw new RangeError('kmeans-wasm: screen norms need the features in the WebAssembly heap');
      fn.sweep(v.count, v.data.byteOffset + 4 * v.offset, 4 * v.stride, out.byteOffset + 4 * g);
      g += v.count;
    }
  }

  /**
   * As WasmSweep.run (same arguments and results, the screened arithmetic); `norms`: the
   * pixels' screen norms (norms(), global pixel order, in the heap) or null to form them.
   */
  run(
    views: { data: Float32Array; stride: number; offset: number; count: number }[], starts: number[], g0: number, g1: number,
    shift: Float64Array, invScale: Float64Array, centres: Float64Array, act: number[], sums: Float64Array,
    labels: Int32Array | null, dist2: Float32Array | null, norms: Float32Array | null = null,
  ): void {
    const { d, k, L } = this;
    const { dp, ms, S } = L;
    const m = d + 2;
    const buf = this.buffer();
    const want = labels !== null && dist2 !== null;
    if (norms !== null && !this.inMem(norms)) norms = null;
    const free = screenShiftFree(shift, invScale);
    const fn = this.exports(act, norms !== null, free);
    const W = new Float32Array(buf, L.W, k * dp);
    const K = new Float32Array(buf, L.K, k);
    const par = new Float32Array(buf, L.PAR, 4);
    new Float32Array(buf, L.SH32, d).set(shift);
    new Float64Array(buf, L.SH64, d).set(shift);
    new Float64Array(buf, L.IV64, d).set(invScale);

    // Screen constants (see the header): w, K and the certainty bound's A, B, Gam.
    let wMax = 0, kMax = 0, ivMax = 0, shN = 0;
    for (let f = 0; f < d; f++) {
      ivMax = Math.max(ivMax, Math.abs(invScale[f]));
      shN += Math.fround(shift[f]) ** 2;
    }
    shN = Math.sqrt(shN); // |sh| (the float32 shift the screen uses)
    let kpMax = 0;
    act.forEach((j, q) => {
      let w2 = 0, c2 = 0, e = 0;
      for (let f = 0; f < d; f++) {
        const c = centres[j * d + f];
        W[q * dp + f] = invScale[f] * c; // rounded to float32 by the store
        w2 += W[q * dp + f] * W[q * dp + f];
        e += Math.fround(shift[f]) * W[q * dp + f];
        c2 += c * c;
      }
      // K_q = fl32(|c_q|^2); without the shift (2b) K'_q = fl32(|c_q|^2 + 2 sh.w_q)
      K[q] = free ? c2 + 2 * e : c2;
      wMax = Math.max(wMax, Math.sqrt(w2));
      kMax = Math.max(kMax, Math.fround(c2));
      kpMax = Math.max(kpMax, Math.abs(K[q]));
    });
    const u = 2 ** -24, e64 = (d + 4) * 2 ** -49;
    par[0] = 2.05 * (2 * d + 12) * u * wMax;
    par[2] = 2.05 * (free ? 6.1 : 3.1) * e64 * ivMax * ivMax;
    // nrm may fall short of |y|^2 by d 2^-148 where its terms underflow: that much more of A
    // sqrt(.) and Gam (.) goes into B (sqrt is subadditive).
    const under = d * 2 ** -148;
    par[1] = 2.05 * (2.1 * u + 2.1 * e64) * kMax + 1.01 * (par[0] * Math.sqrt(under) + par[2] * under) + 1e-36;
    // Without the shift (2b): the terms in |sh|.
    if (free) par[1] += 2.05 * (6.1 * u * shN * wMax + 6.1 * e64 * ivMax * ivMax * shN * shN);
    // Norm limit: |y| |w| and K far below float32 overflow, else nothing is certain.
    const lim = Math.min(NRM_LIMIT, (1e36 / Math.max(wMax, 1e-30)) ** 2);
    par[3] = Number.isFinite(par[0]) && Number.isFinite(par[1]) && Number.isFinite(par[2]) && kMax < 1e36 && kpMax < 1e36 ? lim : 0;
    const ACC = new Float64Array(buf, L.ACC, k * ms);
    for (let j = 0; j < k; j++) {
      ACC.set(centres.subarray(j * d, j * d + d), j * ms + dp + 4);
      for (let f = 0; f < d; f++) ACC[j * ms + f] = sums[j * m + f];
      ACC[j * ms + dp] = sums[j * m + d];
      ACC[j * ms + dp + 1] = sums[j * m + d + 1];
    }
    const X = new Float32Array(buf, L.X, dp * S);
    const lab = new Int32Array(buf, L.LAB, S);
    const dd = new Float32Array(buf, L.DD, S);
    for (let a = g0; a < g1; a += S) {
      const n = Math.min(S, g1 - a);
      // A sub-block inside one view whose array lies in the heap is read in place (the last
      // group of 4 reads up to 3 floats past the view: inside the block's HEAP_PAD, dropped);
      // any other is staged into X.
      let vi = 0;
      while (starts[vi] + views[vi].count <= a) vi++;
      const v = views[vi];
      if (a + n <= starts[vi] + v.count && this.inMem(v.data)) {
        fn.sweep(n, v.data.byteOffset + 4 * (v.offset + a - starts[vi]), 4 * v.stride, norms ? norms.byteOffset + 4 * a : 0);
      } else {
        for (let vj = vi; vj < views.length; vj++) {
          const w = views[vj];
          const s = Math.max(a, starts[vj]);
          const e = Math.min(a + n, starts[vj] + w.count);
          if (s >= e) continue;
          const from = w.offset + s - starts[vj];
          for (let f = 0; f < d; f++) X.set(w.data.subarray(f * w.stride + from, f * w.stride + from + e - s), f * S + s - a);
        }
        fn.sweep(n, L.X, 4 * S, norms ? norms.byteOffset + 4 * a : 0);
      }
      if (want) {
        labels!.set(lab.subarray(0, n), a);
        for (let i = 0; i < n; i++) if (lab[i] < 0) dd[i] = NaN;
        dist2!.set(dd.subarray(0, n), a);
      }
    }
    for (let j = 0; j < k; j++) {
      for (let f = 0; f < d; f++) sums[j * m + f] = ACC[j * ms + f];
      sums[j * m + d] = ACC[j * ms + dp];
      sums[j * m + d + 1] = ACC[j * ms + dp + 1];
    }
  }
}

function buildScreen(d: number, act: number[], L: ScreenLayout, normsIn: boolean, free: boolean): Uint8Array<ArrayBuffer> {
  const { dp, ms } = L;
  const na = act.length;
  // sweep(n): per group of 4 pixels: screen, the twin's label for uncertain lanes, 4 x 4
  // transpose, float64 sums (the group's rows are still in L1 from the screen).
  const f = new Fn('sweep', [['n', I32], ['x0', I32], ['rs', I32], ['nr', I32]]);
  const i = f.local('i', I32), fp = f.local('fp', I32), xp = f.local('xp', I32);
  const rs2 = f.local('rs2', I32), rs3 = f.local('rs3', I32), rs4 = f.local('rs4', I32);
  const y = f.local('y', V128), nrm = f.local('nrm', V128), v = f.local('v', V128), lt = f.local('lt', V128);
  const best = f.local('best', V128), second = f.local('second', V128), bidx = f.local('bidx', V128);
  const D = Array.from({ length: Math.min(SGROUP, na) }, (_, q) => f.local(`D${q}`, V128));
  // exact-label locals
  const pa = f.local('pa', I32), lb = f.local('lb', I32);
  const xs = f.local('xs', F32), sc = f.local('sc', F64), bvs = f.local('bvs', F64), tt = f.local('tt', F64);
  // accumulation locals
  const fo = f.local('fo', I32), lab = f.local('lab', I32), ap = f.local('ap', I32), tp = f.local('tp', I32), base = f.local('base', I32);
  const r = [0, 1, 2, 3].map((q) => f.local(`r${q}`, V128));
  const t = [0, 1, 2, 3].map((q) => f.local(`t${q}`, V128));
  const z = f.local('z', V128), u = f.local('u', V128), s0 = f.local('s0', V128), s1 = f.local('s1', V128);
  const sv = [s0, s1];
  const sink = f.local('sink', V128), pp = f.local('pp', I32), pe = f.local('pe', I32);
  f.get('rs').i32(1).shl().set(rs2);
  f.get(rs2).get('rs').add().set(rs3);
  f.get('rs').i32(2).shl().set(rs4);
  f.i32(0).set(i);
  f.block().loop();
  // ---- touch ahead: at the first group of each 64-byte line of the rows (i % 16 == 0), one
  // load from every feature row PREFETCH_LINES lines further on (when those pixels are
  // inside the n), back to back. The d rows lie a whole row apart (feature-major), more
  // streams than the hardware prefetcher follows; the screen below would otherwise wait for
  // each row's line in turn. The values are OR-ed into a vector stored once at the end (so
  // the loads are not dropped); they change nothing else.
  f.get(i).i32(15).op(0x71).eqz().get('n').get(i).i32(16 * PREFETCH_LINES + 16).add().sub().i32(0).geS().op(0x71);
  f.if_();
  f.get(i).i32(16 * PREFETCH_LINES).add().i32(2).shl().get('x0').add().tee(pp).get(rs4).i32(d >> 2).mul().add().set(pe);
  f.block().loop();
  f.get(sink).get(pp).vLoad(0).vOr().get(pp).get('rs').add().vLoad(0).vOr().get(pp).get(rs2).add().vLoad(0).vOr().get(pp).get(rs3).add().vLoad(0).vOr().set(sink);
  f.get(pp).get(rs4).add().tee(pp).get(pe).ltS().brIf(0);
  f.end().end();
  for (let q = 0; q < (d & 3); q++) f.get(sink).get(pp).get('rs').i32(q).mul().add().vLoad(0).vOr().set(sink);
  f.end();
  // ---- screen (float32)
  for (let g0 = 0; g0 < na; g0 += SGROUP) {
    const gn = Math.min(SGROUP, na - g0);
    for (let q = 0; q < gn; q++) f.i64x2Const(0).set(D[q]);
    // nrm: read from the norms formed once (buildNorms: the same operations, the same bits),
    // or formed here with the dot products (a multiply and an add a feature more)
    if (g0 === 0 && normsIn) f.get(i).i32(2).shl().get('nr').add().vLoad(0).set(nrm);
    if (g0 === 0 && !normsIn) f.i64x2Const(0).set(nrm);
    f.i32(0).set(fp);
    f.get(i).i32(2).shl().get('x0').add().set(xp);
    f.block().loop();
    // y = x - sh, or x itself without the shift (2b)
    if (free) f.get(xp).vLoad(0).set(y);
    else f.get(xp).vLoad(0).get(fp).vLoad32Splat(L.SH32).f32x4Sub().set(y);
    if (g0 === 0 && !normsIn) f.get(nrm).get(y).get(y).f32x4Mul().f32x4Add().set(nrm);
    for (let q = 0; q < gn; q++) f.get(D[q]).get(y).get(fp).vLoad32Splat(L.W + 4 * (g0 + q) * dp).f32x4Mul().f32x4Add().set(D[q]);
    f.get(xp).get('rs').add().set(xp);
    f.get(fp).i32(4).add().tee(fp).i32(4 * d).ltS().brIf(0);
    f.end().end();
    for (let q = 0; q < gn; q++) {
      const idx = g0 + q;
      f.i32(0).vLoad32Splat(L.K + 4 * idx).get(D[q]).get(D[q]).f32x4Add().f32x4Sub().set(v);
      if (idx === 0) {
        f.get(v).set(best);
        f.i32(f32bits(Infinity)).i32x4Splat().set(second);
        f.i32(act[0]).i32x4Splat().set(bidx);
      } else {
        f.get(v).get(best).f32x4Lt().set(lt);
        f.get(best).get(second).get(v).f32x4Min().get(lt).vBitselect().set(second);
        f.get(v).get(best).get(lt).vBitselect().set(best);
        f.i32(act[idx]).i32x4Splat().get(bidx).get(lt).vBitselect().set(bidx);
      }
    }
  }
  // certain = (second - best > A sqrt(nrm) + B + Gam nrm) and nrm < limit
  f.get(second).get(best).f32x4Sub();
  f.i32(0).vLoad32Splat(L.PAR).get(nrm).f32x4Sqrt().f32x4Mul();
  f.i32(0).vLoad32Splat(L.PAR + 4).f32x4Add();
  f.i32(0).vLoad32Splat(L.PAR + 8).get(nrm).f32x4Mul().f32x4Add();
  f.f32x4Gt();
  f.get(nrm).i32(0).vLoad32Splat(L.PAR + 12).f32x4Lt().vAnd().set(lt);
  f.get(i).i32(2).shl().get(bidx).i32(-2).i32x4Splat().get(lt).vBitselect().vStore(L.LAB);
  // ---- uncertain lanes: the twin's label (float64, centres in index order, strict <)
  f.get(lt).i32x4AllTrue().eqz();
  f.if_();
  for (let lane = 0; lane < 4; lane++) {
    f.get(i).i32(lane).add().i32(2).shl().set(pa); // byte offset of pixel i + lane in a row
    f.get(pa).i32Load(L.LAB).i32(-2).eq();
    f.if_();
    f.i32(-1).set(lb);
    f.block(); // exit: non-finite value
    // finite check: x - x is 0 for a finite x
    f.get(pa).get('x0').add().set(xp);
    f.i32(0).set(fp);
    f.block().loop();
    f.get(xp).f32Load(0).tee(xs).get(xs).f32Sub().tee(xs).get(xs).f32Ne().brIf(2);
    f.get(xp).get('rs').add().set(xp);
    f.get(fp).i32(1).add().tee(fp).i32(d).ltS().brIf(0);
    f.end().end();
    act.forEach((j, q) => {
      f.f64(0).set(sc);
      f.get(pa).get('x0').add().set(xp);
      f.i32(0).set(fp); // byte offset 8 f
      f.block().loop();
      f.get(xp).f32Load(0).promote().get(fp).f64Load(L.SH64).fsub().get(fp).f64Load(L.IV64).fmul();
      f.get(fp).f64Load(L.C64 + 8 * j * ms).fsub().tee(tt).get(tt).fmul().get(sc).fadd().set(sc);
      f.get(xp).get('rs').add().set(xp);
      f.get(fp).i32(8).add().tee(fp).i32(8 * d).ltS().brIf(0);
      f.end().end();
      if (q === 0) {
        f.get(sc).set(bvs);
        f.i32(j).set(lb);
      } else {
        f.get(sc).get(bvs).flt();
        f.if_();
        f.get(sc).set(bvs);
        f.i32(j).set(lb);
        f.end();
      }
    });
    f.end(); // exit block
    f.get(pa).get(lb).i32Store(L.LAB);
    f.end();
  }
  f.end();
  // ---- 4 x 4 transpose of pixels i..i+3 into T (pixel-major rows of dp float32). Only the d
  // rows of the data are read (in place there is nothing beyond them): the last partial group
  // of features takes zero rows, and T's features from 4 ceil(d / 4) on stay the zeros the
  // scratch was cleared to.
  const lanes = (a: number[]) => a.flatMap((w) => [4 * w, 4 * w + 1, 4 * w + 2, 4 * w + 3]);
  const rowAt = [() => f.get(xp), () => f.get(xp).get('rs').add(), () => f.get(xp).get(rs2).add(), () => f.get(xp).get(rs3).add()];
  const group = (rows: number) => {
    for (let q = 0; q < 4; q++) {
      if (q < rows) rowAt[q]().vLoad(0).set(r[q]);
      else f.i64x2Const(0).set(r[q]);
    }
    f.get(r[0]).get(r[1]).shuffle(lanes([0, 4, 1, 5])).set(t[0]);
    f.get(r[0]).get(r[1]).shuffle(lanes([2, 6, 3, 7])).set(t[1]);
    f.get(r[2]).get(r[3]).shuffle(lanes([0, 4, 1, 5])).set(t[2]);
    f.get(r[2]).get(r[3]).shuffle(lanes([2, 6, 3, 7])).set(t[3]);
    f.get(fo).get(t[0]).get(t[2]).shuffle(lanes([0, 1, 4, 5])).vStore(L.T);
    f.get(fo).get(t[0]).get(t[2]).shuffle(lanes([2, 3, 6, 7])).vStore(L.T + 4 * dp);
    f.get(fo).get(t[1]).get(t[3]).shuffle(lanes([0, 1, 4, 5])).vStore(L.T + 8 * dp);
    f.get(fo).get(t[1]).get(t[3]).shuffle(lanes([2, 3, 6, 7])).vStore(L.T + 12 * dp);
  };
  f.get(i).i32(2).shl().get('x0').add().set(xp);
  f.i32(0).set(fo);
  f.block().loop(); // d >= 9: at least two full groups
  group(4);
  f.get(xp).get(rs4).add().set(xp);
  f.get(fo).i32(16).add().tee(fo).i32(16 * (d >> 2)).ltS().brIf(0);
  f.end().end();
  if (d & 3) group(d & 3);
  // ---- per pixel in order: float64 sums of z, count, squared distance
  for (let p = 0; p < 4; p++) {
    f.get(i).i32(p).add().get('n').ltS();
    f.if_();
    f.get(i).i32(p).add().i32(2).shl().i32Load(L.LAB).tee(lab).i32(0).geS();
    f.if_();
    f.get(lab).i32(8 * ms).mul().i32(L.ACC).add().tee(base).set(ap);
    f.i32(L.T + 4 * p * dp).set(tp);
    f.i32(0).set(fo);
    f.i64x2Const(0).set(s0);
    f.i64x2Const(0).set(s1);
    f.block().loop();
    // 8 features a step: h-th pair (features f + 2h, f + 2h + 1) into s0 (h even: f = 0, 1 mod 4) or s1
    for (let h = 0; h < 4; h++) {
      f.get(tp).vLoad64Zero(8 * h).f64x2PromoteLow();
      f.get(fo).vLoad(L.SH64 + 16 * h).f64x2Sub().get(fo).vLoad(L.IV64 + 16 * h).f64x2Mul().set(z);
      f.get(ap).get(ap).vLoad(16 * h).get(z).f64x2Add().vStore(16 * h);
      f.get(z).get(ap).vLoad(8 * (dp + 4) + 16 * h).f64x2Sub().tee(u).get(u).f64x2Mul().get(sv[h & 1]).f64x2Add().set(sv[h & 1]);
    }
    f.get(tp).i32(32).add().set(tp);
    f.get(ap).i32(64).add().set(ap);
    f.get(fo).i32(64).add().tee(fo).i32(8 * dp).ltS().brIf(0);
    f.end().end();
    f.get(s0).f64x2Extract(0).get(s0).f64x2Extract(1).fadd().get(s1).f64x2Extract(0).get(s1).f64x2Extract(1).fadd().fadd().set(sc);
    f.get(base).get(base).f64Load(8 * dp).f64(1).fadd().f64Store(8 * dp);
    f.get(base).get(base).f64Load(8 * (dp + 1)).get(sc).fadd().f64Store(8 * (dp + 1));
    f.get(i).i32(p).add().i32(2).shl().get(sc).demote().f32Store(L.DD);
    f.end();
    f.end();
  }
  f.get(i).i32(4).add().tee(i).get('n').ltS().brIf(0);
  f.end().end();
  f.i32(L.PAR + 16).get(sink).vStore(0);
  return assemble([f], { pages: 1, maxPages: 65536, shared: true });
}

/**
 * norms(n, x0, rs, nr): the screen's nrm of pixels 0..n-1 (feature f of pixel i at byte
 * x0 + f rs + 4 i) to nr + 4 i, four pixels a vector with the screen's operations in its
 * order (y = x - sh, or x without the shift; nrm = nrm + y y, f in order), so the bits are
 * those the screen forms.
 * The last group of 4 reads and writes up to 3 values past n (inside the heap blocks' HEAP_PAD).
 */
function buildNorms(d: number, L: ScreenLayout, free: boolean): Uint8Array<ArrayBuffer> {
  const f = new Fn('sweep', [['n', I32], ['x0', I32], ['rs', I32], ['nr', I32]]);
  const i = f.local('i', I32), fp = f.local('fp', I32), xp = f.local('xp', I32);
  const y = f.local('y', V128), nrm = f.local('nrm', V128);
  f.i32(0).set(i);
  f.block().loop();
  f.i64x2Const(0).set(nrm);
  f.i32(0).set(fp);
  f.get(i).i32(2).shl().get('x0').add().set(xp);
  f.block().loop();
  if (free) f.get(xp).vLoad(0).set(y);
  else f.get(xp).vLoad(0).get(fp).vLoad32Splat(L.SH32).f32x4Sub().set(y);
  f.get(nrm).get(y).get(y).f32x4Mul().f32x4Add().set(nrm);
  f.get(xp).get('rs').add().set(xp);
  f.get(fp).i32(4).add().tee(fp).i32(4 * d).ltS().brIf(0);
  f.end().end();
  f.get(i).i32(2).shl().get('nr').add().get(nrm).vStore(0);
  f.get(i).i32(4).add().tee(i).get('n').ltS().brIf(0);
  f.end().end();
  return assemble([f], { pages: 1, maxPages: 65536, shared: true });
}
