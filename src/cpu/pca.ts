/**
 * PCA on the host, in float64: the CPU twins of shaders/pca_cov.wgsl (with pca_mask.wgsl)
 * and shaders/pca_project.wgsl, and the host side shared by both backends: accumulating the
 * augmented Gram matrix over tiles, turning it into mean and covariance, the symmetric
 * eigendecomposition (Householder + QR in eigen.ts; cyclic Jacobi here as its independent
 * check) and the explained-variance table.
 *
 * Conventions
 * - A pixel takes part only if all d values of its spectrum are usable: finite and of
 *   magnitude below PCA_MAX_ABS; the others are excluded and counted (nExcluded), and get
 *   NaN scores.
 * - The covariance is the population covariance (divided by n, not n - 1), so a single
 *   pixel has a defined (zero) covariance; eigenvalues are variances along the components.
 * - Components are unit vectors, sorted by decreasing eigenvalue; the sign of each is fixed
 *   so that its largest-magnitude entry is positive (deterministic across backends).
 */

import { symmetricEigen } from './eigen.js';

/**
 * Values at or above this magnitude exclude a pixel like NaN does: they are not spectra, and
 * on the GPU their squares would overflow the float32 sums (3.4e38) and turn the whole
 * covariance into Inf/NaN. Shared with the WGSL (passed as the max_abs parameter).
 */
export const PCA_MAX_ABS = 1e18;

/** True if v can take part in PCA (finite, |v| < PCA_MAX_ABS). */
export function usableValue(v: number): boolean {
  return Number.isFinite(v) && Math.abs(v) < PCA_MAX_ABS;
}

/** Rows of the augmented vector a = [x - centre, 1]; the Gram matrix is (d + 1) x (d + 1). */
export function gramSize(d: number): number {
  return d + 1;
}

/**
 * Pixel p's spectrum minus `centre` into out[0..d); false (out partly written) when any
 * value is unusable, which excludes the pixel from both the covariance and the projection.
 */
function centredSpectrum(cube: Float32Array, P: number, p: number, d: number, centre: Float64Array, out: Float64Array): boolean {
  for (let e = 0; e < d; e++) {
    const v = cube[e * P + p];
    if (!usableValue(v)) return false;
    out[e] = v - centre[e];
  }
  return true;
}

/**
 * Twin of pca_mask + pca_cov over one tile: the augmented Gram matrix
 * G = sum over included pixels of a a^T, a = [x - centre, 1], as a full symmetric
 * (d+1) x (d+1) row-major Float64Array. G[d][d] is the number of included pixels.
 */
export function pcaGramCpu(cube: Float32Array, P: number, d: number, centre: Float64Array): Float64Array {
  const m = d + 1;
  const G = new Float64Array(m * m);
  const a = new Float64Array(m);
  for (let p = 0; p < P; p++) {
    if (!centredSpectrum(cube, P, p, d, centre, a)) continue;
    a[d] = 1;
    for (let i = 0; i < m; i++) {
      const ai = a[i];
      const row = i * m;
      for (let j = i; j < m; j++) G[row + j] += ai * a[j];
    }
  }
  for (let i = 0; i < m; i++) for (let j = 0; j < i; j++) G[i * m + j] = G[j * m + i];
  return G;
}

export interface ExplainedRow {
  /** 1-based component number. */
  component: number;
  eigenvalue: number;
  /** eigenvalue / sum of all eigenvalues (sums to 1 over all d components). */
  ratio: number;
  cumulative: number;
}

export interface PcaModel {
  d: number;
  nIncluded: number;
  nExcluded: number;
  /** Mean spectrum over included pixels. */
  mean: Float64Array;
  /** Population covariance, d x d row-major. */
  covariance: Float64Array;
  /** Eigenvalues, decreasing; tiny negative rounding is clipped to 0. */
  eigenvalues: Float64Array;
  /** Component k (0-based) is components[k*d .. (k+1)*d): unit vectors, decreasing eigenvalue. */
  components: Float64Array;
  explained: ExplainedRow[];
}

/**
 * Sums Gram matrices of tiles (from either backend) in float64 and turns them into a model.
 * All tiles must be centred on the same provisional mean `centre`.
 */
