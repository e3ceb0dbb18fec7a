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
export async function elbow(backend: Backend, features: Features, ks: number[], opts: Omit<KmeansOptions, 'k'> = {}, onK?: (done: number, total: number) => void): Promise<ElbowResult> {
  if (ks.length < 3) throw new InputError('--k-range', `needs at least 3 values of k to find an elbow, got ${ks.length}`);
  ks.forEach((k) => checkK(k, '--k-range'));
  const prep = await prepareKmeans(backend, features, opts);
  try {
    const table: ElbowRow[] = [];
    for (const k of [...ks].sort((a, b) => a - b)) {
      const r = await fitPrepared(prep, k, false);
      table.push({ k, wcss: r.wcss });
      onK?.(table.length, ks.length);
    }
    return { table, k: kneedle(table), rule: KNEEDLE_RULE };
  } finally {
    await prep.engine.release();
  }
}
