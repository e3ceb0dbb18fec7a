/**
 * The lcf pass in WebAssembly SIMD (src/cpu/lcf-wasm.ts) against lcfFast (src/cpu/lcf-fast.ts):
 * the same float64 operations in the same order (projections, forward substitution, and for
 * the one-subset modes the vectorised solve), so every output byte must be identical, for
 * every mode, each background, 1-6 references (one and two column sweeps), pixel counts that
 * leave partial quads and span several staged blocks, and pixels with NaN / infinite values;
 * with the tile and the output rows in the WebAssembly heap (src/cpu/wasm-heap.ts) too.
 * lcfFast itself is checked against the Givens twin lcfCpu and the GPU in test/kernels/lcf.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { makeLcfPlan, type LcfBackground, type LcfMode } from '../../src/cpu/lcf.js';
import { lcfFast } from '../../src/cpu/lcf-fast.js';
import { lcfWasm, lcfWasmAvailable } from '../../src/cpu/lcf-wasm.js';
import { lcfRows as rowsOf } from '../../src/cpu/lcf.js';
import { heapF32, heapF64, heapFree } from '../../src/cpu/wasm-heap.js';
import { syntheticReferences } from '../../src/pipeline/lcf-step.js';
import { makeRng } from '../../src/synth/random.js';

describe('lcf-wasm', () => {
  test('WebAssembly SIMD is available (Node >= 20), so the fast path is the one that runs', () => {
    expect(lcfWasmAvailable).toBe(true);
  });

  test('output bytes identical to lcfFast', () => {
    const rng = makeRng(7);
    const nE = 37;
    for (const nRefs of [1, 2, 6]) {
      const { energies, refs } = syntheticReferences(nE, nRefs, 3);
      for (const mode of ['ls', 'nnls', 'sum1', 'nnls-sum1'] as LcfMode[]) {
        for (const background of ['none', 'const', 'linear'] as LcfBackground[]) {
          if (mode.endsWith('sum1') && nRefs === 1) continue;
          const plan = makeLcfPlan(refs, energies, { mode, background });
          for (const P of [1, 7, 3001]) {
            const cube = new Float32Array(plan.nW * P);
            for (let p = 0; p < P; p++) {
              const w = refs.map(() => rng.uniform() - 0.1);
              for (let e = 0; e < plan.nW; e++) {
                let v = 0.05 + 0.01 * rng.normal();
                for (let k = 0; k < nRefs; k++) v += w[k] * refs[k].mu[plan.i0 + e];
                cube[e * P + p] = v;
              }
            }
            if (P > 5) {
              cube[2] = NaN;
              cube[(plan.nW - 1) * P + 4] = Infinity;
              for (let e = 0; e < plan.nW; e++) cube[e * P + 5] = 0; // ||y||^2 = 0: rfactor NaN
            }
            const a = lcfFast(plan, cube, P);
            const b = lcfWasm(plan, cube, P);
            const same = Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
            if (!same) throw new Error(`differs: ${nRefs} refs, ${mode}, ${background}, P = ${P}`);
            expect(same).toBe(true);
            // The tile in the WebAssembly heap (staged by memory.copy), as the window of a
            // larger tile (rows before and after it), and the rows written into a heap block
            // that holds stale values (every value must be overwritten; odd P: the last pixel
            // goes through the scratch rows, not over the next row's first).
            const R = rowsOf(plan.M).ROWS;
            const tile = heapF32((plan.nW + 2) * P);
            tile.fill(7);
            tile.set(cube, P);
            const out = heapF64(R * P + 3);
            out.fill(-123.5);
            const c = lcfWasm(plan, tile.subarray(P, (plan.nW + 1) * P), P, out);
            expect(c).toBe(out);
            const inPlace = Buffer.from(a.buffer).equals(Buffer.from(out.buffer, out.byteOffset, 8 * R * P));
            if (!inPlace) throw new Error(`heap tile/out differs: ${nRefs} refs, ${mode}, ${background}, P = ${P}`);
            expect(out[R * P]).toBe(-123.5); // nothing written past the rows
            heapFree(tile);
            heapFree(out);
          }
        }
      }
    }
  });
});
