/**
 * symmetricEigen (Householder + implicit QR, src/cpu/eigen.ts, its matrix loops in WebAssembly,
 * src/cpu/eigen-wasm.ts) byte for byte against its JavaScript version, against known spectra and
 * against the independent cyclic Jacobi solver (jacobiEigenSymmetric), on the matrices PCA
 * meets: covariance-like (a few large eigenvalues over a flat noise floor, repeated
 * eigenvalues), tiny and degenerate ones.
 */
import { describe, expect, test } from 'vitest';
import { symmetricEigen, symmetricEigenJs } from '../../src/cpu/eigen.js';
import { jacobiEigenSymmetric } from '../../src/cpu/pca.js';
import { makeRng } from '../../src/synth/random.js';

/** Rounding of an O(n)-step orthogonal reduction in float64, relative to ||A||: ~n eps with margin. */
const EIG_ABS = 1e-12;

function check(A: Float64Array, n: number, truth?: number[]): void {
  const { values, vectors } = symmetricEigen(A, n);
  // The WebAssembly loops (eigen-wasm.ts) do the JavaScript arithmetic in the same order: same bytes.
  const js = symmetricEigenJs(A, n);
  expect(Buffer.from(values.buffer).equals(Buffer.from(js.values.buffer))).toBe(true);
  expect(Buffer.from(vectors.buffer).equals(Buffer.from(js.vectors.buffer))).toBe(true);
  let norm = 0;
  for (const x of A) norm = Math.max(norm, Math.abs(x));
  const tol = EIG_ABS * Math.max(1, n * norm);
  for (let k = 1; k < n; k++) expect(values[k]).toBeLessThanOrEqual(values[k - 1]);
  if (truth) truth.forEach((t, k) => expect(Math.abs(values[k] - t), `eigenvalue ${k}`).toBeLessThan(tol));
  const jac = jacobiEigenSymmetric(A, n);
  for (let k = 0; k < n; k++) expect(Math.abs(values[k] - jac.values[k]), `vs Jacobi ${k}`).toBeLessThan(tol);
  for (let a = 0; a < n; a++) {
    let big = 0;
    for (let i = 0; i < n; i++) if (Math.abs(vectors[a * n + i]) > Math.abs(vectors[a * n + big])) big = i;
    expect(vectors[a * n + big]).toBeGreaterThan(0);
    for (let b = a; b < n; b++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += vectors[a * n + i] * vectors[b * n + i];
      expect(Math.abs(dot - (a === b ? 1 : 0))).toBeLessThan(1e-12);
    }
    for (let i = 0; i < n; i++) {
      let av = 0;
      for (let j = 0; j < n; j++) av += A[i * n + j] * vectors[a * n + j];
      expect(Math.abs(av - values[a] * vectors[a * n + i])).toBeLessThan(tol);
    }
  }
  // Well-separated eigenvalues: the same vectors as Jacobi, up to sign (the sign rule is
  // ambiguous where two entries tie in magnitude, as in symmetric matrices' vectors).
  for (let k = 0; k < n; k++) {
    const gap = Math.min(k > 0 ? values[k - 1] - values[k] : Infinity, k < n - 1 ? values[k] - values[k + 1] : Infinity);
    if (gap < 1e-3 * Math.max(1, norm)) continue;
    let dot = 0;
    for (let i = 0; i < n; i++) dot += vectors[k * n + i] * jac.vectors[k * n + i];
    expect(1 - Math.abs(dot), `vector ${k}`).toBeLessThan(1e-9);
  }
}

describe('symmetricEigen', () => {
  test('known spectrum of the second-difference matrix', () => {
    const n = 40;
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      A[i * n + i] = 2;
      if (i > 0) A[i * n + i - 1] = A[(i - 1) * n + i] = -1;
    }
    check(A, n, Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1))).sort((a, b) => b - a));
  });

  test('covariance of 3 components + noise (d = 101), random dense, diagonal, repeated, tiny sizes', () => {
    const rng = makeRng(4242);
    // Covariance-like: U diag(100, 10, 1, 1e-4 x 98) U^T with a random orthogonal U (QR of a Gaussian matrix by Gram-Schmidt).
    const n = 101;
    const U = new Float64Array(n * n).map(() => rng.normal());
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < k; j++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += U[k * n + i] * U[j * n + i];
        for (let i = 0; i < n; i++) U[k * n + i] -= dot * U[j * n + i];
      }
      let s = 0;
      for (let i = 0; i < n; i++) s += U[k * n + i] ** 2;
      for (let i = 0; i < n; i++) U[k * n + i] /= Math.sqrt(s);
    }
    const lam = Array.from({ length: n }, (_, k) => (k === 0 ? 100 : k === 1 ? 10 : k === 2 ? 1 : 1e-4));
    const C = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += U[k * n + i] * lam[k] * U[k * n + j];
      C[i * n + j] = s;
    }
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) C[i * n + j] = C[j * n + i];
    check(C, n, lam);
    // Random dense symmetric.
    for (const m of [2, 3, 7, 30]) {
      const R = new Float64Array(m * m);
      for (let i = 0; i < m; i++) for (let j = 0; j <= i; j++) R[i * m + j] = R[j * m + i] = rng.normal();
      check(R, m);
    }
    // Diagonal (already tridiagonal, unsorted), identity, zero, 1 x 1.
    check(Float64Array.from([3, 0, 0, 0, -1, 0, 0, 0, 2]), 3, [3, 2, -1]);
    const I = new Float64Array(25);
    for (let i = 0; i < 5; i++) I[i * 5 + i] = 1;
    check(I, 5, [1, 1, 1, 1, 1]);
    check(new Float64Array(16), 4, [0, 0, 0, 0]);
    check(Float64Array.of(7), 1, [7]);
  });
});
