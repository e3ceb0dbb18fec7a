/**
 * Optical density of a transmission stack, tile by tile: OD(E) = -ln(I(E) / I0(E)).
 *
 * I0 comes from
 *  - a 2-column spectrum file (energy, I0; e.g. an .xsp from the beamline), interpolated
 *    linearly onto the stack's energies; it must cover them. Energies in keV are detected
 *    (all below 100) and converted;
 *  - a region of the stack itself (`rect:x0,y0,x1,y1`, see src/stack/regions.ts): the mean
 *    transmitted spectrum of the region;
 *  - `auto`: the brightest, most uniform area, by this rule: the image of each pixel's mean
 *    over all energies is cut into square blocks of side b = clamp(round(min(W, H) / 5), 3, 64)
 *    pixels, placed every b/2 pixels (rounded down, at least 1); among the blocks whose mean
 *    is within 2 % of the brightest block's, the one with the smallest relative standard
 *    deviation (std / mean over its pixels) is I0's region. Bright = no absorber in the
 *    beam; uniform = no particle edge, hot pixel or scan artefact inside.
 * A non-positive (or non-finite) I, or a non-positive I0 at an energy, gives NaN at that
 * point; these are counted (maskedPoints) and the kernels treat NaN as missing data.
 */
import { InputError } from '../io/errors.js';
import { readSpectrumFile } from '../io/references.js';
import { parseRegion, regionSpectra, REGION_READ_BYTES, type Region } from './regions.js';
import type { StackSource } from './source.js';
import { TransmissionThreads, sharedAtLeast } from './transmission.js';
import { isShared } from '../cpu/threads.js';

export type I0Spec = { kind: 'file'; path: string } | { kind: 'region'; spec: string } | { kind: 'auto' };

export interface I0 {
  /** I0 on the stack's energies. */
  values: Float64Array;
  /** How it was obtained, for summary.json. */
  source: { kind: 'file'; path: string } | { kind: 'region'; spec: string; pixels: number } | { kind: 'auto'; spec: string; pixels: number; rule: string };
  /** Energies (eV) where I0 is not positive: OD is NaN there for every pixel. */
  nonPositiveEnergies: number[];
}

/**
 * The --i0 / --i0-region options as one spec (at most one of them), or null for none.
 * `--i0-region auto` and `--i0-region rect:...` are the region forms.
 */
export function parseI0Options(i0File?: string, i0Region?: string): I0Spec | null {
  if (i0File !== undefined && i0Region !== undefined) throw new InputError('--i0', 'give either --i0 FILE or --i0-region, not both');
  if (i0File !== undefined) return { kind: 'file', path: i0File };
  if (i0Region === undefined) return null;
  if (i0Region.trim().toLowerCase() === 'auto') return { kind: 'auto' };
  if (!/^rect:/i.test(i0Region.trim())) throw new InputError('--i0-region', `expected rect:x0,y0,x1,y1 or auto, got '${i0Region}'`);
  return { kind: 'region', spec: i0Region.trim() };
}

export const AUTO_I0_RULE =
  'blocks of side clamp(round(min(W,H)/5), 3, 64) px every half side; among those whose mean (over pixels and energies) ' +
  'is within 2% of the brightest block, the one with the smallest std/mean of its pixels\' energy-averaged intensity';

/** Finds the auto I0 region (see the module comment) by streaming the stack once. */
export async function autoI0Region(src: StackSource, budgetBytes = REGION_READ_BYTES): Promise<Region> {
  const { nE, height: H, width: W } = src;
  // Each pixel's mean over energies (finite values only).
  const img = new Float64Array(H * W);
  const cnt = new Float64Array(H * W);
  const rowsPerRead = Math.max(1, Math.min(H, Math.floor(budgetBytes / (4 * nE * W))));
  const buf = new Float32Array(nE * rowsPerRead * W);
  for (let y0 = 0; y0 < H; y0 += rowsPerRead) {
    const rows = Math.min(rowsPerRead, H - y0);
    await src.readRows(y0, rows, buf);
    const n = rows * W;
    for (let e = 0; e < nE; e++) {
      for (let i = 0; i < n; i++) {
        const v = buf[e * n + i];
        if (Number.isFinite(v)) {
          img[y0 * W + i] += v;
          cnt[y0 * W + i]++;
        }
      }
    }
  }
  for (let i = 0; i < img.length; i++) img[i] = cnt[i] > 0 ? img[i] / cnt[i] : NaN;
  const b = Math.min(64, Math.max(3, Math.round(Math.min(W, H) / 5)), W, H);
  const stride = Math.max(1, Math.floor(b / 2));
  const blocks: { x: number; y: number; mean: number; cv: number }[] = [];
  const starts = (size: number) => {
    const s: number[] = [];
    for (let v = 0; v + b <= size; v += stride) s.push(v);
    if (s[s.length - 1] !== size - b) s.push(size - b); // reach the far edge too
    return s;
  };
  for (const y of starts(H)) {
    for (const x of starts(W)) {
      let sum = 0, sum2 = 0, n = 0;
      for (let yy = y; yy < y + b; yy++) {
        for (let xx = x; xx < x + b; xx++) {
          const v = img[yy * W + xx];
          if (!Number.isFinite(v)) continue;
          sum += v;
          sum2 += v * v;
          n++;
        }
      }
      if (n < b * b) continue; // a block with missing pixels is not uniform
      const mean = sum / n;
      const variance = Math.max(0, sum2 / n - mean * mean);
      blocks.push({ x, y, mean, cv: mean > 0 ? Math.sqrt(variance) / mean : Infinity });
    }
  }
  const brightest = Math.max(...blocks.map((k) => k.mean));
  if (!(brightest > 0)) throw new InputError(src.path, '--i0-region auto: no bright area found (no block with positive finite intensity)');
  let best = blocks[0];
  let bestCv = Infinity;
  for (const k of blocks) {
    if (k.mean >= 0.98 * brightest && k.cv < bestCv) {
      best = k;
      bestCv = k.cv;
    }
  }
  return parseRegion(`rect:${best.x},${best.y},${best.x + b},${best.y + b}`, W, H, '--i0-region auto');
}

