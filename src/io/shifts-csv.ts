/**
 * shifts.csv: one line per image, `index,energy_eV,dy_px,dx_px`. dy, dx are the
 * displacement of the image's content relative to the reference, which alignment removes:
 * positive dy means the content had moved down (toward larger row index), positive dx
 * right. (scikit-image's phase_cross_correlation returns the opposite sign: the shift that
 * registers the moving image.)
 */
import fs from 'node:fs';
import { InputError } from './errors.js';

export const SHIFTS_HEADER = 'index,energy_eV,dy_px,dx_px';

export function shiftsCsv(energies: ArrayLike<number>, dy: ArrayLike<number>, dx: ArrayLike<number>): string {
  const lines = [SHIFTS_HEADER];
  for (let e = 0; e < dy.length; e++) lines.push(`${e},${Number(energies[e].toPrecision(12))},${round(dy[e])},${round(dx[e])}`);
  return lines.join('\n') + '\n';
}

/** Shifts are kept to 1e-4 px (registration is good to ~1e-2 px): what the file holds is what was applied. */
export function roundShift(v: number): number {
  return Math.round(v * 1e4) / 1e4 + 0;
}

function round(v: number): string {
  return roundShift(v).toString();
}

/** Reads a shifts.csv for a stack of nE images (any column order; index must cover 0..nE-1). */
export function readShiftsCsv(path: string, nE: number): { dy: Float64Array; dx: Float64Array } {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputError(path, code === 'ENOENT' ? 'no such file' : `cannot read: ${(e as Error).message}`);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0 && !l.startsWith('#'));
  if (lines.length === 0) throw new InputError(path, 'empty shifts file');
  const head = lines[0].split(',').map((s) => s.trim());
  const col = (name: string) => {
    const i = head.indexOf(name);
    if (i < 0) throw new InputError(path, `no '${name}' column (expected the header ${SHIFTS_HEADER})`);
    return i;
  };
  const ci = col('index'), cy = col('dy_px'), cx = col('dx_px');
  const dy = new Float64Array(nE).fill(NaN), dx = new Float64Array(nE).fill(NaN);
  for (let k = 1; k < lines.length; k++) {
    const f = lines[k].split(',');
    const i = Number(f[ci]), y = Number(f[cy]), x = Number(f[cx]);
    if (!Number.isInteger(i) || !Number.isFinite(y) || !Number.isFinite(x)) throw new InputError(path, `line ${k + 1}: expected an integer index and finite dy_px, dx_px, got '${lines[k]}'`);
    if (i < 0 || i >= nE) throw new InputError(path, `line ${k + 1}: index ${i} is outside the stack's ${nE} images`);
    dy[i] = y;
    dx[i] = x;
  }
  const missing = [...dy.keys()].filter((i) => Number.isNaN(dy[i]));
  if (missing.length > 0) throw new InputError(path, `${lines.length - 1} shifts for a stack of ${nE} images (missing index ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', ...' : ''})`);
  return { dy, dx };
}
