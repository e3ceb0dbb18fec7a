// Readers for the plain-text reference spectra and energy grids bundled in examples/data,
// and the linear interpolation used to put a reference onto a scan's energy grid.
import { readFileSync } from 'node:fs';

export interface Spectrum {
  /** eV, strictly increasing. */
  energy: Float64Array;
  mu: Float64Array;
}

// Files in keV hold values near 0.3-30; eV files hold hundreds and up. No X-ray edge used
// here lies below 100 eV, so the threshold cannot misread a unit.
const KEV_THRESHOLD = 100;

function numericRows(path: string, minCols: number): number[][] {
  const rows: number[][] = [];
  const lines = readFileSync(path, 'utf8').split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const cols = line.split(/[\s,]+/).map(Number);
    if (cols.length < minCols || cols.slice(0, minCols).some((v) => !Number.isFinite(v))) {
      throw new Error(`${path}:${i + 1}: expected ${minCols} numeric column(s), got '${line}'`);
    }
    rows.push(cols);
  }
  if (rows.length === 0) throw new Error(`${path}: no data rows`);
  return rows;
}

function toEv(values: Float64Array, path: string): Float64Array {
  let max = -Infinity;
  for (const v of values) max = Math.max(max, v);
  if (max < KEV_THRESHOLD) for (let i = 0; i < values.length; i++) values[i] *= 1000;
  for (let i = 1; i < values.length; i++) {
    if (!(values[i] > values[i - 1])) {
      throw new Error(`${path}: energies must be strictly increasing (row ${i + 1})`);
    }
  }
  return values;
}

/** Two columns (energy, mu), '#' comments allowed; energies in keV are converted to eV. */
export function readTwoColumnSpectrum(path: string): Spectrum {
  const rows = numericRows(path, 2);
  const energy = toEv(Float64Array.from(rows, (r) => r[0]), path);
  const mu = Float64Array.from(rows, (r) => r[1]);
  return { energy, mu };
}

/** One energy per line (keV or eV) -> Float64Array in eV. */
export function readEnergyList(path: string): Float64Array {
  return toEv(Float64Array.from(numericRows(path, 1), (r) => r[0]), path);
}

/**
 * y(xq) by linear interpolation on increasing x. Outside [x0, xN] the end value is held:
 * normalised spectra are flat far from the edge, so holding is the least surprising
 * extrapolation. NaN xq gives NaN.
 */
export function interpLinear(x: Float64Array, y: Float64Array, xq: number): number {
  const n = x.length;
  if (n === 0 || Number.isNaN(xq)) return NaN;
  if (xq <= x[0]) return y[0];
  if (xq >= x[n - 1]) return y[n - 1];
  let lo = 0;
  let hi = n - 1; // invariant: x[lo] < xq < x[hi] (or equal at lo)
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (x[mid] <= xq) lo = mid;
    else hi = mid;
  }
  const f = (xq - x[lo]) / (x[hi] - x[lo]);
  return y[lo] + f * (y[hi] - y[lo]);
}
