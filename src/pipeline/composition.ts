/**
 * Composition maps of spectroscopic ptychography (Uematsu et al. 2023, V K-edge): from the
 * absorption edge jump and the phase image at a pre-edge energy, per pixel
 *   N_V    = dmu_t / (r_e lambda_edge df''_V)   projected V atoms per nm^2
 *   Re_Ne  = -phi / (r_e lambda_phase)          projected electrons per nm^2 (Z + f')
 *   Re_Ne_over_N_V = Re_Ne / N_V                electrons per V atom
 * dmu_t is the edge jump of the stack as given (the fit's b1; for a ptychographic object
 * O = exp(i phi - dmu_t) it is the jump of -ln|O|), lambda = hc / E (nm), r_e the classical
 * electron radius. The ratio is compared with theoretical values of named compositions,
 * sum_j n_j (Z_j + f'_j) / n_V. Plain map arithmetic in float64, written as float32.
 */
import { InputError } from '../io/errors.js';
import { readNpy } from '../io/npy.js';

/** Classical electron radius, nm (CODATA 2018). */
export const R_E_NM = 2.8179403262e-6;
/** h c, eV nm (CODATA 2018). */
export const HC_EV_NM = 1239.84198;
/** Atomic numbers of the elements named in compositions. */
export const ATOMIC_NUMBER: Record<string, number> = { H: 1, Li: 3, C: 6, N: 7, O: 8, F: 9, Na: 11, Mg: 12, P: 15, S: 16, Ti: 22, V: 23, Cr: 24, Mn: 25, Fe: 26, Co: 27, Ni: 28 };

/** Defaults of Uematsu et al. 2023 (V K-edge): df''_V and f' of Li, V and O at the phase energy. */
export const DEFAULT_DELTA_F2 = 3.53;
export const DEFAULT_F_PRIME: Record<string, number> = { Li: 0.00278, V: -7.14, O: 0.0757 };

/** Compositions whose electrons per V are printed beside the map (formula units). */
export const NAMED_COMPOSITIONS: { name: string; atoms: Record<string, number> }[] = [
  { name: 'V2O3', atoms: { V: 2, O: 3 } },
  { name: 'VO2', atoms: { V: 1, O: 2 } },
  { name: 'V2O5', atoms: { V: 2, O: 5 } },
  { name: 'LiV2O5', atoms: { Li: 1, V: 2, O: 5 } },
  { name: 'Li2V2O5', atoms: { Li: 2, V: 2, O: 5 } },
  { name: 'LiV3O8', atoms: { Li: 1, V: 3, O: 8 } },
];

export interface CompositionOptions {
  /** Energy of the phase image, eV (a pre-edge energy). */
  phaseEnergy: number;
  /** Energy of the absorption edge, eV (lambda of the jump). */
  edgeEnergy: number;
  deltaF2?: number;
  fPrime?: Record<string, number>;
}

/** Electrons per V atom of a composition: sum_j n_j (Z_j + f'_j) / n_V. */
export function electronsPerV(atoms: Record<string, number>, fPrime: Record<string, number>): number {
  let e = 0;
  for (const [el, n] of Object.entries(atoms)) {
    const z = ATOMIC_NUMBER[el];
    if (z === undefined) throw new InputError('--f-prime', `unknown element '${el}'`);
    e += n * (z + (fPrime[el] ?? 0));
  }
  if (!(atoms.V > 0)) throw new InputError('--f-prime', 'a composition needs V');
  return e / atoms.V;
}

export function theoreticalRatios(fPrime: Record<string, number> = DEFAULT_F_PRIME): { name: string; Re_Ne_over_N_V: number }[] {
  return NAMED_COMPOSITIONS.map((c) => ({ name: c.name, Re_Ne_over_N_V: electronsPerV(c.atoms, fPrime) }));
}

