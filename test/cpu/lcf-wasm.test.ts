/**
 * The lcf pass in WebAssembly SIMD (src/cpu/lcf-wasm.ts) against lcfFast (src/cpu/lcf-fast.ts):
 * the same float64 operations in the same order (projections, forward substitution, and for
 * the one-subset modes the vectorised solve), so every output byte must be identical, for
 * every mode, each background, 1-6 references (one to three column sweeps), windows shorter
 * and longer than one chunk of energies, pixel counts that leave partial quads and span
 * several blocks (read in place from a heap tile, the last one staged), and pixels with NaN / infinite values;
 * with the tile and the output rows in the WebAssembly heap (src/cpu/wasm-heap.ts) too; the nnls
 * modes run the active-set search inside the module, and pixels it gives up on go through the
 * exhaustive fallback in JavaScript (a plan with subsets removed forces that).
 * lcfFast itself is checked against the Givens twin lcfCpu and the GPU in test/kernels/lcf.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { LcfStatus, makeLcfPlan, type LcfBackground, type LcfMode, type LcfPlan } from '../../src/cpu/lcf.js';
import { lcfFast } from '../../src/cpu/lcf-fast.js';
import { lcfWasm, lcfWasmAvailable } from '../../src/cpu/lcf-wasm.js';
import { LcfThreads } from '../../src/cpu/lcf-threads.js';
import { KernelPool } from '../../src/cpu/threads.js';
import { lcfRows as rowsOf } from '../../src/cpu/lcf.js';
import { heapF32, heapF64, heapFree, wasmHeap } from '../../src/cpu/wasm-heap.js';
import { syntheticReferences } from '../../src/pipeline/lcf-step.js';
import { makeRng } from '../../src/synth/random.js';

describe('lcf-wasm', () => {
  test('WebAssembly SIMD is available (Node >= 20), so the fast path is the one that runs', () => {
    expect(lcfWasmAvailable).toBe(true);
  });

  test('output bytes identical to lcfFast', () => {
    const rng = makeRng(7);
    // 37 energies: chunks of 8 and a last one of 5; 6: fewer than one chunk.
    for (const [nE, nRefs] of [[37, 1], [37, 2], [37, 6], [6, 1], [6, 2]]) {
      const { energies, refs } = syntheticReferences(nE, nRefs, 3);
      for (const mode of ['ls', 'nnls', 'sum1', 'nnls-sum1'] as LcfMode[]) {
        for (const background of ['none', 'const', 'linear'] as LcfBackground[]) {
          if (mode.endsWith('sum1') && nRefs === 1) continue;
          const plan = makeLcfPlan(refs, energies, { mode, background });
          // 3001 and 4102: whole blocks read in place, then a last one staged (partial unit).
          for (const P of [1, 7, 3001, 4102]) {
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
            if (!same) throw new Error(`differs: ${nE} energies, ${nRefs} refs, ${mode}, ${background}, P = ${P}`);
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
            if (!inPlace) throw new Error(`heap tile/out differs: ${nE} energies, ${nRefs} refs, ${mode}, ${background}, P = ${P}`);
            expect(out[R * P]).toBe(-123.5); // nothing written past the rows
            heapFree(tile);
            heapFree(out);
          }
        }
      }
    }
  });

  test('pixels the active-set search cannot finish: the module leaves them to lcfWasm, which falls back to the exhaustive search as lcfFast does (same bytes)', () => {
    // A plan without its subsets of K - 1 free references: a pixel whose optimum is one of
    // them has no exact KKT subset left, so the module's search and lcfSearchPixel both give
    // up (a missing subset or the step limit) and lcfSolvePixel decides among the rest.
    const rng = makeRng(11);
    const nE = 41, K = 4, P = 2001;
    const { energies, refs } = syntheticReferences(nE, K, 5);
    for (const mode of ['nnls', 'nnls-sum1'] as LcfMode[]) {
      const full = makeLcfPlan(refs, energies, { mode, background: 'const' });
      const keep: number[] = [];
      for (let s = 0; s < full.nSubsets; s++) {
        let c = 0;
        for (let m = full.masks[s]; m; m &= m - 1) c++;
        if (c !== K - 1) keep.push(s);
      }
      const sub = new Float64Array(keep.length * full.subStride);
      keep.forEach((s, i) => sub.set(full.sub.subarray(s * full.subStride, (s + 1) * full.subStride), i * full.subStride));
      const plan: LcfPlan = { ...full, nSubsets: keep.length, masks: Int32Array.from(keep, (s) => full.masks[s]), sub };
      const cube = new Float32Array(nE * P);
      for (let p = 0; p < P; p++) {
        const w = refs.map(() => rng.uniform() - 0.15);
        for (let e = 0; e < nE; e++) {
          let v = 0.05 + 0.01 * rng.normal();
          for (let k = 0; k < K; k++) v += w[k] * refs[k].mu[e];
          cube[e * P + p] = v;
        }
      }
      // Pixels whose optimum (full plan) has K - 1 references free: each must have fallen back.
      const R = rowsOf(plan.M);
      const ref = lcfFast(full, cube, P);
      let fellBack = 0;
      for (let p = 0; p < P; p++) {
        let free = 0;
        for (let k = 0; k < K; k++) if (ref[k * P + p] !== 0) free++;
        if (free === K - 1) fellBack++;
      }
      expect(fellBack, mode).toBeGreaterThan(50);
      const a = lcfFast(plan, cube, P);
      const b = lcfWasm(plan, cube, P);
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), mode).toBe(true);
      for (let p = 0; p < P; p++) expect(b[R.STATUS * P + p]).toBe(LcfStatus.OK); // every pixel solved
    }
  });

  test('on 1, 2 and 3 worker threads (LcfThreads): the same bytes as lcfFast, with the tile and rows in the heap (read and written in place by the workers) and in other shared memory (staged by each worker)', async () => {
    // Tiles that span several blocks with a partial last unit, a part boundary inside a
    // block, and a window of a larger tile; nnls 6 refs runs the module's search, the plan
    // without subsets also the JavaScript fallback on the workers.
    const rng = makeRng(13);
    const nE = 37, P = 6001;
    const cases: [number, LcfMode, LcfBackground][] = [[2, 'ls', 'const'], [6, 'nnls', 'const'], [3, 'nnls-sum1', 'linear']];
    for (const threads of [1, 2, 3]) {
      const pool = KernelPool.create(threads, 1)!;
      expect(pool).not.toBeNull();
      const lt = new LcfThreads(pool);
      try {
        for (const [ci, [K, mode, background]] of cases.entries()) {
          const { energies, refs } = syntheticReferences(nE, K, 3);
          const plan = makeLcfPlan(refs, energies, { mode, background });
          const cube = new Float32Array(plan.nW * P);
          for (let p = 0; p < P; p++) {
            const w = refs.map(() => rng.uniform() - 0.15);
            for (let e = 0; e < plan.nW; e++) {
              let v = 0.05 + 0.01 * rng.normal();
              for (let k = 0; k < K; k++) v += w[k] * refs[k].mu[plan.i0 + e];
              cube[e * P + p] = v;
            }
          }
          cube[3] = NaN;
          const a = lcfFast(plan, cube, P);
          const R = rowsOf(plan.M).ROWS;
          // Heap: the window of a larger tile, rows over stale values; a pad larger than any
          // before it first, so the tile lies past what the heap held when the workers made
          // their instances (the shared memory grew under them).
          const pad = heapF32((2 << 20) * (1 + ci + cases.length * threads));
          const tile = heapF32((plan.nW + 1) * P);
          tile.fill(5);
          tile.set(cube, P);
          const out = heapF64(R * P + 2);
          out.fill(-7.25);
          expect(await lt.run(plan, tile.subarray(P), P, out)).toBe(out);
          const heapSame = Buffer.from(a.buffer).equals(Buffer.from(out.buffer, out.byteOffset, 8 * R * P));
          if (!heapSame) throw new Error(`heap differs: ${threads} threads, ${K} refs, ${mode}`);
          expect(out[R * P]).toBe(-7.25);
          heapFree(tile);
          heapFree(out);
          heapFree(pad);
          // Again with the same plan (the workers' instances made) on a tile past a larger pad:
          // the heap grows after the instances exist.
          // The tile is the end of a block larger than any before it, past the heap's end then.
          const end = wasmHeap().buffer.byteLength;
          const pad2 = heapF32((2 << 20) * (1 + ci + cases.length * threads) + (1 << 20));
          const tile2 = pad2.subarray(pad2.length - plan.nW * P), out2 = heapF64(R * P);
          expect(tile2.byteOffset).toBeGreaterThan(end);
          tile2.set(cube);
          await lt.run(plan, tile2, P, out2);
          const grownSame = Buffer.from(a.buffer).equals(Buffer.from(out2.buffer, out2.byteOffset, 8 * R * P));
          if (!grownSame) throw new Error(`heap grown differs: ${threads} threads, ${K} refs, ${mode}`);
          expect(grownSame).toBe(true);
          heapFree(out2);
          heapFree(pad2);
          // Shared memory outside the heap.
          const sc = new Float32Array(new SharedArrayBuffer(4 * plan.nW * P));
          sc.set(cube);
          const so = new Float64Array(new SharedArrayBuffer(8 * R * P));
          so.fill(-7.25);
          await lt.run(plan, sc, P, so);
          const sharedSame = Buffer.from(a.buffer).equals(Buffer.from(so.buffer));
          if (!sharedSame) throw new Error(`shared differs: ${threads} threads, ${K} refs, ${mode}`);
          expect(sharedSame).toBe(true);
        }
      } finally {
        await pool.close();
      }
    }
  });
});
