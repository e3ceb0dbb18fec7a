/**
 * normalize + edge: (1) the kernels alone on one resident tile, (2) the whole streamed
 * path (generate, run tiles, place maps) at 1M and 4M spectra x 101 energies.
 * GB/s counts the stack bytes read (4 bytes x energies x spectra).
 */
import type { Backend } from '../src/pipeline/step.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS } from '../src/pipeline/edge-plan.js';
import { edgeStep } from '../src/pipeline/edge-step.js';
import { runTiles } from '../src/pipeline/run-tiles.js';
import { maxEdgeTilePixels } from '../src/pipeline/edge-tile.js';
import { SyntheticStream } from '../src/synth/stream.js';
import { record, timeRepeats, type BenchRecord } from './common.js';
import { heapF32, heapFree } from '../src/cpu/wasm-heap.js';
import { KernelPool } from '../src/cpu/threads.js';

export interface EdgeBenchOptions {
  sizes: number[];
  tilePixels: number;
  repeats: number;
  budgetBytes: number;
  log: (s: string) => void;
}

export async function benchEdge(backend: Backend, o: EdgeBenchOptions): Promise<BenchRecord[]> {
  const W = 2048;
  const out: BenchRecord[] = [];
  const probe = new SyntheticStream(1, W);
  const plan = makeEdgePlan(probe.energies, 8343, DEFAULT_EDGE_OPTIONS);
  const step = edgeStep(plan);
  const nE = probe.nE;

  // (1) Kernel throughput on a resident tile (upload + dispatch + readback on the GPU).
  // Within the device's binding limit (a 256k-pixel tile at 200 energies is 200 MB, over
  // llvmpipe's 128 MiB: the step would now split it, but the benchmark measures one tile).
  const maxP = backend.gpu ? maxEdgeTilePixels(backend.gpu, plan) : Infinity;
  const rows = Math.max(1, Math.floor(Math.min(o.tilePixels, maxP) / W));
  const src = new SyntheticStream(rows, W);
  const P = rows * W;
  // On the CPU the tile lies in the WebAssembly heap and, on several threads, its parts run on
  // a pool of workers, as runTiles runs it (heap tiles, Backend.pool for a step that splits
  // its tiles); process CPU seconds beside wall (all threads).
  const cpu = !backend.gpu;
  const tile = cpu ? heapF32(nE * P) : new Float32Array(nE * P);
  await src.readRows(0, rows, tile);
  const pool = cpu && (backend.threads ?? 1) > 1 ? KernelPool.create(backend.threads!) : null;
  const tileBackend = pool ? { ...backend, pool } : backend;
  let cpuS = Infinity;
  try {
    await step.runTile(tileBackend, tile, P); // the workers' modules built
    const k = await timeRepeats(async () => {
      const c0 = process.cpuUsage();
      await step.runTile(tileBackend, tile, P);
      const c = process.cpuUsage(c0);
      cpuS = Math.min(cpuS, (c.user + c.system) / 1e6);
    }, o.repeats);
    out.push({ ...record({ kernel: 'normalize+edge', mode: 'tile', backend: backend.name, adapter: backend.adapter, spectra: P, energies: nE, repeats: o.repeats, median_s: k.median, min_s: k.min }, 4 * nE * P), threads: cpu ? backend.threads ?? 1 : undefined, min_cpu_s: cpu ? cpuS : undefined });
    o.log(`  tile ${P} spectra: ${(P / k.median).toFixed(0)} spectra/s (min ${k.min.toFixed(4)} s wall${cpu ? `, ${cpuS.toFixed(4)} s process CPU` : ''})`);
  } finally {
    await pool?.close();
    if (cpu) heapFree(tile);
  }

  // (2) Streamed: generated rows -> tiles within the budget -> whole-image maps.
  for (const n of o.sizes) {
    const H = Math.ceil(n / W);
    const stream = new SyntheticStream(H, W);
    let tiles = 0;
    const t = await timeRepeats(async () => {
      const r = await runTiles(stream, step, backend, { budgetBytes: o.budgetBytes });
      tiles = r.tilesRun;
    }, Math.max(1, Math.min(3, o.repeats)), 0);
    out.push({ ...record({ kernel: 'normalize+edge', mode: 'streamed', backend: backend.name, adapter: backend.adapter, spectra: H * W, energies: nE, repeats: Math.max(1, Math.min(3, o.repeats)), median_s: t.median, min_s: t.min }, 4 * nE * H * W), tiles, budget_MiB: o.budgetBytes / 2 ** 20 });
    o.log(`  streamed ${H * W} spectra: ${((H * W) / t.median).toFixed(0)} spectra/s (${tiles} tiles)`);
  }
  return out;
}
