/**
 * The µm scale bar on colour maps: a 1-2-5 length near a fifth of the field, drawn to scale
 * (its length in screen pixels = length / pixel size x magnification), labelled in µm; maps
 * without a known pixel size have none.
 */
import { describe, expect, test } from 'vitest';
import { imageSpec, scaleBarUm } from '../../src/plot/specs.js';
import { renderMap } from '../../src/plot/maps.js';

describe('scale bar', () => {
  test('length: the largest 1, 2 or 5 x 10^k µm within a fifth of the field', () => {
    expect(scaleBarUm(10)).toBe(2);
    expect(scaleBarUm(3)).toBe(0.5);
    expect(scaleBarUm(7.5)).toBe(1);
    expect(scaleBarUm(1000)).toBe(200);
    expect(scaleBarUm(30)).toBe(5);
    expect(scaleBarUm(0.24)).toBeCloseTo(0.02, 15);
  });

  test('drawn to scale in the spec, labelled in µm; absent without a pixel size', () => {
    const marks = (px?: number) => (imageSpec({ url: 'data:,', width: 200, height: 100, displayWidth: 400, displayHeight: 200, pixelSizeUm: px }, { bar: { vmin: 0, vmax: 1, cmap: 'viridis', label: 'v' } }) as any).marks as any[];
    const m = marks(0.05); // field 10 µm -> 2 µm = 40 map pixels = 80 screen pixels
    const bar = m.find((x) => x.name === 'scalebar').encode.enter;
    expect(bar.x2.value - bar.x.value).toBeCloseTo(80, 9);
    expect(m.find((x) => x.name === 'scalebar_label').encode.enter.text.value).toBe('2 µm');
    expect(marks(undefined).some((x) => x.name === 'scalebar')).toBe(false);
  });

  test('renders to a PNG that differs from the map without it', async () => {
    const data = Float32Array.from({ length: 64 * 48 }, (_, i) => (i % 64) / 64);
    const o = { data, width: 64, height: 48, vmin: 0, vmax: 1, title: 't', unit: 'eV' };
    const a = await renderMap({ ...o, pixelSizeUm: 0.1 });
    const b = await renderMap(o);
    expect(Array.from(a.subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
  });
});
