// Axis ticks at "nice" steps (1, 2, 2.5, 5 x 10^n) and labels with just enough decimals to
// tell neighbouring ticks apart: 8338, 8340, ... rather than 8338.000 or 8.338e3.

/** Tick values inside [lo, hi] at a nice step giving about `target` ticks. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const step = niceStep((hi - lo) / Math.max(1, target - 1));
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  const ticks: number[] = [];
  for (let k = first; k <= last; k++) ticks.push(k * step === 0 ? 0 : k * step);
  return ticks;
}

function niceStep(raw: number): number {
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const m = f < 1.5 ? 1 : f < 2.25 ? 2 : f < 3.5 ? 2.5 : f < 7.5 ? 5 : 10;
  return m * mag;
}

/**
 * Labels for a set of tick values: fixed-point with the fewest decimals (<= 6) that keeps
 * every value exact to 1e-9 of the spacing; exponent form for very large or tiny values.
 */
export function formatTicks(values: number[]): string[] {
  if (values.length === 0) return [];
  const maxAbs = Math.max(...values.map(Math.abs));
  const span = values.length > 1 ? Math.abs(values[values.length - 1] - values[0]) / (values.length - 1) : maxAbs;
  if (maxAbs !== 0 && (maxAbs >= 1e6 || maxAbs < 1e-3)) return values.map((v) => fmtExp(v, span));
  let decimals = 0;
  const tol = 1e-9 * (span || 1);
  while (decimals < 6 && values.some((v) => Math.abs(Number(v.toFixed(decimals)) - v) > tol)) decimals++;
  return values.map((v) => noNegativeZero(v.toFixed(decimals)));
}

function fmtExp(v: number, span: number): string {
  if (v === 0) return '0';
  // Significant digits enough to resolve the spacing between ticks.
  const digits = Math.min(6, Math.max(1, Math.ceil(Math.log10(Math.abs(v) / (span || Math.abs(v)))) + 1));
  return v.toExponential(digits - 1).replace(/\.?0+e/, 'e').replace('e+', 'e');
}

function noNegativeZero(s: string): string {
  return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
}

/** One value formatted with about `sig` significant digits (legend, CSV-like output). */
export function formatValue(v: number, sig = 4): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(sig - 1).replace(/\.?0+e/, 'e').replace('e+', 'e');
  const decimals = Math.max(0, sig - 1 - Math.floor(Math.log10(a)));
  return noNegativeZero(v.toFixed(decimals));
}
