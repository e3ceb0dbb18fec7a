/**
 * The absorbance conversion A = -ln((I - D) / (F - D)) (src/stack/transmission.ts) in
 * WebAssembly SIMD, two values per f64x2 vector, four per loop turn.
 *
 * Error: none against the JavaScript path (the same float32 bytes). The ratio is formed in
 * float64 exactly as there ((I - D) / (F - D), the counts converted exactly). ln is the
 * algorithm of V8's Math.log (FreeBSD msun e_log.c, shipped by V8 as base::ieee754::log),
 * reduced to one formula for every lane: x = 2^k (1 + f), s = f / (2 + f),
 * ln x = k ln2_hi - ((hfsq - (s (hfsq + R(s^2)) + k ln2_lo)) - f) with hfsq = f^2 / 2 and
 * e_log.c's degree-14 polynomial R (its error <= 2^-58.45); e_log.c calls this form its more
 * accurate one and uses it on most of the range, so the result is within a few float64 ulps
 * of Math.log's everywhere. What is kept is that result rounded to float32, which drops 29
 * bits: unless the dropped bits lie within 2^12 float64 ulps of the float32 rounding
 * midpoint, Math.log's own result rounds to the same float32. Where they do (about 2^-16 of
 * the values), the kernel lists the group of four values and the caller recomputes them
 * with Math.log (recomputeListed). So every float32 equals Math.fround(-Math.log(ratio));
 * test/cpu/transmission-wasm.test.ts checks the bytes on random, near-1, powers-of-two and
 * invalid ratios and on ratios across the whole float32 range. Ratios of float32 or integer
 * counts lie within 2^-277 .. 2^277: never float64-subnormal, so e_log.c's subnormal
 * scaling is not needed; the result is a normal float32 (or 0), as the bit test assumes.
 * A non-positive or non-finite ratio gives NaN and is counted, as there.
 *
 * Memory of one instance: a chunk of CHUNK values of sample, flat and dark counts (each
 * slot sized for float32), the float32 output, the masked count and the list of groups to
 * recompute. The caller stages counts into the slots (or reads the file straight into them)
 * and copies the output out.
 */
import { assemble, Fn, I32, instantiate, newMemory, V128, wasmSimd, type WasmMemory } from './wasm.js';

/** Stored types the kernel reads: float32, or integers exact in float32. */
export type CountType = 'float32' | 'uint16' | 'int16' | 'uint8';

/** Values per chunk: slots of 64 KiB, so a chunk (3 inputs + output) stays in L2. */
export const CHUNK = 1 << 14;

/** Byte offsets of the slots: counts, output, masked count (i64 x 2), listed groups (count, then value indices). */
export const SLOT = { S: 0, F: 4 * CHUNK, D: 8 * CHUNK, O: 12 * CHUNK, cnt: 16 * CHUNK, list: 16 * CHUNK + 16 } as const;
const PAGES = Math.ceil((SLOT.list + 4 + CHUNK) / 65536);

const SIZE: Record<CountType, number> = { float32: 4, uint16: 2, int16: 2, uint8: 1 };
const SHIFT: Record<CountType, number> = { float32: 2, uint16: 1, int16: 1, uint8: 0 };

// e_log.c's constants (FreeBSD msun; the same in V8's base/ieee754.cc).
const LN2_HI = 6.93147180369123816490e-01;
const LN2_LO = 1.90821492927058770002e-10;
const LG = [6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01];
/** Float64 ulps around the float32 rounding midpoint within which a value is recomputed with Math.log. */
const MARGIN_ULPS = 1 << 12;

interface Exports { absorb: (n: number) => void }

/**
 * Emits absorb(n): values [0, n) of the slots (n a multiple of 4) -> O, masked count (i64
 * lanes) -> cnt, groups to recompute -> list. `dark` null: no dark (D = 0, no subtraction,
 * as in the JavaScript path).
 */
