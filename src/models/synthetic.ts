/**
 * Synthetic V K-edge-like spectra from the erf-2lorentz preset with known parameters, for
 * the fit tests and the benchmark, and the ptychography-like energy grids they are sampled
 * on. Seeded (src/synth/random.ts), so a failure is reproducible from its seed.
 */
import { makeRng } from '../synth/random.js';
import type { FitModel } from './model.js';
import { PRESETS } from './model.js';

/**
 * The 40 energies of a ptychography-like V K-edge scan, 5420-5540 eV: coarse before the
 * pre-edge, 0.5 eV steps across the pre-edge peak (5466.5-5472) and the steepest part of the
 * edge (5477.5-5481), 1 eV between them, 2-4.5 eV over the white line, then three post-edge
 * points (5510-5540) for the edge step.
 */
export function vkGrid40(): Float64Array {
  const e: number[] = [5420, 5427, 5434, 5441, 5450, 5458, 5463];
  for (let x = 5466.5; x <= 5472; x += 0.5) e.push(x);
  for (let x = 5473; x <= 5477; x += 1) e.push(x);
  for (let x = 5477.5; x <= 5481; x += 0.5) e.push(x);
  e.push(5482, 5484, 5486.5, 5489.5, 5494, 5510, 5525, 5540);
  return Float64Array.from(e);
}

/**
 * n energies over 5420-5540 eV, ten times denser over 5464-5490 eV (pre-edge peak and edge)
 * than elsewhere: the benchmark's grids at 40 and 101 energies.
 */
export function vkGrid(n: number): Float64Array {
  if (n === 40) return vkGrid40();
  const lo = 5420, hi = 5540, a = 5464, b = 5490, dense = 10;
  const total = (a - lo) + dense * (b - a) + (hi - b);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = (i / (n - 1)) * total;
    if (s <= a - lo) out[i] = lo + s;
    else if (s <= a - lo + dense * (b - a)) out[i] = a + (s - (a - lo)) / dense;
    else out[i] = b + (s - (a - lo) - dense * (b - a));
  }
  return out;
}

export interface SyntheticFitData {
  model: FitModel;
  energies: Float64Array;
  /** Energy-major [nE][P]. */
  cube: Float32Array;
  /** True parameters, [param][P], user units. */
  truth: Float64Array[];
  /** Gaussian noise sigma of each pixel (data units). */
  sigma: Float64Array;
}

/**
 * Spectra of any model from per-pixel parameters (user units, [param][P]) plus Gaussian
 * noise of sigma[p], energy-major [nE][P] float32.
 */
export function spectraFromParams(model: FitModel, energies: Float64Array, truth: Float64Array[], sigma: Float64Array, seed: number): Float32Array {
  const rng = makeRng(seed);
  const nE = energies.length;
  const P = sigma.length;
  const np = model.paramNames.length;
  const cube = new Float32Array(nE * P);
  // As evaluateModel, without its per-call allocations (the benchmark makes millions).
  const eRef = (energies[0] + energies[nE - 1]) / 2;
  const q = new Float64Array(np);
  const d = new Float64Array(np);
  for (let p = 0; p < P; p++) {
    for (let k = 0; k < np; k++) q[k] = model.paramRoles[k] === 'energy' ? truth[k][p] - eRef : truth[k][p];
    for (let i = 0; i < nE; i++) {
      let clean = 0;
      for (const c of model.components) clean += c.def.evaluate(energies[i] - eRef, q, c.offset, d);
      cube[i * P + p] = clean + (sigma[p] > 0 ? sigma[p] * rng.normal() : 0);
    }
  }
  return cube;
}

/**
 * P spectra of the erf-2lorentz preset with parameters drawn per pixel (ranges like the V
 * oxides: edge 5477-5483 eV, pre-edge peak 5469.5-5471.5 eV, second Lorentzian 6-10 eV
 * above the edge) plus Gaussian noise of sigma = noise[p % noise.length] (data units; the
 * edge jump is 0.6-1.4). `fixed` replaces the drawn value of a parameter in every pixel.
 */
export function syntheticPresetSpectra(energies: Float64Array, P: number, seed: number, noise: readonly number[], fixed: Record<string, number> = {}): SyntheticFitData {
  const model = PRESETS['erf-2lorentz'].make();
  const rng = makeRng(seed);
  const u = (lo: number, hi: number) => lo + (hi - lo) * rng.uniform();
  const np = model.paramNames.length;
  const truth = Array.from({ length: np }, () => new Float64Array(P));
  const sigma = new Float64Array(P);
  for (let p = 0; p < P; p++) {
    const b1 = u(0.6, 1.4);
    const b2 = u(5477, 5483);
    const v = [u(-0.2, 0.2), b1, b2, u(2.5, 4.5), b1 * u(0.15, 0.7), u(5469.5, 5471.5), u(0.7, 1.4), b1 * u(0.3, 0.6), b2 + u(6, 10), u(2.5, 5)];
    for (let k = 0; k < np; k++) truth[k][p] = fixed[model.paramNames[k]] ?? v[k];
    sigma[p] = noise[p % noise.length];
  }
  const cube = spectraFromParams(model, energies, truth, sigma, seed + 1);
  return { model, energies, cube, truth, sigma };
}
