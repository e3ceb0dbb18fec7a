/**
 * The CPU k-means engine's kernel: one fused sweep over float32 features that assigns each
 * pixel to its nearest active centre AND accumulates the cluster sums, so the data are read
 * once per Lloyd step (the twins kmeansAssignCpu + kmeansPartialCpu in kmeans.ts read them
 * twice and are kept as the readable reference).
 *
 * Work is cut into blocks of KM_CPU_BLOCK pixels by GLOBAL pixel index (not by tile or
 * thread), each block's sums start from zero, and the engine adds the blocks in order: the
 * bytes of the result do not depend on the thread count nor on how the features are split
 * into views.
 *
 * Arithmetic (stated because accuracy depends on it):
 * - labels are always exactly those of the float64 twin kmeansAssignCpu: z = (x - shift) *
 *   inv_scale and (z - c)^2 summed over f in order, in float64, the lower centre index on an
 *   exact tie; a pixel with any non-finite feature is excluded (label -1, distance NaN).
 *   d <= 8 computes them so for every pixel (two pixels a float64 vector in kmeans-wasm.ts);
 *   d >= KM_SCREEN_MIN_D first screens in float32 (|c|^2 - 2 y.w, four pixels a vector, as
 *   scikit-learn's float32 GEMM form) and keeps the screen's answer only where a stated
 *   error bound proves the float64 twin picks the same centre, else runs the twin's
 *   arithmetic for that pixel (kmeans-wasm.ts, the bound's derivation there). So near-ties
 *   never flip relative to the twin, and the GPU cross-check tolerances are unchanged.
 * - sums are float64: per block, sums of z (from the float32 value promoted), the count and
 *   the winner's squared distance; at the block's end the deviation sums are formed as
 *   sum(z) - count * c (the engine's convention: sums relative to the centres used). z is
 *   O(1), a block holds KM_CPU_BLOCK pixels, so the float64 error of sum(z) is ~1e-13
 *   relative: far below float32 data resolution (the tests compare with the twin to 1e-9).
 *   d <= 8 sums the squared distance over f in order (the twin's value); d >= 9 as
 *   (P0 + P1) + (P2 + P3), P_r over features f = r (mod 4), which differs from the twin's
 *   by float64 rounding only (dist2 is stored as float32 anyway).
 *
 * Where the runtime has WebAssembly SIMD (every Node >= 20) the blocks run kmeans-wasm.ts, the
 * same operations in the same order (bit-identical results); the JavaScript sweeps below are
 * its fallback and its check.
 *
 * JavaScript fallbacks: small d x k (the common map-descriptor case: d <= 8) runs a function
 * generated for the (d, active centres) at hand, with every centre coordinate in a local
 * (registers, no array loads in the inner loop); other d <= 8 a loop over mini-blocks of
 * pixels that streams each feature row once per block; d >= 9 screenedSweepJs (the twin's
 * labels directly, then the screened sweep's float64 sums).
 */

import { heapF32, heapFree, inHeap } from './wasm-heap.js';
import { exactLabel, KM_SCREEN_MIN_D, WasmScreen, wasmSweep, type SweepTarget } from './kmeans-wasm.js';

/**
 * Pixels per block (global pixel index ranges; the unit of the deterministic reduction and of
 * the work handed to threads). 8192: 100k pixels make 13 blocks, so two threads get 49k and
 * 51k pixels (with 32768 they got 66k and 34k: the iteration waited for the larger half).
 */
export const KM_CPU_BLOCK = 1 << 13;
/** Largest d x (active centres) for which a specialised sweep is generated. */
export const KM_GEN_MAX_TERMS = 160;

/** A contiguous range of pixels of a feature-major array: feature f of pixel i at data[f * stride + offset + i]. */
export interface SweepView {
  data: Float32Array;
  stride: number;
  offset: number;
  count: number;
}

/** What a block sweep needs besides the data. */
export interface SweepParams {
  d: number;
  k: number;
  shift: Float64Array;
  invScale: Float64Array;
  /** Centres k x d (standardised units). */
  centres: Float64Array;
  active: Uint8Array;
}

