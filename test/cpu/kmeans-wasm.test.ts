/**
 * The k-means sweep in WebAssembly SIMD (src/cpu/kmeans-wasm.ts) against the JavaScript
 * sweeps of kmeans-sweep.ts (generated for small d, generic otherwise): the same float64
 * operations in the same order, so labels, distances and block sums must be bit-identical.
 * Sizes cover the unrolled and looped feature paths, several centre groups,
 * inactive centres, exact ties, odd pixel counts, views that split blocks, and excluded pixels.
 */
import { describe, expect, test } from 'vitest';
import { CpuKmeansEngine, featureStats, featuresFromMaps, kmeansAssignCpu, releaseFeatures, standardization } from '../../src/cpu/kmeans.js';
import { KM_CPU_BLOCK, kmeansScreenNorms, kmeansSweepBlocks } from '../../src/cpu/kmeans-sweep.js';
import { KM_SCREEN_MIN_D, screenShiftFree, wasmSweep } from '../../src/cpu/kmeans-wasm.js';
import { heapF32, heapFree, inHeap } from '../../src/cpu/wasm-heap.js';
import { makeRng } from '../../src/synth/random.js';

describe('kmeans-wasm', () => {
  test('features in the WebAssembly heap (read in place) and in a plain Float32Array: byte-identical labels, distances and sums', () => {
    const rng = makeRng(7);
    // d: the screened path with a partial last group of 4 features (9, 101) and without (12);
    // the data end at the end of their heap block (the last group of 4 pixels reads past it).
    // d <= 8: the float64 sweep, pairs of pixels in place, an odd last pixel of a sub-block staged.
    for (const [n, d, k] of [[KM_CPU_BLOCK + 2999, 101, 6], [4097, 9, 5], [3001, 12, 7], [6, 13, 3], [2 * KM_CPU_BLOCK + 1001, 3, 6], [999, 8, 4], [5, 2, 3]]) {
      const plain = new Float32Array(d * n).map(() => 1 + rng.normal());
      plain[3] = NaN;
      if (n > 100) plain[(d - 1) * n + 77] = Infinity;
      const heap = heapF32(d * n);
      heap.set(plain);
      expect(inHeap(heap) && !inHeap(plain)).toBe(true);
      const centres = Float64Array.from({ length: k * d }, () => 0.3 * rng.normal());
      if (k > 3) centres.copyWithin(3 * d, 0, d); // exact ties: the twin's lower index
      const p = { d, k, shift: Float64Array.from({ length: d }, () => 1 + 0.1 * rng.normal()), invScale: Float64Array.from({ length: d }, () => 0.5 + rng.uniform()), centres, active: new Uint8Array(k).fill(1) };
      const blocks = Array.from({ length: Math.ceil(n / KM_CPU_BLOCK) }, (_, b) => b);
      // One view, and three views cut at odd places (a sub-block that spans two views is staged).
      const cuts = (data: Float32Array) => {
        const a = Math.min(n, 1 + 2 * Math.floor(n / 7)), b = Math.min(n, a + 2 * Math.floor(n / 3) + 1);
        return [
          [{ data, stride: n, offset: 0, count: n }],
          [{ data, stride: n, offset: 0, count: a }, { data, stride: n, offset: a, count: b - a }, { data, stride: n, offset: b, count: n - b }].filter((v) => v.count > 0),
        ];
      };
      const [hv, pv] = [cuts(heap), cuts(plain)];
      for (let c = 0; c < hv.length; c++) {
        const run = (views: typeof hv[0], useWasm: boolean) => {
          const labels = new Int32Array(n), dist2 = new Float32Array(n);
          const sums = kmeansSweepBlocks(views, p, blocks, labels, dist2, useWasm);
          return [sums, labels, dist2].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength));
        };
        const h = run(hv[c], true), pl = run(pv[c], true), js = run(pv[c], false);
        for (let q = 0; q < 3; q++) {
          expect(h[q].equals(pl[q]), `n ${n} d ${d} views ${hv[c].length} output ${q}: heap vs plain`).toBe(true);
          expect(h[q].equals(js[q]), `n ${n} d ${d} views ${hv[c].length} output ${q}: heap vs JavaScript`).toBe(true);
        }
        expect(new Int32Array(h[1].buffer, h[1].byteOffset, n)[3]).toBe(-1);
        // Sums without labels: the same bytes.
        const noLab = kmeansSweepBlocks(hv[c], p, blocks, null, null);
        expect(Buffer.from(noLab.buffer).equals(h[0])).toBe(true);
      }
      heapFree(heap);
    }
  });

  test('WebAssembly SIMD is available (Node >= 20), so the fast path is the one that runs', () => {
    expect(wasmSweep(3, 6, KM_CPU_BLOCK)).not.toBeNull();
  });

  test('featuresFromMaps in the heap (as xanes cluster builds them for the CPU backend): the engine gives the same bytes as from plain memory, on 1, 2 and 3 threads, whole or in views, step after step', async () => {
    const rng = makeRng(11);
    // d = 3: the float64 WasmSweep; d = 101: the float32 screen (norms formed once). With
    // threads and heap features the workers run in this thread's heap (SweepTarget), one
    // scratch block each per k: steps with k = 6, then 4, then 6 again reuse them.
    for (const d of [3, 101]) {
      const n = 2 * KM_CPU_BLOCK + 555;
      const maps = Array.from({ length: d }, () => new Float32Array(n).map(() => rng.normal()));
      maps[d - 1][17] = NaN;
      const heap = featuresFromMaps(maps, undefined, true), plain = featuresFromMaps(maps);
      expect(inHeap(heap.data) && !inHeap(plain.data)).toBe(true);
      const st = standardization(featureStats(plain), true);
      const steps = [6, 4, 6].map((k, s) => {
        const active = new Uint8Array(k).fill(1);
        if (s === 1) active[1] = 0;
        return { k, active, centres: Float64Array.from({ length: k * d }, () => 0.5 * rng.normal()) };
      });
      // Whole, and cut into views (one cut inside a block, one not at a sub-block boundary).
      const cuts = (data: Float32Array, whole: boolean) => whole
        ? [{ data, stride: n, offset: 0, count: n }]
        : [{ data, stride: n, offset: 0, count: 1001 }, { data, stride: n, offset: 1001, count: KM_CPU_BLOCK + 3000 }, { data, stride: n, offset: KM_CPU_BLOCK + 4001, count: n - KM_CPU_BLOCK - 4001 }];
      const bytes = async (data: Float32Array, threads: number, whole: boolean) => {
        const e = new CpuKmeansEngine(d, cuts(data, whole), st, { threads });
        // The workers read the heap in place exactly when there are workers and heap features.
        expect(e.inPlace, `d ${d} threads ${threads} heap ${inHeap(data)}`).toBe(e.threads > 1 && inHeap(data));
        try {
          const out: Buffer[][] = [];
          for (const { k, active, centres } of steps) {
            const r = await e.step(k, centres, active, true);
            out.push([r.sums, r.labels!, r.dist2!].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
          }
          return out;
        } finally {
          await e.release();
        }
      };
      const ref = await bytes(plain.data, 1, true);
      for (const [data, threads, whole] of [[heap.data, 1, true], [heap.data, 2, true], [heap.data, 2, false], [heap.data, 3, false], [plain.data, 2, true]] as const) {
        const got = await bytes(data, threads, whole);
        for (let s = 0; s < steps.length; s++) {
          for (let q = 0; q < 3; q++) {
            expect(got[s][q].equals(ref[s][q]), `d ${d} step ${s} output ${q}, ${threads} thread(s), heap ${inHeap(data)}, whole ${whole}`).toBe(true);
          }
        }
      }
      expect(ref[0][1].readInt32LE(4 * 17)).toBe(-1);
      releaseFeatures(heap);
      releaseFeatures(plain); // not in the heap: nothing to do
    }
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

  test('float32 screen (d >= KM_SCREEN_MIN_D): near-ties and large offsets keep exactly the float64 twin labels', () => {
    const rng = makeRng(7);
    // The screen without the shift (a shift small against the spread: the first two) and with it.
    const seen = new Set<boolean>();
    for (const [d, k, offset, scale] of [[KM_SCREEN_MIN_D, 6, 0, 1], [101, 6, 0.05, 1], [101, 6, 8340, 0.5], [101, 9, 1, 0.01], [37, 3, -2e4, 3]]) {
      const n = 4000;
      const centres = Float64Array.from({ length: k * d }, () => rng.normal());
      const shift = Float64Array.from({ length: d }, () => Math.fround(offset + 0.1 * rng.normal()));
      const invScale = Float64Array.from({ length: d }, () => 1 / (scale * (0.5 + rng.uniform())));
      const data = new Float32Array(d * n);
      // Pixels on the bisector of two centres, moved towards one of them by 0 to 1e-3 of
      // their distance (ties far below float32 resolution, and clear preferences), and
      // pixels near a centre (|z| small where the offset is large).
      const eps = [0, 1e-12, -1e-12, 1e-9, -1e-9, 1e-7, -1e-7, 1e-5, -1e-5, 1e-3, -1e-3];
      for (let i = 0; i < n; i++) {
        const a = i % k, b = (i + 1 + (i >> 3) % (k - 1)) % k;
        const e = i % 5 === 4 ? 0.5 : eps[i % eps.length];
        for (let f = 0; f < d; f++) {
          const z = 0.5 * (centres[a * d + f] + centres[b * d + f]) + e * (centres[b * d + f] - centres[a * d + f]);
          data[f * n + i] = shift[f] + z / invScale[f];
        }
      }
      data[3 * n + 17] = NaN;
      const views = [{ data, stride: n, offset: 0, count: n }];
      const active = new Uint8Array(k).fill(1);
      const p = { d, k, shift, invScale, centres, active };
      const blocks = Array.from({ length: Math.ceil(n / KM_CPU_BLOCK) }, (_, b) => b);
      const out = [true, false].map((useWasm) => {
        const labels = new Int32Array(n), dist2 = new Float32Array(n);
        const sums = kmeansSweepBlocks(views, p, blocks, labels, dist2, useWasm);
        return { sums, labels, dist2 };
      });
      const twin = new Int32Array(n);
      kmeansAssignCpu(views[0], d, { shift, scale: invScale.map((v) => 1 / v), constant: [], standardized: true }, k, centres, active, twin, new Float64Array(n), 0);
      expect(Array.from(out[0].labels), `d ${d} offset ${offset}`).toEqual(Array.from(twin));
      expect(Array.from(out[1].labels)).toEqual(Array.from(twin));
      expect(twin[17]).toBe(-1);
      expect(Buffer.from(out[0].sums.buffer).equals(Buffer.from(out[1].sums.buffer))).toBe(true);
      expect(Buffer.from(out[0].dist2.buffer).equals(Buffer.from(out[1].dist2.buffer))).toBe(true);
      // The same pixels in the heap, two views, with the norms formed once (as the one-thread
      // engine runs them): the norms are the screen's float32 sums in feature order (recomputed
      // here with Math.fround), and the labels and bytes stay those of the twin and the run above.
      const heap = heapF32(d * n);
      heap.set(data);
      const hv = [{ data: heap, stride: n, offset: 0, count: 1001 }, { data: heap, stride: n, offset: 1001, count: n - 1001 }];
      const norms = kmeansScreenNorms(hv, d, k, shift, invScale)!;
      const free = screenShiftFree(shift, invScale);
      seen.add(free);
      expect(free, `d ${d} offset ${offset}: screen without the shift`).toBe(Math.abs(offset) < 0.5);
      expect(norms).not.toBeNull();
      for (const px of [0, 1, 999, 1001, 1002, n - 1]) {
        let nrm = 0;
        for (let f = 0; f < d; f++) {
          const y = free ? data[f * n + px] : Math.fround(data[f * n + px] - Math.fround(shift[f]));
          nrm = Math.fround(nrm + Math.fround(y * y));
        }
        expect(Object.is(norms[px], nrm), `norm of pixel ${px}`).toBe(true);
      }
      const labels = new Int32Array(n), dist2 = new Float32Array(n);
      const sums = kmeansSweepBlocks(hv, p, blocks, labels, dist2, true, norms);
      expect(Array.from(labels), `d ${d} offset ${offset}, norms formed once`).toEqual(Array.from(twin));
      expect(Buffer.from(sums.buffer).equals(Buffer.from(out[0].sums.buffer))).toBe(true);
      expect(Buffer.from(dist2.buffer).equals(Buffer.from(out[0].dist2.buffer))).toBe(true);
      heapFree(norms);
      heapFree(heap);
    }
    expect([...seen].sort()).toEqual([false, true]);
  });
});
