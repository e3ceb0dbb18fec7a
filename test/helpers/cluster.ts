/**
 * Helpers for the PCA and k-means tests: the adjusted Rand index, an independent careful
 * k-means (float64, many restarts) to judge the engine's WCSS against, synthetic data with
 * known domains, and an XDI reader for the measured fixture spectrum.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { makeRng } from '../../src/synth/random.js';
import { interpLinear } from '../../src/synth/references.js';

/**
 * Adjusted Rand index (Hubert & Arabie 1985) of two labelings, over the pixels where both
 * are >= 0: 1 for identical partitions (up to renaming), ~0 for chance agreement.
 */
export function adjustedRandIndex(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const table = new Map<string, number>();
  const rows = new Map<number, number>();
  const cols = new Map<number, number>();
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] < 0 || b[i] < 0) continue;
    n++;
    const key = `${a[i]},${b[i]}`;
    table.set(key, (table.get(key) ?? 0) + 1);
    rows.set(a[i], (rows.get(a[i]) ?? 0) + 1);
    cols.set(b[i], (cols.get(b[i]) ?? 0) + 1);
  }
  const c2 = (x: number) => (x * (x - 1)) / 2;
  let sumCells = 0, sumRows = 0, sumCols = 0;
  for (const v of table.values()) sumCells += c2(v);
  for (const v of rows.values()) sumRows += c2(v);
  for (const v of cols.values()) sumCols += c2(v);
  const expected = (sumRows * sumCols) / c2(n);
  const max = (sumRows + sumCols) / 2;
  if (max === expected) return 1; // both partitions trivial (one cluster, or all singletons)
  return (sumCells - expected) / (max - expected);
}

/**
 * A careful, independent k-means for reference: float64 on z-scored data (population std;
 * zero-variance features left unscaled), plain k-means++ seeding, Lloyd to a fixed point
 * (labels unchanged), empty clusters moved to the farthest point, best of `restarts`.
 * Returns the lowest WCSS found (standardised units).
 */
export function carefulKmeansWcss(data: Float32Array, d: number, n: number, k: number, restarts: number, seed: number): number {
  // Included pixels, standardised.
  const idx: number[] = [];
  for (let p = 0; p < n; p++) {
    let ok = true;
    for (let f = 0; f < d; f++) ok &&= Number.isFinite(data[f * n + p]);
    if (ok) idx.push(p);
  }
  const m = idx.length;
  const z = new Float64Array(m * d);
  for (let f = 0; f < d; f++) {
    let s = 0;
    for (const p of idx) s += data[f * n + p];
    const mean = s / m;
    let s2 = 0;
    for (const p of idx) s2 += (data[f * n + p] - mean) ** 2;
    const sd = Math.sqrt(s2 / m) || 1;
    idx.forEach((p, i) => (z[i * d + f] = (data[f * n + p] - mean) / sd));
  }
  const rng = makeRng(seed);
  const dist = (i: number, c: Float64Array, j: number) => {
    let s = 0;
    for (let f = 0; f < d; f++) s += (z[i * d + f] - c[j * d + f]) ** 2;
    return s;
  };
  let best = Infinity;
  for (let r = 0; r < restarts; r++) {
    const c = new Float64Array(k * d);
    const first = Math.floor(rng.uniform() * m);
    c.set(z.subarray(first * d, first * d + d), 0);
    const D = new Float64Array(m).map((_, i) => dist(i, c, 0));
    for (let j = 1; j < k; j++) {
      let tot = 0;
      for (const v of D) tot += v;
      let pick = Math.floor(rng.uniform() * m);
      if (tot > 0) {
        let u = rng.uniform() * tot;
        for (let i = 0; i < m; i++) {
          u -= D[i];
          if (u < 0 && D[i] > 0) {
            pick = i;
            break;
          }
        }
      }
      c.set(z.subarray(pick * d, pick * d + d), j * d);
      for (let i = 0; i < m; i++) D[i] = Math.min(D[i], dist(i, c, j));
    }
    const lab = new Int32Array(m).fill(-1);
    let wcss = Infinity;
    for (let it = 0; it < 500; it++) {
      let changed = false;
      wcss = 0;
      const dd = new Float64Array(m);
      for (let i = 0; i < m; i++) {
        let bj = 0, bv = Infinity;
        for (let j = 0; j < k; j++) {
          const v = dist(i, c, j);
          if (v < bv) [bv, bj] = [v, j];
        }
        if (lab[i] !== bj) changed = true;
        lab[i] = bj;
        dd[i] = bv;
        wcss += bv;
      }
      if (!changed) break;
      const sum = new Float64Array(k * d), cnt = new Float64Array(k);
      for (let i = 0; i < m; i++) {
        cnt[lab[i]]++;
        for (let f = 0; f < d; f++) sum[lab[i] * d + f] += z[i * d + f];
      }
      for (let j = 0; j < k; j++) {
        if (cnt[j] > 0) {
          for (let f = 0; f < d; f++) c[j * d + f] = sum[j * d + f] / cnt[j];
        } else {
          let far = 0;
          for (let i = 1; i < m; i++) if (dd[i] > dd[far]) far = i;
          c.set(z.subarray(far * d, far * d + d), j * d);
          dd[far] = 0;
        }
      }
    }
    best = Math.min(best, wcss);
  }
  return best;
}

