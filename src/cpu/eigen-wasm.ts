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
  /** Householder reduction of A to tridiagonal (D, E), Q accumulated in Qt (set to I by the caller). */
  tridiag: () => void;
  /** The implicit QR iteration on (D, E) with every sweep's rotations applied to Qt; ST = 0, or 1 if it did not converge. */
  qr: () => void;
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
  /** The tridiagonal: diagonal D[0 .. n), off-diagonal E[0 .. n - 1); ST: the QR status (i32). */
  D: number;
  E: number;
  ST: number;
  bytes: number;
}

function layout(n: number): Layout {
  const n4 = eigenStride(n);
  const mat = 8 * n * n4;
  const vec = 8 * n4;
  const A = 0, Q = A + mat, V = Q + mat, P = V + vec, R = P + vec, C = R + vec, S = C + vec, D = S + vec, E = D + vec, ST = E + vec;
  return { n4, A, Q, V, P, R, C, S, D, E, ST, bytes: ST + 16 };
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
  readonly d: Float64Array;
  readonly e: Float64Array;
  readonly status: Int32Array;

  constructor(readonly n: number) {
    const L = (this.L = layout(n));
    const pages = Math.ceil(L.bytes / 65536);
    this.mem = newMemory(pages);
    this.ex = instantiate<Exports>(assemble(build(L, n), { pages, maxPages: pages, shared: false }), this.mem);
    const buf = this.mem.buffer;
    this.a = new Float64Array(buf, L.A, n * L.n4);
    this.qt = new Float64Array(buf, L.Q, n * L.n4);
    this.v = new Float64Array(buf, L.V, L.n4);
    this.p = new Float64Array(buf, L.P, L.n4);
    this.c = new Float64Array(buf, L.C, L.n4);
    this.s = new Float64Array(buf, L.S, L.n4);
    this.d = new Float64Array(buf, L.D, n);
    this.e = new Float64Array(buf, L.E, n);
    this.status = new Int32Array(buf, L.ST, 1);
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

// Scalar opcodes not in wasm.ts's emitter.
const F64_ABS = 0x99, F64_SQRT = 0x9f, F64_DIV = 0xa3, F64_MAX = 0xa5;
const F64_EQ = 0x61, F64_LT = 0x63, F64_GT = 0x64, F64_LE = 0x65, F64_GE = 0x66;
const I32_GT_S = 0x4a, I32_AND = 0x71, SELECT = 0x1b, CALL = 0x10, RETURN = 0x0f;

function build(L: Layout, n: number): Fn[] {
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
  fns.push(buildQr(L, n, fns.length - 1));
  fns.push(buildTridiag(L, n));
  return fns;
}

/**
 * Householder reduction of A (row stride n4) to tridiagonal form, Q accumulated in Qt; then
 * D, E from it. symmetricEigenJs's loop with the same operations in the same order; the
 * matrix loops are the functions bv (index 0), rank2 (1) and qupd (2).
 */
function buildTridiag(L: Layout, n: number): Fn {
  const f = new Fn('tridiag', []);
  const RS = 8 * L.n4;
  const k = f.local('k', I32), m = f.local('m', I32), i = f.local('i', I32), col = f.local('col', I32), base = f.local('base', I32);
  const x = f.local('x', F64), sigma2 = f.local('sigma2', F64), sigma = f.local('sigma', F64), alpha = f.local('alpha', F64), vtv = f.local('vtv', F64), beta = f.local('beta', F64), K = f.local('K', F64);
  const vAt = (j: string) => f.get(j).i32(3).shl();
  f.i32(0).set(k);
  f.block().loop();
  {
    f.block();
    {
      f.i32(n - 1).get(k).sub().set(m);
      // v = column k below the diagonal; sigma2 = |v|^2
      f.f64(0).set(sigma2);
      f.get(k).i32(1).add().i32(RS).mul().get(k).i32(3).shl().add().set(col); // byte offset of a[k + 1][k]
      f.i32(0).set(i);
      f.block().loop();
      f.get(col).f64Load(L.A).set(x);
      vAt(i).get(x).f64Store(L.V);
      f.get(sigma2).get(x).get(x).fmul().fadd().set(sigma2);
      f.get(col).i32(RS).add().set(col);
      f.get(i).i32(1).add().tee(i).get(m).ltS().brIf(0);
      f.end().end();
      f.get(sigma2).f64(0).op(F64_EQ).brIf(0); // continue
      f.get(sigma2).op(F64_SQRT).set(sigma);
      // alpha = v[0] >= 0 ? -sigma : sigma; v[0] -= alpha
      f.get(sigma).op(0x9a).get(sigma).i32(0).f64Load(L.V).f64(0).op(F64_GE).op(SELECT).set(alpha); // f64.neg
      f.i32(0).i32(0).f64Load(L.V).get(alpha).fsub().f64Store(L.V);
      f.f64(0).set(vtv);
      f.i32(0).set(i);
      f.block().loop();
      f.get(vtv);
      vAt(i).f64Load(L.V);
      vAt(i).f64Load(L.V).fmul().fadd().set(vtv);
      f.get(i).i32(1).add().tee(i).get(m).ltS().brIf(0);
      f.end().end();
      f.get(vtv).f64(0).op(F64_EQ).brIf(0); // continue
      f.f64(2).get(vtv).op(F64_DIV).set(beta);
      // entries past m are read by the two-lane loops: zero
      vAt(m).f64(0).f64Store(L.V);
      vAt(m).f64(0).f64Store(L.V + 8);
      f.get(k).i32(1).add().i32(RS).mul().get(k).i32(1).add().i32(3).shl().add().i32(L.A).add().set(base);
      // p = beta B v, K = beta / 2 v.p, w = p - K v
      f.get(base).get(m).op(CALL, 0);
      f.f64(0).set(K);
      f.i32(0).set(i);
      f.block().loop();
      vAt(i).get(beta);
      vAt(i).f64Load(L.P).fmul().f64Store(L.P);
      f.get(K);
      vAt(i).f64Load(L.V);
      vAt(i).f64Load(L.P).fmul().fadd().set(K);
      f.get(i).i32(1).add().tee(i).get(m).ltS().brIf(0);
      f.end().end();
      f.get(K).get(beta).f64(2).op(F64_DIV).fmul().set(K);
      f.i32(0).set(i);
      f.block().loop();
      vAt(i);
      vAt(i).f64Load(L.P).get(K);
      vAt(i).f64Load(L.V).fmul().fsub().f64Store(L.P);
      f.get(i).i32(1).add().tee(i).get(m).ltS().brIf(0);
      f.end().end();
      vAt(m).f64(0).f64Store(L.P);
      vAt(m).f64(0).f64Store(L.P + 8);
      // B -= v w^T + w v^T
      f.get(base).get(m).op(CALL, 1);
      // column and row k: alpha next to the diagonal, zeros beyond
      f.get(k).i32(1).add().i32(RS).mul().get(k).i32(3).shl().add().tee(col).get(alpha).f64Store(L.A);
      f.get(k).i32(RS).mul().get(k).i32(1).add().i32(3).shl().add().tee(i).get(alpha).f64Store(L.A);
      f.get(m).i32(1).op(I32_GT_S).if_();
      {
        // i: byte offset of a[k][k + 1 + j], col: of a[k + 1 + j][k], j = 1 .. m - 1
        f.get(i).i32(8 * (n - 1)).add().get(k).i32(3).shl().sub().set(base); // base = a[k][n], the end of row k's part
        f.block().loop();
        f.get(i).i32(8).add().tee(i).f64(0).f64Store(L.A);
        f.get(col).i32(RS).add().tee(col).f64(0).f64Store(L.A);
        f.get(i).i32(8).add().get(base).ltS().brIf(0);
        f.end().end();
      }
      f.end();
      // Q <- Q H
      f.get(k).i32(1).add().get(m).get(beta).op(CALL, 2);
    }
    f.end();
    f.get(k).i32(1).add().tee(k).i32(n - 2).ltS().brIf(0);
  }
  f.end().end();
  // D = diagonal, E = subdiagonal
  f.i32(0).set(i);
  f.block().loop();
  f.get(i).i32(3).shl();
  f.get(i).i32(RS + 8).mul().f64Load(L.A);
  f.f64Store(L.D);
  f.get(i).i32(1).add().tee(i).i32(n).ltS().brIf(0);
  f.end().end();
  f.i32(0).set(i);
  f.block().loop();
  f.get(i).i32(3).shl();
  f.get(i).i32(RS + 8).mul().f64Load(L.A + RS);
  f.f64Store(L.E);
  f.get(i).i32(1).add().tee(i).i32(n - 1).ltS().brIf(0);
  f.end().end();
  return f;
}

/**
 * The implicit symmetric QR iteration with Wilkinson shifts (symmetricEigenJs's loop, the
 * same float64 operations in the same order), each sweep's rotations applied to Qt by `rot`
 * (function index rotIndex). hypot as hypot2 in eigen.ts.
 */
function buildQr(L: Layout, n: number, rotIndex: number): Fn {
  const f = new Fn('qr', []);
  const lo = f.local('lo', I32), hi = f.local('hi', I32), k = f.local('k', I32), steps = f.local('steps', I32);
  const t = f.local('t', F64), delta = f.local('delta', F64), mu = f.local('mu', F64), x = f.local('x', F64), z = f.local('z', F64);
  const r = f.local('r', F64), c = f.local('c', F64), sn = f.local('s', F64), pk = f.local('pk', F64), qk = f.local('qk', F64), tk = f.local('tk', F64);
  const cc = f.local('cc', F64), ss = f.local('ss', F64), cs = f.local('cs', F64);
  const ha = f.local('ha', F64), hb = f.local('hb', F64), hs = f.local('hs', F64), hm = f.local('hm', F64);
  const EPS = Number.EPSILON;
  const MAX_STEPS = 60 * n;
  const dAt = (i: string, off = 0) => f.get(i).i32(3).shl().f64Load(L.D + 8 * off);
  const eAt = (i: string, off = 0) => f.get(i).i32(3).shl().f64Load(L.E + 8 * off);
  // hypot2(ha, hb) -> r (eigen.ts): the plain formula where safe, else scaled by the larger magnitude.
  const hyp = (dst: string) => {
    f.get(ha).get(ha).fmul().get(hb).get(hb).fmul().fadd().set(hs);
    f.get(hs).f64(1e-290).op(F64_GT).get(hs).f64(1e290).op(F64_LT).op(I32_AND).if_();
    f.get(hs).op(F64_SQRT).set(dst);
    f.else_();
    f.get(ha).op(F64_ABS).get(hb).op(F64_ABS).op(F64_MAX).set(hm);
    f.get(hm).f64(0).op(F64_EQ).get(hm).f64(Infinity).op(F64_EQ).op(0x72).if_(); // i32.or
    f.get(hm).set(dst);
    f.else_();
    f.get(ha).get(hm).op(F64_DIV).set(ha);
    f.get(hb).get(hm).op(F64_DIV).set(hb);
    f.get(ha).get(ha).fmul().get(hb).get(hb).fmul().fadd().op(F64_SQRT).get(hm).fmul().set(dst);
    f.end();
    f.end();
  };
  // |e[i - 1]| <= EPS (|d[i - 1]| + |d[i]|) (or >, cmp), the deflation test, for i = local `i`
  const small = (i: string, cmp = F64_LE) => {
    eAt(i, -1).op(F64_ABS);
    f.f64(EPS);
    dAt(i, -1).op(F64_ABS);
    dAt(i).op(F64_ABS).fadd().fmul();
    f.op(cmp);
  };
  f.i32(L.ST).i32(0).op(0x36, 2, 0); // status = 0 (i32.store)
  f.i32(0).set(steps);
  f.i32(n - 1).set(hi);
  f.block().loop();
  {
    f.get(hi).eqz().brIf(1);
    small(hi);
    f.if_();
    f.get(hi).i32(3).shl().f64(0).f64Store(L.E - 8);
    f.get(hi).i32(1).sub().set(hi);
    f.br(1); // continue the outer loop
    f.end();
    f.get(hi).i32(1).sub().set(lo);
    f.block().loop();
    {
      // while (lo > 0 && |e[lo - 1]| > EPS (...)) lo--
      f.get(lo).eqz().brIf(1);
      small(lo, F64_GT);
      f.eqz().brIf(1);
      f.get(lo).i32(1).sub().set(lo);
      f.br(0);
    }
    f.end().end();
    f.get(lo).i32(0).op(I32_GT_S).if_();
    f.get(lo).i32(3).shl().f64(0).f64Store(L.E - 8);
    f.end();
    f.get(steps).i32(1).add().tee(steps).i32(MAX_STEPS).op(I32_GT_S).if_();
    f.i32(L.ST).i32(1).op(0x36, 2, 0);
    f.op(RETURN);
    f.end();
    // Wilkinson shift
    eAt(hi, -1).set(t);
    dAt(hi, -1);
    dAt(hi).fsub().f64(2).op(F64_DIV).set(delta);
    f.get(delta).set(ha);
    f.get(t).set(hb);
    hyp(hm);
    // mu = d[hi] - t^2 / (delta + sign(delta) hypot)
    dAt(hi);
    f.get(t).get(t).fmul();
    f.get(delta);
    f.f64(1).f64(-1).get(delta).f64(0).op(F64_GE).op(SELECT).get(hm).fmul();
    f.fadd().op(F64_DIV).fsub().set(mu);
    dAt(lo).get(mu).fsub().set(x);
    eAt(lo).set(z);
    f.get(lo).set(k);
    f.block().loop();
    {
      f.get(x).set(ha);
      f.get(z).set(hb);
      hyp(r);
      // c = r == 0 ? 1 : x / r; s = r == 0 ? 0 : z / r
      f.f64(1).get(x).get(r).op(F64_DIV).get(r).f64(0).op(F64_EQ).op(SELECT).set(c);
      f.f64(0).get(z).get(r).op(F64_DIV).get(r).f64(0).op(F64_EQ).op(SELECT).set(sn);
      f.get(k).get(lo).op(I32_GT_S).if_();
      f.get(k).i32(3).shl().get(r).f64Store(L.E - 8);
      f.end();
      dAt(k).set(pk);
      dAt(k, 1).set(qk);
      eAt(k).set(tk);
      f.get(c).get(c).fmul().set(cc);
      f.get(sn).get(sn).fmul().set(ss);
      f.get(c).get(sn).fmul().set(cs);
      // d[k] = cc pk + 2 cs tk + ss qk (left to right, as JavaScript evaluates it)
      f.get(k).i32(3).shl();
      f.get(cc).get(pk).fmul().f64(2).get(cs).fmul().get(tk).fmul().fadd().get(ss).get(qk).fmul().fadd();
      f.f64Store(L.D);
      // d[k + 1] = ss pk - 2 cs tk + cc qk
      f.get(k).i32(3).shl();
      f.get(ss).get(pk).fmul().f64(2).get(cs).fmul().get(tk).fmul().fsub().get(cc).get(qk).fmul().fadd();
      f.f64Store(L.D + 8);
      // e[k] = cs (qk - pk) + (cc - ss) tk
      f.get(k).i32(3).shl();
      f.get(cs).get(qk).get(pk).fsub().fmul().get(cc).get(ss).fsub().get(tk).fmul().fadd();
      f.f64Store(L.E);
      f.get(k).i32(1).add().get(hi).ltS().if_();
      f.get(sn);
      eAt(k, 1).fmul().set(z);
      f.get(k).i32(3).shl();
      eAt(k, 1).get(c).fmul();
      f.f64Store(L.E + 8);
      f.end();
      eAt(k).set(x);
      f.get(k).i32(3).shl().get(c).f64Store(L.C);
      f.get(k).i32(3).shl().get(sn).f64Store(L.S);
      f.get(k).i32(1).add().tee(k).get(hi).ltS().brIf(0);
    }
    f.end().end();
    f.get(lo).get(hi).op(CALL, rotIndex);
    f.br(0);
  }
  f.end().end();
  return f;
}
