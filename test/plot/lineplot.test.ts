import { describe, expect, test } from 'vitest';
import { decode } from 'fast-png';
import { renderLinePlot, SERIES_COLORS } from '../../src/plot/lineplot.js';
import { lineSpec } from '../../src/plot/specs.js';
import { renderSpec } from '../../src/plot/render.js';

function countColor(img: ReturnType<typeof decode>, c: readonly number[], tol = 0): number {
  let n = 0;
  for (let i = 0; i < img.width * img.height; i++) {
    const j = i * img.channels;
    if (Math.abs(img.data[j] - c[0]) <= tol && Math.abs(img.data[j + 1] - c[1]) <= tol && Math.abs(img.data[j + 2] - c[2]) <= tol) n++;
  }
  return n;
}

describe('renderLinePlot (Vega -> SVG -> resvg)', () => {
  const x = Float64Array.from({ length: 200 }, (_, i) => 8300 + i);
  const a = x.map((e) => 1 / (1 + Math.exp(-(e - 8340) / 2)));
  const b = x.map((e) => 1 / (1 + Math.exp(-(e - 8342) / 2)));
  b[50] = NaN; // a gap, not a crash

  test('plotting area of the requested size; one colour per series, none for a series not drawn', async () => {
    const r = await renderSpec(lineSpec({
      series: [{ x, y: a, label: 'NiO' }, { x, y: b, label: 'LiNiO2' }],
      xlabel: 'Energy (eV)', ylabel: 'mu (normalised)', title: 'references', width: 640, height: 400,
    }));
    const img = decode(r.png);
    expect([r.plot.w, r.plot.h]).toEqual([640, 400]);
    expect(img.width).toBeGreaterThan(640); // axes, titles and legend around the plotting area
    // Anti-aliased edges aside, each line leaves hundreds of pixels of its exact colour.
    expect(countColor(img, SERIES_COLORS[0])).toBeGreaterThan(300);
    expect(countColor(img, SERIES_COLORS[1])).toBeGreaterThan(300);
    expect(countColor(img, SERIES_COLORS[2], 30)).toBe(0);
  });

  test('empty and constant data do not throw; mismatched lengths do', async () => {
    const img = decode(await renderLinePlot({ series: [], xlabel: 'x', ylabel: 'y', title: '' }));
    expect(img.width).toBeGreaterThan(0);
    const c = new Float64Array(5).fill(2);
    await expect(renderLinePlot({ series: [{ x: c, y: c, label: 'flat' }], xlabel: '', ylabel: '', title: '' })).resolves.toBeInstanceOf(Uint8Array);
    expect(() => lineSpec({ series: [{ x, y: a.subarray(1), label: 'bad' }], xlabel: '', ylabel: '' })).toThrow(RangeError);
  });
});
