/**
 * A synthetic spectroscopic-ptychography field at the V K-edge with known truth, for the
 * demo's fit and clustering steps: three chemical domains with the edge energy and
 * pre-edge peak of V3+, V4+ and V5+ oxides (values from fitting the erf-2lorentz preset to
 * the measured V2O3, VO2 and V2O5 spectra, see test/kernels/fit.test.ts), a thickness that
 * scales the edge jump, empty background, Gaussian noise, on the 40-energy grid.
 */
import { PRESETS } from '../models/model.js';
import { spectraFromParams, vkGrid40 } from '../models/synthetic.js';
import { makeRng } from './random.js';
import { DEFAULT_DELTA_F2, HC_EV_NM, R_E_NM, theoreticalRatios } from '../pipeline/composition.js';

/** b2 (eV), pre-edge peak centre (eV) and PE/b1 (eV) per domain: V3+, V4+, V5+. */
export const VK_DOMAINS = [
  { name: 'V3+', b2: 5478.4, c12: 5469.6, peOverB1: 0.3 },
  { name: 'V4+', b2: 5481.4, c12: 5470.0, peOverB1: 1.56 },
  { name: 'V5+', b2: 5482.3, c12: 5470.6, peOverB1: 2.18 },
] as const;

export interface VkPtychoStack {
  energies: Float64Array;
  /** Energy-major [nE][H][W], absorbance-like. */
  cube: Float32Array;
  truth: { domain: Int16Array; b1: Float32Array; b2: Float32Array; peOverB1: Float32Array };
}

export function makeVkPtychoStack(size: number, seed: number, noise = 0.01): VkPtychoStack {
  const model = PRESETS['erf-2lorentz'].make();
  const energies = vkGrid40();
  const N = size * size;
  const rng = makeRng(seed);
  const truth = model.paramNames.map(() => new Float64Array(N));
  const domain = new Int16Array(N).fill(-1);
  const b1Map = new Float32Array(N).fill(NaN), b2Map = new Float32Array(N).fill(NaN), peMap = new Float32Array(N).fill(NaN);
  // Three overlapping discs on one particle: domain by the nearest disc centre.
  const centres = [[0.35, 0.4], [0.65, 0.35], [0.5, 0.68]];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      const u = (x + 0.5) / size, v = (y + 0.5) / size;
      const r = Math.hypot(u - 0.5, v - 0.5);
      const t = r < 0.42 ? Math.sqrt(1 - (r / 0.42) ** 2) : 0; // projected thickness of a sphere
      let d = 0, best = Infinity;
      centres.forEach(([cx, cy], j) => {
        const dd = Math.hypot(u - cx, v - cy);
        if (dd < best) { best = dd; d = j; }
      });
      const D = VK_DOMAINS[d];
      const b1 = 1.1 * t; // empty pixels have no edge: the fit masks PE where b1 < the noise
      const c13 = 1.0;
      const params = [0.02 * rng.normal(), b1, D.b2 + 0.2 * rng.normal(), 3, (D.peOverB1 * b1) / (Math.PI * c13), D.c12, c13, 0.4 * b1, D.b2 + 8, 4];
      params.forEach((val, k) => (truth[k][p] = val));
      if (t > 0) {
        domain[p] = d;
        b1Map[p] = b1;
        b2Map[p] = params[2];
        peMap[p] = D.peOverB1;
      }
    }
  }
  const cube = spectraFromParams(model, energies, truth, new Float64Array(N).fill(noise), seed + 1);
  return { energies, cube, truth: { domain, b1: b1Map, b2: b2Map, peOverB1: peMap } };
}

/** The composition of each demo domain (V3+, V4+, V5+ oxides), for the synthetic phase image. */
export const VK_DOMAIN_COMPOSITIONS = ['V2O3', 'VO2', 'V2O5'] as const;

/**
 * A phase image (radians, [H*W]) consistent with the stack's edge jump b1 and each domain's
 * composition (seed 002): N_V = b1 / (r_e lambda_edge df''), electrons per V from the
 * composition, phase = -r_e lambda_phase N_V (electrons per V). Empty pixels: 0.
 */
export function vkPhaseImage(b1: Float32Array, domain: Int16Array, phaseEnergy: number, edgeEnergy: number): Float32Array {
  const ratio = VK_DOMAIN_COMPOSITIONS.map((name) => theoreticalRatios().find((t) => t.name === name)!.Re_Ne_over_N_V);
  const nv = R_E_NM * (HC_EV_NM / edgeEnergy) * DEFAULT_DELTA_F2;
  const ne = R_E_NM * (HC_EV_NM / phaseEnergy);
  return Float32Array.from(b1, (b, p) => (domain[p] >= 0 && b > 0 ? -ne * (b / nv) * ratio[domain[p]] : 0));
}
