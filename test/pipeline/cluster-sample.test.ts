/**
 * The fitted pixels of the k-means across fields (src/pipeline/cluster-sample.ts): every
 * included pixel in study order when there are no more than the limit; else exactly `limit`
 * distinct included pixels in study order, uniform (each pixel's inclusion frequency over
 * many seeds is limit / included, as for sampling without replacement), and the same
 * whatever the split of the pixels into fields (so shards cannot change it).
 */
import { describe, expect, test } from 'vitest';
import { FitSampler, SAMPLE_RULE_ALL, SAMPLE_RULE_RESERVOIR } from '../../src/pipeline/cluster-sample.js';

/** Two features per pixel: its global index (exact in float32 below 2^24) and its negative. */
function maps(from: number, n: number, nanEvery = 0): Float32Array[] {
  const a = new Float32Array(n), b = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a[i] = from + i;
    b[i] = nanEvery > 0 && (from + i) % nanEvery === 0 ? NaN : -(from + i);
  }
  return [a, b];
}

function sampleOf(splits: number[], limit: number, seed: number, nanEvery = 0) {
  const s = new FitSampler(2, limit, seed);
  let from = 0;
  for (const n of splits) {
    s.add(maps(from, n, nanEvery));
    from += n;
  }
  return s.finish(['a', 'b']);
}

describe('the fit sample of the k-means across fields', () => {
  test('no more included pixels than the limit: all of them, in order; NaN pixels and pixels below the minimum weight left out', () => {
    const r = sampleOf([10, 7, 13], 1000, 1, 4);
    expect(r.total).toBe(30);
    const expected = Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 4 !== 0);
    expect(r.included).toBe(expected.length);
    expect(r.rule).toBe(SAMPLE_RULE_ALL);
    expect(r.features.n).toBe(expected.length);
    expect(Array.from(r.features.data.subarray(0, r.features.n))).toEqual(expected);
    expect(Array.from(r.features.data.subarray(r.features.n))).toEqual(expected.map((i) => -i));
    // minWeight: pixels whose weight is below it (or NaN) are not included.
    const s = new FitSampler(2, 100, 0);
    const w = Float32Array.from([1, 0.1, NaN, 2, 0.5]);
    s.add(maps(0, 5), w, 0.5);
    expect(Array.from(s.finish(['a', 'b']).features.data.subarray(0, 3))).toEqual([0, 3, 4]);
  });

  test('more than the limit: exactly the limit, distinct, in study order; the same for any split into fields and each seed; another seed, another sample', () => {
    const one = sampleOf([5000], 300, 7, 3);
    expect(one.rule).toBe(SAMPLE_RULE_RESERVOIR);
    expect(one.included).toBe(5000 - Math.ceil(5000 / 3));
    const idx = Array.from(one.features.data.subarray(0, one.features.n));
    expect(idx).toHaveLength(300);
    for (let i = 1; i < idx.length; i++) expect(idx[i]).toBeGreaterThan(idx[i - 1]);
    expect(idx.every((p) => p % 3 !== 0)).toBe(true);
    expect(Array.from(one.features.data.subarray(300))).toEqual(idx.map((p) => -p));
    const split = sampleOf([1, 999, 2500, 1500], 300, 7, 3);
    expect(Buffer.from(split.features.data.buffer).equals(Buffer.from(one.features.data.buffer))).toBe(true);
    expect(Buffer.from(sampleOf([5000], 300, 8, 3).features.data.buffer).equals(Buffer.from(one.features.data.buffer))).toBe(false);
  });

  test('uniform: over 4000 seeds each of 50 pixels is drawn with frequency 10 / 50', () => {
    const SEEDS = 4000, N = 50, LIMIT = 10;
    const hits = new Array<number>(N).fill(0);
    for (let seed = 0; seed < SEEDS; seed++) {
      const r = sampleOf([20, 30], LIMIT, seed);
      for (let i = 0; i < LIMIT; i++) hits[r.features.data[i]]++;
    }
    // Binomial standard deviation of a frequency: sqrt(0.2 x 0.8 / 4000) = 0.0063; 5 of them.
    const TOL = 5 * Math.sqrt((0.2 * 0.8) / SEEDS);
    for (const h of hits) expect(Math.abs(h / SEEDS - LIMIT / N)).toBeLessThan(TOL);
  });
});