type SweepFn = (
  data: Float32Array, stride: number, off: number, n: number, sh: Float64Array, iv: Float64Array, C: Float64Array,
  sums: Float64Array, lab: Int32Array | null, dd: Float32Array | null, o: number,
) => void;

const generated = new Map<string, SweepFn>();

/**
 * The specialised sweep for d features and the given active centres: one pass over n
 * pixels adding sum(z), count and squared distance per cluster into sums[k * (d + 2)];
 * labels / distances written at lab[o + i] / dd[o + i] when given.
 */
function generatedSweep(d: number, k: number, act: number[], want: boolean): SweepFn {
  const key = `${d}:${k}:${act.join(',')}:${want}`;
  let fn = generated.get(key);
  if (fn) return fn;
  const m = d + 2;
  const L: string[] = [];
  const F = Array.from({ length: d }, (_, f) => f);
  for (const f of F) L.push(`const sh${f} = sh[${f}], iv${f} = iv[${f}], o${f} = ${f} * stride + off;`);
  for (const j of act) for (const f of F) L.push(`const c${j}_${f} = C[${j * d + f}];`);
  L.push('for (let i = 0; i < n; i++) {');
  for (const f of F) L.push(`  const x${f} = data[o${f} + i];`);
  // x - x is 0 for a finite x and NaN otherwise.
  L.push(`  if (${F.map((f) => `(x${f} - x${f})`).join(' + ')} !== 0) { ${want ? 'lab[o + i] = -1; dd[o + i] = NaN; ' : ''}continue; }`);
  for (const f of F) L.push(`  const z${f} = (x${f} - sh${f}) * iv${f};`);
  const dist = (j: number) => F.map((f) => `(z${f} - c${j}_${f}) * (z${f} - c${j}_${f})`).join(' + ');
  L.push(`  let best = ${act[0]}, bv = ${dist(act[0])};`);
  for (const j of act.slice(1)) L.push(`  { const s = ${dist(j)}; if (s < bv) { bv = s; best = ${j}; } }`);
  if (want) L.push('  lab[o + i] = best; dd[o + i] = bv;');
  L.push(`  const b = best * ${m};`);
  for (const f of F) L.push(`  sums[b + ${f}] += z${f};`);
  L.push(`  sums[b + ${d}] += 1;`);
  L.push(`  sums[b + ${d + 1}] += bv;`);
  L.push('}');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  fn = new Function('data', 'stride', 'off', 'n', 'sh', 'iv', 'C', 'sums', 'lab', 'dd', 'o', L.join('\n')) as SweepFn;
  if (generated.size > 256) generated.clear();
  generated.set(key, fn);
  return fn;
}

/** Mini-block of the generic sweep (pixels whose z stay in L1). */
const MB = 64;

/**
 * The generic sweep (any d): same results as the generated one. Per mini-block the z are
 * formed feature row by feature row (streaming reads), stored pixel-major, then each pixel
 * meets the centres four at a time with four independent accumulators.
 */
