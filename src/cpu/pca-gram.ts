/**
 * The CPU backend's PCA covariance kernel: the augmented Gram matrix G = sum a a^T,
 * a = [x - centre, 1] (see pcaGramCpu in pca.ts, the readable rank-1-update twin), computed
 * in cache-friendly panels and 4 x 4 register blocks, on worker threads. Each block runs the
 * WebAssembly SIMD version of the same panel scheme (pca-wasm.ts) where the runtime has it
 * (every Node >= 20); the JavaScript panels below are its fallback and its check.
 *
 * - Pixels are cut into blocks of PCA_CPU_BLOCK by pixel index within the tile (not by
 *   thread); each block's G starts from zero and the caller adds blocks in order, so the
 *   bytes do not depend on the thread count.
 * - Within a block, panels of PANEL pixels: the panel's centred values are copied once from
 *   the float32 tile into a float64 panel, row by row (rows = the d energies, the constant
 *   row, zero padding to a multiple of 4; an excluded pixel is a zero column, so it adds
 *   nothing), ~100 x 64 x 8 B = 52 KiB for d = 101, which stays in L2 while every 4 x 4
 *   block of G's upper triangle runs over it with 16 float64 accumulators in registers
 *   (8 loads per 16 multiply-adds instead of 2 per 1 in the rank-1 update).
 * - Arithmetic of these JavaScript panels: float64 throughout (centred float32 values,
 *   float64 products and sums): per panel a register sum of PANEL products, added to the
 *   block's G. The WebAssembly path multiplies in float32 (four lanes against float64's two,
 *   and no FMA in WebAssembly SIMD) and sums in float64, within GRAM_F32_BOUND of this
 *   (pca-wasm.ts). Either way blocks are added in float64 by the caller, and the same rule
 *   decides which pixels take part as in the twin (usableValue).
 * - A tile allocated in the WebAssembly heap (wasm-heap.ts heapF32) is read in place by the
 *   WebAssembly path, on the thread that owns the heap and on worker threads alike: each
 *   worker runs the kernel on the owner's heap memory, in a scratch block of its own
 *   allocated there (CpuGram; pca-wasm.ts WasmGram with a SweepTarget, the mechanism of the
 *   k-means and edge workers). Before, workers could not see that heap and copied their
 *   blocks into their own (2 threads about 1.1x of one). A tile in other shared memory is
 *   still staged block by block by whichever thread runs the block.
 */
import { PCA_MAX_ABS } from './pca.js';
import { KernelPool, defaultThreads, isShared } from './threads.js';
import { wasmGram, wasmGramRuns, wasmGramTargetBytes } from './pca-wasm.js';
import type { SweepTarget } from './kmeans-wasm.js';
import { inHeap, wasmHeap } from './wasm-heap.js';

/** Pixels per block (the unit of the deterministic reduction). */
export const PCA_CPU_BLOCK = 1 << 14;
/** Pixels per panel. */
const PANEL = 64;

/** A block job: the tile (energy-major f32[d][P], shared memory for workers), its centre and the blocks to sum. */
export interface GramJob {
  cube: Float32Array;
  P: number;
  d: number;
  centre: Float64Array;
  blocks: number[];
  /**
   * Run in another thread's heap (a worker thread: the owner's memory and this worker's
   * scratch block there; the tile lies in that memory), or absent / null: this thread's heap.
   */
  target?: SweepTarget | null;
}

/** Rows of the panel: d + 1 rounded up to a multiple of 4. */
function paddedRows(d: number): number {
  return Math.ceil((d + 1) / 4) * 4;
}

/**
 * The Gram matrices of the given blocks: Float64Array(blocks.length * (d + 1)^2), each a
 * full symmetric (d + 1) x (d + 1) row-major matrix, in the order of `blocks`.
 */
