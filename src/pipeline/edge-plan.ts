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
  /**
   * Degree of the post-edge polynomial: 0 (constant), 1 (line), 2 (quadratic), or 'auto':
   * larch's rule by the post-edge span norm2 - norm1 (norm2 clipped to the scan): 2, a line
   * under 350 eV, a constant under 50 eV.
   */
  nnorm: NNorm;
  /**
   * Windows and edge step from the nominal e0 for every pixel (default false: from each
   * pixel's own e0, as larch's pre_edge normalises each spectrum).
   */
  fixedWindows?: boolean;
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

export type NNorm = 0 | 1 | 2 | 'auto';

export const DEFAULT_EDGE_OPTIONS: EdgeOptions = {
  pre1: -150,
  pre2: -30,
  norm1: 50,
  norm2: Infinity,
  nnorm: 'auto',
  maskSigma: 1,
  edge1: -20,
  edge2: 20,
  derivSmooth: 3,
  whitelineWidth: 30,
};

export interface EdgePlan {
  /** Nominal e0 (eV): the origin of x. */
  e0: number;
  /** The grid energy nearest to e0, which the windows are measured from (larch's rule). */
  e0Grid: number;
  nE: number;
  /** energies - e0, eV (float64; the GPU gets them rounded to float32). */
  x: Float64Array;
  pre: { i0: number; i1: number; centre: number; scale: number };
  post: { i0: number; i1: number; centre: number; scale: number; degree: 0 | 1 | 2 };
  /**
   * The window limits (eV from a pixel's own e0) every pixel measures its windows from
   * (larch's rules, see larchWindows; norm2 may be Infinity = the end), and the index of the
   * grid energy nearest the nominal e0 (used by pixels without a derivative maximum).
   * fixed: every pixel takes its windows and step from the nominal e0 instead of its own
   * (the fit's start values, whose windows are placed on the grid alone).
   */
  larch: { pre1: number; pre2: number; norm1: number; norm2: number; ie0: number; fixed: boolean };
  edge: { i0: number; i1: number };
  smoothHalf: number;
  whitelineWidth: number;
  maskSigma: number;
  options: EdgeOptions;
}

/** Index range [i0, i1) of energies within [lo, hi] (relative to e0): the derivative search window. */
function windowIndices(x: Float64Array, lo: number, hi: number): { i0: number; i1: number } {
  let i0 = 0;
  while (i0 < x.length && x[i0] < lo) i0++;
  let i1 = i0;
  while (i1 < x.length && x[i1] <= hi) i1++;
  return { i0, i1 };
}

/** larch.math.index_of: the last index whose energy is at or below v; 0 when v is below the grid. */
export function indexOf(e: ArrayLike<number>, v: number): number {
  if (!(v >= e[0])) return 0;
  let i = 0;
  while (i + 1 < e.length && e[i + 1] <= v) i++;
  return i;
}

/** larch.math.index_nearest: the index of the energy nearest to v (the first on a tie). */
export function indexNearest(e: ArrayLike<number>, v: number): number {
  let best = 0;
  for (let i = 1; i < e.length; i++) if (Math.abs(e[i] - v) < Math.abs(e[best] - v)) best = i;
  return best;
}

/** The windows and polynomial degree one spectrum is normalised with (see larchWindows). */
export interface LarchWindows {
  /** Index of the grid energy nearest to e0, and that energy. */
  ie0: number;
  e0: number;
  pre: { i0: number; i1: number };
  post: { i0: number; i1: number };
  degree: 0 | 1 | 2;
  /** The window limits relative to e0 after larch's clipping (eV), for the record. */
  pre1: number;
  pre2: number;
  norm1: number;
  norm2: number;
}

