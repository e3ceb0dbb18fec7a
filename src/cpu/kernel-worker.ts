/**
 * The worker thread of KernelPool (threads.ts): runs one block job at a time on shared
 * memory and returns the block results (transferred). Jobs: { kind: 'kmeans' } (see
 * kmeans-sweep.ts), { kind: 'pca' } (see pca-gram.ts), { kind: 'edge' } (a part of a tile, see edge-threads.ts), { kind: 'lcf' } (a part of a tile, see lcf-threads.ts) and { kind: 'absorbance' | 'absorbance-file' | 'od' } (see
 * src/stack/transmission.ts).
 */
import { parentPort } from 'node:worker_threads';
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
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: (e as Error).message });
  }
});
