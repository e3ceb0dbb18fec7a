/**
 * Worker threads for the CPU backend: tiles go to idle workers, results come back in any
 * order and are placed by row. The bundled worker is dist/cpu-worker.js (built with the
 * CLI by scripts/build.mjs); tests and the CLI both use the bundle.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { PixelStep, TileResult } from './step.js';

/** dist/cpu-worker.js, found from the bundle (dist/) or from the sources (src/pipeline/). */
export function workerScript(): string | null {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of [path.join(here, 'cpu-worker.js'), path.join(here, '..', '..', 'dist', 'cpu-worker.js')]) {
    if (existsSync(p)) return p;
  }
  return null;
}

interface Pending { resolve: (r: { result: TileResult; cube: Float32Array }) => void; reject: (e: Error) => void }

export class CpuPool {
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private waiting: ((w: Worker) => void)[] = [];
  private pending = new Map<number, Pending>();
  private nextId = 0;

  constructor(step: PixelStep, readonly size: number) {
    const script = workerScript();
    if (!script || !step.worker) throw new Error('CPU worker threads unavailable (run `npm run build`)');
    for (let i = 0; i < size; i++) {
      const w = new Worker(script);
      w.postMessage({ init: step.worker });
      w.on('message', (m: { id: number; error?: string; maps: Record<string, Float32Array>; status: Uint8Array; cube: Float32Array }) => {
        const p = this.pending.get(m.id)!;
        this.pending.delete(m.id);
        this.release(w);
        if (m.error) p.reject(new Error(m.error));
        else p.resolve({ result: { maps: m.maps, status: m.status }, cube: m.cube });
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private release(w: Worker): void {
    const next = this.waiting.shift();
    if (next) next(w);
    else this.idle.push(w);
  }

  private acquire(): Promise<Worker> {
    const w = this.idle.pop();
    return w ? Promise.resolve(w) : new Promise((res) => this.waiting.push(res));
  }

  /**
   * Waits for an idle worker, then hands it the tile (its buffer is transferred, or shared). Resolves
   * once the tile is handed over; `done` resolves with the result. (Wrapped in an object:
   * a promise of a promise would flatten and wait for the result.)
   */
  async submit(cube: Float32Array, P: number): Promise<{ done: Promise<{ result: TileResult; cube: Float32Array }> }> {
    const w = await this.acquire();
    const id = this.nextId++;
    const done = new Promise<{ result: TileResult; cube: Float32Array }>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    // A tile in shared memory is handed over as it is (shared memory cannot be transferred).
    w.postMessage({ id, cube, P }, cube.buffer instanceof SharedArrayBuffer ? [] : [cube.buffer as ArrayBuffer]);
    return { done };
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
