/**
 * An independent float64 implementation of xraylarch's pre-edge normalisation, written for
 * the tests from larch's documented conventions (xraylarch 0.9.58, larch/xafs/pre_edge.py
 * `find_e0` and `preedge`, larch/math/utils.py `index_of` and `index_nearest`). It shares no
 * code with src/: the tests use it as the reference the engine's maps must match.
 *
 *  - find_e0: derivative dmu = gradient(mu)/gradient(E) (central differences, one-sided at
 *    the ends); points with dmu > 0.1 max (max over the points nmin..n-nmin, nmin =
 *    max(3, floor(0.05 n))); e0 = the energy of the largest dmu among them whose two
 *    neighbours also qualify, skipping nmin points at either end.
 *  - e0 moves to the nearest grid energy; pre1 is clipped to the first energy, norm2 to the
 *    last; nnorm (default) 2, 1 where norm2 - norm1 < 350 eV, 0 where < 50 eV.
 *  - a window takes the points from index_of(E, e0 + lo) (at or below) up to, not including,
 *    index_nearest(E, e0 + hi), widened to 2 points if shorter.
 *  - pre-edge: a line (numpy.polyfit, degree 1); post-edge: polyfit of degree nnorm of
 *    mu - pre over its window; edge step = post(e0) - pre(e0) at the grid point e0.
 * Non-finite points are left out of the fits (larch's remove_nans2 on the pre-edge).
 */

export interface PreEdgeOptions {
  pre1: number;
  pre2: number;
  norm1: number;
  /** Infinity: the end of the scan. */
  norm2: number;
  nnorm?: 0 | 1 | 2;
  /** Given e0 (eV); default find_e0. */
  e0?: number;
}

export interface PreEdgeResult {
  e0: number;
  ie0: number;
  nnorm: number;
  step: number;
  /** Pre-edge line and post-edge polynomial as functions of absolute energy. */
  pre: (e: number) => number;
  post: (e: number) => number;
  preIdx: [number, number];
  postIdx: [number, number];
  /** larch's norm and flat on the input energies. */
  norm: Float64Array;
  flat: Float64Array;
}

export function indexOf(e: ArrayLike<number>, v: number): number {
  if (v < e[0]) return 0;
  let k = 0;
  for (let i = 0; i < e.length; i++) if (e[i] <= v) k = i;
  return k;
}

export function indexNearest(e: ArrayLike<number>, v: number): number {
  let k = 0;
  for (let i = 1; i < e.length; i++) if (Math.abs(e[i] - v) < Math.abs(e[k] - v)) k = i;
  return k;
}

function gradient(y: ArrayLike<number>): Float64Array {
  const n = y.length;
  const g = new Float64Array(n);
  g[0] = y[1] - y[0];
  g[n - 1] = y[n - 1] - y[n - 2];
  for (let i = 1; i < n - 1; i++) g[i] = (y[i + 1] - y[i - 1]) / 2;
  return g;
}

export function findE0(e: ArrayLike<number>, mu: ArrayLike<number>): number {
  const n = e.length;
  const ge = gradient(e), gm = gradient(mu);
  const d = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    d[i] = gm[i] / ge[i];
    if (!Number.isFinite(d[i])) d[i] = -1;
  }
  const nmin = Math.max(3, Math.floor(n * 0.05));
  let max = -Infinity;
  for (let i = nmin; i < n - nmin; i++) max = Math.max(max, d[i]);
  const high = (i: number) => i >= 0 && i < n && d[i] > max * 0.1;
  let idx = 0, best = 0;
  for (let i = 0; i < n; i++) {
    if (!high(i) || i < nmin || i > n - nmin) continue;
    if (d[i] > best && high(i + 1) && high(i - 1)) { idx = i; best = d[i]; }
  }
  return e[idx];
}

/** Least-squares polynomial of degree deg through (x, y), in x - xc; Gauss-Jordan with pivoting. */
export function polyfit(x: number[], y: number[], deg: number, xc: number): number[] {
  const m = deg + 1;
  const a = Array.from({ length: m }, () => new Array(m + 1).fill(0));
  for (let i = 0; i < x.length; i++) {
    const u = x[i] - xc;
    for (let r = 0; r < m; r++) {
      for (let c = 0; c < m; c++) a[r][c] += u ** (r + c);
      a[r][m] += u ** r * y[i];
    }
  }
  for (let c = 0; c < m; c++) {
    let piv = c;
    for (let r = c + 1; r < m; r++) if (Math.abs(a[r][c]) > Math.abs(a[piv][c])) piv = r;
    [a[c], a[piv]] = [a[piv], a[c]];
    for (let r = 0; r < m; r++) {
      if (r === c) continue;
      const f = a[r][c] / a[c][c];
      for (let k = c; k <= m; k++) a[r][k] -= f * a[c][k];
    }
  }
  return a.map((row, r) => row[m] / row[r]);
}

