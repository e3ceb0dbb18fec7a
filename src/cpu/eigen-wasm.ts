/**
 * The O(n^3) loops of symmetricEigen (eigen.ts) in WebAssembly SIMD, two float64 lanes: the
 * Householder matrix-vector product and rank-2 update, the accumulation of the reflectors
 * into Q, and each implicit QR sweep's rotations applied to Q. The scalar work (each
 * reflector's vector, the tridiagonal QR recurrence with its shifts, deflation, sorting)
 * stays in JavaScript, which hands the values over in this instance's memory.
 *
 * Arithmetic: float64 throughout, and every value is computed by the same operations in the
 * same order as the JavaScript loops of symmetricEigenJs (eigen.ts), so the results are the
 * same bytes (test/cpu/eigen.test.ts compares them):
 * - p = B v is summed over the rows j of B (p += B[j][:] v_j, two entries of p per vector):
 *   B is symmetric to the bit (its rank-2 updates add the same two products for [i][j] and
 *   [j][i]), so entry i gets the products B[i][j] v_j in the order j = 0, 1, ... as the
 *   JavaScript row sums do;
 * - B[i][j] -= v_i w_j + w_i v_j, Q's p_r += Qt[row][r] v_i and Qt[row][r] -= (beta v_i) p_r,
 *   and the rotations' c qa + s qb, c qb - s qa: element for element as in JavaScript.
 * Rows are padded to n4 = n + 1 rounded up to 4 float64 (zero padding, which every update
 * keeps zero), so vectors never straddle two rows.
 */
import { assemble, F64, Fn, I32, instantiate, newMemory, V128, wasmSimd, type WasmMemory } from './wasm.js';

/** Row stride (float64) of the matrices in this module's memory. */
export function eigenStride(n: number): number {
  return Math.ceil((n + 1) / 4) * 4;
}

interface Exports {
  /** P[0 .. m rounded up to 2) = sum over rows j < m of B[j][:] V[j]; B's row 0 at byte `base`. */
  bv: (base: number, m: number) => void;
  /** B[i][j] -= V[i] P[j] + P[i] V[j] for i < m, j < m rounded up to 2. */
  rank2: (base: number, m: number) => void;
  /** Q's rows k1 .. k1 + m - 1 (columns of Q): R = sum_i Qt[k1 + i][:] V[i]; Qt[k1 + i][:] -= (beta V[i]) R. */
  qupd: (k1: number, m: number, beta: number) => void;
  /** Rotations lo .. hi - 1 (C[k], S[k]) applied in turn to rows (k, k + 1) of Qt. */
  rot: (lo: number, hi: number) => void;
}

/** Byte offsets of one instance's arrays. */
interface Layout {
  n4: number;
  A: number;
  Q: number;
  V: number;
  P: number;
  R: number;
  C: number;
  S: number;
  bytes: number;
}

function layout(n: number): Layout {
  const n4 = eigenStride(n);
  const mat = 8 * n * n4;
  const vec = 8 * n4;
  const A = 0, Q = A + mat, V = Q + mat, P = V + vec, R = P + vec, C = R + vec, S = C + vec;
  return { n4, A, Q, V, P, R, C, S, bytes: S + vec };
}

/** One instance per (thread, n): the matrices and vectors as float64 views of its memory. */
export class WasmEigen {
  readonly L: Layout;
  readonly ex: Exports;
  private readonly mem: WasmMemory;
  readonly a: Float64Array;
  readonly qt: Float64Array;
  readonly v: Float64Array;
  readonly p: Float64Array;
  readonly c: Float64Array;
  readonly s: Float64Array;

  constructor(readonly n: number) {
    const L = (this.L = layout(n));
    const pages = Math.ceil(L.bytes / 65536);
    this.mem = newMemory(pages);
    this.ex = instantiate<Exports>(assemble(build(L), { pages, maxPages: pages, shared: false }), this.mem);
    const buf = this.mem.buffer;
    this.a = new Float64Array(buf, L.A, n * L.n4);
    this.qt = new Float64Array(buf, L.Q, n * L.n4);
    this.v = new Float64Array(buf, L.V, L.n4);
    this.p = new Float64Array(buf, L.P, L.n4);
    this.c = new Float64Array(buf, L.C, L.n4);
    this.s = new Float64Array(buf, L.S, L.n4);
  }
}

