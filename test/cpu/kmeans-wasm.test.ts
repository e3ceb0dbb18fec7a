/**
 * The k-means sweep in WebAssembly SIMD (src/cpu/kmeans-wasm.ts) against the JavaScript
 * sweeps of kmeans-sweep.ts (generated for small d, generic otherwise): the same float64
 * operations in the same order, so labels, distances and block sums must be bit-identical.
 * Sizes cover the unrolled and looped feature paths, several centre groups,
 * inactive centres, exact ties, odd pixel counts, views that split blocks, and excluded pixels.
 */
import { describe, expect, test } from 'vitest';
import { KM_CPU_BLOCK, kmeansSweepBlocks } from '../../src/cpu/kmeans-sweep.js';
import { wasmSweep } from '../../src/cpu/kmeans-wasm.js';
import { makeRng } from '../../src/synth/random.js';

describe('kmeans-wasm', () => {
  test('WebAssembly SIMD is available (Node >= 20), so the fast path is the one that runs', () => {
    expect(wasmSweep(3, 6, KM_CPU_BLOCK)).not.toBeNull();
  });

  test('labels, distances and block sums bit-identical to the JavaScript sweeps', () => {
    const rng = makeRng(99);
    for (const [n, d, k, off] of [[KM_CPU_BLOCK + 1001, 3, 6, 0], [777, 1, 2, 1], [5001, 8, 13, 2], [4099, 9, 7, 3], [3333, 40, 20, 0], [1, 2, 3, 0]]) {
      const total = n + off;
      const data = new Float32Array(d * total).map(() => 2 + rng.normal());
      if (n > 10) {
        data[off + 4] = NaN;
        data[(d - 1) * total + off + 9] = -Infinity;
      }
      // Two views that split the pixels at an odd place (a view need not start at an even pixel).
      const cut = Math.min(n, 1 + 2 * Math.floor(n / 5));
      const views = [
        { data, stride: total, offset: off, count: cut },
        { data, stride: total, offset: off + cut, count: n - cut },
      ].filter((v) => v.count > 0);
      const centres = Float64Array.from({ length: k * d }, () => rng.normal());
      // An exact tie for every pixel (centre 3 = centre 0): the lower index must win.
      if (k > 3) centres.copyWithin(3 * d, 0, d);
      const active = new Uint8Array(k).fill(1);
      if (k > 2) active[1] = 0;
      const p = { d, k, shift: Float64Array.from({ length: d }, () => 2 + 0.1 * rng.normal()), invScale: Float64Array.from({ length: d }, () => 0.5 + rng.uniform()), centres, active };
      const blocks = Array.from({ length: Math.ceil(n / KM_CPU_BLOCK) }, (_, b) => b);
      for (const want of [true, false]) {
        const out = [true, false].map((useWasm) => {
          const labels = want ? new Int32Array(n) : null;
          const dist2 = want ? new Float32Array(n) : null;
          const sums = kmeansSweepBlocks(views, p, blocks, labels, dist2, useWasm);
          return { sums, labels, dist2 };
        });
        const [w, js] = out;
        expect(Buffer.from(w.sums.buffer).equals(Buffer.from(js.sums.buffer)), `sums n ${n} d ${d} k ${k}`).toBe(true);
        if (want) {
          expect(Array.from(w.labels!)).toEqual(Array.from(js.labels!));
          expect(Array.from(w.dist2!)).toEqual(Array.from(js.dist2!));
          if (n > 10) expect([w.labels![4], w.labels![9]]).toEqual([-1, -1]);
          if (k > 2) expect(w.labels!.some((j) => j === 1)).toBe(false); // inactive centre never chosen
          if (k > 3) {
            expect(w.labels!.some((j) => j === 3)).toBe(false); // the tie goes to centre 0
            expect(w.labels!.some((j) => j === 0)).toBe(true);
          }
        }
      }
    }
  });
});
