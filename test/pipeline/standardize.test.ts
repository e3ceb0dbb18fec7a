/**
 * --standardize zscore|robust|none (src/pipeline/standardize.ts): the robust statistics
 * against scipy (median and median_abs_deviation with scale='normal', run through Debian's
 * python3-scipy), and what each choice does to clustering on known domains.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { featuresFromMaps } from '../../src/cpu/kmeans.js';
import { kmeansFit } from '../../src/pipeline/kmeans.js';
import { robustStats, MAD_TO_SIGMA } from '../../src/pipeline/standardize.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { makeRng } from '../../src/synth/random.js';
import { adjustedRandIndex } from '../helpers/cluster.js';

/** Median and MAD are order statistics of float32 values, summed in float64: equal to 1e-12. */
const STAT_TOL = 1e-12;

describe('robust standardisation', () => {
  test('median and 1.4826 x MAD equal scipy on skewed data with NaN pixels', () => {
    const rng = makeRng(7);
    const n = 1001;
    const a = new Float32Array(n), b = new Float32Array(n);
    for (let p = 0; p < n; p++) {
      a[p] = Math.exp(rng.normal()) + (p % 50 === 0 ? 100 : 0);
      b[p] = 3 * rng.normal() - 2;
    }
    a[5] = NaN; // a pixel with any non-finite feature is left out of both statistics
    b[9] = Infinity;
    const r = robustStats(featuresFromMaps([a, b], ['a', 'b']));
    const py = `
import sys, json, numpy as np
from scipy.stats import median_abs_deviation
d = json.load(sys.stdin)
x = np.array([d['a'], d['b']], dtype=np.float64)
keep = np.all(np.isfinite(x), axis=0)
x = x[:, keep]
print(json.dumps([np.median(x, axis=1).tolist(), median_abs_deviation(x, axis=1, scale='normal').tolist()]))`;
    const input = JSON.stringify({ a: Array.from(a, (v) => (Number.isFinite(v) ? v : null)), b: Array.from(b, (v) => (Number.isFinite(v) ? v : v > 0 ? 1e308 * 10 : null)) }).replace(/null/g, 'NaN');
    const [med, mad] = JSON.parse(execFileSync('/usr/bin/python3', ['-c', py], { input: input.replace('1e+309', 'Infinity') }).toString()) as number[][];
    for (let k = 0; k < 2; k++) {
      expect(Math.abs(r.median[k] - med[k])).toBeLessThan(STAT_TOL * Math.abs(med[k]) + STAT_TOL);
      expect(Math.abs(r.madSigma[k] - mad[k])).toBeLessThan(STAT_TOL * mad[k] + STAT_TOL);
    }
    expect(MAD_TO_SIGMA).toBeCloseTo(1.482602218505602, 12);
  });

  /**
   * Three domains separated by 1 in feature a (noise 0.15) and one of them by 1 in b, plus
   * 2 % of pixels with a wild a (30 +- 1, a failed descriptor): their spread inflates a's
   * standard deviation ~5x, so z-scores shrink a's weight until the noise of b mixes the
   * two domains that a alone separates; median/MAD is not moved by them. k = 4 (the
   * outliers take a cluster either way); the ARI is measured on the domain pixels.
   */
  test('outlier pixels: robust keeps the domains that z-scores merge', async () => {
    const rng = makeRng(11);
    const n = 3000;
    const a = new Float32Array(n), b = new Float32Array(n);
    const truth = new Int32Array(n);
    const centres = [[0, 0], [1, 0], [0.5, 1]];
    for (let p = 0; p < n; p++) {
      const c = p % 3;
      truth[p] = c;
      a[p] = centres[c][0] + 0.15 * rng.normal();
      b[p] = centres[c][1] + 0.25 * rng.normal();
      if (p % 50 === 1) { a[p] = 30 + rng.normal(); truth[p] = 3; }
    }
    const features = featuresFromMaps([a, b], ['a', 'b']);
    const ari: Record<string, number> = {};
    for (const mode of ['zscore', 'robust'] as const) {
      const r = await kmeansFit(cpuBackend(1), features, { k: 4, seed: 3, standardize: mode });
      const dom = Array.from(truth.keys()).filter((p) => truth[p] < 3);
      ari[mode] = adjustedRandIndex(dom.map((p) => truth[p]), dom.map((p) => r.labels[p]));
      expect(r.model.st.method).toBe(mode);
    }
    console.log(`ARI on the domain pixels: zscore ${ari.zscore.toFixed(3)}, robust ${ari.robust.toFixed(3)}`);
    expect(ari.robust).toBeGreaterThan(0.9);
    expect(ari.zscore).toBeLessThan(ari.robust - 0.2);
  });
});
