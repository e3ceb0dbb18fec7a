/**
 * Opening what a command is given: the stack (optionally with flat and dark stacks, turned
 * into absorbance), its energies, and checks that they belong together.
 */
import { openStack, type StackSource } from '../stack/source.js';
import { AbsorbanceStack } from '../stack/absorbance.js';
import { readEnergies, checkEnergyCount } from '../io/energies.js';
import { InputError } from '../io/errors.js';
import { OpticalDensityStack, opticalDensity, parseI0Options } from '../stack/od.js';
import type { AlignStep, Alignment } from '../align/align.js';

export interface StackInputs {
  stack: string;
  /** Required unless the stack carries its energies (STXM .hdr). */
  energies?: string;
  energyUnit?: string;
  flat?: string;
  dark?: string;
  /** Optical density -ln(I/I0): I0 from a 2-column spectrum file... */
  i0?: string;
  /** ...or from a region of the stack (rect:x0,y0,x1,y1 or auto). */
  i0Region?: string;
  /** --align / --shifts: align the (absorbance) stack across energies before anything else. */
  align?: AlignStep;
}

export interface OpenedStack {
  source: StackSource;
  energies: Float64Array;
  /** Set when flat/dark were given: counts of points masked for non-positive transmission. */
  absorbance: AbsorbanceStack | null;
  /** Set when I0 was given (optical density). */
  od: OpticalDensityStack | null;
  /** Set with --align: the shifts removed (the source is then the aligned view). */
  alignment: Alignment | null;
  /** Pixel-energy points masked so far for non-positive transmission (flat/dark or I0). */
  maskedPoints(): number;
  /** Forgets the points counted while sampling (before the run proper). */
  resetMaskedPoints(): void;
  /** Host bytes per pixel the source needs beyond the tile itself. */
  extraBytesPerPixel: number;
  warnings: string[];
  close(): void;
}

export function parseEnergyUnit(v: string | undefined): 'eV' | 'keV' {
  const s = v ?? 'eV';
  if (s === 'eV' || s === 'keV') return s;
  throw new InputError('--energy-unit', `expected eV or keV, got '${s}'`);
}

export async function openInputs(inp: StackInputs): Promise<OpenedStack> {
  if (inp.dark && !inp.flat) throw new InputError('--dark', 'needs --flat as well (absorbance is -ln((I-D)/(F-D)))');
  const i0Spec = parseI0Options(inp.i0, inp.i0Region);
  if (i0Spec && inp.flat) throw new InputError('--i0', 'give either --flat (full-field absorbance) or --i0/--i0-region (optical density), not both');
  const unit = parseEnergyUnit(inp.energyUnit);
  const opened: StackSource[] = [];
  try {
    const sample = await openStack(inp.stack);
    opened.push(sample);
    let energies: Float64Array;
    if (inp.energies) {
      energies = readEnergies(inp.energies, { unit });
      checkEnergyCount(energies, sample.nE, inp.energies, inp.stack);
    } else if (sample.energies) {
      energies = sample.energies;
    } else {
      throw new InputError('--energies', 'required: a text/CSV or .npy file with one energy per stack image');
    }
    let source: StackSource = sample;
    let absorbance: AbsorbanceStack | null = null;
    if (inp.flat) {
      const flat = await openStack(inp.flat);
      opened.push(flat);
      const dark = inp.dark ? await openStack(inp.dark) : null;
      if (dark) opened.push(dark);
      absorbance = new AbsorbanceStack(sample, flat, dark);
      source = absorbance;
    }
    let od: OpticalDensityStack | null = null;
    if (i0Spec) {
      od = await opticalDensity(source, energies, i0Spec);
      source = od;
    }
    const warnings: string[] = [];
    let alignment: Alignment | null = null;
    let alignBytes = 0;
    if (inp.align) {
      const { applyAlignStep } = await import('../align/align.js');
      const r = await applyAlignStep(source, energies, inp.align, (l) => warnings.push(l));
      source = r.view;
      alignment = r.alignment;
      alignBytes = r.view.extraBytesPerPixel();
    }
    if (inp.energies && unit === 'eV' && energies[energies.length - 1] < 100) {
      warnings.push(`${inp.energies}: every energy is below 100 eV; if the file is in keV, pass --energy-unit keV`);
    }
    return {
      source,
      energies,
      absorbance,
      od,
      alignment,
      maskedPoints: () => (absorbance?.maskedPoints ?? 0) + (od?.maskedPoints ?? 0),
      resetMaskedPoints: () => {
        if (absorbance) absorbance.maskedPoints = 0;
        if (od) od.maskedPoints = 0;
      },
      extraBytesPerPixel: (absorbance ? absorbance.extraBytesPerPixel() : 0) + alignBytes,
      warnings,
      close: () => source.close(),
    };
  } catch (e) {
    for (const s of opened) s.close();
    throw e;
  }
}

/**
 * Mean spectrum over up to `maxRows` rows spread evenly over the image (finite values
 * only): enough to find the nominal edge without a full extra pass over a huge stack.
 */
export async function meanSpectrum(source: StackSource, maxRows = 64): Promise<Float64Array> {
  const { nE, height: H, width: W } = source;
  const nRows = Math.min(H, maxRows);
  const sum = new Float64Array(nE);
  const count = new Float64Array(nE);
  const buf = new Float32Array(nE * W);
  for (let k = 0; k < nRows; k++) {
    const y = Math.floor(((k + 0.5) * H) / nRows);
    await source.readRows(y, 1, buf);
    for (let e = 0; e < nE; e++) {
      for (let x = 0; x < W; x++) {
        const v = buf[e * W + x];
        if (Number.isFinite(v)) {
          sum[e] += v;
          count[e]++;
        }
      }
    }
  }
  const mean = new Float64Array(nE);
  for (let e = 0; e < nE; e++) mean[e] = count[e] > 0 ? sum[e] / count[e] : NaN;
  if (count.every((c) => c === 0)) throw new InputError(source.path, 'every sampled value is NaN or infinite');
  return mean;
}
