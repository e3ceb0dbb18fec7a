/**
 * The PCA covariance block kernel in WebAssembly SIMD (src/cpu/pca-wasm.ts: float32
 * products, float64 sums) against the JavaScript panel path of gramBlocks (float64) and the
 * rank-1 twin pcaGramCpu: sizes that exercise every padding (d + 1 not a multiple of the
 * register block, partial panels, one pixel), excluded pixels (NaN, Inf, beyond
 * PCA_MAX_ABS), several blocks.
 */
import { describe, expect, test } from 'vitest';
import { gramBlocks, PCA_CPU_BLOCK, addBlocks } from '../../src/cpu/pca-gram.js';
import { pcaGramCpu, PCA_MAX_ABS } from '../../src/cpu/pca.js';
import { GRAM_F32_BOUND, wasmGram, WPANEL } from '../../src/cpu/pca-wasm.js';
import { makeRng } from '../../src/synth/random.js';
import { heapF32, heapFree, inHeap } from '../../src/cpu/wasm-heap.js';

/** float64 sums of the same products in another order, relative to the largest diagonal entry. */
const GRAM_ORDER_REL = 1e-12;

describe('pca-wasm', () => {
  test('WebAssembly SIMD is available (Node >= 20), so the fast path is the one that runs', () => {
    expect(wasmGram(101, PCA_CPU_BLOCK)).not.toBeNull();
  });

  test('block Gram matrices: wasm (float32 products) within its error bound of the twin; JavaScript panels = twin', () => {
    const rng = makeRng(777);
    for (const [d, P] of [[101, PCA_CPU_BLOCK + 3 * WPANEL + 17], [1, 5], [2, WPANEL], [3, 1], [7, 2 * WPANEL + 1], [40, 1000]]) {
      const cube = new Float32Array(d * P).map(() => 1 + rng.normal());
      if (P > 10) {
        cube[3] = NaN;
        cube[(d - 1) * P + 7] = Infinity;
        cube[Math.floor(d / 2) * P + 9] = -3e18;
      }
      const centre = Float64Array.from({ length: d }, () => 1 + 0.1 * rng.normal());
      const blocks = Array.from({ length: Math.ceil(P / PCA_CPU_BLOCK) }, (_, b) => b);
      const m = d + 1;
      const w = addBlocks(gramBlocks({ cube, P, d, centre, blocks }), m);
      const js = addBlocks(gramBlocks({ cube, P, d, centre, blocks }, false), m);
      const twin = pcaGramCpu(cube, P, d, centre);
      let maxDiag = 0;
      for (let i = 0; i < m; i++) maxDiag = Math.max(maxDiag, twin[i * m + i]);
      let worstW = 0, worstJ = 0;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < m; j++) {
          const q = i * m + j;
          // The kernel's proven bound, entry by entry (pca-wasm.ts header).
          worstW = Math.max(worstW, Math.abs(w[q] - twin[q]) / Math.sqrt(twin[i * m + i] * twin[j * m + j]));
          worstJ = Math.max(worstJ, Math.abs(js[q] - twin[q]) / maxDiag);
        }
      }
      expect(worstW, `d ${d} P ${P}`).toBeLessThanOrEqual(GRAM_F32_BOUND);
      expect(worstJ, `d ${d} P ${P}`).toBeLessThan(GRAM_ORDER_REL);
      // Included pixels counted exactly; the matrix symmetric.
      expect(w[m * m - 1]).toBe(twin[m * m - 1]);
      if (P > 10) expect(w[m * m - 1]).toBe(P - 3);
      for (let i = 0; i < m; i++) for (let j = 0; j < i; j++) expect(w[i * m + j]).toBe(w[j * m + i]);
    }
  });

  test('a tile in the WebAssembly heap (read in place, last partial panel staged) gives the same bytes as a staged tile', () => {
    const rng = makeRng(778);
    for (const [d, P] of [[101, PCA_CPU_BLOCK + 3 * WPANEL + 17], [7, 2 * WPANEL], [3, 5], [40, 3 * WPANEL + 1]]) {
      const plain = new Float32Array(d * P).map(() => 1 + rng.normal());
      // Excluded pixels in the first panel of a block, in a middle panel and in the last (partial) one.
      plain[2] = NaN;
      if (P > WPANEL + 5) plain[(d - 1) * P + WPANEL + 5] = -Infinity;
      plain[Math.floor(d / 2) * P + P - 1] = 2e18;
      const heap = heapF32(d * P);
      try {
        heap.set(plain);
        expect(inHeap(heap)).toBe(true);
        const centre = Float64Array.from({ length: d }, () => 1 + 0.1 * rng.normal());
        const blocks = Array.from({ length: Math.ceil(P / PCA_CPU_BLOCK) }, (_, b) => b);
        const a = gramBlocks({ cube: plain, P, d, centre, blocks });
        const b = gramBlocks({ cube: heap, P, d, centre, blocks });
        expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer)), `d ${d} P ${P}`).toBe(true);
        expect(addBlocks(a, d + 1)[(d + 1) * (d + 1) - 1]).toBe(P - (P > WPANEL + 5 ? 3 : 2));
      } finally {
        heapFree(heap);
      }
    }
  });

  test('exclusion at PCA_MAX_ABS matches usableValue for float32 values at the limit', () => {
    // The float32 neighbours of 1e18: the one below is usable (|v| < 1e18), the one above not.
    const below = Math.fround(PCA_MAX_ABS) < PCA_MAX_ABS ? Math.fround(PCA_MAX_ABS) : Math.fround(PCA_MAX_ABS * (1 - 2 ** -23));
    const above = Math.fround(PCA_MAX_ABS) < PCA_MAX_ABS ? Math.fround(PCA_MAX_ABS * (1 + 2 ** -23)) : Math.fround(PCA_MAX_ABS);
    expect(below).toBeLessThan(PCA_MAX_ABS);
    expect(above).toBeGreaterThanOrEqual(PCA_MAX_ABS);
    const P = 8;
    const cube = Float32Array.from([0, 1, below, -below, above, -above, 2, 3]);
    const G = gramBlocks({ cube, P, d: 1, centre: new Float64Array(1), blocks: [0] });
    expect(G[3]).toBe(pcaGramCpu(cube, P, 1, new Float64Array(1))[3]);
    expect(G[3]).toBe(6);
  });
});