export class PcaAccumulator {
  readonly gram: Float64Array;
  nPixels = 0;

  constructor(readonly d: number, readonly centre: Float64Array) {
    if (centre.length !== d) throw new RangeError(`PcaAccumulator: centre has ${centre.length} values, expected ${d}`);
    this.gram = new Float64Array((d + 1) * (d + 1));
  }

  /** Adds one tile's Gram matrix; `pixels` is the tile's pixel count (included or not). */
  add(gram: Float64Array, pixels: number): void {
    if (gram.length !== this.gram.length) throw new RangeError('PcaAccumulator.add: Gram matrix of the wrong size');
    for (let i = 0; i < gram.length; i++) this.gram[i] += gram[i];
    this.nPixels += pixels;
  }

  get nIncluded(): number {
    return Math.round(this.gram[this.d * (this.d + 1) + this.d]);
  }

  finish(): PcaModel {
    return pcaModelFromGram(this.gram, this.d, this.centre, this.nPixels);
  }
}

/**
 * Mean, covariance and eigendecomposition from an augmented Gram matrix:
 *   n = G[d][d], s = G[0:d, d] (sum of x - c), S = G[0:d, 0:d];
 *   mean = c + s / n,  cov = (S - s s^T / n) / n.
 * Throws if no pixel was included.
 */
export function pcaModelFromGram(G: Float64Array, d: number, centre: Float64Array, nPixels: number): PcaModel {
  const m = d + 1;
  const n = G[d * m + d];
  if (!(n >= 1)) throw new RangeError('PCA: no pixel has a finite value at every energy');
  const s = new Float64Array(d);
  for (let i = 0; i < d; i++) s[i] = G[i * m + d];
  const mean = new Float64Array(d);
  for (let i = 0; i < d; i++) mean[i] = centre[i] + s[i] / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) {
      const v = (G[i * m + j] - (s[i] * s[j]) / n) / n;
      cov[i * d + j] = v;
      cov[j * d + i] = v;
    }
  }
  // Householder + QR (eigen.ts): what numpy.linalg.eigh does, ~10x faster than Jacobi here.
  const { values, vectors } = symmetricEigen(cov, d);
  const eigenvalues = values.map((v) => Math.max(0, v));
  const nIncluded = Math.round(n);
  return {
    d,
    nIncluded,
    nExcluded: nPixels - nIncluded,
    mean,
    covariance: cov,
    eigenvalues,
    components: vectors,
    explained: explainedTable(eigenvalues),
  };
}

/** The scree table: eigenvalue, ratio of the total variance and cumulative ratio. */
export function explainedTable(eigenvalues: Float64Array): ExplainedRow[] {
  let total = 0;
  for (const v of eigenvalues) total += v;
  let cum = 0;
  return Array.from(eigenvalues, (v, k) => {
    // A zero-variance data set (all pixels equal) has no direction to explain; by
    // convention the first component takes it all so the ratios still sum to 1.
    const ratio = total > 0 ? v / total : k === 0 ? 1 : 0;
    cum += ratio;
    return { component: k + 1, eigenvalue: v, ratio, cumulative: Math.min(1, cum) };
  });
}

/**
 * Eigen-decomposition of a real symmetric n x n matrix (row-major) by the cyclic Jacobi
 * method (Golub & Van Loan, Matrix Computations, 4th ed., section 8.5; rotation formulas as
 * in Rutishauser's implementation): accurate to working precision for every eigenvalue,
 * small or large, which the scree needs. O(n^3) per sweep, a handful of sweeps; for the
 * spectra here (n ~ 100-300) it takes milliseconds to a second.
 * Returns eigenvalues in decreasing order and unit eigenvectors as rows of `vectors`
 * (vectors[k*n + i] = component i of eigenvector k), the largest-magnitude entry of each
 * made positive.
 */
