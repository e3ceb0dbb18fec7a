/**
 * Symmetric eigendecomposition for PCA: Householder reduction to tridiagonal form, then the
 * implicit symmetric QR iteration with Wilkinson shifts (Golub & Van Loan, Matrix
 * Computations, 4th ed., algorithms 8.3.1 and 8.3.2), the eigenvectors accumulated from
 * both stages. This is the method of LAPACK's dsyev behind numpy.linalg.eigh, and like it
 * the eigenvalues are accurate to ~eps * ||A|| in absolute terms (the scree's small
 * eigenvalues are far above that: see significantComponents' RELATIVE_FLOOR). About
 * (4/3 + 6) n^3 flops, ~10x fewer than cyclic Jacobi (jacobiEigenSymmetric, pca.ts, kept as
 * the independent check in the tests): a few milliseconds for n = 101.
 */
import { wasmEigen, type WasmEigen } from './eigen-wasm.js';

/**
 * Same output convention as jacobiEigenSymmetric: values decreasing, vectors[k * n + i] =
 * component i of eigenvector k, largest-magnitude entry positive. Runs the O(n^3) loops in
 * WebAssembly SIMD (eigen-wasm.ts; ~4x faster for n = 101) where the runtime has it, with the
 * same arithmetic in the same order as symmetricEigenJs, so the bytes are the same.
 */
export function symmetricEigen(A: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  if (A.length !== n * n) throw new RangeError(`symmetricEigen: ${A.length} values is not ${n} x ${n}`);
  const w = wasmEigen(n);
  return w ? eigenWasm(A, n, w) : symmetricEigenJs(A, n);
}

