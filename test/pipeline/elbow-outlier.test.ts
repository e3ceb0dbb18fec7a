/**
 * --min-cluster-size: one outlier pixel must not become a cluster of its own at the elbow.
 * Three well separated domains of 300 pixels each plus one far outlier: without the rule
 * the outlier's own cluster (k = 4) pulls the Kneedle choice; with the default minimum
 * (0.2 % of the pixels) k = 4 is not eligible and the elbow is at the three domains.
 */
import { describe, expect, test } from 'vitest';
import { elbow } from '../../src/pipeline/elbow.js';
import { featuresFromMaps } from '../../src/cpu/kmeans.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { makeRng } from '../../src/synth/random.js';

describe('elbow with an outlier pixel', () => {
  test('the default minimum cluster size keeps the elbow at the three domains', async () => {
    const rng = makeRng(120601);
    const n = 901;
    const a = new Float32Array(n), b = new Float32Array(n);
    const centres = [[0, 0], [4, 0], [2, 3.5]];
    for (let p = 0; p < n - 1; p++) {
      const c = centres[p % 3];
      a[p] = c[0] + 0.3 * rng.normal();
      b[p] = c[1] + 0.3 * rng.normal();
    }
    a[n - 1] = 40; b[n - 1] = 40; // one pixel far from everything
    const features = featuresFromMaps([a, b], ['a', 'b']);
    const opts = { standardize: 'none' as const, seed: 1 };
    const strict = await elbow(cpuBackend(), features, [2, 3, 4, 5, 6], { ...opts, minClusterSize: 1 });
    const robust = await elbow(cpuBackend(), features, [2, 3, 4, 5, 6], opts);
    console.log(`k without the rule ${strict.k}, with it ${robust.k}; smallest clusters ${robust.table.map((r) => `${r.k}:${r.smallest}`).join(' ')}`);
    expect(robust.k).toBe(3);
    expect(robust.table.find((r) => r.k === 4)!.eligible).toBe(false);
    expect(strict.table.find((r) => r.k === 4)!.smallest).toBe(1);
  });
});