export function gramBlocks(job: GramJob, useWasm = true): Float64Array {
  const { cube, P, d, centre, blocks } = job;
  const m = d + 1;
  const mp = paddedRows(d);
  const out = new Float64Array(blocks.length * m * m);
  const A = new Float64Array(mp * PANEL);
  const ok = new Uint8Array(PANEL);
  const Gp = new Float64Array(mp * mp);
  // WebAssembly SIMD where available (pca-wasm.ts, ~3x faster); this JavaScript path otherwise.
  const wasm = useWasm ? wasmGram(d, PCA_CPU_BLOCK, job.target ?? null) : null;
  blocks.forEach((b, bi) => {
    if (wasm) {
      wasm.gram(cube, P, b * PCA_CPU_BLOCK, Math.min(P, (b + 1) * PCA_CPU_BLOCK), centre, out.subarray(bi * m * m, (bi + 1) * m * m));
      return;
    }
    Gp.fill(0);
    const b0 = b * PCA_CPU_BLOCK;
    const b1 = Math.min(P, b0 + PCA_CPU_BLOCK);
    for (let p0 = b0; p0 < b1; p0 += PANEL) {
      const nb = Math.min(PANEL, b1 - p0);
      ok.fill(1);
      for (let e = 0; e < d; e++) {
        const row = e * P + p0;
        for (let i = 0; i < nb; i++) {
          const v = cube[row + i];
          // usableValue(v): finite and |v| < PCA_MAX_ABS (NaN fails the comparison).
          if (!(Math.abs(v) < PCA_MAX_ABS)) ok[i] = 0;
        }
      }
      for (let e = 0; e < d; e++) {
        const row = e * P + p0, r = e * PANEL, c = centre[e];
        for (let i = 0; i < nb; i++) A[r + i] = ok[i] ? cube[row + i] - c : 0;
        for (let i = nb; i < PANEL; i++) A[r + i] = 0;
      }
      for (let i = 0; i < PANEL; i++) A[d * PANEL + i] = i < nb && ok[i] ? 1 : 0;
      // Rows past d stay zero (A was zero-filled and they are never written).
      panelGram(A, mp, PANEL, Gp);
    }
    const G = out.subarray(bi * m * m, (bi + 1) * m * m);
    for (let i = 0; i < m; i++) {
      for (let j = i; j < m; j++) {
        const v = Gp[i * mp + j];
        G[i * m + j] = v;
        G[j * m + i] = v;
      }
    }
  });
  return out;
}

/** Gp (upper 4 x 4 blocks, mp x mp) += A A^T over the panel's n columns; A is mp rows of n. */
function panelGram(A: Float64Array, mp: number, n: number, Gp: Float64Array): void {
  for (let bi = 0; bi < mp; bi += 4) {
    const r0 = bi * n, r1 = r0 + n, r2 = r1 + n, r3 = r2 + n;
    for (let bj = bi; bj < mp; bj += 4) {
      const s0 = bj * n, s1 = s0 + n, s2 = s1 + n, s3 = s2 + n;
      let g00 = 0, g01 = 0, g02 = 0, g03 = 0, g10 = 0, g11 = 0, g12 = 0, g13 = 0;
      let g20 = 0, g21 = 0, g22 = 0, g23 = 0, g30 = 0, g31 = 0, g32 = 0, g33 = 0;
      for (let i = 0; i < n; i++) {
        const a0 = A[r0 + i], a1 = A[r1 + i], a2 = A[r2 + i], a3 = A[r3 + i];
        const b0 = A[s0 + i], b1 = A[s1 + i], b2 = A[s2 + i], b3 = A[s3 + i];
        g00 += a0 * b0; g01 += a0 * b1; g02 += a0 * b2; g03 += a0 * b3;
        g10 += a1 * b0; g11 += a1 * b1; g12 += a1 * b2; g13 += a1 * b3;
        g20 += a2 * b0; g21 += a2 * b1; g22 += a2 * b2; g23 += a2 * b3;
        g30 += a3 * b0; g31 += a3 * b1; g32 += a3 * b2; g33 += a3 * b3;
      }
      const o0 = bi * mp + bj, o1 = o0 + mp, o2 = o1 + mp, o3 = o2 + mp;
      Gp[o0] += g00; Gp[o0 + 1] += g01; Gp[o0 + 2] += g02; Gp[o0 + 3] += g03;
      Gp[o1] += g10; Gp[o1 + 1] += g11; Gp[o1 + 2] += g12; Gp[o1 + 3] += g13;
      Gp[o2] += g20; Gp[o2 + 1] += g21; Gp[o2 + 2] += g22; Gp[o2 + 3] += g23;
      Gp[o3] += g30; Gp[o3 + 1] += g31; Gp[o3 + 2] += g32; Gp[o3 + 3] += g33;
    }
  }
}