/** The JavaScript version of symmetricEigen (float64 throughout): the fallback, and the tests' reference. */
export function symmetricEigenJs(A: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  if (A.length !== n * n) throw new RangeError(`symmetricEigen: ${A.length} values is not ${n} x ${n}`);
  const a = Float64Array.from(A);
  // Qt: row r = column r of the accumulated orthogonal matrix Q (A = Q T Q^T), so every
  // update touches contiguous rows.
  const Qt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) Qt[i * n + i] = 1;
  const v = new Float64Array(n);
  const p = new Float64Array(n);
  // --- Householder: column k below the diagonal -> alpha e_1.
  for (let k = 0; k < n - 2; k++) {
    const m = n - k - 1; // length of x = a[k+1..n-1][k]
    let sigma2 = 0;
    for (let i = 0; i < m; i++) {
      const x = a[(k + 1 + i) * n + k];
      v[i] = x;
      sigma2 += x * x;
    }
    if (sigma2 === 0) continue;
    const sigma = Math.sqrt(sigma2);
    const alpha = v[0] >= 0 ? -sigma : sigma;
    v[0] -= alpha;
    let vtv = 0;
    for (let i = 0; i < m; i++) vtv += v[i] * v[i];
    if (vtv === 0) continue;
    const beta = 2 / vtv;
    // p = beta B v, B = a[k+1.., k+1..]
    let K = 0;
    for (let i = 0; i < m; i++) {
      const row = (k + 1 + i) * n + k + 1;
      let s = 0;
      for (let j = 0; j < m; j++) s += a[row + j] * v[j];
      p[i] = beta * s;
      K += v[i] * p[i];
    }
    K *= beta / 2;
    // w = p - K v; B -= v w^T + w v^T
    for (let i = 0; i < m; i++) p[i] -= K * v[i];
    for (let i = 0; i < m; i++) {
      const row = (k + 1 + i) * n + k + 1;
      const vi = v[i], wi = p[i];
      for (let j = 0; j < m; j++) a[row + j] -= vi * p[j] + wi * v[j];
    }
    a[(k + 1) * n + k] = alpha;
    a[k * n + k + 1] = alpha;
    for (let i = 1; i < m; i++) {
      a[(k + 1 + i) * n + k] = 0;
      a[k * n + k + 1 + i] = 0;
    }
    // Q <- Q H: columns k+1.. of Q are rows k+1.. of Qt; for every row r of Q:
    // Q[r][k+1+i] -= beta (sum_i Q[r][k+1+i] v_i) v_i.
    for (let r = 0; r < n; r++) p[r] = 0;
    for (let i = 0; i < m; i++) {
      const row = (k + 1 + i) * n, vi = v[i];
      if (vi !== 0) for (let r = 0; r < n; r++) p[r] += Qt[row + r] * vi;
    }
    for (let i = 0; i < m; i++) {
      const row = (k + 1 + i) * n, bv = beta * v[i];
      if (bv !== 0) for (let r = 0; r < n; r++) Qt[row + r] -= bv * p[r];
    }
  }
  const d = new Float64Array(n);
  const e = new Float64Array(Math.max(0, n - 1));
  for (let i = 0; i < n; i++) d[i] = a[i * n + i];
  for (let i = 0; i < n - 1; i++) e[i] = a[(i + 1) * n + i];
  // --- Implicit QR steps with the Wilkinson shift on the unreduced block [lo, hi].
  const EPS = Number.EPSILON;
  const MAX_STEPS = 60 * n;
  let steps = 0;
  let hi = n - 1;
  while (hi > 0) {
    if (Math.abs(e[hi - 1]) <= EPS * (Math.abs(d[hi - 1]) + Math.abs(d[hi]))) {
      e[hi - 1] = 0;
      hi--;
      continue;
    }
    let lo = hi - 1;
    while (lo > 0 && Math.abs(e[lo - 1]) > EPS * (Math.abs(d[lo - 1]) + Math.abs(d[lo]))) lo--;
    if (lo > 0) e[lo - 1] = 0;
    if (++steps > MAX_STEPS) throw new Error('symmetricEigen: QR iteration did not converge');
    const t = e[hi - 1];
    const delta = (d[hi - 1] - d[hi]) / 2;
    const mu = d[hi] - (t * t) / (delta + (delta >= 0 ? 1 : -1) * hypot2(delta, t));
    let x = d[lo] - mu;
    let z = e[lo];
    for (let k = lo; k < hi; k++) {
      // R = [[c, s], [-s, c]] with R [x; z] = [r; 0]
      const r = hypot2(x, z);
      const c = r === 0 ? 1 : x / r;
      const s = r === 0 ? 0 : z / r;
      if (k > lo) e[k - 1] = r;
      const pk = d[k], qk = d[k + 1], tk = e[k];
      const cc = c * c, ss = s * s, cs = c * s;
      d[k] = cc * pk + 2 * cs * tk + ss * qk;
      d[k + 1] = ss * pk - 2 * cs * tk + cc * qk;
      e[k] = cs * (qk - pk) + (cc - ss) * tk;
      if (k + 1 < hi) {
        z = s * e[k + 1];
        e[k + 1] *= c;
      }
      x = e[k];
      // Q <- Q R^T: columns k and k+1 of Q (rows of Qt).
      const r0 = k * n, r1 = r0 + n;
      for (let i = 0; i < n; i++) {
        const qa = Qt[r0 + i], qb = Qt[r1 + i];
        Qt[r0 + i] = c * qa + s * qb;
        Qt[r1 + i] = c * qb - s * qa;
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[j] - d[i] || i - j);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((col, k) => {
    values[k] = d[col];
    const row = col * n;
    let big = 0;
    for (let i = 0; i < n; i++) if (Math.abs(Qt[row + i]) > Math.abs(Qt[row + big])) big = i;
    const sign = Qt[row + big] < 0 ? -1 : 1;
    for (let i = 0; i < n; i++) vectors[k * n + i] = sign * Qt[row + i];
  });
  return { values, vectors };
}

/**
 * symmetricEigenJs in WebAssembly (eigen-wasm.ts): a and Qt live in the instance's memory
 * with row stride n4; JavaScript only copies in, sorts and copies out.
 */
function eigenWasm(A: Float64Array, n: number, w: WasmEigen): { values: Float64Array; vectors: Float64Array } {
  const n4 = w.L.n4;
  const { a, qt: Qt } = w;
  a.fill(0);
  Qt.fill(0);
  for (let i = 0; i < n; i++) {
    a.set(A.subarray(i * n, (i + 1) * n), i * n4);
    Qt[i * n4 + i] = 1;
  }
  // Householder reduction, then the implicit QR steps, as symmetricEigenJs.
  w.ex.tridiag();
  w.ex.qr();
  if (w.status[0] !== 0) throw new Error('symmetricEigen: QR iteration did not converge');
  const d = Float64Array.from(w.d);
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => d[j] - d[i] || i - j);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((col, k) => {
    values[k] = d[col];
    const row = col * n4;
    let big = 0;
    for (let i = 0; i < n; i++) if (Math.abs(Qt[row + i]) > Math.abs(Qt[row + big])) big = i;
    const sign = Qt[row + big] < 0 ? -1 : 1;
    for (let i = 0; i < n; i++) vectors[k * n + i] = sign * Qt[row + i];
  });
  return { values, vectors };
}

/**
 * sqrt(x^2 + y^2): the plain formula where the squares neither overflow nor lose precision
 * by underflow (~1 ulp, as Math.hypot, which costs ~4x more), else scaled by the larger
 * magnitude (a few ulp). eigen-wasm.ts computes the same operations.
 */
function hypot2(x: number, y: number): number {
  const s = x * x + y * y;
  if (s > 1e-290 && s < 1e290) return Math.sqrt(s);
  const m = Math.max(Math.abs(x), Math.abs(y));
  if (m === 0 || m === Infinity) return m;
  const a = x / m, b = y / m;
  return Math.sqrt(a * a + b * b) * m;
}
