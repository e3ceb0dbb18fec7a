import { describe, expect, test } from 'vitest';
import { decode } from 'fast-png';
import { renderLinePlot, SERIES_COLORS } from '../../src/plot/lineplot.js';
import { formatTicks, niceTicks } from '../../src/plot/ticks.js';

function countColor(img: ReturnType<typeof decode>, c: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < img.width * img.height; i++) {
    const j = i * img.channels;
    if (img.data[j] === c[0] && img.data[j + 1] === c[1] && img.data[j + 2] === c[2]) n++;
  }
  return n;
}

describe('renderLinePlot', () => {
  const x = Float64Array.from({ length: 200 }, (_, i) => 8300 + i);
  const a = x.map((e) => 1 / (1 + Math.exp(-(e - 8340) / 2)));
  const b = x.map((e) => 1 / (1 + Math.exp(-(e - 8342) / 2)));
  b[50] = NaN; // a gap, not a crash

  test('decodes to the requested size with one colour per series', () => {
    const png = renderLinePlot({
      series: [{ x, y: a, label: 'NiO' }, { x, y: b, label: 'LiNiO2' }],
      xlabel: 'Energy (eV)',
      ylabel: 'mu',
      title: 'references',
      width: 640,
      height: 400,
    });
    const img = decode(png);
    expect([img.width, img.height]).toEqual([640, 400]);
    expect(countColor(img, SERIES_COLORS[0])).toBeGreaterThan(300);
    expect(countColor(img, SERIES_COLORS[1])).toBeGreaterThan(300);
    expect(countColor(img, SERIES_COLORS[2])).toBe(0);
  });

  test('default size; empty and constant data do not throw; mismatched lengths do', () => {
    const img = decode(renderLinePlot({ series: [], xlabel: 'x', ylabel: 'y', title: '' }));
    expect([img.width, img.height]).toEqual([800, 500]);
    const c = new Float64Array(5).fill(2);
    expect(() => renderLinePlot({ series: [{ x: c, y: c, label: 'flat' }], xlabel: '', ylabel: '', title: '' })).not.toThrow();
    expect(() => renderLinePlot({ series: [{ x, y: a.subarray(1), label: 'bad' }], xlabel: '', ylabel: '', title: '' })).toThrow(RangeError);
  });
});

describe('ticks', () => {
  test('nice steps and minimal decimals', () => {
    expect(niceTicks(8338, 8345, 5)).toEqual([8338, 8340, 8342, 8344]);
    expect(formatTicks(niceTicks(0, 1, 5))).toEqual(['0.00', '0.25', '0.50', '0.75', '1.00']);
    expect(formatTicks(niceTicks(8338.87, 8341.87, 6))).toEqual(['8339.0', '8339.5', '8340.0', '8340.5', '8341.0', '8341.5']);
    expect(formatTicks([-0.5, 0, 0.5])).toEqual(['-0.5', '0.0', '0.5']);
    expect(formatTicks([0, 2e-5, 4e-5])).toEqual(['0', '2e-5', '4e-5']);
  });
});
