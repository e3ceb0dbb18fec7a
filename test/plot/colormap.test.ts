import { describe, expect, test } from 'vitest';
import { decode } from 'fast-png';
import { colorIndex, mapLayout, renderMap, VIRIDIS } from '../../src/plot/colormap.js';

function rgbAt(img: ReturnType<typeof decode>, x: number, y: number): number[] {
  const i = (y * img.width + x) * img.channels;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}
const entry = (k: number) => [VIRIDIS[k * 3], VIRIDIS[k * 3 + 1], VIRIDIS[k * 3 + 2]];

describe('VIRIDIS', () => {
  test('matches the published viridis at anchor points', () => {
    // From matplotlib's CC0 viridis table (entries 0, 64, 128, 192, 255, times 255, rounded).
    // The polynomial fit is within 3.3/255 of the table, so 4 levels after rounding.
    const ref: [number, number[]][] = [
      [0, [68, 1, 84]],
      [64, [59, 82, 139]],
      [128, [33, 145, 140]],
      [192, [94, 201, 98]],
      [255, [253, 231, 37]],
    ];
    for (const [k, want] of ref) {
      entry(k).forEach((v, ch) => expect(Math.abs(v - want[ch]), `entry ${k} channel ${ch}`).toBeLessThanOrEqual(4));
    }
    // Green rises monotonically through viridis: a cheap check that the table is in order.
    for (let k = 1; k < 256; k++) expect(VIRIDIS[k * 3 + 1]).toBeGreaterThanOrEqual(VIRIDIS[(k - 1) * 3 + 1]);
  });

  test('colorIndex clamps, and NaN is -1', () => {
    expect(colorIndex(0, 0, 1)).toBe(0);
    expect(colorIndex(1, 0, 1)).toBe(255);
    expect(colorIndex(-5, 0, 1)).toBe(0);
    expect(colorIndex(Infinity, 0, 1)).toBe(255);
    expect(colorIndex(NaN, 0, 1)).toBe(-1);
    expect(colorIndex(3, 3, 3)).toBe(128); // degenerate range: mid colour
  });
});

describe('renderMap', () => {
  const W = 64, H = 48;
  const data = new Float32Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) data[y * W + x] = 8338 + (7 * x) / (W - 1);
  data[5 * W + 3] = NaN;
  data[10 * W + 20] = 9000; // above vmax: clamps to the top colour
  const opts = { data, width: W, height: H, vmin: 8338, vmax: 8345, title: 'Edge energy', unit: 'eV' };
  const img = decode(renderMap(opts));
  const L = mapLayout(opts);

  test('decodes to the laid-out size, small maps magnified', () => {
    expect([img.width, img.height]).toEqual([L.width, L.height]);
    expect(img.channels).toBe(3);
    expect(L.scale).toBeGreaterThan(1);
    expect(L.map.h).toBeGreaterThanOrEqual(400);
    expect(L.map.w).toBe(W * L.scale);
  });

  test('NaN pixels are black; other pixels carry their value colour', () => {
    const s = L.scale;
    for (let fy = 0; fy < s; fy++) {
      for (let fx = 0; fx < s; fx++) expect(rgbAt(img, L.map.x + 3 * s + fx, L.map.y + 5 * s + fy)).toEqual([0, 0, 0]);
    }
    expect(rgbAt(img, L.map.x, L.map.y)).toEqual(entry(0)); // x = 0: vmin
    expect(rgbAt(img, L.map.x + (W - 1) * s, L.map.y)).toEqual(entry(255)); // x = W-1: vmax
    expect(rgbAt(img, L.map.x + 20 * s + 1, L.map.y + 10 * s + 1)).toEqual(entry(255));
  });

  test('the colour bar runs from the vmin colour (bottom) to the vmax colour (top)', () => {
    const { bar } = L;
    const cx = bar.x + 2; // clear of the tick marks, which cross the bar's right edge
    expect(rgbAt(img, cx, bar.y)).toEqual(entry(255));
    expect(rgbAt(img, cx, bar.y + bar.h - 1)).toEqual(entry(0));
    let prevGreen = 256;
    for (let j = 0; j < bar.h; j++) {
      const g = rgbAt(img, cx, bar.y + j)[1];
      expect(g).toBeLessThanOrEqual(prevGreen); // top to bottom: green falls monotonically
      prevGreen = g;
    }
  });

  test('large maps are not magnified; bad input is rejected', () => {
    expect(mapLayout({ width: 1000, height: 800, vmin: 0, vmax: 1 }).scale).toBe(1);
    expect(() => renderMap({ ...opts, data: new Float32Array(3) })).toThrow(RangeError);
    expect(() => renderMap({ ...opts, vmin: 2, vmax: 1 })).toThrow(RangeError);
    expect(() => renderMap({ ...opts, vmax: NaN })).toThrow(RangeError);
  });

  test('all-NaN map and a degenerate range still render', () => {
    const a = decode(renderMap({ data: new Float32Array(16).fill(NaN), width: 4, height: 4, vmin: 0, vmax: 0 }));
    expect(a.width).toBeGreaterThan(0);
  });
});
