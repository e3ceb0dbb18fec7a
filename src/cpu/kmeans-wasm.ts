/**
 * The k-means fused sweep (kmeans-sweep.ts) in WebAssembly SIMD: the same assignment and
 * cluster sums, two pixels per f64x2 vector, with the same float64 operations in the same
 * order as the JavaScript sweep and the twin kmeansAssignCpu, so labels, distances and sums
 * are bit-identical to them:
 * - z_f = (x_f - shift_f) * invScale_f (x the float32 value promoted to float64);
 * - s_j = sum over f in order of (z_f - c_jf)^2, the centres compared in index order with a
 *   strict <, so an exact tie keeps the lower index; done branch-free with lane masks, so the
 *   cost does not depend on how predictable the labels are;
 * - a pixel with a non-finite feature (x - x != 0) is excluded: label -1, distance NaN;
 * - per pixel, in pixel order, its z is added to its cluster's float64 sums (scalar adds in
 *   the order of the JavaScript sweep), with the count and the squared distance.
 * The caller stages the pixels (float32, feature-major rows of stride S) into this instance's
 * memory one sub-block at a time; the module is generated for (d, number of active centres,
 * labels wanted), with the feature loop unrolled for small d.
 */
import { assemble, Fn, I32, instantiate, newMemory, V128, wasmSimd, type WasmMemory } from './wasm.js';

/** Features up to which the feature loops are unrolled. */
const UNROLL_D = 8;
/** Centres whose distances are formed together in one pass over z (accumulators in registers). */
const GROUP = 6;

interface Exports {
  sweep: (n: number) => void;
}

/** Memory map of one instance (byte offsets). */
interface Layout {
  S: number;
  X: number;
  sh: number;
  iv: number;
  C: number;
  act: number;
  Z: number;
  sums: number;
  lab: number;
  dd: number;
  bytes: number;
}

function layout(d: number, k: number, S: number): Layout {
  const al = (x: number) => Math.ceil(x / 64) * 64;
  const X = 0;
  const sh = al(X + 4 * d * S);
  const iv = al(sh + 8 * d);
  const C = al(iv + 8 * d);
  const act = al(C + 8 * k * d);
  const Z = al(act + 4 * k);
  const sums = al(Z + 16 * d);
  const lab = al(sums + 8 * (k + 1) * (d + 2)); // slot k: the spare that excluded pixels add into
  const dd = al(lab + 4 * S);
  return { S, X, sh, iv, C, act, Z, sums, lab, dd, bytes: al(dd + 4 * S) };
}

/** Pixels per staged sub-block: about 1 MiB of float32 rows, even (pixel pairs), at most `cap`. */
export function subBlockPixels(d: number, cap: number): number {
  return Math.max(2, Math.min(cap, Math.floor((1 << 18) / d))) & ~1;
}

/** One instance per (thread, d, k, block size): memory and compiled sweeps reused across steps. */
export class WasmSweep {
  readonly L: Layout;
  private readonly mem: WasmMemory;
  private readonly pages: number;
  private readonly fns = new Map<string, Exports>();

  constructor(readonly d: number, readonly k: number, readonly S: number) {
    this.L = layout(d, k, S);
    this.pages = Math.ceil(this.L.bytes / 65536);
    this.mem = newMemory(this.pages);
  }

  private sweepFn(act: number[], want: boolean): Exports {
    const key = `${act.join(',')}:${want}`;
    let e = this.fns.get(key);
    if (!e) {
      if (this.fns.size > 64) this.fns.clear();
      e = instantiate<Exports>(buildSweep(this.d, this.k, act, want, this.L, this.pages), this.mem);
      this.fns.set(key, e);
    }
    return e;
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
    const buf = this.mem.buffer;
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
    for (let a = g0; a < g1; a += L.S) {
      const n = Math.min(L.S, g1 - a);
      // Stage pixels [a, a + n) from the views that hold them.
      for (let vi = 0; vi < views.length; vi++) {
        const v = views[vi];
        const s = Math.max(a, starts[vi]);
        const e = Math.min(a + n, starts[vi] + v.count);
        if (s >= e) continue;
        const from = v.offset + s - starts[vi];
        for (let f = 0; f < d; f++) X.set(v.data.subarray(f * v.stride + from, f * v.stride + from + e - s), f * L.S + s - a);
      }
      // An odd count: the pair's second pixel is padding (excluded, never written).
      if (n & 1) for (let f = 0; f < d; f++) X[f * L.S + n] = NaN;
      fn.sweep(n);
      if (want) {
        labels!.set(lab.subarray(0, n), a);
        dist2!.set(dd.subarray(0, n), a);
      }
    }
    sums.set(S);
  }
}

const instances = new Map<string, WasmSweep>();

/** This thread's WasmSweep for (d, k, block size), or null without WebAssembly SIMD or when the staging would be too large. */
export function wasmSweep(d: number, k: number, block: number): WasmSweep | null {
  if (!wasmSimd || d > 4096) return null;
  const S = subBlockPixels(d, block);
  const key = `${d}:${k}:${S}`;
  let w = instances.get(key);
  if (!w) {
    if (instances.size > 8) instances.clear();
    w = new WasmSweep(d, k, S);
    instances.set(key, w);
  }
  return w;
}