function genericSweep(
  v: SweepView, i0: number, n: number, p: SweepParams, act: number[], sums: Float64Array,
  lab: Int32Array | null, dd: Float32Array | null, o: number,
): void {
  const { d, shift: sh, invScale: iv, centres: C } = p;
  const m = d + 2;
  const z = new Float64Array(d * MB);
  const ok = new Uint8Array(MB);
  const { data, stride } = v;
  const na = act.length;
  for (let a = 0; a < n; a += MB) {
    const nb = Math.min(MB, n - a);
    ok.fill(1);
    for (let f = 0; f < d; f++) {
      const row = f * stride + v.offset + i0 + a;
      const s = sh[f], w = iv[f];
      for (let i = 0; i < nb; i++) {
        const x = data[row + i];
        if (x - x !== 0) ok[i] = 0;
        z[i * d + f] = (x - s) * w;
      }
    }
    for (let i = 0; i < nb; i++) {
      const at = o + a + i;
      if (!ok[i]) {
        if (lab !== null) {
          lab[at] = -1;
          dd![at] = NaN;
        }
        continue;
      }
      const zi = i * d;
      let best = -1, bv = 0;
      for (let q = 0; q < na; q += 4) {
        const j0 = act[q], j1 = act[Math.min(q + 1, na - 1)], j2 = act[Math.min(q + 2, na - 1)], j3 = act[Math.min(q + 3, na - 1)];
        const c0 = j0 * d, c1 = j1 * d, c2 = j2 * d, c3 = j3 * d;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (let f = 0; f < d; f++) {
          const zf = z[zi + f];
          const t0 = zf - C[c0 + f], t1 = zf - C[c1 + f], t2 = zf - C[c2 + f], t3 = zf - C[c3 + f];
          s0 += t0 * t0;
          s1 += t1 * t1;
          s2 += t2 * t2;
          s3 += t3 * t3;
        }
        // In index order; repeated tail centres (q + r >= na) never win a strict comparison.
        if (best < 0 || s0 < bv) { best = j0; bv = s0; }
        if (s1 < bv) { best = j1; bv = s1; }
        if (s2 < bv) { best = j2; bv = s2; }
        if (s3 < bv) { best = j3; bv = s3; }
      }
      if (lab !== null) {
        lab[at] = best;
        dd![at] = bv;
      }
      const b = best * m;
      for (let f = 0; f < d; f++) sums[b + f] += z[zi + f];
      sums[b + d] += 1;
      sums[b + d + 1] += bv;
    }
  }
}

/**
 * The JavaScript reference of the screened sweep (d >= KM_SCREEN_MIN_D, kmeans-wasm.ts's
 * WasmScreen): the twin's labels (float64, as kmeansAssignCpu), then per pixel in order the
 * float64 sums of z, the count and the winner's squared distance summed as
 * (P0 + P1) + (P2 + P3), P_r the terms of features f = r (mod 4) in order: the same
 * operations as the WebAssembly, so the same bytes.
 */
function screenedSweepJs(
  v: SweepView, i0: number, n: number, p: SweepParams, act: number[], sums: Float64Array,
  lab: Int32Array | null, dd: Float32Array | null, o: number,
): void {
  const { d, shift: sh, invScale: iv, centres: C } = p;
  const m = d + 2;
  const { data, stride } = v;
  const at0 = v.offset + i0;
  for (let i = 0; i < n; i++) {
    const best = exactLabel(data, stride, at0 + i, d, sh, iv, C, act);
    if (best < 0) {
      if (lab !== null) {
        lab[o + i] = -1;
        dd![o + i] = NaN;
      }
      continue;
    }
    const b = best * m, c = best * d;
    let p0 = 0, p1 = 0, p2 = 0, p3 = 0;
    for (let f = 0; f < d; f++) {
      const z = (data[f * stride + at0 + i] - sh[f]) * iv[f];
      sums[b + f] += z;
      const t = z - C[c + f];
      switch (f & 3) {
        case 0: p0 += t * t; break;
        case 1: p1 += t * t; break;
        case 2: p2 += t * t; break;
        default: p3 += t * t;
      }
    }
    const s = (p0 + p1) + (p2 + p3);
    sums[b + d] += 1;
    sums[b + d + 1] += s;
    if (lab !== null) {
      lab[o + i] = best;
      dd![o + i] = s;
    }
  }
}

/** Indices of the active centres. */
function activeList(p: SweepParams): number[] {
  const act: number[] = [];
  for (let j = 0; j < p.k; j++) if (p.active[j]) act.push(j);
  return act;
}

/**
 * Sums of the given blocks (global block b covers pixels [b * B, (b + 1) * B) of the
 * concatenated views): Float64Array(blocks.length * k * (d + 2)), block by block, each the
 * deviation sums relative to the centres, count, squared-distance sum per cluster. Labels and
 * distances go to labels[p] / dist2[p] (global pixel p) when given. `norms`: the screen's
 * per-pixel norms (kmeansScreenNorms) or null; `target`: a worker thread runs the WebAssembly
 * sweep in its owner's heap, where the views and norms lie (kmeans-wasm.ts, SweepTarget).
 * Neither changes a result.
 */
