/**
 * Worker threads for the CPU kernels that sweep a whole data set several times (k-means
 * Lloyd steps, the PCA covariance): the data live in SharedArrayBuffers, so a job message
 * carries only views and small parameters, never a copy of the data. The bundled worker is
 * dist/kernel-worker.js (src/cpu/kernel-worker.ts, built by scripts/build.mjs).
 *
 * Determinism: callers cut the work into blocks whose bounds do not depend on the thread
 * count, each block's result is computed the same way on whichever thread runs it, and
 * the caller combines block results in block order. So the bytes of every result are the
 * same on 1 thread (no pool: the same block function runs in this thread) and on N.
 */
import { Worker } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { heapAlloc, heapFree } from './wasm-heap.js';

/** dist/kernel-worker.js, found from the bundle (dist/) or from the sources (src/cpu/). */
export function kernelWorkerScript(): string | null {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const p of [path.join(here, 'kernel-worker.js'), path.join(here, '..', '..', 'dist', 'kernel-worker.js')]) {
    if (existsSync(p)) return p;
  }
  return null;
}

/** The default thread count of the CPU kernels: every core. */
export function defaultThreads(): number {
  return os.availableParallelism();
}

/** True if `a` lives in shared memory (can be handed to a worker without a copy). */
export function isShared(a: ArrayBufferView): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer;
}

/** A float32 array in shared memory. */
export function sharedFloat32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(4 * n));
}

/** A shared copy of a (non-shared) float32 array. */
export function shareFloat32(a: Float32Array): Float32Array {
  if (isShared(a)) return a;
  const s = sharedFloat32(a.length);
  s.set(a);
  return s;
}

interface Pending { resolve: (r: unknown) => void; reject: (e: Error) => void }

/**
 * A fixed set of workers; run(job) goes to the next idle worker. Workers are unref'd, so a
 * pool that was not closed does not keep the process alive.
 */
export class KernelPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting: ((w: Worker) => void)[] = [];
  /** Per worker: runOn calls waiting for that worker (served before `waiting`). */
  private readonly waitingFor = new Map<Worker, ((w: Worker) => void)[]>();
  private readonly pending = new Map<number, Pending>();
  private readonly closers: (() => void)[] = [];
  private nextId = 0;

  private constructor(script: string, readonly size: number) {
    for (let i = 0; i < size; i++) {
      const w = new Worker(script);
      w.unref();
      w.on('message', (m: { id: number; error?: string; result?: unknown }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        this.release(w);
        if (!p) return;
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.result);
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  /** A pool of `size` workers, or null when the bundled worker is missing or size < min. */
  static create(size: number, min = 2): KernelPool | null {
    if (!(size >= min) || !(size >= 1)) return null;
    const script = kernelWorkerScript();
    return script ? new KernelPool(script, Math.floor(size)) : null;
  }

  private release(w: Worker): void {
    const next = this.waitingFor.get(w)?.shift() ?? this.waiting.shift();
    if (next) next(w);
    else this.idle.push(w);
  }

  private acquire(): Promise<Worker> {
    const w = this.idle.pop();
    return w ? Promise.resolve(w) : new Promise((res) => this.waiting.push(res));
  }

  /** Worker i, once idle. */
  private acquireOne(i: number): Promise<Worker> {
    const w = this.workers[i];
    const at = this.idle.indexOf(w);
    if (at >= 0) {
      this.idle.splice(at, 1);
      return Promise.resolve(w);
    }
    return new Promise((res) => {
      const q = this.waitingFor.get(w) ?? [];
      q.push(res);
      this.waitingFor.set(w, q);
    });
  }

  /** Runs one job ({ kind, ... }, see kernel-worker.ts) on the next idle worker. */
  run<T>(job: Record<string, unknown>): Promise<T> {
    return this.post(this.acquire(), job);
  }

  /**
   * Runs one job on worker i (0 <= i < size), once it is idle: for jobs that use per-worker
   * state, such as a scratch block the caller keeps for that worker (kmeans.ts).
   */
  runOn<T>(i: number, job: Record<string, unknown>): Promise<T> {
    if (!(i >= 0 && i < this.size)) throw new RangeError(`KernelPool.runOn: worker ${i} of ${this.size}`);
    return this.post(this.acquireOne(i), job);
  }

  private async post<T>(worker: Promise<Worker>, job: Record<string, unknown>): Promise<T> {
    const w = await worker;
    const id = this.nextId++;
    const done = new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject }));
    w.postMessage({ id, job });
    return done;
  }

  /** Calls `fn` once close() has ended the workers (to free what they used). */
  onClose(fn: () => void): void {
    this.closers.push(fn);
  }

  /**
   * One block of `bytes` per worker in this thread's WebAssembly heap, for `key` (a plan, a
   * d, a k: whatever fixes the size), allocated at the first call: the scratch of workers
   * that run a kernel on this thread's heap memory (edge, lcf, k-means, PCA). Freed by
   * close(), once no worker can use them.
   */
  heapScratch(key: unknown, bytes: number): number[] {
    let s = this.scratch.get(key);
    if (!s) {
      s = Array.from({ length: this.size }, () => heapAlloc(bytes));
      this.scratch.set(key, s);
    }
    return s;
  }

  private readonly scratch = new Map<unknown, number[]>();

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    for (const s of this.scratch.values()) for (const a of s) heapFree(a);
    this.scratch.clear();
    for (const fn of this.closers.splice(0)) fn();
  }
}