/** Four chemical domains in a W x H image, with per-pixel descriptors and the truth labels. */
export interface DomainData {
  width: number;
  height: number;
  /** d = 3 features, feature-major: edge energy (eV), pre-edge peak / edge jump, composition. */
  data: Float32Array;
  names: string[];
  truth: Int32Array;
  /** Domain centres in feature units, 4 x 3. */
  centres: number[][];
  /** Edge jump per pixel (a weight map). */
  jump: Float32Array;
}

export const DOMAIN_CENTRES = [
  [8340.5, 0.05, 0.2],
  [8342.0, 0.05, 0.8],
  [8343.5, 0.12, 0.5],
  [8342.0, 0.2, 0.2],
];
/** Per-feature noise (standard deviation), feature units: about a fifth of the spacing of the centres. */
export const DOMAIN_NOISE = [0.3, 0.012, 0.06];

export function makeDomains(width: number, height: number, seed: number, noiseScale = 1): DomainData {
  const rng = makeRng(seed);
  const n = width * height;
  const d = 3;
  const data = new Float32Array(d * n);
  const truth = new Int32Array(n);
  const jump = new Float32Array(n);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      const inCircle = (x - 0.75 * width) ** 2 + (y - 0.5 * height) ** 2 < (0.2 * height) ** 2;
      const j = inCircle ? 3 : x < width / 3 ? 0 : y < height / 2 ? 1 : 2;
      truth[p] = j;
      jump[p] = 0.5 + j * 0.25 + 0.05 * rng.normal();
      for (let f = 0; f < d; f++) data[f * n + p] = DOMAIN_CENTRES[j][f] + noiseScale * DOMAIN_NOISE[f] * rng.normal();
    }
  }
  return { width, height, data, names: ['e0_half', 'PE_over_b1', 'composition'], truth, centres: DOMAIN_CENTRES, jump };
}

/** Path of a test fixture (test/fixtures/...). */
export function fixturePath(rel: string): string {
  return fileURLToPath(new URL(`../fixtures/${rel}`, import.meta.url));
}

/**
 * mu(E) = ln(i0 / itrans) of an XDI file (header lines start with '#'; the column labels are
 * on the last header line, e.g. "energy i0 itrans" or "energy counttime i0 itrans").
 */
export function readXdiMu(file: string): { energy: Float64Array; mu: Float64Array } {
  const e: number[] = [], mu: number[] = [];
  let labels: string[] = [];
  for (const line of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const t = line.trim();
    if (t.startsWith('#')) {
      labels = t.replace(/^#\s*/, '').split(/\s+/).map((s) => s.toLowerCase());
      continue;
    }
    if (t === '') continue;
    const i0 = labels.indexOf('i0') >= 0 ? labels.indexOf('i0') : 1;
    const it = labels.indexOf('itrans') >= 0 ? labels.indexOf('itrans') : 2;
    const cols = t.split(/\s+/).map(Number);
    if (cols.length <= Math.max(i0, it) || [0, i0, it].some((k) => !Number.isFinite(cols[k]))) throw new Error(`${file}: bad data line '${t}'`);
    e.push(cols[0]);
    mu.push(Math.log(cols[i0] / cols[it]));
  }
  return { energy: Float64Array.from(e), mu: Float64Array.from(mu) };
}

/** A raw spectrum on `energies`, scaled so its pre-edge (first point) is 0 and its last 20 points average 1. */
export function roughlyNormalised(s: { energy: Float64Array; mu: Float64Array }, energies: Float64Array): Float64Array {
  const y = energies.map((e) => interpLinear(s.energy, s.mu, e));
  const pre = y[0];
  let post = 0;
  for (let i = y.length - 20; i < y.length; i++) post += y[i] / 20;
  return y.map((v) => (v - pre) / (post - pre));
}