function build(sample: CountType, flat: CountType, dark: CountType | null): Uint8Array<ArrayBuffer> {
  const f = new Fn('absorb', [['n', I32]]);
  const i = f.local('i', I32), nl = f.local('nl', I32);
  const ia = f.local('ia', I32), ib = f.local('ib', I32), ic = f.local('ic', I32); // i << 0, 1, 2
  const cnt = f.local('cnt', V128), bad = f.local('bad', V128);
  const v = (n: string) => f.local(n, V128);
  const [x, fl, d, hx, k, msk, ff, s, z, w, R, r, t, ok] = ['x', 'fl', 'd', 'hx', 'k', 'msk', 'ff', 's', 'z', 'w', 'R', 'r', 't', 'ok'].map(v);
  const addr = (type: CountType) => (SHIFT[type] === 0 ? ia : SHIFT[type] === 1 ? ib : ic);
  // Two values of `type` at slot base + pair offset, as f64x2 (exact; integer counts are
  // non-negative or int16 in int32 lanes, so the signed conversion, native on x86, is exact).
  const load = (type: CountType, base: number, pair: number) => {
    const off = base + pair * 2 * SIZE[type];
    f.get(addr(type));
    if (type === 'float32') f.vLoad64Zero(off).f64x2PromoteLow();
    else if (type === 'uint16') f.vLoad32Zero(off).i32x4ExtendLowI16x8U().f64x2ConvertLowI32x4S();
    else if (type === 'int16') f.vLoad32Zero(off).i32x4ExtendLowI16x8S().f64x2ConvertLowI32x4S();
    else f.vLoad16Splat(off).i16x8ExtendLowI8x16U().i32x4ExtendLowI16x8U().f64x2ConvertLowI32x4S();
  };

  f.i64x2Const(0).set(cnt);
  f.i32(0).set(i);
  f.i32(0).set(nl);
  f.block().loop();
  f.get(i).set(ia);
  f.get(i).i32(1).shl().set(ib);
  f.get(i).i32(2).shl().set(ic);
  f.i64x2Const(0).set(bad);
  for (let pair = 0; pair < 2; pair++) {
    // ratio x = (I - D) / (F - D), float64
    load(sample, SLOT.S, pair);
    f.set(x);
    load(flat, SLOT.F, pair);
    f.set(fl);
    if (dark) {
      load(dark, SLOT.D, pair);
      f.set(d);
      f.get(x).get(d).f64x2Sub().set(x);
      f.get(fl).get(d).f64x2Sub().set(fl);
    }
    f.get(x).get(fl).f64x2Div().set(x);
    // ok: 0 < x < Infinity (NaN fails both)
    f.get(x).f64x2Const(0).f64x2Gt().get(x).f64x2Const(Infinity).f64x2Lt().vAnd().set(ok);
    // --- e_log.c's reduction, per lane. hx: the high word; x > 0 wherever the result is
    // used, so logical shifts (native on x86, unlike i64 arithmetic ones) give its values.
    f.get(x).i32(32).i64x2ShrU().set(hx);
    // k = (hx >> 20) - 1023; hx &= 0xfffff; i = (hx + 0x95f64) & 0x100000
    f.get(hx).i32(20).i64x2ShrU().i64x2Const(1023).i64x2Sub().set(k);
    f.get(hx).i64x2Const(0xfffff).vAnd().set(hx);
    f.get(hx).i64x2Const(0x95f64).i64x2Add().i64x2Const(0x100000).vAnd().set(msk); // msk holds i
    // SET_HIGH_WORD(x, hx | (i ^ 0x3ff00000)): x or x/2 in [sqrt(2)/2, sqrt(2)); k += i >> 20; f = x - 1
    f.get(x).i64x2Const(0xffffffffn).vAnd()
      .get(hx).get(msk).i64x2Const(0x3ff00000).vXor().vOr().i32(32).i64x2Shl()
      .vOr().f64x2Const(1).f64x2Sub().set(ff);
    f.get(k).get(msk).i32(20).i64x2ShrU().i64x2Add().set(k);
    // k as float64: the low 32 bits of each i64 lane into i32 lanes 0, 1, converted
    f.get(k).get(k).i8x16Shuffle([0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 8, 9, 10, 11]).f64x2ConvertLowI32x4S().set(k);
    // s = f / (2 + f); z = s*s; w = z*z
    f.get(ff).f64x2Const(2).get(ff).f64x2Add().f64x2Div().set(s);
    f.get(s).get(s).f64x2Mul().set(z);
    f.get(z).get(z).f64x2Mul().set(w);
    // R = t2 + t1, t1 = w*(Lg2 + w*(Lg4 + w*Lg6)), t2 = z*(Lg1 + w*(Lg3 + w*(Lg5 + w*Lg7)))
    f.get(w).f64x2Const(LG[1]).get(w).f64x2Const(LG[3]).get(w).f64x2Const(LG[5]).f64x2Mul().f64x2Add().f64x2Mul().f64x2Add().f64x2Mul().set(t);
    f.get(z).f64x2Const(LG[0]).get(w).f64x2Const(LG[2]).get(w).f64x2Const(LG[4]).get(w).f64x2Const(LG[6]).f64x2Mul().f64x2Add().f64x2Mul().f64x2Add().f64x2Mul().f64x2Add().f64x2Mul();
    f.get(t).f64x2Add().set(R);
    // hfsq = 0.5*f*f -> t; r = k*ln2_hi - ((hfsq - (s*(hfsq+R) + k*ln2_lo)) - f)
    f.f64x2Const(0.5).get(ff).f64x2Mul().get(ff).f64x2Mul().set(t);
    f.get(k).f64x2Const(LN2_HI).f64x2Mul()
      .get(t).get(s).get(t).get(R).f64x2Add().f64x2Mul().get(k).f64x2Const(LN2_LO).f64x2Mul().f64x2Add().f64x2Sub()
      .get(ff).f64x2Sub().f64x2Sub().set(r);
    // Near a float32 midpoint: the 29 bits float32 drops are within MARGIN_ULPS of 2^28.
    // (bits & (2^29 - 1)) - (2^28 - M) in [0, 2M): > -1 and < 2M; only where ok.
    f.get(r).i64x2Const((1 << 29) - 1).vAnd().i64x2Const((1 << 28) - MARGIN_ULPS).i64x2Sub().set(t);
    f.get(t).i64x2Const(-1).i64x2GtS().i64x2Const(2 * MARGIN_ULPS).get(t).i64x2GtS().vAnd().get(ok).vAnd()
      .get(bad).vOr().set(bad);
    // out = ok ? -ln : NaN, as float32; masked += !ok
    f.get(ic);
    f.get(r).f64x2Neg().f64x2Const(NaN).get(ok).vBitselect().f32x4DemoteF64x2Zero().vStore64Lane(SLOT.O + pair * 8, 0);
    f.get(cnt).get(ok).vNot().i64x2Sub().set(cnt);
  }
  // list this group of four for recomputation if any of its values is near a midpoint
  f.get(bad).vAnyTrue().if_();
  f.get(nl).i32(2).shl().get(i).i32Store(SLOT.list + 4);
  f.get(nl).i32(1).add().set(nl);
  f.end();
  f.get(i).i32(4).add().tee(i).get('n').ltS().brIf(0);
  f.end().end();
  f.i32(0).get(cnt).vStore(SLOT.cnt);
  f.i32(0).get(nl).i32Store(SLOT.list);
  return assemble([f], { pages: PAGES, maxPages: PAGES, shared: false });
}

