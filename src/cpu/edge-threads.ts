/**
 * The CPU normalize + edge kernel (edge-fused.ts) on worker threads, one tile cut into one
 * part per worker. The tile and its output rows lie in this thread's WebAssembly heap
 * (wasm-heap.ts: a shared memory); each worker instantiates the plan's module (edge-wasm.ts)
 * on that same memory, with a scratch block of its own allocated here (EdgeTarget), and reads
 * its pixels and writes their rows in place, as this thread does on one thread: no copy of the
 * tile or of the rows through JavaScript, one message per part and tile. (Before, each worker
 * took whole tiles in shared arrays outside the heap, staged them block by block through
 * JavaScript and sent its maps back: slower on two threads than one thread in the heap.)
 *
 * Determinism: every pixel is computed alone by the same code whatever part it falls in, so
 * the rows are the same bits on 1, 2 or N threads and for any cut (test/kernels/edge.test.ts).
 */
import type { EdgePlan } from '../pipeline/edge-plan.js';
import { edgeTileFused, type EdgeRowsOut } from './edge-fused.js';
import { EDGE_WASM_BLOCK, edgeWasmAvailable, edgeWasmTargetBytes, type EdgeTarget } from './edge-wasm.js';
import { EDGE_ROWS, NORM_ROWS } from '../kernels/layout.js';
import { sharedFloat32, type KernelPool } from './threads.js';
import { EDGE_MAP_NAMES, edgeMaps } from '../pipeline/edge-maps.js';
import { inHeap, wasmHeap } from './wasm-heap.js';

/** A part: pixels p0 .. p1 - 1 of a tile whose arrays lie in the target's memory at these byte offsets. */
export interface EdgePartJob {
  kind: 'edge';
  /** The owner's plan id (the plan itself is sent with a worker's first part of it). */
  key: number;
  plan: EdgePlan | null;
  target: EdgeTarget;
  cube: number;
  norm: number;
  edge: number;
  P: number;
  p0: number;
  p1: number;
  /** The tile's maps and status in shared memory, or null: the worker writes its part's maps there (edge-maps.ts). */
  maps: EdgeMapsDest | null;
}

/** A tile's maps (EDGE_MAP_NAMES) and status, each of P values in shared memory (written by the workers, part by part). */
export interface EdgeMapsDest {
  maps: Record<string, Float32Array>;
  status: Uint8Array;
}

/** Pixels a part starts at a multiple of: whole blocks (any cut gives the same rows; this one keeps parts of whole blocks). */
const PART_ALIGN = EDGE_WASM_BLOCK;

let nextKey = 0;

/**
 * One plan on one pool: the workers' scratch blocks in this thread's heap (allocated on first
 * use, freed when the pool closes) and which workers have the plan.
 */
export class EdgeThreads {
  private readonly key = nextKey++;
  private readonly bases: number[];
  private readonly sent: boolean[];

  constructor(readonly plan: EdgePlan, private readonly pool: KernelPool) {
    // The blocks are freed once no worker can run (when the pool closes).
    this.bases = pool.heapScratch(this, edgeWasmTargetBytes(plan.nE));
    this.sent = new Array<boolean>(pool.size).fill(false);
  }

  /** Whether run() can take this tile: WebAssembly SIMD and the tile and rows in this thread's heap. */
  static runs(cube: Float32Array, out: EdgeRowsOut): boolean {
    return edgeWasmAvailable && inHeap(cube) && inHeap(out.norm) && inHeap(out.edge);
  }

  /**
   * normalize + edge of a tile of P pixels into `out` (see runs()), one part per worker; with
   * `maps`, the workers also make the tile's maps of their parts there (edgeMaps), so this
   * thread is left nothing per pixel.
   */
  async run(cube: Float32Array, P: number, out: EdgeRowsOut, maps: EdgeMapsDest | null = null): Promise<void> {
    if (!EdgeThreads.runs(cube, out)) throw new Error('EdgeThreads.run: the tile and its rows must lie in this thread\'s WebAssembly heap');
    if (out.norm.length !== NORM_ROWS * P || out.edge.length !== EDGE_ROWS * P) throw new RangeError(`EdgeThreads.run: out rows hold ${out.norm.length} + ${out.edge.length} values, the tile needs ${NORM_ROWS * P} + ${EDGE_ROWS * P}`);
    const T = this.pool.size;
    const mem = wasmHeap().mem;
    // Parts of whole blocks, as even as they allow; a small tile takes fewer workers.
    const groups = Math.ceil(P / PART_ALIGN);
    const parts = Math.min(T, groups);
    const jobs: Promise<unknown>[] = [];
    for (let t = 0; t < parts; t++) {
      const p0 = Math.min(P, Math.floor((t * groups) / parts) * PART_ALIGN);
      const p1 = Math.min(P, Math.floor(((t + 1) * groups) / parts) * PART_ALIGN);
      if (p1 <= p0) continue;
      const job: EdgePartJob = {
        kind: 'edge', key: this.key, plan: this.sent[t] ? null : this.plan, target: { mem, base: this.bases[t] },
        cube: cube.byteOffset, norm: out.norm.byteOffset, edge: out.edge.byteOffset, P, p0, p1, maps,
      };
      this.sent[t] = true;
      jobs.push(this.pool.runOn(t, job as unknown as Record<string, unknown>));
    }
    // Every part settled before returning (a failed part must not free the rows while
    // another still writes them).
    for (const r of await Promise.allSettled(jobs)) if (r.status === 'rejected') throw r.reason;
  }
}

/** A worker's plans by owner key. */
const plans = new Map<number, EdgePlan>();

/** Runs one part (in a worker thread, kernel-worker.ts). */
export function edgePartJob(j: EdgePartJob): void {
  if (j.plan) plans.set(j.key, j.plan);
  const plan = plans.get(j.key);
  if (!plan) throw new Error(`edge worker: plan ${j.key} was never sent`);
  const buf = j.target.mem.buffer;
  const { nE } = plan;
  const cube = new Float32Array(buf, j.cube, nE * j.P);
  const norm = new Float32Array(buf, j.norm, NORM_ROWS * j.P);
  const edge = new Float32Array(buf, j.edge, EDGE_ROWS * j.P);
  edgeTileFused(plan, cube, j.P, { norm, edge }, { p0: j.p0, p1: j.p1, target: j.target });
  if (j.maps) edgeMaps(norm, edge, j.P, j.maps, j.p0, j.p1);
}

/** Maps and status of P pixels in shared memory (for run()'s `maps`). */
export function sharedEdgeMaps(P: number): EdgeMapsDest {
  return { maps: Object.fromEntries(EDGE_MAP_NAMES.map((n) => [n, sharedFloat32(P)])), status: new Uint8Array(new SharedArrayBuffer(P)) };
}
