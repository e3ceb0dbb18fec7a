import { describe, expect, test } from 'vitest';
import { decode } from 'fast-png';
import { colorIndex, colormapLut, colorize, COLORMAPS } from '../../src/plot/colormap.js';
import { renderMap, renderMapImage, mapScale } from '../../src/plot/maps.js';

function rgbAt(img: ReturnType<typeof decode>, x: number, y: number): number[] {
  const i = (y * img.width + x) * img.channels;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}
const entry = (lut: Uint8Array, k: number) => [lut[k * 3], lut[k * 3 + 1], lut[k * 3 + 2]];
/** Vega's schemes are interpolated from published tables: within 4 levels of them after rounding. */
const TABLE_TOL = 4;

describe('colour tables (Vega schemes)', () => {
  test('viridis and cividis match the published tables at anchor points', () => {
    // matplotlib's CC0 viridis table (entries 0, 64, 128, 192, 255, times 255, rounded), and
    // cividis's ends as published by Nuñez et al. (2018), #00204D and #FFEA46, its middle grey
    // from matplotlib's table.
    const ref: Record<string, [number, number[]][]> = {
      viridis: [[0, [68, 1, 84]], [64, [59, 82, 139]], [128, [33, 145, 140]], [192, [94, 201, 98]], [255, [253, 231, 37]]],
      cividis: [[0, [0, 32, 77]], [128, [124, 123, 120]], [255, [255, 234, 70]]],
    };
    for (const [name, pts] of Object.entries(ref)) {
      const lut = colormapLut(name as 'viridis');
      for (const [k, want] of pts) entry(lut, k).forEach((v, ch) => expect(Math.abs(v - want[ch]), `${name} ${k} ${ch}`).toBeLessThanOrEqual(TABLE_TOL));
    }
    // Lightness rises monotonically through the sequential maps (green is a fair proxy).
    for (const name of ['viridis', 'cividis'] as const) {
      const lut = colormapLut(name);
      for (let k = 1; k < 256; k++) expect(lut[k * 3 + 1]).toBeGreaterThanOrEqual(lut[(k - 1) * 3 + 1]);
    }
    // The diverging map is light in the middle and dark at both ends.
    const d = colormapLut('blueorange');
    const light = (k: number) => entry(d, k).reduce((s, v) => s + v, 0);
    expect(light(128)).toBeGreaterThan(light(0) + 200);
    expect(light(128)).toBeGreaterThan(light(255) + 200);
    expect(COLORMAPS).toEqual(['viridis', 'cividis', 'blueorange']);
  });

  test('colorIndex clamps, NaN is -1; colorize paints NaN black', () => {
    expect(colorIndex(0, 0, 1)).toBe(0);
    expect(colorIndex(1, 0, 1)).toBe(255);
    expect(colorIndex(-5, 0, 1)).toBe(0);
    expect(colorIndex(Infinity, 0, 1)).toBe(255);
    expect(colorIndex(NaN, 0, 1)).toBe(-1);
    expect(colorIndex(3, 3, 3)).toBe(128); // degenerate range: mid colour
    const px = colorize([NaN, 0, 1], 0, 1, 'viridis');
    expect(Array.from(px)).toEqual([0, 0, 0, 255, ...entry(colormapLut('viridis'), 0), 255, ...entry(colormapLut('viridis'), 255), 255]);
  });
});

describe('renderMap', () => {
  const W = 64, H = 48;
  const data = new Float32Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[y * W + x] = 8338 + (7 * x) / (W - 1);
  data[5 * W + 3] = NaN;
  data[10 * W + 20] = 9000; // above vmax: clamps to the top colour
  const opts = { data, width: W, height: H, vmin: 8338, vmax: 8345, title: 'Edge energy', unit: 'eV', label: 'e0_half' };

  test('map pixels at their place in the plotting area: NaN black, values in viridis, clamped', async () => {
    const r = await renderMapImage(opts);
    const img = decode(r.png);
    const s = mapScale(W, H);
    expect(s).toBeGreaterThan(1);
    expect([r.plot.w, r.plot.h]).toEqual([W * s, H * s]);
    const lut = colormapLut('viridis');
    // Centre of map pixel (x, y) in the picture.
    const at = (x: number, y: number) => rgbAt(img, r.plot.x + Math.floor((x + 0.5) * s), r.plot.y + Math.floor((y + 0.5) * s));
    expect(at(3, 5)).toEqual([0, 0, 0]);
    expect(at(0, 0)).toEqual(entry(lut, 0)); // x = 0: vmin
    expect(at(W - 1, 0)).toEqual(entry(lut, 255)); // x = W-1: vmax
    expect(at(20, 10)).toEqual(entry(lut, 255));
    // Row 0 is at the top: the gradient runs along x only, so rows agree.
    expect(at(32, 0)).toEqual(at(32, H - 1));
    // A colour bar right of the map: a column with the vmax colour above the vmin colour.
    const near = (c: number[], k: number) => c.every((v, ch) => Math.abs(v - lut[k * 3 + ch]) <= 6);
    let bar = -1;
    for (let x = r.plot.x + r.plot.w + 5; x < img.width && bar < 0; x++) {
      let top = -1, bottom = -1;
      for (let y = 0; y < img.height; y++) {
        const c = rgbAt(img, x, y);
        if (top < 0 && near(c, 255)) top = y;
        if (near(c, 0)) bottom = y;
      }
      if (top >= 0 && bottom > top + r.plot.h / 2) bar = x;
    }
    expect(bar, 'colour bar found').toBeGreaterThan(0);
  });

  test('bad input is rejected; all-NaN map and a degenerate range still render', async () => {
    expect(mapScale(1000, 800)).toBe(1);
    await expect(renderMap({ ...opts, data: new Float32Array(3) })).rejects.toThrow(RangeError);
    await expect(renderMap({ ...opts, vmin: 2, vmax: 1 })).rejects.toThrow(RangeError);
    await expect(renderMap({ ...opts, vmax: NaN })).rejects.toThrow(RangeError);
    const a = decode(await renderMap({ data: new Float32Array(16).fill(NaN), width: 4, height: 4, vmin: 0, vmax: 0 }));
    expect(a.width).toBeGreaterThan(0);
  });
});