/** The three maps from the edge jump map and the phase image (both [H*W]; NaN stays NaN). */
export function compositionMaps(deltaMuT: ArrayLike<number>, phase: ArrayLike<number>, o: CompositionOptions): { N_V: Float32Array; Re_Ne: Float32Array; Re_Ne_over_N_V: Float32Array } {
  if (deltaMuT.length !== phase.length) throw new InputError('--phase', `the phase image has ${phase.length} pixels, the maps ${deltaMuT.length}`);
  if (!(o.phaseEnergy > 0)) throw new InputError('--phase-energy', `expected a positive energy in eV, got ${o.phaseEnergy}`);
  const df2 = o.deltaF2 ?? DEFAULT_DELTA_F2;
  if (!(df2 > 0)) throw new InputError('--delta-f2', `expected a positive number, got ${df2}`);
  const nv = R_E_NM * (HC_EV_NM / o.edgeEnergy) * df2;
  const ne = R_E_NM * (HC_EV_NM / o.phaseEnergy);
  const n = deltaMuT.length;
  const N_V = new Float32Array(n), Re_Ne = new Float32Array(n), ratio = new Float32Array(n);
  for (let p = 0; p < n; p++) {
    const a = deltaMuT[p] / nv;
    const b = -phase[p] / ne;
    N_V[p] = a;
    Re_Ne[p] = b;
    ratio[p] = a > 0 ? b / a : NaN;
  }
  return { N_V, Re_Ne, Re_Ne_over_N_V: ratio };
}

export const COMPOSITION_UNITS: Record<string, string> = {
  N_V: 'V atoms per nm^2 (projected)',
  Re_Ne: 'electrons per nm^2 (projected, Z + f\')',
  Re_Ne_over_N_V: 'electrons per V atom',
};

/** What a run needs for the composition maps (the fit's --phase options). */
export interface CompositionRequest {
  phase: string;
  phaseEnergy: number;
  deltaF2?: number;
  fPrime?: Record<string, number>;
}

/**
 * The phase image [H*W] from a .npy file: 2-D [H, W] (the image at --phase-energy), or 3-D
 * [E, H, W] on the stack's energies (the frame nearest --phase-energy).
 */
export function loadPhaseImage(file: string, energies: Float64Array, phaseEnergy: number, H: number, W: number): { image: Float32Array; energy: number } {
  if (!file.toLowerCase().endsWith('.npy')) throw new InputError(file, 'the phase image must be a .npy file ([H, W] radians, or [E, H, W] on the stack\'s energies)');
  const { data, shape } = readNpy(file);
  const size = H * W;
  if (shape.length === 2 && shape[0] === H && shape[1] === W) return { image: Float32Array.from(data as ArrayLike<number>), energy: phaseEnergy };
  if (shape.length === 3 && shape[0] === energies.length && shape[1] === H && shape[2] === W) {
    let k = 0;
    for (let i = 1; i < energies.length; i++) if (Math.abs(energies[i] - phaseEnergy) < Math.abs(energies[k] - phaseEnergy)) k = i;
    return { image: Float32Array.from((data as ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> }).subarray(k * size, (k + 1) * size)), energy: energies[k] };
  }
  throw new InputError(file, `shape [${shape.join(', ')}]: expected [${H}, ${W}] or [${energies.length}, ${H}, ${W}] (the stack's energies and image size)`);
}

/** Composition maps of a fit's results (b1 = the edge jump), and what summary.json records. */
export function compositionOfFit(maps: Record<string, Float32Array>, req: CompositionRequest, energies: Float64Array, edgeEnergy: number, H: number, W: number) {
  if (!maps.b1) throw new InputError('--phase', 'the composition maps need the edge jump b1 of an erf preset model (erf-2lorentz, erf-lorentz)');
  const ph = loadPhaseImage(req.phase, energies, req.phaseEnergy, H, W);
  const fPrime = { ...DEFAULT_F_PRIME, ...req.fPrime };
  const out = compositionMaps(maps.b1, ph.image, { phaseEnergy: ph.energy, edgeEnergy, deltaF2: req.deltaF2, fPrime });
  const ratios = Array.from(out.Re_Ne_over_N_V).filter(Number.isFinite).sort((a, b) => a - b);
  return {
    maps: out as Record<string, Float32Array>,
    record: {
      phase: req.phase, phase_energy_eV: ph.energy, edge_energy_eV: edgeEnergy, delta_f2: req.deltaF2 ?? DEFAULT_DELTA_F2, f_prime: fPrime,
      formulas: 'N_V = b1 / (r_e lambda_edge df2); Re_Ne = -phase / (r_e lambda_phase); lambda = hc / E (Uematsu et al. 2023)',
      median_Re_Ne_over_N_V: ratios.length ? ratios[ratios.length >> 1] : null,
      theoretical_Re_Ne_over_N_V: theoreticalRatios(fPrime),
      units: COMPOSITION_UNITS,
    },
  };
}