export function polyval(c: number[], u: number): number {
  let acc = 0;
  for (let k = c.length - 1; k >= 0; k--) acc = acc * u + c[k];
  return acc;
}

export function preEdge(e: ArrayLike<number>, mu: ArrayLike<number>, o: PreEdgeOptions): PreEdgeResult {
  const n = e.length;
  const first = e[0], last = e[n - 1];
  const ie0 = indexNearest(e, o.e0 ?? findE0(e, mu));
  const e0 = e[ie0];
  let pre1 = Math.max(o.pre1, first - e0), pre2 = o.pre2;
  if (pre1 > pre2) [pre1, pre2] = [pre2, pre1];
  let norm1 = o.norm1, norm2 = Math.min(o.norm2, last - e0);
  if (norm1 > norm2) [norm1, norm2] = [norm2, norm1];
  let nnorm = o.nnorm;
  if (nnorm === undefined) {
    nnorm = 2;
    if (norm2 - norm1 < 350) nnorm = 1;
    if (norm2 - norm1 < 50) nnorm = 0;
  }
  const window = (lo: number, hi: number): [number, number] => {
    const p1 = indexOf(e, lo + e0);
    let p2 = indexNearest(e, hi + e0);
    if (p2 - p1 < 2) p2 = Math.min(n, p1 + 2);
    return [p1, p2];
  };
  const pick = ([p1, p2]: [number, number], f: (i: number) => number) => {
    const xs: number[] = [], ys: number[] = [];
    for (let i = p1; i < p2; i++) {
      const y = f(i);
      if (Number.isFinite(y)) { xs.push(e[i]); ys.push(y); }
    }
    return [xs, ys] as const;
  };
  const preIdx = window(pre1, pre2);
  const [px, py] = pick(preIdx, (i) => mu[i]);
  const pc = polyfit(px, py, 1, e0);
  const pre = (x: number) => polyval(pc, x - e0);
  const postIdx = window(norm1, norm2);
  const [qx, qy] = pick(postIdx, (i) => mu[i] - pre(e[i]));
  const qc = polyfit(qx, qy, nnorm, e0);
  const post = (x: number) => pre(x) + polyval(qc, x - e0);
  const step = post(e0) - pre(e0);
  const norm = Float64Array.from(e, (x, i) => (mu[i] - pre(x)) / step);
  // flat (pre_edge with make_flat): a polynomial of degree min(nnorm, 2) fitted to norm over
  // the post-edge window; above e0 its change from e0 is removed.
  const [fx, fy] = pick(postIdx, (i) => norm[i]);
  const fc = polyfit(fx, fy, Math.min(nnorm, 2), e0);
  const flat = Float64Array.from(norm, (v, i) => (i >= ie0 ? v - (polyval(fc, e[i] - e0) - polyval(fc, 0)) : v));
  return { e0, ie0, nnorm, step, pre, post, preIdx, postIdx, norm, flat };
}

/**
 * The n = 0.5 crossing of (mu - pre)/step (linear interpolation between samples) nearest to
 * `anchor`: e0_half as the engine defines it, on any sampling of mu.
 */
export function halfCrossing(e: ArrayLike<number>, mu: ArrayLike<number>, r: { pre: (e: number) => number; step: number }, anchor: number): number {
  let best = NaN;
  let prev = (mu[0] - r.pre(e[0])) / r.step;
  for (let i = 0; i + 1 < e.length; i++) {
    const next = (mu[i + 1] - r.pre(e[i + 1])) / r.step;
    if (prev < 0.5 && next >= 0.5) {
      const xc = e[i] + ((0.5 - prev) * (e[i + 1] - e[i])) / (next - prev);
      if (!Number.isFinite(best) || Math.abs(xc - anchor) < Math.abs(best - anchor)) best = xc;
    }
    prev = next;
  }
  return best;
}
