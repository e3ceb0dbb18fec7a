/**
 * Physical units as beamline files write them: energies (eV, keV, J) and lengths (m .. nm),
 * converted to the engine's units (eV, µm). A unit string we do not know is an error naming
 * where it came from: guessing a factor of 1000 silently would shift every edge.
 */
import { InputError } from './errors.js';

/** The elementary charge, C (exact in the 2019 SI): 1 eV = this many J. */
export const ELECTRON_VOLT_J = 1.602176634e-19;

const ENERGY_TO_EV: Record<string, number> = {
  ev: 1,
  electronvolt: 1,
  electronvolts: 1,
  kev: 1e3,
  kiloelectronvolt: 1e3,
  kiloelectronvolts: 1e3,
  j: 1 / ELECTRON_VOLT_J,
  joule: 1 / ELECTRON_VOLT_J,
  joules: 1 / ELECTRON_VOLT_J,
};

const LENGTH_TO_UM: Record<string, number> = {
  m: 1e6,
  meter: 1e6,
  metre: 1e6,
  mm: 1e3,
  um: 1,
  'µm': 1,
  'μm': 1,
  micron: 1,
  microns: 1,
  micrometer: 1,
  micrometre: 1,
  nm: 1e-3,
  nanometer: 1e-3,
  nanometre: 1e-3,
  angstrom: 1e-4,
  'å': 1e-4,
};

function key(unit: string): string {
  return unit.trim().toLowerCase();
}

export function isEnergyUnit(unit: string): boolean {
  return key(unit) in ENERGY_TO_EV;
}

export function isLengthUnit(unit: string): boolean {
  return key(unit) in LENGTH_TO_UM;
}

/** Factor that turns a value in `unit` into eV; `where` names the dataset for the error. */
export function energyFactor(unit: string, where: string): number {
  const f = ENERGY_TO_EV[key(unit)];
  if (f === undefined) throw new InputError(where, `unknown energy unit '${unit}' (known: eV, keV, J)`);
  return f;
}

/** Factor that turns a value in `unit` into µm. */
export function lengthFactor(unit: string, where: string): number {
  const f = LENGTH_TO_UM[key(unit)];
  if (f === undefined) throw new InputError(where, `unknown length unit '${unit}' (known: m, mm, um, nm)`);
  return f;
}

/**
 * A length written as text with its unit, as some beamlines store the pixel size
 * ("21.3nm", "0.02 um"); null when the text is not of that form.
 */
export function parseLengthText(text: string): number | null {
  const m = /^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-zµμÅå]+)\s*$/.exec(text);
  if (!m) return null;
  const f = LENGTH_TO_UM[key(m[2])];
  return f === undefined ? null : Number(m[1]) * f;
}
