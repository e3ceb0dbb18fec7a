/**
 * The RGB composite of up to three fraction maps (the stack-fit picture of STXM work):
 * rgbComposite computes the pixels and the legend (browser-safe, report.html uses it too).
 */
import type { Rgb } from './colormap.js';
import type { Swatch } from './specs.js';
import { mapScale } from './map-scale.js';

export interface RgbCompositeOptions {
  /** Names of the references, in channel order (red, green, blue). */
  names: readonly string[];
  /** Fraction mapped to 0 and to full channel intensity (clamped); default [0, 1]. */
  range?: readonly [number, number];
  /**
   * Optional brightness map (e.g. `total`): each pixel's colour is multiplied by
   * clamp(intensity / (its 99th percentile over positive finite values), 0, 1), so that
   * thin or empty areas, whose fractions are mostly noise, stay dark.
   */
  intensity?: Float32Array;
  intensityLabel?: string;
  title?: string;
}

export interface RgbLegend {
  channels: { channel: 'red' | 'green' | 'blue'; reference: string; map: string; range: [number, number] }[];
  scaling: string;
  intensity: { map: string; fullScaleAt: number; rule: string } | null;
  masked: string;
  magnification: number;
}

const CHANNELS = ['red', 'green', 'blue'] as const;
/** Pixels without data or masked are black, as in every map (DESIGN: masks travel). */
const MASKED: Rgb = [0, 0, 0];

/**
 * Pixels (RGBA) of up to three fraction maps as the red, green and blue channels (in that order):
 * channel = 255 * clamp((fraction - lo) / (hi - lo), 0, 1), times the optional intensity
 * factor. Pixels without data are black: NaN intensity when an intensity map is given
 * (status no_data for `total`), else all fractions NaN. Returns the pixels and the
 * legend object for summary.json.
 */
export function rgbComposite(fractions: readonly ArrayLike<number>[], width: number, height: number, opts: RgbCompositeOptions): { rgba: Uint8ClampedArray; legend: RgbLegend } {
  if (fractions.length < 1 || fractions.length > 3) throw new RangeError(`rgbComposite: 1 to 3 fraction maps, got ${fractions.length}`);
  if (opts.names.length !== fractions.length) throw new RangeError('rgbComposite: one name per fraction map');
  for (const f of fractions) if (f.length !== width * height) throw new RangeError(`rgbComposite: map of ${f.length} values, expected ${width * height}`);
  const [lo, hi] = opts.range ?? [0, 1];
  if (!(hi > lo)) throw new RangeError(`rgbComposite: range needs lo < hi, got ${lo}, ${hi}`);
  let iScale = NaN;
  if (opts.intensity) {
    if (opts.intensity.length !== width * height) throw new RangeError('rgbComposite: intensity map has the wrong size');
    const pos = Float64Array.from(opts.intensity).filter((v) => v > 0 && Number.isFinite(v)).sort();
    iScale = pos.length ? pos[Math.min(pos.length - 1, Math.floor(0.99 * (pos.length - 1)))] : NaN;
  }
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    let anyFinite = false;
    const c = [0, 0, 0];
    for (let k = 0; k < fractions.length; k++) {
      const v = fractions[k][i];
      if (Number.isNaN(v)) continue;
      anyFinite = true;
      c[k] = Math.min(1, Math.max(0, (v - lo) / (hi - lo)));
    }
    // No data: the intensity is NaN (with one), or every fraction is (without). A pixel with
    // an intensity but no fractions (weights summing to zero: nothing there) is dark.
    const masked = opts.intensity ? Number.isNaN(opts.intensity[i]) : !anyFinite;
    if (masked) {
      rgba.set([...MASKED, 255], i * 4);
      continue;
    }
    let b = 1;
    if (opts.intensity) {
      const v = opts.intensity[i];
      b = iScale > 0 && v > 0 ? Math.min(1, v / iScale) : 0;
    }
    for (let k = 0; k < 3; k++) rgba[i * 4 + k] = Math.round(255 * c[k] * b);
    rgba[i * 4 + 3] = 255;
  }

  const legend: RgbLegend = {
    channels: opts.names.map((n, k) => ({ channel: CHANNELS[k], reference: n, map: `fraction_${n}`, range: [lo, hi] as [number, number] })),
    scaling: `channel = 255 * clamp((fraction - ${lo}) / (${hi} - ${lo}), 0, 1)${opts.intensity ? ' * brightness' : ''}`,
    intensity: opts.intensity
      ? { map: opts.intensityLabel ?? 'intensity', fullScaleAt: iScale, rule: 'brightness = clamp(value / fullScaleAt, 0, 1); fullScaleAt = 99th percentile of the positive values' }
      : null,
    masked: `black: no data or masked (${opts.intensity ? `${opts.intensityLabel ?? 'intensity'} or every fraction is NaN` : 'every fraction is NaN'}); empty pixels are dark as their brightness is ~0`,
    magnification: mapScale(width, height),
  };
  return { rgba, legend };
}

/** Swatches and notes of the composite's legend (the PNG and report.html show the same). */
export function rgbSwatches(legend: RgbLegend): { swatches: Swatch[]; notes: string[] } {
  const swatches: Swatch[] = legend.channels.map((c, k) => ({ label: `${c.channel}: ${c.reference}`, color: [k === 0 ? 255 : 0, k === 1 ? 255 : 0, k === 2 ? 255 : 0] as Rgb }));
  swatches.push({ label: 'black: empty, masked or no data', color: MASKED });
  const [lo, hi] = legend.channels[0]?.range ?? [0, 1];
  const notes = [`fraction ${lo} = dark, ${hi} = full`];
  if (legend.intensity) notes.push(`brightness: ${legend.intensity.map}`);
  return { swatches, notes };
}