/** Whether this runtime runs the SIMD conversion (else the JavaScript loop does the work). */
export const transmissionSimd = wasmSimd;

/**
 * One thread's SIMD converter: its memory (one chunk) and the kernels compiled for the
 * type combinations met so far.
 */
export class AbsorbanceKernel {
  readonly mem: WasmMemory;
  private readonly fns = new Map<string, Exports>();

  constructor() {
    this.mem = newMemory(PAGES);
  }

  /** A view of slot `at` (byte offset) as `type`, for `n` values. */
  slot(type: CountType, at: number, n: number): Uint8Array | Uint16Array | Int16Array | Float32Array {
    const b = this.mem.buffer;
    return type === 'float32' ? new Float32Array(b, at, n) : type === 'uint16' ? new Uint16Array(b, at, n) : type === 'int16' ? new Int16Array(b, at, n) : new Uint8Array(b, at, n);
  }

  /**
   * Converts the staged values [0, n) (n <= CHUNK, a multiple of 4) into slot O; returns the
   * masked count. The groups listed() must then be recomputed with Math.log.
   */
  run(sample: CountType, flat: CountType, dark: CountType | null, n: number): number {
    const key = `${sample}/${flat}/${dark}`;
    let e = this.fns.get(key);
    if (!e) {
      e = instantiate<Exports>(build(sample, flat, dark), this.mem);
      this.fns.set(key, e);
    }
    if (n <= 0) return 0;
    e.absorb(n);
    const c = new Int32Array(this.mem.buffer, SLOT.cnt, 4);
    return c[0] + c[2];
  }

  /** The first value index of each group of four the last run() listed for recomputation. */
  listed(): Int32Array {
    const b = this.mem.buffer;
    return new Int32Array(b, SLOT.list + 4, new Int32Array(b, SLOT.list, 1)[0]);
  }
}

/** The stored type of a counts array. */
export function countType(a: ArrayBufferView): CountType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint8Array) return 'uint8';
  throw new TypeError('counts must be float32, uint16, int16 or uint8');
}
