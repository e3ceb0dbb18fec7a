/**
 * Opening what a command is given: the stack (optionally with flat and dark stacks, turned
 * into absorbance), its energies, and checks that they belong together.
 */
import { openStack, type StackSource, type StackLayout } from '../stack/source.js';
import { fieldFor } from '../stack/frames.js';
import { AbsorbanceStack } from '../stack/absorbance.js';
import { readEnergies, checkEnergyCount, checkEnergyScale } from '../io/energies.js';
import { checkInputsPhysics } from './sanity.js';
import { InputError } from '../io/errors.js';
import { checkBudgetFloor, checkImageSize } from '../stack/tiles.js';
import { bandCacheOf } from '../io/hdf5.js';
import type { BandCache } from '../stack/tiles.js';
import { baselineBytes } from './run-tiles.js';
import { checkBudgetFitsMachine, outputPhaseBytes } from './memory.js';
import { OpticalDensityStack, opticalDensity, parseI0Options } from '../stack/od.js';
import type { AlignStep, Alignment } from '../align/align.js';

export interface StackInputs {
  stack: string;
  /** Required unless the stack carries its energies (STXM .hdr). */
  energies?: string;
  energyUnit?: string;
  flat?: string;
  dark?: string;
  /** Skip the flat and dark fields a file carries (HDF5 layouts, Xradia references). */
  noFlat?: boolean;
  /** µm per pixel; overrides what the file records. */
  pixelSize?: number;
  /** Optical density -ln(I/I0): I0 from a 2-column spectrum file... */
  i0?: string;
  /** ...or from a region of the stack (rect:x0,y0,x1,y1 or auto). */
  i0Region?: string;
  /** --align / --shifts: align the (absorbance) stack across energies before anything else. */
  align?: AlignStep;
  /** --memory, bytes: a stack that cannot fit it at all is refused when opened. */
  budgetBytes?: number;
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
  /** Bytes the readers hold while reading, whatever the tile (StackSource.readerBytes, summed over the files). */
  readerBytes: number;
  /** HDF5 files with chunks of many rows (FXI: 128): bands kept decompressed where the run's plan holds them. */
  bandCache: BandCache | null;
  /** [Z, Y, X] when the stack is a volume [E,Z,Y,X] (rows are Z·Y). */
  volume?: [number, number, number];
  /** µm per pixel along x and y (from --pixel-size or the file), if known. */
  pixelSizeUm?: { x: number; y: number };
  /** Where the flat and dark fields, energies and pixel size came from, for summary.json. */
  provenance: InputProvenance;
  warnings: string[];
  close(): void;
}

