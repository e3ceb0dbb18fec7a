/**
 * Choosing k: WCSS over a range of k on one upload of the features, and Kneedle's knee.
 */
import { prepareKmeans, fitPrepared, checkK, type KmeansOptions } from './kmeans.js';
import type { Backend } from './step.js';
import type { Features } from '../cpu/kmeans.js';
import { InputError } from '../io/errors.js';

export interface ElbowRow {
  k: number;
  wcss: number;
  /** Pixels in the smallest cluster of this k's solution. */
  smallest?: number;
  /** false when a cluster is smaller than the minimum cluster size: k is not chosen. */
  eligible?: boolean;
}

/**
 * Default --min-cluster-size: 0.2 % of the clustered pixels (at least 2). A k whose best
 * solution holds a smaller cluster is not eligible at the elbow: one outlier pixel forming a
 * cluster of its own lowers the WCSS enough to pull the elbow to k + 1 (the demo's three
 * domains came out as k = 4).
 */
export const MIN_CLUSTER_FRACTION = 0.002;

/** The minimum cluster size in pixels: `v` pixels if >= 1, else a fraction of n (default MIN_CLUSTER_FRACTION). */
export function minClusterPixels(n: number, v?: number): number {
  if (v !== undefined && v >= 1) return Math.round(v);
  return Math.max(2, Math.ceil((v ?? MIN_CLUSTER_FRACTION) * n));
}

export interface ElbowResult {
  table: ElbowRow[];
  /** The k chosen by the rule. */
  k: number;
  rule: string;
}

/** "a:b" (inclusive) or "a,b,c" -> sorted distinct ks. */
export function parseKRange(spec: string, where = '--k-range'): number[] {
  const s = spec.trim();
  let ks: number[];
  const m = /^(\d+)\s*:\s*(\d+)$/.exec(s);
  if (m) {
    const a = Number(m[1]), b = Number(m[2]);
    if (!(a <= b)) throw new InputError(where, `expected a:b with a <= b, got '${spec}'`);
    ks = Array.from({ length: b - a + 1 }, (_, i) => a + i);
  } else if (/^\d+(\s*,\s*\d+)*$/.test(s)) {
    ks = s.split(',').map((t) => Number(t.trim()));
  } else {
    throw new InputError(where, `expected a:b (e.g. 2:12) or a list (2,3,4), got '${spec}'`);
  }
  ks = [...new Set(ks)].sort((x, y) => x - y);
  for (const k of ks) checkK(k, where);
  return ks;
}

export const KNEEDLE_RULE =
  'Kneedle (Satopaa et al. 2011), offline form: k and WCSS scaled to [0, 1]; the chosen k is the one farthest below the chord from the first to the last point (the smallest k if no point lies below it)';

/**
 * Kneedle on a decreasing, convex WCSS(k) curve: with x = (k - k_min) / (k_max - k_min)
 * and y = (W - W_min) / (W_max - W_min), the knee maximises (1 - y) - x. Returns the
 * smallest k when the curve never falls below the chord (straight or concave) or is flat.
 */
export function kneedle(table: ElbowRow[]): number {
  if (table.length === 0) throw new RangeError('kneedle: empty table');
  const rows = [...table].sort((a, b) => a.k - b.k);
  const k0 = rows[0].k, k1 = rows[rows.length - 1].k;
  let wmin = Infinity, wmax = -Infinity;
  for (const r of rows) {
    wmin = Math.min(wmin, r.wcss);
    wmax = Math.max(wmax, r.wcss);
  }
  if (rows.length < 3 || !(wmax > wmin)) return k0;
  let best = k0, bestD = 0;
  for (const r of rows) {
    const x = (r.k - k0) / (k1 - k0);
    const y = (r.wcss - wmin) / (wmax - wmin);
    const diff = 1 - y - x;
    if (diff > bestD) {
      bestD = diff;
      best = r.k;
    }
  }
  return best;
}

/**
 * WCSS for each k (every restart, best kept; labels are not read back) and the Kneedle
 * choice. Fitting the chosen k again with kmeansFit and the same options gives the same
 * clustering and WCSS (seeds depend on seed, k and restart only).
 */
export async function elbow(backend: Backend, features: Features, ks: number[], opts: Omit<KmeansOptions, 'k'> & { minClusterSize?: number } = {}, onK?: (done: number, total: number) => void): Promise<ElbowResult> {
  if (ks.length < 3) throw new InputError('--k-range', `needs at least 3 values of k to find an elbow, got ${ks.length}`);
  ks.forEach((k) => checkK(k, '--k-range'));
  const prep = await prepareKmeans(backend, features, opts);
  try {
    const table: ElbowRow[] = [];
    for (const k of [...ks].sort((a, b) => a - b)) {
      const r = await fitPrepared(prep, k, false);
      const n = r.counts.reduce((a, b) => a + b, 0);
      const smallest = Math.min(...r.counts);
      table.push({ k, wcss: r.wcss, smallest, eligible: k === 1 || smallest >= minClusterPixels(n, opts.minClusterSize) });
      onK?.(table.length, ks.length);
    }
    // Kneedle over every k (the curve), the choice among eligible ks only: the eligible k
    // farthest below the chord, else the largest eligible k below the first ineligible one.
    return { table, k: kneedleEligible(table), rule: `${KNEEDLE_RULE}; ks whose solution has a cluster smaller than the minimum cluster size are not chosen` };
  } finally {
    await prep.engine.release();
  }
}

/** kneedle restricted to eligible rows (all rows eligible: kneedle itself). */
export function kneedleEligible(table: ElbowRow[]): number {
  const ok = table.filter((r) => r.eligible !== false);
  if (ok.length === table.length) return kneedle(table);
  if (ok.length === 0) return Math.min(...table.map((r) => r.k));
  const rows = [...table].sort((a, b) => a.k - b.k);
  const k0 = rows[0].k, k1 = rows[rows.length - 1].k;
  const w = rows.map((r) => r.wcss);
  const wmin = Math.min(...w), wmax = Math.max(...w);
  let best = Math.min(...ok.map((r) => r.k)), bestD = 0;
  if (rows.length >= 3 && wmax > wmin) {
    for (const r of ok) {
      const d = 1 - (r.wcss - wmin) / (wmax - wmin) - (r.k - k0) / (k1 - k0);
      if (d > bestD) { bestD = d; best = r.k; }
    }
  }
  return best;
}
