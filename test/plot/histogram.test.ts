import { describe, expect, test } from 'vitest';
import { decode } from 'fast-png';
import { blockHistogram, blockPercentiles, histogram, histogramCsv, histogramPeak, percentile, percentiles, robustHistogramRange } from '../../src/plot/histogram.js';
import { renderHistogram } from '../../src/plot/histogram-png.js';
import { makeRng } from '../../src/synth/random.js';

describe('histogram', () => {
  test('counts sum to the number of finite values; NaN and infinities ignored', () => {
    const rng = makeRng(11);
    const v = Float32Array.from({ length: 10_000 }, () => 8340 + rng.normal());
    v[0] = NaN;
    v[1] = Infinity;
    v[2] = -Infinity;
    v[3] = NaN;
    const h = histogram(v, 0.1);
    expect(h.edges.length).toBe(h.counts.length + 1);
    expect(h.counts.reduce((s, c) => s + c, 0)).toBe(10_000 - 4);
    // Default bins are aligned to multiples of the bin width.
    expect(Math.abs(h.edges[0] / 0.1 - Math.round(h.edges[0] / 0.1))).toBeLessThan(1e-6);
  });

  test('hand-checked small case, last edge inclusive, explicit range drops outliers', () => {
    const h = histogram(Float32Array.from([0.5, 1.5, 1.5, 2.5, 3, NaN]), 1, { min: 0, max: 3 });
    expect(Array.from(h.edges)).toEqual([0, 1, 2, 3]);
    expect(Array.from(h.counts)).toEqual([1, 2, 2]); // 3 sits on the last edge: last bin
    const r = histogram(Float32Array.from([-1, 0.5, 1.5, 9]), 1, { min: 0, max: 2 });
    expect(Array.from(r.counts)).toEqual([1, 1]);
    expect(histogram(new Float32Array([NaN]), 1).counts.length).toBe(0);
    expect(() => histogram(new Float32Array(1), 0)).toThrow(RangeError);
  });

  test('csv, peak', () => {
    const h = histogram(Float32Array.from([8340.02, 8340.12, 8340.14, 8340.16, 8340.25]), 0.1, { min: 8340, max: 8340.3 });
    expect(histogramCsv(h)).toBe('bin_start,bin_end,count\n8340,8340.1,1\n8340.1,8340.2,3\n8340.2,8340.3,1\n');
    expect(histogramPeak(h)).toBeCloseTo(8340.15, 9);
    expect(histogramPeak(histogram(new Float32Array(0), 1))).toBeNaN();
    // A normal sample peaks near its mean: the fullest 0.25-wide bin is within 0.25 of it.
    const rng = makeRng(12);
    const v = Float32Array.from({ length: 50_000 }, () => 8341 + 0.8 * rng.normal());
    expect(Math.abs(histogramPeak(histogram(v, 0.25)) - 8341)).toBeLessThanOrEqual(0.25);
  });

  test('renderHistogram decodes; the plotting area has the requested size, axes around it', async () => {
    const h = histogram(Float32Array.from([1, 2, 2, 3, 3, 3]), 1);
    const img = decode(await renderHistogram(h, { title: 'Edge energy', xlabel: 'eV', width: 600, height: 400 }));
    expect(img.width).toBeGreaterThan(600);
    expect(img.height).toBeGreaterThan(400);
  });
});

describe('percentile', () => {
  test('linear interpolation between order statistics, NaN ignored (as numpy)', () => {
    const v = Float32Array.from([4, NaN, 1, 3, 2]);
    // sorted 1 2 3 4: position (n-1) p / 100
    expect(percentile(v, 0)).toBe(1);
    expect(percentile(v, 25)).toBeCloseTo(1.75, 12); // position 0.75
    expect(percentile(v, 50)).toBeCloseTo(2.5, 12);
    expect(percentile(v, 100)).toBe(4);
    expect(percentile(Float32Array.from([10, 0, 5]), 90)).toBeCloseTo(9, 12); // 5 + 0.8 * 5
    expect(percentiles(v, [25, 50])).toEqual([percentile(v, 25), percentile(v, 50)]);
    expect(percentile(Float32Array.from([NaN]), 50)).toBeNaN();
    expect(() => percentile(v, 101)).toThrow(RangeError);
  });
});

describe('robustHistogramRange', () => {
  test('a few outliers do not stretch the range; the bulk is inside', () => {
    const v = new Float32Array(10000);
    for (let i = 0; i < v.length; i++) v[i] = 8340 + 3 * (i / v.length);
    v[0] = 8312; v[1] = 8760; v[2] = NaN;
    const r = robustHistogramRange(v, 0.1);
    expect(r.min).toBeGreaterThan(8337);
    expect(r.max).toBeLessThan(8346);
    const h = histogram(v, 0.1, r);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(v.length - 3);
  });
});

describe('blockPercentiles and blockHistogram (a map visited in blocks, for report.html within --memory)', () => {
  test('give exactly what percentiles and histogram give on the whole array (NaN, ±0, ±Infinity, wide magnitudes)', () => {
    for (const seed of [1, 2, 3]) {
      const n = 10007;
      const a = new Float32Array(n);
      let s = seed;
      const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
      for (let i = 0; i < n; i++) a[i] = rnd() < 0.05 ? NaN : rnd() < 0.1 ? (rnd() < 0.5 ? -0 : 0) : (rnd() - 0.3) * 10 ** (rnd() * 8 - 4) * (rnd() < 0.01 ? 1e30 : 1);
      a[5] = Infinity;
      a[6] = -Infinity;
      const ps = [0, 1, 2, 50, 97.3, 98, 99, 100];
      const blocks = (v: (b: Float32Array) => void) => {
        for (let i = 0; i < n; i += 999) v(a.subarray(i, i + 999));
      };
      expect(blockPercentiles(blocks, ps), `seed ${seed}`).toEqual(percentiles(a, ps));
      const range = { min: -2, max: 3 };
      expect(blockHistogram(blocks, 0.25, range)).toEqual(histogram(a, 0.25, range));
    }
    expect(blockPercentiles((v) => v(Float32Array.of(NaN)), [50])).toEqual([NaN]);
  });
});
