/**
 * A minimal WebAssembly code emitter for the CPU kernels that need SIMD (kmeans-wasm.ts,
 * pca-wasm.ts): the kernels are written here as instruction sequences (numeric opcodes of
 * the WebAssembly 2.0 core and fixed-width SIMD specifications) and assembled into a module
 * at run time, so a kernel can be specialised for its sizes (unrolled loops, constant
 * offsets) without a compiler toolchain. One module = one imported linear memory
 * ("m"."mem") and the exported functions given; every function returns nothing.
 *
 * Only what the kernels use is here: i32 and f64 scalars, v128 (f64x2 arithmetic, lane
 * selects), structured control flow.
 */

/** Value types. */
export const I32 = 0x7f;
export const F64 = 0x7c;
export const F32 = 0x7d;
export const V128 = 0x7b;
type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** Unsigned LEB128, the encoding of WebAssembly's immediates (memarg offsets, sizes, indices). */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function str(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

/** The byte arrays one after another (no spread of long arrays: a module's code is ~10^5 bytes). */
function cat(parts: ArrayLike<number>[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function section(id: number, body: ArrayLike<number>): Uint8Array<ArrayBuffer> {
  return cat([[id], uleb(body.length), body]);
}

/** A function body under construction: locals by name, code as bytes. */
export class Fn {
  readonly code: number[] = [];
  private readonly localTypes: ValType[] = [];
  private readonly names = new Map<string, number>();

  constructor(readonly name: string, readonly params: [string, ValType][]) {
    params.forEach(([n], i) => this.names.set(n, i));
  }

  /** Declares (or returns) a local of the given type. */
  local(name: string, t: ValType): string {
    if (!this.names.has(name)) {
      this.names.set(name, this.params.length + this.localTypes.length);
      this.localTypes.push(t);
    }
    return name;
  }

  private idx(name: string): number {
    const i = this.names.get(name);
    if (i === undefined) throw new Error(`wasm emitter: unknown local ${name}`);
    return i;
  }

  // --- locals and constants
  get(n: string): this { this.code.push(0x20, ...uleb(this.idx(n))); return this; }
  set(n: string): this { this.code.push(0x21, ...uleb(this.idx(n))); return this; }
  tee(n: string): this { this.code.push(0x22, ...uleb(this.idx(n))); return this; }
  i32(v: number): this { this.code.push(0x41, ...sleb(v | 0)); return this; }
  f64(v: number): this {
    const b = new Uint8Array(new Float64Array([v]).buffer);
    this.code.push(0x44, ...b);
    return this;
  }

  /** An f64 constant with the bit pattern of the 64-bit integer v (integers carried in f64x2 lanes, selected bitwise). */
  f64Bits(v: number): this {
    const b = new Uint8Array(BigInt64Array.of(BigInt(v)).buffer);
    this.code.push(0x44, ...b);
    return this;
  }

  // --- control
  block(): this { this.code.push(0x02, 0x40); return this; }
  loop(): this { this.code.push(0x03, 0x40); return this; }
  if_(): this { this.code.push(0x04, 0x40); return this; }
  else_(): this { this.code.push(0x05); return this; }
  end(): this { this.code.push(0x0b); return this; }
  br(depth: number): this { this.code.push(0x0c, ...uleb(depth)); return this; }
  brIf(depth: number): this { this.code.push(0x0d, ...uleb(depth)); return this; }

  // --- i32
  op(...bytes: number[]): this { this.code.push(...bytes); return this; }
  add(): this { return this.op(0x6a); }
  sub(): this { return this.op(0x6b); }
  mul(): this { return this.op(0x6c); }
  ltS(): this { return this.op(0x48); }
  geS(): this { return this.op(0x4e); }
  eqz(): this { return this.op(0x45); }
  shl(): this { return this.op(0x74); }
  divS(): this { return this.op(0x6d); }

  // --- memory (align given as log2 bytes; offset a constant)
  private mem(op: number, align: number, offset: number): this { this.code.push(op, ...uleb(align), ...uleb(offset)); return this; }
  i32Load(offset = 0): this { return this.mem(0x28, 2, offset); }
  i32Store(offset = 0): this { return this.mem(0x36, 2, offset); }
  f32Store(offset = 0): this { return this.mem(0x38, 2, offset); }
  f64Load(offset = 0): this { return this.mem(0x2b, 3, offset); }
  f64Store(offset = 0): this { return this.mem(0x39, 3, offset); }

  // --- f64 scalar
  fadd(): this { return this.op(0xa0); }
  fsub(): this { return this.op(0xa1); }
  fmul(): this { return this.op(0xa2); }
  demote(): this { return this.op(0xb6); }
  truncS(): this { return this.op(0xaa); } // i32.trunc_f64_s
  wrap(): this { return this.op(0xa7); } // i32.wrap_i64

  // --- SIMD (0xfd prefix, opcode as u32 LEB)
  private simd(op: number, ...imm: number[]): this { this.code.push(0xfd, ...uleb(op), ...imm); return this; }
  private simdMem(op: number, align: number, offset: number): this { return this.simd(op, ...uleb(align), ...uleb(offset)); }
  vLoad(offset = 0): this { return this.simdMem(0x00, 4, offset); }
  vStore(offset = 0): this { return this.simdMem(0x0b, 4, offset); }
  vLoad64Splat(offset = 0): this { return this.simdMem(0x0a, 3, offset); }
  vLoad64Zero(offset = 0): this { return this.simdMem(0x5d, 3, offset); }
  f64x2Splat(): this { return this.simd(0x14); }
  f64x2Extract(lane: number): this { return this.simd(0x21, lane); }
  f64x2Eq(): this { return this.simd(0x47); }
  f64x2Lt(): this { return this.simd(0x49); }
  f64x2Add(): this { return this.simd(0xf0); }
  f64x2Sub(): this { return this.simd(0xf1); }
  f64x2Mul(): this { return this.simd(0xf2); }
  f64x2Div(): this { return this.simd(0xf3); }
  f64x2Sqrt(): this { return this.simd(0xef); }
  f64x2Max(): this { return this.simd(0xf5); }
  f64x2Gt(): this { return this.simd(0x4a); }
  f64x2PromoteLow(): this { return this.simd(0x5f); }
  f64x2Abs(): this { return this.simd(0xec); }
  vAnd(): this { return this.simd(0x4e); }
  /** a & ~b. */
  vAndNot(): this { return this.simd(0x4f); }
  vBitselect(): this { return this.simd(0x52); }
  i64x2Extract(lane: number): this { return this.simd(0x1d, lane); }
  i64x2AllTrue(): this { return this.simd(0xc3); }
  i32x4Extract(lane: number): this { return this.simd(0x1b, lane); }
  f32x4Splat(): this { return this.simd(0x13); }
  f32x4Lt(): this { return this.simd(0x43); }
  f32x4Le(): this { return this.simd(0x45); }
  f32x4Abs(): this { return this.simd(0xe0); }
  f32x4Add(): this { return this.simd(0xe4); }
  f32x4Sub(): this { return this.simd(0xe5); }
  f32x4Mul(): this { return this.simd(0xe6); }
  /** f32x4.demote_f64x2_zero: [f32(a0), f32(a1), 0, 0]. */
  f32x4DemoteZero(): this { return this.simd(0x5e); }
  /** i8x16.shuffle of the two operands (lanes 0-15 the first, 16-31 the second). */
  shuffle(lanes: number[]): this {
    if (lanes.length !== 16) throw new Error('wasm emitter: a shuffle takes 16 lanes');
    return this.simd(0x0d, ...lanes);
  }

  // --- SIMD for the transmission conversion (transmission-wasm.ts): integer lanes, loads
  // that widen stored counts, float conversions
  /** v128.const from two 64-bit lane values. */
  i64x2Const(lo: number | bigint, hi: number | bigint = lo): this {
    const b = new Uint8Array(BigInt64Array.of(BigInt.asIntN(64, BigInt(lo)), BigInt.asIntN(64, BigInt(hi))).buffer);
    return this.simd(0x0c, ...b);
  }
  /** v128.const with both f64 lanes = v. */
  f64x2Const(v: number): this {
    const b = new Uint8Array(Float64Array.of(v, v).buffer);
    return this.simd(0x0c, ...b);
  }
  i8x16Shuffle(lanes: number[]): this { return this.simd(0x0d, ...lanes); }
  vLoad16Splat(offset = 0): this { return this.simdMem(0x08, 1, offset); }
  vLoad32Zero(offset = 0): this { return this.simdMem(0x5c, 2, offset); }
  /** v128.store64_lane: stores lane `lane` of an i64x2 (here: two float32 values). */
  vStore64Lane(offset: number, lane: number): this { return this.simd(0x5b, ...uleb(3), ...uleb(offset), lane); }
  vNot(): this { return this.simd(0x4d); }
  vAnyTrue(): this { return this.simd(0x53); }
  vOr(): this { return this.simd(0x50); }
  vXor(): this { return this.simd(0x51); }
  i16x8ExtendLowI8x16U(): this { return this.simd(0x89); }
  i32x4ExtendLowI16x8S(): this { return this.simd(0xa7); }
  i32x4ExtendLowI16x8U(): this { return this.simd(0xa9); }
  i64x2Shl(): this { return this.simd(0xcb); }
  i64x2ShrU(): this { return this.simd(0xcd); }
  i64x2Add(): this { return this.simd(0xce); }
  i64x2Sub(): this { return this.simd(0xd1); }
  i64x2LtS(): this { return this.simd(0xd8); }
  i64x2GtS(): this { return this.simd(0xd9); }
  f64x2Neg(): this { return this.simd(0xed); }
  f64x2ConvertLowI32x4S(): this { return this.simd(0xfe); }
  f32x4DemoteF64x2Zero(): this { return this.simd(0x5e); }

  // --- SIMD for the k-means float32 screen (kmeans-wasm.ts)
  vLoad32Splat(offset = 0): this { return this.simdMem(0x09, 2, offset); }
  i32x4Splat(): this { return this.simd(0x11); }
  i32x4AllTrue(): this { return this.simd(0xa3); }
  f32Load(offset = 0): this { return this.mem(0x2a, 2, offset); }
  f32Sub(): this { return this.op(0x93); }
  f32Ne(): this { return this.op(0x5c); }
  promote(): this { return this.op(0xbb); } // f64.promote_f32
  flt(): this { return this.op(0x63); } // f64.lt
  eq(): this { return this.op(0x46); } // i32.eq
  f32x4Gt(): this { return this.simd(0x44); }
  f32x4Min(): this { return this.simd(0xe8); }
  f32x4Sqrt(): this { return this.simd(0xe3); }

  /** The body as the code section wants it (locals grouped one entry per local). */
  body(): Uint8Array<ArrayBuffer> {
    const locals = [...uleb(this.localTypes.length), ...this.localTypes.flatMap((t) => [1, t])];
    const n = locals.length + this.code.length + 1;
    return cat([uleb(n), locals, this.code, [0x0b]]);
  }
}

/** Assembles a module with one imported memory ("m"."mem", `shared` or not) and the exported functions. */
export function assemble(fns: Fn[], memory: { pages: number; maxPages: number; shared: boolean }): Uint8Array<ArrayBuffer> {
  const types: number[][] = fns.map((f) => [0x60, ...uleb(f.params.length), ...f.params.map(([, t]) => t), 0x00]);
  const typeSec = section(1, [...uleb(types.length), ...types.flat()]);
  const limits = memory.shared ? [0x03, ...uleb(memory.pages), ...uleb(memory.maxPages)] : [0x01, ...uleb(memory.pages), ...uleb(memory.maxPages)];
  const importSec = section(2, [1, ...str('m'), ...str('mem'), 0x02, ...limits]);
  const funcSec = section(3, [...uleb(fns.length), ...fns.map((_, i) => uleb(i)).flat()]);
  const exportSec = section(7, [...uleb(fns.length), ...fns.flatMap((f, i) => [...str(f.name), 0x00, ...uleb(i)])]);
  const codeSec = section(10, cat([uleb(fns.length), ...fns.map((f) => f.body())]));
  return cat([[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], typeSec, importSec, funcSec, exportSec, codeSec]);
}

/**
 * The few pieces of the WebAssembly JavaScript API used here, typed locally (the project's
 * TypeScript libs are ES2022 + Node, which do not declare them).
 */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  Memory: new (d: { initial: number; maximum: number }) => WasmMemory;
  Module: new (bytes: Uint8Array<ArrayBuffer>) => object;
  Instance: new (m: object, imports: object) => { exports: unknown };
  validate(bytes: Uint8Array<ArrayBuffer>): boolean;
}
const WA = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** True if this runtime compiles WebAssembly with fixed-width SIMD (Node >= 16.4). */
export const wasmSimd: boolean = (() => {
  try {
    if (!WA) return false;
    const f = new Fn('t', []);
    f.f64(1).f64x2Splat().f64x2Extract(0).op(0x1a); // drop
    return WA.validate(assemble([f], { pages: 1, maxPages: 1, shared: false }));
  } catch {
    return false;
  }
})();

/** A linear memory of `pages` 64 KiB pages (fixed size). */
export function newMemory(pages: number): WasmMemory {
  return new WA!.Memory({ initial: pages, maximum: pages });
}

/** Instantiates a module synchronously on `memory`; returns its exports. */
export function instantiate<T>(bytes: Uint8Array<ArrayBuffer>, memory: WasmMemory): T {
  const mod = new WA!.Module(bytes);
  return new WA!.Instance(mod, { m: { mem: memory } }).exports as T;
}
