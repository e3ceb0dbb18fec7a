/**
 * The worker thread of KernelPool (threads.ts): runs one block job at a time on shared
 * memory and returns the block results (transferred). Jobs: { kind: 'kmeans' } (see
 * kmeans-sweep.ts), { kind: 'pca' } (see pca-gram.ts), { kind: 'edge' } (a part of a tile, see edge-threads.ts), { kind: 'lcf' } (a part of a tile, see lcf-threads.ts) and { kind: 'absorbance' | 'absorbance-file' | 'od' } (see
 * src/stack/transmission.ts).
 */
import v8 from 'node:v8';
import { parentPort } from 'node:worker_threads';
import { collectGarbage } from '../pipeline/memory.js';
import { kmeansSweepClaimed, type SweepParams, type SweepView } from './kmeans-sweep.js';
import type { SweepTarget } from './kmeans-wasm.js';
import { gramBlocks, type GramJob } from './pca-gram.js';
import { runTransmissionJob, type TransmissionJob } from '../stack/transmission.js';
import { edgePartJob, type EdgePartJob } from './edge-threads.js';
import { runLcfJob, type LcfJob } from './lcf-threads.js';

interface KmeansJob extends SweepParams {
  kind: 'kmeans';
  views: SweepView[];
  /** Blocks of the step (kmeansSweepClaimed), the shared counter of the next one, their sums (shared). */
  nBlocks: number;
  next: BigInt64Array;
  fromEnd: boolean;
  out: Float64Array;
  labels: Int32Array | null;
  dist2: Float32Array | null;
  /** The screen's norms in the owner's heap (with `target`), or null. */
  norms: Float32Array | null;
  /** The owner's heap and this worker's scratch there (kmeans-wasm.ts, SweepTarget), or null: stage into this thread's heap. */
  target: SweepTarget | null;
}

parentPort!.on('message', (m: { id: number; job: KmeansJob | (GramJob & { kind: 'pca' }) | TransmissionJob | EdgePartJob | LcfJob }) => {
  try {
    const j = m.job;
    let r: Float64Array;
    if (j.kind === 'kmeans') r = Float64Array.of(kmeansSweepClaimed(j.views, j, j.nBlocks, j.next, j.out, j.labels, j.dist2, j.norms, j.target, j.fromEnd));
    else if (j.kind === 'pca') r = gramBlocks(j);
    else if (j.kind === 'edge') {
      edgePartJob(j);
      r = new Float64Array(0);
    }
    else if (j.kind === 'lcf') r = runLcfJob(j);
    else if (j.kind === 'absorbance' || j.kind === 'absorbance-file' || j.kind === 'od') r = Float64Array.of(runTransmissionJob(j));
    else throw new Error(`kernel worker: unknown job ${(j as { kind: string }).kind}`);
    parentPort!.postMessage({ id: m.id, result: r }, [r.buffer as ArrayBuffer]);
    collectIfGrown();
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});

/**
 * Growth of this worker's V8 heap, bytes, after which it is collected. A worker running parts
 * of every tile (edge, lcf) allocates little per part, so V8 seldom collects on its own and
 * the heap (and whatever the garbage keeps alive) creeps up past the memory plan's
 * WORKER_THREAD_BYTES; the whole-tile workers (src/pipeline/cpu-worker.ts) collect after
 * every tile. Checking costs ~1 us a job; a collection of a worker's few-MiB heap ~1-2 ms.
 */
const WORKER_GC_SLACK_BYTES = 4 * 2 ** 20;
let heapAtGc = v8.getHeapStatistics().used_heap_size;

function collectIfGrown(): void {
  if (v8.getHeapStatistics().used_heap_size - heapAtGc <= WORKER_GC_SLACK_BYTES) return;
  collectGarbage();
  heapAtGc = v8.getHeapStatistics().used_heap_size;
}