/** Sum of block Gram matrices in block order into one (d + 1)^2 matrix. */
export function addBlocks(blockGrams: Float64Array, m: number): Float64Array {
  const G = new Float64Array(m * m);
  const nb = blockGrams.length / (m * m);
  for (let b = 0; b < nb; b++) {
    const o = b * m * m;
    for (let q = 0; q < m * m; q++) G[q] += blockGrams[o + q];
  }
  return G;
}

/**
 * The tile Gram matrix on `threads` worker threads (a tile in shared memory; otherwise, or
 * with one thread, in this thread): the same blocks, added in the same order, so the bytes
 * are the same either way. close() ends the workers.
 */
export class CpuGram {
  private readonly pool: KernelPool | null;
  constructor(readonly threads = defaultThreads()) {
    this.pool = KernelPool.create(threads);
  }

  /** The workers' scratch blocks in this thread's heap for d energies (for tiles in the heap; freed when the pool closes). */
  private scratchFor(pool: KernelPool, d: number): number[] {
    return pool.heapScratch(d, wasmGramTargetBytes(d));
  }

  async gram(cube: Float32Array, P: number, d: number, centre: Float64Array): Promise<Float64Array> {
    const m = d + 1;
    const nBlocks = Math.ceil(P / PCA_CPU_BLOCK);
    const all = Array.from({ length: nBlocks }, (_, b) => b);
    if (!this.pool || nBlocks < 2 || !isShared(cube)) return addBlocks(gramBlocks({ cube, P, d, centre, blocks: all }), m);
    const T = Math.min(this.pool.size, nBlocks);
    const parts = Array.from({ length: T }, (_, t) => all.slice(Math.floor((t * nBlocks) / T), Math.floor(((t + 1) * nBlocks) / T)));
    // A tile in this thread's heap: part t on worker t, in its scratch block there, reading the tile in place.
    const pool = this.pool;
    const bases = inHeap(cube) && wasmGramRuns() ? this.scratchFor(pool, d) : null;
    const mem = bases ? wasmHeap().mem : null;
    const res = await Promise.all(parts.map((blocks, t) => pool.runOn<Float64Array>(t, {
      kind: 'pca', cube, P, d, centre, blocks, target: bases ? { mem, base: bases[t] } : null,
    })));
    const joined = new Float64Array(nBlocks * m * m);
    let at = 0;
    for (const r of res) {
      joined.set(r, at);
      at += r.length;
    }
    return addBlocks(joined, m);
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}

/**
 * The CPU covariance pass over many tiles (the GpuGramAccumulator's twin): each tile's
 * blocked Gram matrix (CpuGram, worker threads) added in float64 in tile order.
 */
export class CpuGramAccumulator {
  private readonly g: CpuGram;
  private readonly owned: boolean;
  private readonly sum: Float64Array;

  /** `threads`: a thread count (a pool of its own, closed by release()) or a CpuGram to share. */
  constructor(readonly d: number, readonly centre: Float64Array, threads: number | CpuGram = defaultThreads()) {
    this.owned = typeof threads === 'number';
    this.g = typeof threads === 'number' ? new CpuGram(threads) : threads;
    this.sum = new Float64Array((d + 1) * (d + 1));
  }

  async add(cube: Float32Array, P: number): Promise<void> {
    const G = await this.g.gram(cube, P, this.d, this.centre);
    for (let i = 0; i < G.length; i++) this.sum[i] += G[i];
  }

  async finish(): Promise<Float64Array> {
    return Float64Array.from(this.sum);
  }

  async release(): Promise<void> {
    if (this.owned) await this.g.close();
  }
}
