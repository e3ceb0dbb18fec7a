// Histograms and percentiles of maps (edge-energy distributions, colour ranges centred on
// the histogram peak) and a CSV form for users' own plotting; the PNG is histogram-png.ts.
// Browser-safe: report.html computes its histograms with these too.

export interface Histogram {
  /** nBins + 1 bin edges; bin i is [edges[i], edges[i+1]), the last bin includes its right edge. */
  edges: Float64Array;
  counts: Uint32Array;
}

const MAX_BINS = 10_000_000;

/**
 * Counts of the finite values in bins of `binWidth`. Without `min`/`max` the bins are aligned
 * to whole multiples of binWidth and cover every finite value, so counts sum to the number
 * of finite values; values outside a given [min, max] are left out (as numpy's `range`).
 * NaN and +-Infinity are ignored. No finite values and no range: empty histogram.
 */
export function histogram(values: Float32Array, binWidth: number, opts: { min?: number; max?: number } = {}): Histogram {
  if (!(binWidth > 0) || !Number.isFinite(binWidth)) throw new RangeError(`histogram: binWidth must be > 0, got ${binWidth}`);
  let lo = Infinity, hi = -Infinity;
  if (opts.min === undefined || opts.max === undefined) {
    for (const v of values) {
      if (!Number.isFinite(v)) continue;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  const min = opts.min ?? Math.floor(lo / binWidth) * binWidth;
  const max = opts.max ?? Math.ceil(hi / binWidth) * binWidth;
  if (!Number.isFinite(min) || !Number.isFinite(max)) return { edges: new Float64Array(0), counts: new Uint32Array(0) };
  if (max < min) throw new RangeError(`histogram: max ${max} < min ${min}`);
  // (max - min) / binWidth can land a hair above a whole number; do not add a bin for that.
  const q = (max - min) / binWidth;
  const nBins = Math.max(1, Math.abs(q - Math.round(q)) < 1e-9 * Math.max(1, q) ? Math.round(q) : Math.ceil(q));
  if (nBins > MAX_BINS) throw new RangeError(`histogram: ${nBins} bins; use a wider binWidth`);
  const edges = Float64Array.from({ length: nBins + 1 }, (_, i) => min + i * binWidth);
  const counts = new Uint32Array(nBins);
  const top = edges[nBins];
  for (const v of values) {
    if (!(v >= min && v <= top)) continue; // also drops NaN
    let i = Math.floor((v - min) / binWidth);
    if (i >= nBins) i = nBins - 1; // v on the last edge, or rounding at the top
    else if (v < edges[i]) i--; // division rounded up across an edge
    else if (i + 1 < nBins && v >= edges[i + 1]) i++;
    counts[i]++;
  }
  return { edges, counts };
}

/** `bin_start,bin_end,count` lines; edges printed with 12 significant digits (no 0.1+0.2 noise). */
export function histogramCsv(h: Histogram): string {
  const f = (v: number) => String(Number(v.toPrecision(12)));
  const lines = ['bin_start,bin_end,count'];
  for (let i = 0; i < h.counts.length; i++) lines.push(`${f(h.edges[i])},${f(h.edges[i + 1])},${h.counts[i]}`);
  return lines.join('\n') + '\n';
}

/** Centre of the fullest bin (the first, on a tie); NaN for an empty histogram. */
export function histogramPeak(h: Histogram): number {
  let best = -1, most = 0;
  for (let i = 0; i < h.counts.length; i++) {
    if (h.counts[i] > most) [best, most] = [i, h.counts[i]];
  }
  return best < 0 ? NaN : (h.edges[best] + h.edges[best + 1]) / 2;
}

/** The non-NaN values sorted, as float32 (the maps' own type: the same values and order, half the memory of float64). */
function sortedNonNaN(values: Float32Array): Float32Array {
  let n = 0;
  for (const v of values) if (!Number.isNaN(v)) n++;
  const s = new Float32Array(n);
  let j = 0;
  for (const v of values) if (!Number.isNaN(v)) s[j++] = v;
  return s.sort();
}

function fromSorted(s: Float32Array, p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in [0, 100], got ${p}`);
  if (s.length === 0) return NaN;
  const h = ((s.length - 1) * p) / 100;
  const i = Math.floor(h);
  return i + 1 < s.length ? s[i] + (h - i) * (s[i + 1] - s[i]) : s[i];
}

/** p-th percentile (0..100) of the non-NaN values, interpolating linearly between order statistics (numpy's default). */
export function percentile(values: Float32Array, p: number): number {
  return fromSorted(sortedNonNaN(values), p);
}

/** Several percentiles with one sort. */
export function percentiles(values: Float32Array, ps: readonly number[]): number[] {
  const s = sortedNonNaN(values);
  return ps.map((p) => fromSorted(s, p));
}

/**
 * A histogram range that a few outliers cannot stretch: the 1st to 99th percentile widened
 * by half their span on each side, on whole bins (values outside are left out of the
 * histogram and counted by the caller). NaN when there are no finite values.
 */
export function robustHistogramRange(values: Float32Array | Blocks, binWidth: number): { min: number; max: number } {
  const [p1, p99] = typeof values === 'function' ? blockPercentiles(values, [1, 99]) : percentiles(values, [1, 99]);
  const pad = Math.max(0.5 * (p99 - p1), binWidth);
  return { min: Math.floor((p1 - pad) / binWidth) * binWidth, max: Math.ceil((p99 + pad) / binWidth) * binWidth };
}

/**
 * Counts of the finite values on bins aligned at whole multiples of `binWidth`: bin i holds
 * the values with floor(v / binWidth) = i. Sparse (bin index -> count). Counts of several
 * maps add bin by bin, so a histogram over many fields of view can be built from each
 * field's counts (xanes run, and xanes merge of a sharded run, go this way).
 */
export function alignedCounts(values: Float32Array, binWidth: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    const i = Math.floor(v / binWidth);
    out.set(i, (out.get(i) ?? 0) + 1);
  }
  return out;
}

/** Adds aligned counts into `into`. */
export function addCounts(into: Map<number, number>, more: Map<number, number>): Map<number, number> {
  for (const [i, c] of more) into.set(i, (into.get(i) ?? 0) + c);
  return into;
}

/**
 * The histogram of aligned counts over robustHistogramRange's range, with the percentiles
 * taken at bin resolution (each value at its bin's centre): the 1st to 99th percentile
 * widened by half their span on each side, on whole bins; values outside are left out.
 * Empty when there are no counts.
 */
export function histogramFromCounts(counts: Map<number, number>, binWidth: number): Histogram {
  const bins = [...counts.keys()].sort((a, b) => a - b);
  const n = bins.reduce((acc, i) => acc + counts.get(i)!, 0);
  if (n === 0) return { edges: new Float64Array(0), counts: new Uint32Array(0) };
  // The value of order statistic r (0-based): the centre of the bin holding it.
  const cum: number[] = [];
  bins.reduce((acc, i, j) => (cum[j] = acc + counts.get(i)!), 0);
  const at = (r: number) => {
    let j = 0;
    while (cum[j] <= r) j++;
    return (bins[j] + 0.5) * binWidth;
  };
  const pct = (p: number) => {
    const h = ((n - 1) * p) / 100;
    const i = Math.floor(h);
    return i + 1 < n ? at(i) + (h - i) * (at(i + 1) - at(i)) : at(i);
  };
  const p1 = pct(1), p99 = pct(99);
  const pad = Math.max(0.5 * (p99 - p1), binWidth);
  const lo = Math.floor((p1 - pad) / binWidth), hi = Math.ceil((p99 + pad) / binWidth);
  const nb = Math.max(1, hi - lo);
  const edges = Float64Array.from({ length: nb + 1 }, (_, j) => (lo + j) * binWidth);
  const out = new Uint32Array(nb);
  for (let j = 0; j < nb; j++) out[j] = counts.get(lo + j) ?? 0;
  return { edges, counts: out };
}

/** Aligned counts as CSV (`bin_start,bin_end,count`, non-empty bins only), and back. */
export function countsCsv(counts: Map<number, number>, binWidth: number): string {
  const f = (v: number) => String(Number(v.toPrecision(12)));
  const lines = ['bin_start,bin_end,count'];
  for (const i of [...counts.keys()].sort((a, b) => a - b)) lines.push(`${f(i * binWidth)},${f((i + 1) * binWidth)},${counts.get(i)}`);
  return lines.join('\n') + '\n';
}

export function parseCountsCsv(text: string, binWidth: number): Map<number, number> | null {
  const lines = text.trim().split('\n');
  if (lines[0] !== 'bin_start,bin_end,count') return null;
  const out = new Map<number, number>();
  for (const l of lines.slice(1)) {
    const [a, , c] = l.split(',').map(Number);
    if (!Number.isFinite(a) || !Number.isInteger(c) || c < 0) return null;
    out.set(Math.round(a / binWidth), c);
  }
  return out;
}

/**
 * The values of a map too large to hold twice, visited in blocks (each block once per call
 * of `forEach`, in any order).
 */
export type Blocks = (visit: (block: Float32Array) => void) => void;

/** A float32's bit pattern as an unsigned key whose order is the numeric order (-0 before +0). */
function sortKey(bits: number): number {
  return (bits & 0x80000000 ? ~bits : bits | 0x80000000) >>> 0;
}

/**
 * `percentiles` of a map given as blocks, exactly (the same numbers, numpy's linear
 * interpolation between order statistics), in a fixed 0.25-2 MiB of memory instead of a
 * sorted copy of the map: one pass counts the values by the high 16 bits of their sort key,
 * a second pass counts, within the buckets that hold the wanted ranks, the low 16 bits.
 */
export function blockPercentiles(blocks: Blocks, ps: readonly number[]): number[] {
  for (const p of ps) if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile: p must be in [0, 100], got ${p}`);
  const hiCounts = new Float64Array(65536);
  const u32 = (b: Float32Array) => new Uint32Array(b.buffer, b.byteOffset, b.length);
  let n = 0;
  blocks((b) => {
    const u = u32(b);
    for (let i = 0; i < b.length; i++) {
      if (Number.isNaN(b[i])) continue;
      hiCounts[sortKey(u[i]) >>> 16]++;
      n++;
    }
  });
  if (n === 0) return ps.map(() => NaN);
  // The ranks each percentile needs: floor(h) and the one above.
  const ranks = new Set<number>();
  for (const p of ps) {
    const h = ((n - 1) * p) / 100;
    ranks.add(Math.floor(h));
    if (Math.floor(h) + 1 < n) ranks.add(Math.floor(h) + 1);
  }
  const cumulative = new Float64Array(65537);
  for (let i = 0; i < 65536; i++) cumulative[i + 1] = cumulative[i] + hiCounts[i];
  const bucketOf = (r: number) => {
    let lo = 0, hi = 65535;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid + 1] > r) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const lowCounts = new Map<number, Float64Array>();
  for (const r of ranks) {
    const bucket = bucketOf(r);
    if (!lowCounts.has(bucket)) lowCounts.set(bucket, new Float64Array(65536));
  }
  blocks((b) => {
    const u = u32(b);
    for (let i = 0; i < b.length; i++) {
      if (Number.isNaN(b[i])) continue;
      const k = sortKey(u[i]);
      const low = lowCounts.get(k >>> 16);
      if (low) low[k & 0xffff]++;
    }
  });
  const f = new Float32Array(1);
  const fu = new Uint32Array(f.buffer);
  const valueAt = (r: number) => {
    const bucket = bucketOf(r);
    const low = lowCounts.get(bucket)!;
    let left = r - cumulative[bucket];
    let j = 0;
    while (left >= low[j]) left -= low[j++];
    const key = ((bucket << 16) | j) >>> 0;
    fu[0] = key & 0x80000000 ? key & 0x7fffffff : ~key;
    return f[0];
  };
  return ps.map((p) => {
    const h = ((n - 1) * p) / 100;
    const i = Math.floor(h);
    const si = valueAt(i);
    return i + 1 < n ? si + (h - i) * (valueAt(i + 1) - si) : si;
  });
}

/** `histogram` with a given range over a map given as blocks (the counts of each block added). */
export function blockHistogram(blocks: Blocks, binWidth: number, range: { min: number; max: number }): Histogram {
  let total: Histogram | null = null;
  blocks((b) => {
    const h = histogram(b, binWidth, range);
    if (!total) total = h;
    else for (let i = 0; i < h.counts.length; i++) total.counts[i] += h.counts[i];
  });
  return total ?? histogram(new Float32Array(0), binWidth, range);
}