/**
 * Which grid points the pre- and post-edge fits take, following xraylarch 0.9.58
 * `larch.xafs.pre_edge.preedge` (the Athena conventions), line by line:
 *  - e0 moves to the nearest grid energy (index_nearest) and the windows are measured from it;
 *  - pre1 is clipped to the first energy; pre1/pre2 and norm1/norm2 are swapped if reversed;
 *    norm2 is clipped to the last energy (Infinity = the end of the scan);
 *  - a window runs from index_of(e0 + lo) (the point AT OR BELOW its start) up to, but NOT
 *    including, index_nearest(e0 + hi) (so a window to the end drops the last point), and
 *    is widened to 2 points when shorter;
 *  - nnorm 'auto': 2, or 1 where norm2 - norm1 < 350 eV, or 0 where it is < 50 eV.
 * The arithmetic differs from larch only in form: the fits are solved in scaled variables
 * (well conditioned in float32) and skip non-finite points (the NaN policy).
 */
export function larchWindows(energies: ArrayLike<number>, e0: number, o: Pick<EdgeOptions, 'pre1' | 'pre2' | 'norm1' | 'norm2' | 'nnorm'>): LarchWindows {
  const n = energies.length;
  const ie0 = indexNearest(energies, e0);
  const e0g = energies[ie0];
  const first = energies[0], last = energies[n - 1];
  let pre1 = Math.max(o.pre1, first - e0g), pre2 = o.pre2;
  if (pre1 > pre2) [pre1, pre2] = [pre2, pre1];
  let norm1 = o.norm1;
  let norm2 = o.norm2 < 0 ? last - e0g - o.norm2 : o.norm2;
  norm2 = Math.min(norm2, last - e0g);
  if (norm1 > norm2) [norm1, norm2] = [norm2, norm1];
  let degree: 0 | 1 | 2;
  if (o.nnorm === 'auto') {
    degree = 2;
    if (norm2 - norm1 < 350) degree = 1;
    if (norm2 - norm1 < 50) degree = 0;
  } else degree = o.nnorm;
  const win = (lo: number, hi: number) => {
    const i0 = indexOf(energies, lo + e0g);
    let i1 = indexNearest(energies, hi + e0g);
    if (i1 - i0 < 2) i1 = Math.min(n, i0 + 2);
    return { i0, i1 };
  };
  return { ie0, e0: e0g, pre: win(pre1, pre2), post: win(norm1, norm2), degree, pre1, pre2, norm1, norm2 };
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
  const w = larchWindows(energies, e0, options);
  const { pre, post } = w;
  const edge = windowIndices(x, options.edge1, options.edge2);
  const fmt = (v: number) => (Number.isFinite(v) ? `${v}` : 'end');
  if (pre.i1 - pre.i0 < 3) {
    throw new InputError(where, `only ${pre.i1 - pre.i0} energies in the pre-edge window e0${options.pre1}..e0${options.pre2} eV (e0 = ${e0.toFixed(2)} eV); need at least 3 (set --pre)`);
  }
  if (post.i1 - post.i0 < w.degree + 1) {
    throw new InputError(where, `only ${post.i1 - post.i0} energies in the post-edge window e0+${options.norm1}..${fmt(options.norm2)} eV (e0 = ${e0.toFixed(2)} eV); need at least ${w.degree + 1} (set --post)`);
  }
  if (edge.i1 - edge.i0 < 3) {
    throw new InputError(where, `only ${edge.i1 - edge.i0} energies in the edge window e0${options.edge1}..e0+${options.edge2} eV; need at least 3 (set --edge-window)`);
  }
  if (!(options.derivSmooth >= 1 && options.derivSmooth % 2 === 1 && options.derivSmooth <= 7)) {
    throw new InputError('--deriv-smooth', `must be an odd number of points from 1 to 7, got ${options.derivSmooth}`);
  }
  return {
    e0,
    e0Grid: w.e0,
    nE: energies.length,
    x,
    pre: { ...pre, ...basis(x, pre.i0, pre.i1) },
    post: { ...post, ...basis(x, post.i0, post.i1), degree: w.degree },
    larch: {
      pre1: Math.min(options.pre1, options.pre2), pre2: Math.max(options.pre1, options.pre2),
      norm1: options.norm1, norm2: options.norm2 < 0 ? Infinity : options.norm2, ie0: w.ie0, fixed: options.fixedWindows === true,
    },
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
