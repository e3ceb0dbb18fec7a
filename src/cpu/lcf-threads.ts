/**
 * The CPU lcf kernel (lcf-wasm.ts) on worker threads (KernelPool, threads.ts): a tile's
 * pixels are cut into one contiguous part per worker, and worker t solves its part with
 * lcfWasm. Where the tile and the output rows lie in this thread's WebAssembly heap
 * (wasm-heap.ts, shared memory) the workers run the module in this heap (LcfTarget): each
 * in a scratch block of its own allocated here (per plan), reading the tile and writing the
 * rows in place, as one thread does. A tile in other shared memory is staged block by block
 * by each worker into its own heap (what one thread does with such a tile). Every pixel is
 * solved alone by the same operations, so the rows are the same bytes on any number of
 * threads (test/cpu/lcf-wasm.test.ts).
 *
 * Before this, two threads ran whole tiles on CpuPool's workers (src/pipeline/cpu-pool.ts),
 * each staging its tile (a shared array outside its heap) block by block: the benchmark's
 * 1M x 101 tile at 2 references ran at about half the one-thread rate per core.
 */
import { lcfRows, type LcfPlan } from './lcf.js';
import { lcfWasm, lcfWasmTargetBytes, type LcfPart } from './lcf-wasm.js';
import { isShared, type KernelPool } from './threads.js';
import { inHeap, wasmHeap } from './wasm-heap.js';

/** A worker's job (kernel-worker.ts): lcfWasm on `part` of the tile. */
export interface LcfJob {
  kind: 'lcf';
  plan: LcfPlan;
  cube: Float32Array;
  P: number;
  out: Float64Array;
  part: LcfPart;
}

/** Runs an LcfJob on this (worker) thread. */
export function runLcfJob(j: LcfJob): Float64Array {
  lcfWasm(j.plan, j.cube, j.P, j.out, j.part);
  return new Float64Array(0);
}

/** Pixels of a part are cut at multiples of this (the pass's unit of 4 pixels: whole units read in place). */
const PART_ALIGN = 4;

let nextKey = 1;
const keys = new WeakMap<LcfPlan, number>();

/**
 * The lcf kernel on a pool's workers. Keeps, per plan, a scratch block per worker in this
 * thread's heap (lcfWasmTargetBytes each: the memory plan counts them per worker,
 * LcfStep.cpuKernelBytes); they go back to the heap when the pool closes.
 */
export class LcfThreads {
  constructor(readonly pool: KernelPool) {}

  /**
   * Rows (lcfRows(M)) of `cube` = the window's energies [nW][P], into `out` (at least
   * lcfRows(M).ROWS x P values): the same bytes as lcfWasm on one thread. `cube` and `out`
   * both in this thread's heap, or both in shared memory; otherwise this thread runs it.
   */
  async run(plan: LcfPlan, cube: Float32Array, P: number, out: Float64Array): Promise<Float64Array> {
    const rows = lcfRows(plan.M);
    if (cube.length < plan.nW * P) throw new RangeError(`LcfThreads: cube holds ${cube.length} values, need ${plan.nW * P}`);
    if (out.length < rows.ROWS * P) throw new RangeError(`LcfThreads: out holds ${out.length} values, need ${rows.ROWS * P}`);
    const here = inHeap(cube) && inHeap(out);
    if (!here && !(isShared(cube) && isShared(out))) return lcfWasm(plan, cube, P, out);
    let key = keys.get(plan);
    if (key === undefined) keys.set(plan, (key = nextKey++));
    const T = this.pool.size;
    const bases = here ? this.basesFor(plan) : null;
    const mem = here ? wasmHeap().mem : null;
    const cut = (t: number) => Math.min(P, Math.round((t * P) / T / PART_ALIGN) * PART_ALIGN);
    await Promise.all(Array.from({ length: T }, (_, t) => {
      const p0 = cut(t), p1 = t === T - 1 ? P : cut(t + 1);
      if (p1 <= p0) return Promise.resolve();
      const part: LcfPart = { p0, p1, key: key!, target: bases ? { mem: mem!, base: bases[t] } : null };
      return this.pool.runOn(t, { kind: 'lcf', plan, cube, P, out, part } satisfies LcfJob);
    }));
    return out;
  }

  /** The workers' scratch blocks for `plan` (freed when the pool closes, once no worker can run). */
  private basesFor(plan: LcfPlan): number[] {
    return this.pool.heapScratch(plan, lcfWasmTargetBytes(plan));
  }
}