export function jacobiEigenSymmetric(A: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  if (A.length !== n * n) throw new RangeError(`jacobiEigenSymmetric: ${A.length} values is not ${n} x ${n}`);
  const a = Float64Array.from(A);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  const MAX_SWEEPS = 100;
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += a[i * n + i] * a[i * n + i];
      for (let j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    }
    // Converged when the off-diagonal mass is below rounding of the diagonal.
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const app = a[p * n + p];
        const aqq = a[q * n + q];
        const theta = (aqq - app) / (2 * apq);
        // t = tan of the rotation angle, the smaller root (|angle| <= pi/4) for stability.
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        const tau = s / (1 + c);
        a[p * n + p] = app - t * apq;
        a[q * n + q] = aqq + t * apq;
        a[p * n + q] = 0;
        a[q * n + p] = 0;
        for (let r = 0; r < n; r++) {
          if (r !== p && r !== q) {
            const arp = a[r * n + p];
            const arq = a[r * n + q];
            const nrp = arp - s * (arq + tau * arp);
            const nrq = arq + s * (arp - tau * arq);
            a[r * n + p] = nrp;
            a[p * n + r] = nrp;
            a[r * n + q] = nrq;
            a[q * n + r] = nrq;
          }
          const vrp = V[r * n + p];
          const vrq = V[r * n + q];
          V[r * n + p] = vrp - s * (vrq + tau * vrp);
          V[r * n + q] = vrq + s * (vrp - tau * vrq);
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i] || i - j);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((col, k) => {
    values[k] = a[col * n + col];
    let big = 0;
    for (let i = 0; i < n; i++) if (Math.abs(V[i * n + col]) > Math.abs(V[big * n + col])) big = i;
    const sign = V[big * n + col] < 0 ? -1 : 1;
    for (let i = 0; i < n; i++) vectors[k * n + i] = sign * V[i * n + col];
  });
  return { values, vectors };
}

/**
 * Number of components that stand clearly above the noise floor, for whole spectra
 * (d >= 8): the floor is the median eigenvalue of the lower half of the spectrum (white
 * noise spreads evenly over all directions, so those eigenvalues are all close to the
 * noise variance), and a component counts when its eigenvalue exceeds `factor` times it
 * and also RELATIVE_FLOOR times the largest (noise-free float32 data still carry rounding
 * noise, ~1e-14 of the variance, which the median rule alone would count as signal).
 * Returns NaN when d < 8 (too few eigenvalues to estimate a floor).
 */
export function significantComponents(eigenvalues: Float64Array, factor = 10): number {
  const RELATIVE_FLOOR = 1e-8;
  const d = eigenvalues.length;
  if (d < 8) return NaN;
  const lower = Array.from(eigenvalues.subarray(Math.floor(d / 2))).sort((x, y) => x - y);
  const floor = Math.max(factor * lower[Math.floor(lower.length / 2)], RELATIVE_FLOOR * eigenvalues[0]);
  let k = 0;
  while (k < d && eigenvalues[k] > floor) k++;
  return k;
}

/**
 * Twin of shaders/pca_project.wgsl: rows 0..n-1 the scores on the first n components,
 * row n the RMS reconstruction error sqrt(mean_e (y_e - sum_k score_k v_ke)^2), y = x - mean;
 * NaN in every row for a pixel with any unusable value (see usableValue). Float64 [n + 1][P].
 */
export function pcaProjectCpu(cube: Float32Array, P: number, model: PcaModel, n: number): Float64Array {
  const { d, mean, components } = model;
  const out = new Float64Array((n + 1) * P);
  const y = new Float64Array(d);
  const sc = new Float64Array(n);
  for (let p = 0; p < P; p++) {
    if (!centredSpectrum(cube, P, p, d, mean, y)) {
      for (let k = 0; k <= n; k++) out[k * P + p] = NaN;
      continue;
    }
    for (let k = 0; k < n; k++) {
      let acc = 0;
      const off = k * d;
      for (let e = 0; e < d; e++) acc += y[e] * components[off + e];
      sc[k] = acc;
      out[k * P + p] = acc;
    }
    let r2 = 0;
    for (let e = 0; e < d; e++) {
      let r = y[e];
      for (let k = 0; k < n; k++) r -= sc[k] * components[k * d + e];
      r2 += r * r;
    }
    out[n * P + p] = Math.sqrt(r2 / d);
  }
  return out;
}
