/**
 * Shifts of a whole stack from its images (all in memory: the registration copy, see
 * src/align/copy.ts). Images change contrast across an absorption edge, so by default each
 * image is registered to its neighbour and the pair shifts are chained (summed) outward from
 * an anchor image, the middle of the scan, which halves the longest chain; with
 * `reference` every image is registered to that one image directly.
 *
 * Images that cannot be registered (too few finite pixels, no contrast) get a status and
 * their shift is interpolated linearly between registered neighbours (held constant beyond
 * the ends); a chain simply steps over them. A pair shift larger than maxJump pixels is an
 * outlier: reported, kept.
 */
import { prepareImage, type PrepareOptions, type PrepareStatus } from './prepare.js';
import type { PairShift, Registrar, Spectrum } from './registrar.js';
import { fourierApplyCpu } from './apply.js';
import { commonArea } from '../stack/shifted.js';
import { InputError } from '../io/errors.js';

export type ImageStatus = PrepareStatus | 'interpolated_from_neighbours';

export interface StackShifts {
  /** Displacement of each image's content relative to the reference, px. */
  dy: Float64Array;
  dx: Float64Array;
  /** Per image: ok, no_data (too few finite pixels), no_contrast; unregistered ones are interpolated. */
  status: PrepareStatus[];
  /** Normalised correlation peak of each image's registration (NaN for the anchor and failures). */
  peak: Float64Array;
  /** The anchor (chain) or reference image index. */
  referenceIndex: number;
  strategy: 'neighbour-chain' | 'reference';
  /** Pair steps larger than maxJump: the image index, and the step (px). */
  jumps: { index: number; dy: number; dx: number }[];
}

export interface EstimateOptions {
  prepare: PrepareOptions;
  /** Register every image to this one (--ref-energy); default: neighbour chain. */
  reference?: number;
  maxJump?: number;
  /**
   * Refinement passes per pair: the moving image with the current estimate removed (Fourier shift),
   * both cut to the area they share, Hann-windowed and registered again; the residual is
   * added. Removes the pull toward zero shift that the frame's edges exert when content
   * enters and leaves the field (a windowed pair of identical content has no bias at zero
   * residual, so the passes converge to the unbiased shift).
   */
  refine?: number;
  onImage?: (done: number, total: number) => void;
}

/**
 * `image(e)` returns image e ([height][width], the registration copy's pixels); `scale`
 * converts the copy's pixels to the stack's (the downsampling factor).
 */