function buildSweep(d: number, k: number, act: number[], want: boolean, L: Layout, pages: number): Uint8Array<ArrayBuffer> {
  const na = act.length;
  const m = d + 2;
  const f = new Fn('sweep', [['n', I32]]);
  const i = f.local('i', I32), fp = f.local('fp', I32), xp = f.local('xp', I32), j = f.local('j', I32), base = f.local('base', I32);
  const x = f.local('x', V128), t = f.local('t', V128), ok = f.local('ok', V128), zero = f.local('zero', V128), zf = f.local('zf', V128);
  const bv = f.local('bv', V128), bb = f.local('bb', V128), bl = f.local('bl', V128), msk = f.local('msk', V128);
  const s = Array.from({ length: Math.min(GROUP, na) }, (_, q) => f.local(`s${q}`, V128));
  const unroll = d <= UNROLL_D;
  // Unrolled: z of the pair in registers; otherwise in the Z scratch area.
  const zr = unroll ? Array.from({ length: d }, (_, q) => f.local(`z${q}`, V128)) : [];
  f.f64(0).f64x2Splat().set(zero);
  f.i32(0).set(i);
  f.block().loop();
  {
    // --- z of the pair (pixels i, i + 1) into Z, and the finite mask
    f.get(zero).get(zero).f64x2Eq().set(ok);
    const zStep = (fc: number | null) => {
      // x = the two float32 values of feature f, promoted
      if (fc !== null) f.get(i).i32(2).shl().vLoad64Zero(L.X + 4 * fc * L.S);
      else f.get(xp).vLoad64Zero(L.X);
      f.f64x2PromoteLow().set(x);
      f.get(ok).get(x).get(x).f64x2Sub().get(zero).f64x2Eq().vAnd().set(ok);
      if (fc !== null) {
        f.get(x).i32(0).vLoad64Splat(L.sh + 8 * fc).f64x2Sub().i32(0).vLoad64Splat(L.iv + 8 * fc).f64x2Mul().set(zr[fc]);
      } else {
        f.get(fp).i32(1).shl();
        f.get(x).get(fp).vLoad64Splat(L.sh).f64x2Sub().get(fp).vLoad64Splat(L.iv).f64x2Mul().vStore(L.Z);
      }
    };
    if (unroll) for (let q = 0; q < d; q++) zStep(q);
    else {
      // fp = 8 f (byte offset of feature f in float64 arrays); xp = address of x[f][i]
      f.i32(0).set(fp);
      f.get(i).i32(2).shl().set(xp);
      f.block().loop();
      zStep(null);
      f.get(xp).i32(4 * L.S).add().set(xp);
      f.get(fp).i32(8).add().tee(fp).i32(8 * d).ltS().brIf(0);
      f.end().end();
    }
    // --- squared distances to the active centres, in groups; running argmin in index order
    for (let g0 = 0; g0 < na; g0 += GROUP) {
      const gn = Math.min(GROUP, na - g0);
      for (let q = 0; q < gn; q++) f.get(zero).set(s[q]);
      const dStep = (fc: number | null) => {
        if (fc === null) f.get(fp).i32(1).shl().vLoad(L.Z).set(zf);
        for (let q = 0; q < gn; q++) {
          const co = L.C + 8 * (g0 + q) * d;
          f.get(s[q]).get(fc !== null ? zr[fc] : zf);
          if (fc !== null) f.i32(0).vLoad64Splat(co + 8 * fc);
          else f.get(fp).vLoad64Splat(co);
          f.f64x2Sub().tee(t).get(t).f64x2Mul().f64x2Add().set(s[q]);
        }
      };
      if (unroll) for (let q = 0; q < d; q++) dStep(q);
      else {
        f.i32(0).set(fp);
        f.block().loop();
        dStep(null);
        f.get(fp).i32(8).add().tee(fp).i32(8 * d).ltS().brIf(0);
        f.end().end();
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
    f.get(bb).f64Bits(k * 8 * m).f64x2Splat().get(ok).vBitselect().set(bb);
    if (want) {
      f.get(bl).f64Bits(-1).f64x2Splat().get(ok).vBitselect().set(bl);
      f.get(bv).f64(NaN).f64x2Splat().get(ok).vBitselect().set(msk);
    }
    // --- per lane (pixel i + lane), in pixel order: outputs and sums, branch-free
    for (let ln = 0; ln < 2; ln++) {
      if (want) {
        f.get(i).i32(ln).add().i32(2).shl().get(bl).i64x2Extract(ln).wrap().i32Store(L.lab);
        f.get(i).i32(ln).add().i32(2).shl().get(msk).f64x2Extract(ln).demote().f32Store(L.dd);
      }
      f.get(bb).i64x2Extract(ln).wrap().set(base);
      if (unroll) {
        for (let q = 0; q < d; q++) {
          f.get(base).get(base).f64Load(L.sums + 8 * q).get(zr[q]).f64x2Extract(ln).fadd().f64Store(L.sums + 8 * q);
        }
      } else {
        f.i32(0).set(fp);
        f.block().loop();
        f.get(base).get(base).f64Load(L.sums).get(fp).i32(1).shl().f64Load(L.Z + 8 * ln).fadd().f64Store(L.sums);
        f.get(base).i32(8).add().set(base);
        f.get(fp).i32(8).add().tee(fp).i32(8 * d).ltS().brIf(0);
        f.end().end();
        f.get(bb).i64x2Extract(ln).wrap().set(base);
      }
      f.get(base).get(base).f64Load(L.sums + 8 * d).f64(1).fadd().f64Store(L.sums + 8 * d);
      f.get(base).get(base).f64Load(L.sums + 8 * (d + 1)).get(bv).f64x2Extract(ln).fadd().f64Store(L.sums + 8 * (d + 1));
    }
    f.get(i).i32(2).add().tee(i).get('n').ltS().brIf(0);
  }
  f.end().end();
  return assemble([f], { pages, maxPages: pages, shared: false });
}