export function kmeansSweepBlocks(
  views: SweepView[], p: SweepParams, blocks: number[], labels: Int32Array | null, dist2: Float32Array | null, useWasm = true,
  norms: Float32Array | null = null, target: SweepTarget | null = null,
): Float64Array {
  const { d, k, centres: C } = p;
  const m = d + 2;
  const act = activeList(p);
  const out = new Float64Array(blocks.length * k * m);
  const starts: number[] = [];
  let total = 0;
  for (const v of views) {
    starts.push(total);
    total += v.count;
  }
  if (act.length === 0) {
    // No active centre (as in kmeansAssignCpu): no pixel is assigned, every sum is zero.
    for (const b of blocks) {
      const g0 = b * KM_CPU_BLOCK, g1 = Math.min(total, g0 + KM_CPU_BLOCK);
      labels?.fill(-1, g0, g1);
      dist2?.fill(NaN, g0, g1);
    }
    return out;
  }
  const wasm = useWasm ? wasmSweep(d, k, KM_CPU_BLOCK, target) : null;
  const screened = d >= KM_SCREEN_MIN_D;
  const gen = !wasm && !screened && d * act.length <= KM_GEN_MAX_TERMS ? generatedSweep(d, k, act, labels !== null && dist2 !== null) : null;
  blocks.forEach((b, bi) => {
    const sums = out.subarray(bi * k * m, (bi + 1) * k * m);
    const g0 = b * KM_CPU_BLOCK;
    const g1 = Math.min(total, g0 + KM_CPU_BLOCK);
    if (wasm instanceof WasmScreen) wasm.run(views, starts, g0, g1, p.shift, p.invScale, C, act, sums, labels, dist2, norms);
    else if (wasm) wasm.run(views, starts, g0, g1, p.shift, p.invScale, C, act, sums, labels, dist2);
    else for (let vi = 0; vi < views.length; vi++) {
      const v = views[vi];
      const a = Math.max(g0, starts[vi]);
      const e = Math.min(g1, starts[vi] + v.count);
      if (a >= e) continue;
      const i0 = a - starts[vi];
      if (screened) screenedSweepJs(v, i0, e - a, p, act, sums, labels, dist2, a);
      else if (gen) gen(v.data, v.stride, v.offset + i0, e - a, p.shift, p.invScale, C, sums, labels, dist2, a);
      else genericSweep(v, i0, e - a, p, act, sums, labels, dist2, a);
    }
    // sum(z) -> sum(z - c) for the centres used.
    for (let j = 0; j < k; j++) {
      const n = sums[j * m + d];
      if (n > 0) for (let f = 0; f < d; f++) sums[j * m + f] -= n * C[j * d + f];
    }
  });
  return out;
}

/**
 * The screened sweep's per-pixel norms (kmeans-wasm.ts, WasmScreen.norms) of the views, formed
 * once for an engine whose data and shift stay fixed: a heap array in global pixel order (give
 * it back with heapFree), or null where the screen does not run here (d <= 8, no WebAssembly
 * SIMD, data outside this thread's heap). They change no result, only the work of each step.
 */
export function kmeansScreenNorms(views: SweepView[], d: number, k: number, shift: Float64Array, invScale: Float64Array): Float32Array | null {
  if (d < KM_SCREEN_MIN_D || views.length === 0 || !views.every((v) => inHeap(v.data))) return null;
  const w = wasmSweep(d, k, KM_CPU_BLOCK);
  if (!(w instanceof WasmScreen)) return null;
  const out = heapF32(views.reduce((s, v) => s + v.count, 0));
  try {
    w.norms(views, shift, invScale, out);
  } catch (e) {
    heapFree(out);
    throw e;
  }
  return out;
}
