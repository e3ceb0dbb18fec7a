/**
 * An independent float64 Levenberg-Marquardt fit of the erf-2lorentz model, for the fit
 * tests: it shares no code with src/ (its own model, analytic Jacobian, erf and solver).
 *
 * mu(E) = a + b1/2 (1 + erf((E - b2)/b3)) + c11 / (1 + ((E - c12)/c13)^2) + c21 / (1 + ((E - c22)/c23)^2)
 * Parameters in that order: a, b1, b2, b3, c11, c12, c13, c21, c22, c23.
 *
 * LM as in MINPACK/scipy (unbounded): Marquardt scaling by diag(J^T J), Nielsen's damping
 * update, stopping (scipy least_squares' defaults, 1e-8) when the relative chi2 reduction of
 * an accepted step and the predicted one are both <= ftol, or the scaled step is <= xtol
 * relative to the parameters, or the largest cosine between the residual and a Jacobian
 * column is <= gtol; maxIter evaluations otherwise ('max').
 */

/** erf from the Chebyshev fit of erfc in Numerical Recipes (relative error of erfc < 1.2e-7 everywhere). */
export function erf64(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

export const NP = 10;

export function model(E: ArrayLike<number>, p: ArrayLike<number>, f: Float64Array, J?: Float64Array): void {
  const n = E.length;
  const sq = 2 / Math.sqrt(Math.PI);
  for (let i = 0; i < n; i++) {
    const u = (E[i] - p[2]) / p[3];
    const ef = erf64(u);
    const g = sq * Math.exp(-u * u);
    let v = p[0] + 0.5 * p[1] * (1 + ef);
    const row = i * NP;
    if (J) {
      J[row] = 1;
      J[row + 1] = 0.5 * (1 + ef);
      J[row + 2] = (-0.5 * p[1] * g) / p[3];
      J[row + 3] = (-0.5 * p[1] * g * u) / p[3];
    }
    for (let k = 0; k < 2; k++) {
      const o = 4 + 3 * k;
      const w = (E[i] - p[o + 1]) / p[o + 2];
      const den = 1 + w * w;
      v += p[o] / den;
      if (J) {
        J[row + o] = 1 / den;
        J[row + o + 1] = (2 * p[o] * w) / (den * den * p[o + 2]);
        J[row + o + 2] = (2 * p[o] * w * w) / (den * den * p[o + 2]);
      }
    }
    f[i] = v;
  }
}

function solve(A: Float64Array, b: Float64Array, n: number): Float64Array | null {
  const a = Float64Array.from(A);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r * n + c]) > Math.abs(a[piv * n + c])) piv = r;
    if (!(Math.abs(a[piv * n + c]) > 0)) return null;
    if (piv !== c) {
      for (let k = 0; k < n; k++) [a[c * n + k], a[piv * n + k]] = [a[piv * n + k], a[c * n + k]];
      [x[c], x[piv]] = [x[piv], x[c]];
    }
    for (let r = c + 1; r < n; r++) {
      const f = a[r * n + c] / a[c * n + c];
      if (f === 0) continue;
      for (let k = c; k < n; k++) a[r * n + k] -= f * a[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    let s = x[c];
    for (let k = c + 1; k < n; k++) s -= a[c * n + k] * x[k];
    x[c] = s / a[c * n + c];
  }
  return x.every(Number.isFinite) ? x : null;
}

export interface PeerFit {
  p: Float64Array;
  chi2: number;
  status: 'converged' | 'max' | 'failed';
  iterations: number;
}

export function lmFit(E: ArrayLike<number>, y: ArrayLike<number>, start: ArrayLike<number>, o: { maxIter?: number; ftol?: number; xtol?: number; gtol?: number } = {}): PeerFit {
  const n = E.length;
  const maxIter = o.maxIter ?? 1000, ftol = o.ftol ?? 1e-8, xtol = o.xtol ?? 1e-8, gtol = o.gtol ?? 1e-8;
  const p = Float64Array.from(start);
  const f = new Float64Array(n), J = new Float64Array(n * NP);
  const A = new Float64Array(NP * NP), g = new Float64Array(NP);
  const pt = new Float64Array(NP), ft = new Float64Array(n);
  const eval2 = (q: Float64Array, out: Float64Array) => {
    model(E, q, out);
    let c = 0;
    for (let i = 0; i < n; i++) c += (y[i] - out[i]) ** 2;
    return c;
  };
  const normal = () => {
    model(E, p, f, J);
    A.fill(0); g.fill(0);
    let c = 0;
    for (let i = 0; i < n; i++) {
      const r = y[i] - f[i];
      c += r * r;
      for (let a = 0; a < NP; a++) {
        g[a] += J[i * NP + a] * r;
        for (let b = 0; b <= a; b++) A[a * NP + b] += J[i * NP + a] * J[i * NP + b];
      }
    }
    for (let a = 0; a < NP; a++) for (let b = 0; b < a; b++) A[b * NP + a] = A[a * NP + b];
    return c;
  };
  let chi2 = normal();
  if (!Number.isFinite(chi2)) return { p, chi2, status: 'failed', iterations: 0 };
  let lambda = 1e-3, nu = 2;
  for (let it = 1; it <= maxIter; it++) {
    // Gradient test: the largest cosine between r and a column of J.
    let gmax = 0;
    for (let a = 0; a < NP; a++) if (A[a * NP + a] > 0) gmax = Math.max(gmax, Math.abs(g[a]) / Math.sqrt(A[a * NP + a] * chi2));
    if (gmax <= gtol || chi2 === 0) return { p, chi2, status: 'converged', iterations: it };
    const M = Float64Array.from(A);
    for (let a = 0; a < NP; a++) M[a * NP + a] += lambda * A[a * NP + a];
    const d = solve(M, g, NP);
    if (!d) {
      lambda *= nu; nu *= 2;
      if (lambda > 1e16) return { p, chi2, status: 'failed', iterations: it };
      continue;
    }
    let pred = 0, dn = 0, pn = 0;
    for (let a = 0; a < NP; a++) {
      pt[a] = p[a] + d[a];
      pred += d[a] * (lambda * A[a * NP + a] * d[a] + g[a]);
      const s = Math.sqrt(A[a * NP + a]);
      dn += (s * d[a]) ** 2;
      pn += (s * p[a]) ** 2;
    }
    const chi2t = eval2(pt, ft);
    if (Number.isFinite(chi2t) && chi2t < chi2) {
      const actual = chi2 - chi2t;
      const rho = actual / pred;
      p.set(pt);
      const prev = chi2;
      chi2 = normal();
      lambda *= Math.max(1 / 3, 1 - (2 * rho - 1) ** 3);
      nu = 2;
      if ((actual <= ftol * prev && pred <= ftol * prev) || Math.sqrt(dn) <= xtol * (xtol + Math.sqrt(pn))) {
        return { p, chi2, status: 'converged', iterations: it };
      }
    } else {
      lambda *= nu;
      nu *= 2;
      if (lambda > 1e16) return { p, chi2, status: 'failed', iterations: it };
    }
  }
  return { p, chi2, status: 'max', iterations: maxIter };
}
