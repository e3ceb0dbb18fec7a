/**
 * The per-run constants of normalize + edge, computed once on the host in float64 and
 * shared by both backends: energy windows as index ranges, the basis centres and scales
 * that keep the per-pixel polynomial fits well conditioned in float32, and the energies
 * relative to the nominal e0 (float32 has ~1 meV resolution at 8 keV; relative energies
 * keep far more).
 */
import { InputError } from '../io/errors.js';

export interface EdgeOptions {
  /** Nominal edge energy (eV) that anchors the windows; default: from the stack's mean spectrum. */
  e0?: number;
  /** Pre-edge line window relative to e0 (eV). Athena/xraylarch defaults. */
  pre1: number;
  pre2: number;
  /** Post-edge window relative to e0 (eV); norm2 = Infinity means "to the end of the scan". */
  norm1: number;
  norm2: number;
  /** Degree of the post-edge polynomial: 1 (line) or 2 (quadratic). */
  nnorm: 1 | 2;
  /** A pixel is masked where edge step < maskSigma * pre-edge noise. */
  maskSigma: number;
  /** Window (relative to e0, eV) in which the derivative maximum is searched. */
  edge1: number;
  edge2: number;
  /** Points in the moving average applied to the derivative (odd, 1 = none). */
  derivSmooth: number;
  /** The white line is the maximum of the normalised spectrum within this many eV after e0_half. */
  whitelineWidth: number;
}

export const DEFAULT_EDGE_OPTIONS: EdgeOptions = {
  pre1: -150,
  pre2: -30,
  norm1: 50,
  norm2: Infinity,
  nnorm: 2,
  maskSigma: 1,
  edge1: -20,
  edge2: 20,
  derivSmooth: 3,
  whitelineWidth: 30,
};

export interface EdgePlan {
  e0: number;
  nE: number;
  /** energies - e0, eV (float64; the GPU gets them rounded to float32). */
  x: Float64Array;
  pre: { i0: number; i1: number; centre: number; scale: number };
  post: { i0: number; i1: number; centre: number; scale: number; degree: 1 | 2 };
  edge: { i0: number; i1: number };
  smoothHalf: number;
  whitelineWidth: number;
  maskSigma: number;
  options: EdgeOptions;
}

/** Index range [i0, i1) of energies within [lo, hi] (relative to e0). */
function windowIndices(x: Float64Array, lo: number, hi: number): { i0: number; i1: number } {
  let i0 = 0;
  while (i0 < x.length && x[i0] < lo) i0++;
  let i1 = i0;
  while (i1 < x.length && x[i1] <= hi) i1++;
  return { i0, i1 };
}

/** Centre and half-width of the window so that the basis variable runs over [-1, 1]. */
function basis(x: Float64Array, i0: number, i1: number): { centre: number; scale: number } {
  const lo = x[i0];
  const hi = x[i1 - 1];
  return { centre: (lo + hi) / 2, scale: Math.max((hi - lo) / 2, 1e-6) };
}

export function makeEdgePlan(energies: Float64Array, e0: number, options: EdgeOptions, where = 'energies'): EdgePlan {
  const x = new Float64Array(energies.length);
  for (let i = 0; i < x.length; i++) x[i] = energies[i] - e0;
  const pre = windowIndices(x, options.pre1, options.pre2);
  const post = windowIndices(x, options.norm1, options.norm2);
  const edge = windowIndices(x, options.edge1, options.edge2);
  const fmt = (v: number) => (Number.isFinite(v) ? `${v}` : 'end');
  if (pre.i1 - pre.i0 < 3) {
    throw new InputError(where, `only ${pre.i1 - pre.i0} energies in the pre-edge window e0${options.pre1}..e0${options.pre2} eV (e0 = ${e0.toFixed(2)} eV); need at least 3 (set --pre)`);
  }
  if (post.i1 - post.i0 < options.nnorm + 2) {
    throw new InputError(where, `only ${post.i1 - post.i0} energies in the post-edge window e0+${options.norm1}..${fmt(options.norm2)} eV (e0 = ${e0.toFixed(2)} eV); need at least ${options.nnorm + 2} (set --post)`);
  }
  if (edge.i1 - edge.i0 < 3) {
    throw new InputError(where, `only ${edge.i1 - edge.i0} energies in the edge window e0${options.edge1}..e0+${options.edge2} eV; need at least 3 (set --edge-window)`);
  }
  if (!(options.derivSmooth >= 1 && options.derivSmooth % 2 === 1 && options.derivSmooth <= 7)) {
    throw new InputError('--deriv-smooth', `must be an odd number of points from 1 to 7, got ${options.derivSmooth}`);
  }
  return {
    e0,
    nE: energies.length,
    x,
    pre: { ...pre, ...basis(x, pre.i0, pre.i1) },
    post: { ...post, ...basis(x, post.i0, post.i1), degree: options.nnorm },
    edge,
    smoothHalf: (options.derivSmooth - 1) / 2,
    whitelineWidth: options.whitelineWidth,
    maskSigma: options.maskSigma,
    options,
  };
}

/**
 * Nominal e0 of a spectrum (eV): the maximum of its smoothed derivative, as Athena's
 * find_e0 does, refined by a parabola. Used on the stack's mean spectrum.
 */
export function derivativeMaxEnergy(energies: Float64Array, mu: Float64Array, smoothHalf = 1): number {
  const n = energies.length;
  const d = new Float64Array(n).fill(NaN);
  for (let i = 1; i < n - 1; i++) d[i] = (mu[i + 1] - mu[i - 1]) / (energies[i + 1] - energies[i - 1]);
  let best = -1;
  let bestV = -Infinity;
  const s = new Float64Array(n).fill(NaN);
  for (let i = 1 + smoothHalf; i < n - 1 - smoothHalf; i++) {
    let acc = 0;
    for (let j = -smoothHalf; j <= smoothHalf; j++) acc += d[i + j];
    s[i] = acc / (2 * smoothHalf + 1);
    if (Number.isFinite(s[i]) && s[i] > bestV) {
      bestV = s[i];
      best = i;
    }
  }
  if (best < 0) throw new InputError('stack', 'cannot find an absorption edge in the mean spectrum (no finite derivative); give --e0');
  const r = parabolaVertex(energies[best - 1] - energies[best], energies[best + 1] - energies[best], s[best - 1], s[best], s[best + 1]);
  return energies[best] + (Number.isFinite(r.t) ? r.t : 0);
}

/**
 * Vertex of the parabola through (t0, y0), (0, y1), (t2, y2) with t0 < 0 < t2, written
 * relative to the middle point so it stays accurate in float32 (the WGSL twin is
 * `parabola_vertex` in shaders/edge.wgsl). Returns t = NaN when the points are not a
 * maximum (curvature >= 0); the vertex is clamped to [t0, t2].
 */
export function parabolaVertex(t0: number, t2: number, y0: number, y1: number, y2: number): { t: number; y: number } {
  const s0 = (y0 - y1) / t0;
  const s2 = (y2 - y1) / t2;
  const beta = (s2 - s0) / (t2 - t0);
  const alpha = s0 - beta * t0;
  if (!(beta < 0)) return { t: NaN, y: y1 };
  const t = Math.min(Math.max(-alpha / (2 * beta), t0), t2);
  return { t, y: y1 + alpha * t + beta * t * t };
}