export async function estimateShifts(
  nE: number,
  height: number,
  width: number,
  image: (e: number) => ArrayLike<number>,
  makeRegistrar: (ny: number, nx: number) => Registrar,
  o: EstimateOptions,
  scale = 1,
): Promise<StackShifts> {
  // Prepared images are made when needed and dropped after their FFT, so at most a few
  // padded images exist at once (the first pass keeps only the statuses).
  const prep = (e: number) => prepareImage(image(e), height, width, o.prepare);
  const status: PrepareStatus[] = new Array(nE);
  let padded = { ny: 0, nx: 0 };
  for (let e = 0; e < nE; e++) {
    const p = prep(e);
    status[e] = p.status;
    padded = { ny: p.ny, nx: p.nx };
  }
  const good = [...status.keys()].filter((e) => status[e] === 'ok');
  if (nE < 2) throw new InputError('stack', `alignment needs at least two images; this stack has ${nE}`);
  const strategy = o.reference !== undefined ? 'reference' : 'neighbour-chain';
  const refIndex = o.reference ?? good[Math.floor(good.length / 2)] ?? 0;
  if (good.length === 0) throw new InputError('stack', `no image can be registered (${countBy(status)}): every image is empty (NaN) or has no contrast`);
  if (status[refIndex] !== 'ok') throw new InputError('--ref-energy', `the reference image ${refIndex} cannot be registered (${status[refIndex]})`);
  const reg = makeRegistrar(padded.ny, padded.nx);
  const dy = new Float64Array(nE).fill(NaN), dx = new Float64Array(nE).fill(NaN), peak = new Float64Array(nE).fill(NaN);
  const jumps: StackShifts['jumps'] = [];
  dy[refIndex] = 0;
  dx[refIndex] = 0;
  let done = 0;
  const tick = () => o.onImage?.(++done, good.length);
  tick();
  const spec = (e: number) => reg.spectrum(prep(e).image);
  const regs = new Map<string, Registrar>();
  /** The refinement passes (EstimateOptions.refine) for moving image b against reference a. */
  const refine = async (a: number, b: number, s: PairShift): Promise<PairShift> => {
    let { dy, dx } = s;
    const A = image(a), B = image(b);
    const shifted = new Float32Array(height * width);
    for (let it = 0; it < (o.refine ?? 0) && Number.isFinite(dy); it++) {
      // A Fourier shift: exact for band-limited content (a bicubic one has a phase error that
      // depends on the fractional shift, which would bias every step of a chain alike).
      fourierApplyCpu(B, height, width, dy, dx, shifted);
      const area = commonArea(height, width, [0, dy], [0, dx]);
      const r0 = o.prepare.roi ?? { x0: 0, y0: 0, x1: width, y1: height };
      // Inside the shared area, 2 px from its edge (bicubic clamps there), and inside the ROI.
      const roi = area && { x0: Math.max(area.x0 + 2, r0.x0), y0: Math.max(area.y0 + 2, r0.y0), x1: Math.min(area.x1 - 2, r0.x1), y1: Math.min(area.y1 - 2, r0.y1) };
      if (!roi || roi.x1 - roi.x0 < 8 || roi.y1 - roi.y0 < 8) break;
      const po = { ...o.prepare, roi, window: 'hann' as const };
      const pa = prepareImage(A, height, width, po), pb = prepareImage(shifted, height, width, po);
      if (pa.status !== 'ok' || pb.status !== 'ok') break;
      const key = `${pa.ny}x${pa.nx}`;
      let r = regs.get(key);
      if (!r) regs.set(key, (r = makeRegistrar(pa.ny, pa.nx)));
      const fa = await r.spectrum(pa.image), fb = await r.spectrum(pb.image);
      const res = await r.register(fa, fb);
      fa.release();
      fb.release();
      if (!Number.isFinite(res.dy)) break;
      dy += res.dy;
      dx += res.dx;
    }
    return { dy, dx, peak: s.peak };
  };
  try {
    if (strategy === 'reference') {
      const ref = await spec(refIndex);
      for (const e of good) {
        if (e === refIndex) continue;
        const m = await spec(e);
        const s = await refine(refIndex, e, await reg.register(ref, m));
        m.release();
        dy[e] = s.dy;
        dx[e] = s.dx;
        peak[e] = s.peak;
        tick();
      }
      ref.release();
    } else {
      const k0 = good.indexOf(refIndex);
      const anchor = await spec(refIndex);
      for (const dir of [1, -1]) {
        let prev: Spectrum = anchor;
        let prevE = refIndex;
        for (let k = k0 + dir; k >= 0 && k < good.length; k += dir) {
          const e = good[k];
          const m = await spec(e);
          const s = await refine(prevE, e, await reg.register(prev, m));
          if (prev !== anchor) prev.release();
          prev = m;
          dy[e] = dy[prevE] + s.dy;
          dx[e] = dx[prevE] + s.dx;
          peak[e] = s.peak;
          if (o.maxJump !== undefined && Math.hypot(s.dy, s.dx) > o.maxJump) jumps.push({ index: dir === 1 ? e : prevE, dy: dir * s.dy, dx: dir * s.dx }); // image index vs index - 1
          prevE = e;
          tick();
        }
        if (prev !== anchor) prev.release();
      }
      anchor.release();
    }
  } finally {
    reg.destroy();
    for (const r of regs.values()) r.destroy();
  }
  if (strategy === 'reference' && o.maxJump !== undefined) {
    for (let k = 1; k < good.length; k++) {
      const a = good[k - 1], b = good[k];
      const sy = dy[b] - dy[a], sx = dx[b] - dx[a];
      if (Math.hypot(sy, sx) > o.maxJump) jumps.push({ index: b, dy: sy, dx: sx });
    }
  }
  jumps.sort((a, b) => a.index - b.index);
  interpolateMissing(dy, good);
  interpolateMissing(dx, good);
  for (let e = 0; e < nE; e++) {
    dy[e] *= scale;
    dx[e] *= scale;
  }
  for (const j of jumps) {
    j.dy *= scale;
    j.dx *= scale;
  }
  return { dy, dx, status, peak, referenceIndex: refIndex, strategy, jumps };
}

function interpolateMissing(v: Float64Array, good: number[]): void {
  for (let e = 0; e < v.length; e++) {
    if (Number.isFinite(v[e])) continue;
    let lo = -1, hi = -1;
    for (const g of good) {
      if (g < e) lo = g;
      else if (g > e && hi < 0) hi = g;
    }
    v[e] = lo < 0 ? v[hi] : hi < 0 ? v[lo] : v[lo] + ((v[hi] - v[lo]) * (e - lo)) / (hi - lo);
  }
}

function countBy(s: string[]): string {
  const m = new Map<string, number>();
  for (const x of s) m.set(x, (m.get(x) ?? 0) + 1);
  return [...m].map(([k, v]) => `${v} ${k}`).join(', ');
}