export interface InputProvenance {
  format: string;
  layout?: StackLayout;
  energies_from: string;
  flat_from: string | null;
  dark_from: string | null;
  flat_frames?: number;
  dark_frames?: number;
  pixel_size_um: { x: number; y: number } | null;
  pixel_size_from: string | null;
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
    checkImageSize(sample);
    if (inp.budgetBytes !== undefined) checkBudgetFitsMachine(inp.budgetBytes);
    if (inp.budgetBytes !== undefined) checkBudgetFloor(sample, inp.budgetBytes, baselineBytes(), outputPhaseBytes(sample.height, sample.width));
    const warnings: string[] = [...(sample.layout?.notes ?? []).map((n) => `${inp.stack}: ${n}`)];
    let energies: Float64Array;
    let energiesFrom: string;
    if (inp.energies) {
      energies = readEnergies(inp.energies, { unit });
      checkEnergyScale(energies, inp.energies, inp.energyUnit !== undefined);
      checkEnergyCount(energies, sample.nE, inp.energies, inp.stack);
      energiesFrom = inp.energies;
      if (sample.energies) warnings.push(`--energies ${inp.energies} overrides the energies stored in ${inp.stack}`);
    } else if (sample.energies) {
      energies = sample.energies;
      energiesFrom = sample.layout?.datasets.energies ? `${inp.stack}: ${sample.layout.datasets.energies}` : inp.stack;
    } else {
      throw new InputError('--energies', 'required: a text/CSV or .npy file with one energy per stack image');
    }
    let source: StackSource = sample;
    let absorbance: AbsorbanceStack | null = null;
    let flat: StackSource | null = null, dark: StackSource | null = null;
    let flatFrom: string | null = null, darkFrom: string | null = null;
    if (inp.flat) {
      flat = await openStack(inp.flat);
      opened.push(flat);
      flatFrom = inp.flat;
      dark = inp.dark ? await openStack(inp.dark) : null;
      if (dark) opened.push(dark);
      darkFrom = inp.dark ?? null;
      if (sample.flatField && !inp.noFlat) warnings.push(`--flat ${inp.flat} is used instead of the flat field stored in ${inp.stack}`);
    } else if (sample.flatField && !inp.noFlat) {
      flat = sample.flatField;
      dark = sample.darkField ?? null;
      flatFrom = `${inp.stack}: ${sample.layout?.datasets.flat ?? 'flat field'}`;
      darkFrom = dark ? `${inp.stack}: ${sample.layout?.datasets.dark ?? 'dark field'}` : null;
    }
    let flatFrames: number | undefined, darkFrames: number | undefined;
    if (flat) {
      flatFrames = flat.nE;
      darkFrames = dark?.nE;
      const flatField = fieldFor(flat, sample, 'flat');
      const darkField = dark ? fieldFor(dark, sample, 'dark') : null;
      await withSamplingBands(bandCacheOf([sample, flat, dark]), inp.budgetBytes, () => checkInputsPhysics(sample, flatField, darkField, { stack: inp.stack, flat: flatFrom ?? undefined, dark: darkFrom ?? undefined }));
      absorbance = new AbsorbanceStack(sample, flatField, darkField);
      source = absorbance;
    } else {
      await withSamplingBands(bandCacheOf([sample]), inp.budgetBytes, () => checkInputsPhysics(sample, null, null, { stack: inp.stack }));
    }
    let od: OpticalDensityStack | null = null;
    if (i0Spec) {
      od = await opticalDensity(source, energies, i0Spec);
      source = od;
    }
    let alignment: Alignment | null = null;
    let alignBytes = 0;
    if (inp.align) {
      const { applyAlignStep } = await import('../align/align.js');
      const r = await applyAlignStep(source, energies, inp.align, (l) => warnings.push(l));
      source = r.view;
      alignment = r.alignment;
      alignBytes = r.view.extraBytesPerPixel();
    }
    if (inp.pixelSize !== undefined && !(inp.pixelSize > 0 && Number.isFinite(inp.pixelSize))) {
      throw new InputError('--pixel-size', `expected a positive number of µm, got ${inp.pixelSize}`);
    }
    const pixelSizeUm = inp.pixelSize !== undefined ? { x: inp.pixelSize, y: inp.pixelSize } : sample.pixelSizeUm;
    const pixelFrom = inp.pixelSize !== undefined ? '--pixel-size' : sample.pixelSizeUm !== undefined ? `${inp.stack}${sample.layout?.datasets.pixel_size ? `: ${sample.layout.datasets.pixel_size}` : ''}` : null;
    const frameBytes = (f: StackSource | null) => (f && f.nE !== sample.nE ? 4 * f.nE : 0);
    const provenance: InputProvenance = {
      format: sample.layout?.format ?? formatOf(inp.stack),
      ...(sample.layout ? { layout: sample.layout } : {}),
      energies_from: energiesFrom,
      flat_from: flatFrom,
      dark_from: darkFrom,
      ...(flatFrames !== undefined ? { flat_frames: flatFrames } : {}),
      ...(darkFrames !== undefined ? { dark_frames: darkFrames } : {}),
      pixel_size_um: pixelSizeUm ?? null,
      pixel_size_from: pixelFrom,
    };
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
      extraBytesPerPixel: (absorbance ? absorbance.extraBytesPerPixel() + frameBytes(flat) + frameBytes(dark) : 0) + alignBytes,
      bandCache: bandCacheOf([sample, flat, dark]),
      readerBytes: [...new Set([sample, flat, dark].filter((x): x is StackSource => !!x))].reduce((a, x) => a + (x.readerBytes?.() ?? 0), 0),
      pixelSizeUm,
      volume: sample.volume,
      provenance,
      warnings,
      close: () => {
        source.close();
        for (const s of opened) s.close();
      },
    };
  } catch (e) {
    for (const s of opened) s.close();
    throw e;
  }
}

function formatOf(path: string): string {
  if (path.startsWith('synthetic:')) return 'synthetic';
  const ext = /\.([^./\\]*)$/.exec(path)?.[1].toLowerCase() ?? '';
  return ext === 'tif' || ext === 'tiff' ? 'tiff' : ext === 'hdr' ? 'stxm' : ext || 'unknown';
}

/**
 * Mean spectrum over up to `maxRows` rows spread evenly over the image (finite values
 * only): enough to find the nominal edge without a full extra pass over a huge stack.
 */
/**
 * Share of --memory the HDF5 band caches may take while rows are sampled before a run (the
 * physics checks, the mean spectrum for e0): nothing else of the run is held yet.
 */
export const SAMPLING_BAND_SHARE = 0.25;

/**
 * Runs `fn`, which samples rows spread over the image, with the HDF5 band caches on where
 * they fit SAMPLING_BAND_SHARE of the budget, so that each band of chunks is decompressed
 * once rather than once per sampled row; frees them afterwards (the run plans its own).
 */
export async function withSamplingBands<T>(band: BandCache | null, budgetBytes: number | undefined, fn: () => Promise<T>): Promise<T> {
  if (!band || budgetBytes === undefined || band.bytes > SAMPLING_BAND_SHARE * budgetBytes) return fn();
  band.use(true);
  try {
    return await fn();
  } finally {
    band.use(false);
    band.release();
  }
}

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