/** I0 on the stack's energies from the chosen source. */
export async function resolveI0(src: StackSource, energies: Float64Array, spec: I0Spec): Promise<I0> {
  if (energies.length !== src.nE) throw new RangeError(`resolveI0: ${energies.length} energies for a stack of ${src.nE}`);
  let values: Float64Array;
  let source: I0['source'];
  if (spec.kind === 'file') {
    const s = readSpectrumFile(spec.path, 'I0');
    const lo = s.energy[0], hi = s.energy[s.energy.length - 1];
    const eLo = energies[0], eHi = energies[energies.length - 1];
    const tol = 1e-6 * Math.max(Math.abs(eLo), Math.abs(eHi));
    if (eLo < lo - tol || eHi > hi + tol) {
      throw new InputError(spec.path, `I0 covers ${lo.toFixed(3)}..${hi.toFixed(3)} eV but the stack spans ${eLo.toFixed(3)}..${eHi.toFixed(3)} eV`);
    }
    values = Float64Array.from(energies, (e) => interpolate(s.energy, s.values, e));
    source = { kind: 'file', path: spec.path };
  } else {
    const region = spec.kind === 'auto' ? await autoI0Region(src) : await parseRegion(spec.spec, src.width, src.height, '--i0-region');
    const [stats] = await regionSpectra(src, [{ name: 'I0', region }]);
    values = stats.mean;
    source = spec.kind === 'auto'
      ? { kind: 'auto', spec: region.spec, pixels: region.pixels, rule: AUTO_I0_RULE }
      : { kind: 'region', spec: region.spec, pixels: region.pixels };
  }
  const nonPositiveEnergies: number[] = [];
  values.forEach((v, i) => {
    if (!(v > 0) || !Number.isFinite(v)) nonPositiveEnergies.push(energies[i]);
  });
  return { values, source, nonPositiveEnergies };
}

function interpolate(x: Float64Array, y: Float64Array, xq: number): number {
  if (xq <= x[0]) return y[0];
  const n = x.length;
  if (xq >= x[n - 1]) return y[n - 1];
  let lo = 0, hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (x[mid] <= xq) lo = mid;
    else hi = mid;
  }
  return y[lo] + ((xq - x[lo]) / (x[hi] - x[lo])) * (y[hi] - y[lo]);
}

/** OD = -ln(I / I0) of a transmission stack, as a StackSource. */
export class OpticalDensityStack implements StackSource {
  readonly nE: number;
  readonly height: number;
  readonly width: number;
  readonly dtype: string;
  readonly energies?: Float64Array;
  /** Pixel-energy points set to NaN because I or I0 was not positive (or not finite). */
  maskedPoints = 0;

  private buf: Float32Array = new Float32Array(0);
  private readonly threads: TransmissionThreads;

  /** `threads`: worker threads for the conversion (default: every core). */
  constructor(private src: StackSource, readonly i0: I0, threads?: number) {
    this.threads = new TransmissionThreads(threads);
    if (i0.values.length !== src.nE) throw new RangeError(`OpticalDensityStack: ${i0.values.length} I0 values for ${src.nE} energies`);
    this.nE = src.nE;
    this.height = src.height;
    this.width = src.width;
    this.dtype = `optical density from ${src.dtype}`;
    this.energies = src.energies;
  }

  get path(): string {
    return this.src.path;
  }

  /** The conversion runs on worker threads (transmission.ts) over shared memory. */
  async readRows(y0: number, rows: number, out: Float32Array): Promise<void> {
    const n = rows * this.width;
    const total = this.nE * n;
    const direct = isShared(out);
    if (!direct) this.buf = sharedAtLeast(this.buf, total);
    const io = direct ? out.subarray(0, total) : this.buf.subarray(0, total);
    await this.src.readRows(y0, rows, io);
    this.maskedPoints += await this.threads.run(total, (a, b) => ({ kind: 'od', io, i0: this.i0.values, n, a, b }));
    if (!direct) out.set(io);
  }

  close(): void {
    void this.threads.close();
    this.src.close();
  }
}

/** Resolves I0 and wraps the stack: the usual way to get an OD stack from counts. */
export async function opticalDensity(src: StackSource, energies: Float64Array, spec: I0Spec): Promise<OpticalDensityStack> {
  return new OpticalDensityStack(src, await resolveI0(src, energies, spec));
}
