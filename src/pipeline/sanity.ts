/**
 * Physical sanity checks on what a run is given, before it runs, each an error that names
 * the real culprit:
 * - a stack whose every value is the same (all zero, blank, a constant): nothing to measure;
 * - flat and dark fields swapped, or a dark field as bright as the flat over most of the
 *   image: -ln((I-D)/(F-D)) would be nonsense (the dark field is named);
 * - a flat (or dark) field equal to the sample, the same file given twice: the absorbance
 *   would be zero (or undefined) everywhere (the field is named);
 * - energies that look like keV (every one below 100 eV, when no X-ray edge this engine
 *   maps lies below ~280 eV) without --energy-unit: the energies file is named (energies.ts).
 * The checks read SAMPLE_ROWS rows spread over the image, one row at a time, so they cost
 * little time and memory on any stack.
 */
import { InputError } from '../io/errors.js';
import type { StackSource } from '../stack/source.js';

/** Rows read for the checks, spread evenly over the image. */
const SAMPLE_ROWS = 16;
/** Share of the sampled points where the dark field is at least the flat field that makes them swapped. */
const SWAPPED_SHARE = 0.5;
/** Share of the sampled points where a field equals the sample that makes it the same data. */
const SAME_SHARE = 0.99;

const pct = (x: number) => `${(100 * x).toFixed(x > 0.999 && x < 1 ? 1 : 0)} %`;

export async function checkInputsPhysics(sample: StackSource, flat: StackSource | null, dark: StackSource | null, names: { stack: string; flat?: string; dark?: string }): Promise<void> {
  const { nE, height: H, width: W } = sample;
  const n = nE * W;
  const rows = Math.min(H, SAMPLE_ROWS);
  const s = new Float32Array(n);
  const f = flat ? new Float32Array(n) : null;
  const d = dark ? new Float32Array(n) : null;
  let lo = Infinity, hi = -Infinity, finite = 0, points = 0;
  let darkAtLeastFlat = 0, flatEqual = 0, darkEqual = 0, flatNonPositive = 0, pairs = 0;
  for (let k = 0; k < rows; k++) {
    const y = Math.floor(((k + 0.5) * H) / rows);
    await sample.readRows(y, 1, s);
    if (f) await flat!.readRows(y, 1, f);
    if (d) await dark!.readRows(y, 1, d);
    for (let i = 0; i < n; i++) {
      const v = s[i];
      points++;
      if (Number.isFinite(v)) {
        finite++;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (!f) continue;
      const fv = f[i];
      if (!Number.isFinite(fv) || !Number.isFinite(v)) continue;
      pairs++;
      if (sameValue(v, fv)) flatEqual++;
      if (d) {
        const dv = d[i];
        if (dv >= fv) darkAtLeastFlat++;
        if (sameValue(v, dv)) darkEqual++;
      } else if (fv <= 0) flatNonPositive++;
    }
  }
  if (finite === 0) throw new InputError(names.stack, `every value in ${rows} rows sampled across the image is NaN or infinite`);
  if (lo === hi) {
    throw new InputError(names.stack, `every value in ${rows} rows sampled across the image is ${lo}${lo === 0 ? ' (an empty or blank stack)' : ' (a constant stack)'}: there is no spectrum to measure`);
  }
  if (pairs === 0) return;
  if (names.flat && flatEqual / pairs >= SAME_SHARE) {
    throw new InputError(names.flat, `the flat field equals the sample ${names.stack} at ${pct(flatEqual / pairs)} of the points sampled: the absorbance would be zero everywhere (the same data given twice?)`);
  }
  if (d && names.dark && darkEqual / pairs >= SAME_SHARE) {
    throw new InputError(names.dark, `the dark field equals the sample ${names.stack} at ${pct(darkEqual / pairs)} of the points sampled: no transmission could be measured (the same data given twice?)`);
  }
  if (d && names.dark && darkAtLeastFlat / pairs > SWAPPED_SHARE) {
    throw new InputError(names.dark, `the dark field is at least as bright as the flat field${names.flat ? ` ${names.flat}` : ''} at ${pct(darkAtLeastFlat / pairs)} of the points sampled: are --flat and --dark swapped?`);
  }
  if (!d && names.flat && flatNonPositive / pairs > SWAPPED_SHARE) {
    throw new InputError(names.flat, `the flat field is zero or negative at ${pct(flatNonPositive / pairs)} of the points sampled: not a flat (open-beam) field`);
  }
}

/** Equal to float32 precision (the same counts written by two files, or one file twice). */
function sameValue(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-6 * Math.max(Math.abs(a), Math.abs(b));
}
