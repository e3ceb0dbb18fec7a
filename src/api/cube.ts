/**
 * A cube handed to the library API: float32 [E][H][W], energy-major (the order the
 * instruments write and the engine reads), with its energies in eV. Checked as the CLI
 * checks a stack and its energies file (src/io/energies.ts, src/pipeline/sanity.ts), then
 * wrapped as a MemoryStack, which the tiled runner reads rows from without copying the cube.
 */
import { InputError } from '../io/errors.js';
import { checkEnergyCount } from '../io/energies.js';
import { checkImageSize } from '../stack/tiles.js';
import { MemoryStack } from '../stack/source.js';
import { checkInputsPhysics } from '../pipeline/sanity.js';
import { checkSize, type CubeShape } from './options.js';

/** Below this every energy is taken for keV, as the CLI does without --energy-unit (energies.ts). */
const KEV_SUSPECT_EV = 100;

export interface CheckedCube {
  source: MemoryStack;
  energies: Float64Array;
}

/** Energies in eV: finite, strictly increasing, one per image; a copy as float64. */
export function checkEnergies(where: string, energies: ArrayLike<number>, nE?: number): Float64Array {
  if (energies === null || typeof energies !== 'object' || typeof energies.length !== 'number') throw new InputError(where, 'energies: expected an array of energies in eV');
  if (energies.length === 0) throw new InputError(where, 'energies: no energies (empty array)');
  const e = Float64Array.from(energies);
  for (let i = 0; i < e.length; i++) {
    if (!Number.isFinite(e[i])) throw new InputError(where, `energies: index ${i}: ${e[i]} is not a finite number`);
    if (i > 0 && !(e[i] > e[i - 1])) throw new InputError(where, `energies: not strictly increasing at index ${i}: ${e[i]} after ${e[i - 1]}`);
  }
  if (e[e.length - 1] < KEV_SUSPECT_EV) {
    throw new InputError(where, `energies: every energy is below ${KEV_SUSPECT_EV} eV (the last is ${e[e.length - 1]}): keV? The library takes eV (multiply by 1000)`);
  }
  if (nE !== undefined) checkEnergyCount(e, nE, `${where}: energies`, 'the cube');
  return e;
}

/** The cube as a stack the pipeline reads, after the CLI's checks (size, energies, blank or constant data). */
export async function checkCube(where: string, cube: Float32Array, energies: ArrayLike<number>, shape: CubeShape): Promise<CheckedCube> {
  if (!(cube instanceof Float32Array)) throw new InputError(where, 'cube: expected a Float32Array [energies][height][width] (energy-major)');
  const height = checkSize(where, 'height', shape.height);
  const width = checkSize(where, 'width', shape.width);
  const e = checkEnergies(where, energies);
  const nE = e.length;
  if (cube.length !== nE * height * width) {
    throw new InputError(where, `cube: ${cube.length} values is not ${nE} energies x ${height} x ${width} pixels (${nE * height * width})`);
  }
  const source = new MemoryStack(cube, nE, height, width, 'cube');
  checkImageSize(source);
  await checkInputsPhysics(source, null, null, { stack: `${where}: cube` });
  return { source, energies: e };
}
