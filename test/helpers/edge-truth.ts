/**
 * Ground truth for e0_half of the synthetic Ni stack, computed independently of the
 * kernels: the mixture spectrum of state of charge s is normalised with the same windows
 * (pre-edge line, post-edge polynomial fitted on the scan's energies, here by plain
 * float64 normal equations in absolute eV) and its 0.5 crossing is found on a 5 meV grid
 * of the model function itself (the measured references, linearly interpolated).
 * Absorbance = film + t (jump mix + linear matrix background): both fits absorb the
 * linear terms exactly, so the normalised spectrum of every particle pixel depends on s
 * alone.
 */
import { niMixtureSpectrum } from '../../src/synth/ni-txm.js';
import type { EdgeOptions } from '../../src/pipeline/edge-plan.js';

function polyfit(x: number[], y: number[], deg: number, xc: number): number[] {
  const n = deg + 1;
  const a = Array.from({ length: n }, () => new Array(n + 1).fill(0));
  for (let i = 0; i < x.length; i++) {
    const u = x[i] - xc;
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) a[r][c] += u ** (r + c);
      a[r][n] += u ** r * y[i];
    }
  }
  // Gauss-Jordan with partial pivoting.
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r][c]) > Math.abs(a[piv][c])) piv = r;
    [a[c], a[piv]] = [a[piv], a[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = a[r][c] / a[c][c];
      for (let k = c; k <= n; k++) a[r][k] -= f * a[c][k];
    }
  }
  return a.map((row, r) => row[n] / row[r]);
}

const evalPoly = (c: number[], u: number) => c.reduce((acc, ci, k) => acc + ci * u ** k, 0);

export function e0HalfTruth(s: number, energies: Float64Array, e0: number, o: EdgeOptions): number {
  const mix = niMixtureSpectrum(s, energies);
  const pick = (lo: number, hi: number) => {
    const xs: number[] = [], ys: number[] = [];
    energies.forEach((e, i) => { if (e - e0 >= lo && e - e0 <= hi) { xs.push(e); ys.push(mix[i]); } });
    return [xs, ys] as const;
  };
  const [px, py] = pick(o.pre1, o.pre2);
  const [qx, qy] = pick(o.norm1, o.norm2);
  const pre = polyfit(px, py, 1, e0);
  const post = polyfit(qx, qy, o.nnorm, e0);
  const step = evalPoly(post, 0) - evalPoly(pre, 0);
  const fine = new Float64Array(6001).map((_, i) => e0 - 15 + i * 0.005);
  const mf = niMixtureSpectrum(s, fine);
  let best = NaN;
  for (let i = 0; i + 1 < fine.length; i++) {
    const a = (mf[i] - evalPoly(pre, fine[i] - e0)) / step;
    const b = (mf[i + 1] - evalPoly(pre, fine[i + 1] - e0)) / step;
    if (a < 0.5 && b >= 0.5) {
      const xc = fine[i] + ((0.5 - a) * (fine[i + 1] - fine[i])) / (b - a);
      if (!Number.isFinite(best) || Math.abs(xc - e0) < Math.abs(best - e0)) best = xc;
    }
  }
  return best;
}

/** e0HalfTruth over a map of s (NaN stays NaN), memoised on s rounded to 1e-4. */
export function e0HalfTruthMap(soc: Float32Array, energies: Float64Array, e0: number, o: EdgeOptions): Float32Array {
  const memo = new Map<number, number>();
  return soc.map((s) => {
    if (!Number.isFinite(s)) return NaN;
    const key = Math.round(s * 1e4);
    let v = memo.get(key);
    if (v === undefined) memo.set(key, (v = e0HalfTruth(key / 1e4, energies, e0, o)));
    return v;
  });
}
