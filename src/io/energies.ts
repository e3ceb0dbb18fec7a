/**
 * Energy grids: one energy per stack image, in eV, strictly increasing.
 * From a 1-D .npy or a text file (one value per line, or the first column of a
 * CSV/whitespace table; '#' comments and blank lines skipped).
 */
import { InputError } from './errors.js';
import { readBounded } from './files.js';
import { formatShape, readNpy } from './npy.js';

export type EnergyUnit = 'eV' | 'keV';

/** Plain decimal numbers only: Number() would also take '0x1f', '' and 'Infinity'. */
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;

export function readEnergies(path: string, opts: { unit?: EnergyUnit } = {}): Float64Array {
  const unit = opts.unit ?? 'eV';
  if (unit !== 'eV' && unit !== 'keV') {
    throw new InputError(path, `unknown energy unit '${String(unit)}' (use eV or keV)`);
  }
  const scale = unit === 'keV' ? 1000 : 1;
  const values = path.toLowerCase().endsWith('.npy') ? fromNpy(path) : fromText(path);
  for (let i = 0; i < values.length; i++) values[i] *= scale;
  return values;
}

function fromNpy(path: string): Float64Array {
  const { data, shape } = readNpy(path);
  if (shape.length !== 1) {
    throw new InputError(path, `expected a 1-D array of energies, got shape ${formatShape(shape)}`);
  }
  if (data.length === 0) throw new InputError(path, 'no energies (empty array)');
  const out = Float64Array.from(data);
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i])) throw new InputError(path, `index ${i}: ${out[i]} is not a finite number`);
    if (i > 0 && !(out[i] > out[i - 1])) {
      throw new InputError(path, `energies not strictly increasing at index ${i}: ${out[i]} after ${out[i - 1]}`);
    }
  }
  return out;
}

function fromText(path: string): Float64Array {
  const text = readBounded(path, 'an energies file').toString('utf8');
  if (text.includes('\0')) throw new InputError(path, 'binary file: expected text (one energy per line) or .npy');
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  const values: number[] = [];
  let prev = '';
  let firstData = true;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    const lineNo = i + 1;
    if (line === '' || line.startsWith('#')) continue;
    const token = line.split(/[\s,;]+/)[0];
    // A first line with no digits at all (e.g. "energy,mu") is a column header, not data.
    if (firstData && !/\d/.test(token) && !NON_FINITE.test(token)) {
      firstData = false;
      continue;
    }
    firstData = false;
    if (NON_FINITE.test(token)) throw new InputError(path, `line ${lineNo}: '${token}' is not a finite number`);
    if (!NUMBER.test(token)) throw new InputError(path, `line ${lineNo}: '${token}' is not a number`);
    const v = Number(token);
    if (!Number.isFinite(v)) throw new InputError(path, `line ${lineNo}: '${token}' is not a finite number`);
    if (values.length > 0 && !(v > values[values.length - 1])) {
      throw new InputError(path, `energies not strictly increasing at line ${lineNo}: ${token} after ${prev}`);
    }
    values.push(v);
    prev = token;
  }
  if (values.length === 0) throw new InputError(path, 'no energies found (empty file)');
  return Float64Array.from(values);
}

/** The stack must have exactly one image per energy. */
export function checkEnergyCount(energies: ArrayLike<number>, depth: number, energiesPath: string, stackPath: string): void {
  if (energies.length !== depth) {
    throw new InputError(energiesPath, `energy count ${energies.length} != stack depth ${depth} (${stackPath})`);
  }
}