const instances = new Map<number, WasmEigen>();

/** This thread's WasmEigen for n, or null where WebAssembly SIMD is missing or n is too large for one memory. */
export function wasmEigen(n: number): WasmEigen | null {
  if (!wasmSimd || n < 3 || layout(n).bytes > 1 << 30) return null;
  let w = instances.get(n);
  if (!w) {
    if (instances.size > 4) instances.clear();
    w = new WasmEigen(n);
    instances.set(n, w);
  }
  return w;
}

function build(L: Layout): Fn[] {
  const RS = 8 * L.n4; // bytes per row
  const fns: Fn[] = [];
  {
    // bv(base, m): P = sum_j B[j][:] V[j], entries i < m2 (m rounded up to 2; B's padding column is zero)
    const f = new Fn('bv', [['base', I32], ['m', I32]]);
    const i = f.local('i', I32), j = f.local('j', I32), row = f.local('row', I32), end = f.local('end', I32), vj = f.local('vj', V128);
    // end = byte length of m2 float64
    f.get('m').i32(1).add().i32(1).op(0x76).i32(4).shl().set(end); // ((m + 1) >> 1) * 16
    f.i32(0).set(i);
    f.block().loop();
    f.get(i).f64(0).f64x2Splat().vStore(L.P);
    f.get(i).i32(16).add().tee(i).get(end).ltS().brIf(0);
    f.end().end();
    f.i32(0).set(j);
    f.get('base').set(row);
    f.block().loop();
    {
      f.get(j).i32(3).shl().vLoad64Splat(L.V).set(vj);
      f.i32(0).set(i);
      f.block().loop();
      f.get(i);
      f.get(i).vLoad(L.P);
      f.get(row).get(i).add().vLoad().get(vj).f64x2Mul();
      f.f64x2Add().vStore(L.P);
      f.get(i).i32(16).add().tee(i).get(end).ltS().brIf(0);
      f.end().end();
      f.get(row).i32(RS).add().set(row);
      f.get(j).i32(1).add().tee(j).get('m').ltS().brIf(0);
    }
    f.end().end();
    fns.push(f);
  }
  {
    // rank2(base, m): B[i][j] -= V[i] P[j] + P[i] V[j]
    const f = new Fn('rank2', [['base', I32], ['m', I32]]);
    const i = f.local('i', I32), j = f.local('j', I32), row = f.local('row', I32), end = f.local('end', I32), vi = f.local('vi', V128), wi = f.local('wi', V128);
    f.get('m').i32(1).add().i32(1).op(0x76).i32(4).shl().set(end);
    f.i32(0).set(i);
    f.get('base').set(row);
    f.block().loop();
    {
      f.get(i).i32(3).shl().vLoad64Splat(L.V).set(vi);
      f.get(i).i32(3).shl().vLoad64Splat(L.P).set(wi);
      f.i32(0).set(j);
      f.block().loop();
      f.get(row).get(j).add();
      f.get(row).get(j).add().vLoad();
      f.get(vi).get(j).vLoad(L.P).f64x2Mul();
      f.get(wi).get(j).vLoad(L.V).f64x2Mul();
      f.f64x2Add().f64x2Sub().vStore();
      f.get(j).i32(16).add().tee(j).get(end).ltS().brIf(0);
      f.end().end();
      f.get(row).i32(RS).add().set(row);
      f.get(i).i32(1).add().tee(i).get('m').ltS().brIf(0);
    }
    f.end().end();
    fns.push(f);
  }
  {
    // qupd(k1, m, beta): R = sum_i Qt[k1 + i][:] V[i]; Qt[k1 + i][:] -= (beta V[i]) R (all n4 columns)
    const f = new Fn('qupd', [['k1', I32], ['m', I32], ['beta', F64]]);
    const i = f.local('i', I32), r = f.local('r', I32), row = f.local('row', I32), vi = f.local('vi', V128), base = f.local('b0', I32);
    f.i32(0).set(r);
    f.block().loop();
    f.get(r).f64(0).f64x2Splat().vStore(L.R);
    f.get(r).i32(16).add().tee(r).i32(RS).ltS().brIf(0);
    f.end().end();
    f.get('k1').i32(RS).mul().i32(L.Q).add().tee(base).set(row);
    f.i32(0).set(i);
    f.block().loop();
    {
      f.get(i).i32(3).shl().vLoad64Splat(L.V).set(vi);
      f.i32(0).set(r);
      f.block().loop();
      f.get(r);
      f.get(r).vLoad(L.R);
      f.get(row).get(r).add().vLoad().get(vi).f64x2Mul();
      f.f64x2Add().vStore(L.R);
      f.get(r).i32(16).add().tee(r).i32(RS).ltS().brIf(0);
      f.end().end();
      f.get(row).i32(RS).add().set(row);
      f.get(i).i32(1).add().tee(i).get('m').ltS().brIf(0);
    }
    f.end().end();
    f.get(base).set(row);
    f.i32(0).set(i);
    f.block().loop();
    {
      // beta * V[i] in float64, then splat
      f.get('beta').get(i).i32(3).shl().f64Load(L.V).fmul().f64x2Splat().set(vi);
      f.i32(0).set(r);
      f.block().loop();
      f.get(row).get(r).add();
      f.get(row).get(r).add().vLoad();
      f.get(vi).get(r).vLoad(L.R).f64x2Mul();
      f.f64x2Sub().vStore();
      f.get(r).i32(16).add().tee(r).i32(RS).ltS().brIf(0);
      f.end().end();
      f.get(row).i32(RS).add().set(row);
      f.get(i).i32(1).add().tee(i).get('m').ltS().brIf(0);
    }
    f.end().end();
    fns.push(f);
  }
  {
    // rot(lo, hi): four columns at a time, row k's value carried from rotation to rotation:
    // for k = lo .. hi - 1: y = Qt[k + 1]; Qt[k] = c x + s y; x = c y - s x; then Qt[hi] = x.
    const f = new Fn('rot', [['lo', I32], ['hi', I32]]);
    const col = f.local('col', I32), k = f.local('k', I32), at = f.local('at', I32), cs = f.local('cs', I32);
    const c = f.local('cv', V128), s = f.local('sv', V128);
    const x = [f.local('x0', V128), f.local('x1', V128)], y = [f.local('y0', V128), f.local('y1', V128)];
    f.i32(0).set(col);
    f.block().loop();
    {
      // at = address of Qt[lo][col]
      f.get('lo').i32(RS).mul().i32(L.Q).add().get(col).add().set(at);
      for (let u = 0; u < 2; u++) f.get(at).vLoad(16 * u).set(x[u]);
      f.get('lo').set(k);
      f.get('lo').i32(3).shl().set(cs);
      f.block().loop();
      {
        f.get(cs).vLoad64Splat(L.C).set(c);
        f.get(cs).vLoad64Splat(L.S).set(s);
        for (let u = 0; u < 2; u++) {
          f.get(at).vLoad(RS + 16 * u).set(y[u]);
          f.get(at);
          f.get(c).get(x[u]).f64x2Mul().get(s).get(y[u]).f64x2Mul().f64x2Add();
          f.vStore(16 * u);
          f.get(c).get(y[u]).f64x2Mul().get(s).get(x[u]).f64x2Mul().f64x2Sub().set(x[u]);
        }
        f.get(at).i32(RS).add().set(at);
        f.get(cs).i32(8).add().set(cs);
        f.get(k).i32(1).add().tee(k).get('hi').ltS().brIf(0);
      }
      f.end().end();
      for (let u = 0; u < 2; u++) f.get(at).get(x[u]).vStore(16 * u);
      f.get(col).i32(32).add().tee(col).i32(RS).ltS().brIf(0);
    }
    f.end().end();
    fns.push(f);
  }
  return fns;
}
