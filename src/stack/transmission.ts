/**
 * Transmission to absorbance / optical density, the per-value arithmetic of
 * AbsorbanceStack (flat/dark) and OpticalDensityStack (I0), run on worker threads
 * (KernelPool, src/cpu/threads.ts) so that the main thread only reads files:
 *   absorbance  A = -ln((I - D) / (F - D))   (D = 0 without a dark),
 *   OD          OD = -ln(I / I0(E)).
 * A non-positive or non-finite ratio gives NaN and is counted. Each value is computed the
 * same way (float64, then stored as float32) on whichever thread, so the bytes do not depend
 * on the thread count. Below TRANSMISSION_MIN_VALUES values per call, or without the
 * bundled worker, the work runs in this thread.
 */
import { KernelPool, defaultThreads, isShared, sharedFloat32 } from '../cpu/threads.js';

/** Values below which a call is not worth handing to threads. */
export const TRANSMISSION_MIN_VALUES = 1 << 16;

/** Counts as read: float32, or stored integers exact in float32 (the same values either way). */
export type Counts = Float32Array | Uint16Array | Int16Array | Uint8Array;

/** out[i] for i in [a, b): absorbance from sample, flat and (optional) dark. Returns the masked count. */
export function absorbanceRange(sample: Counts, flat: Counts, dark: Counts | null, out: Float32Array, a: number, b: number): number {
  let masked = 0;
  for (let i = a; i < b; i++) {
    const d = dark ? dark[i] : 0;
    const ratio = (sample[i] - d) / (flat[i] - d);
    // ratio > 0 && ratio < Infinity: positive and finite (NaN fails both).
    if (ratio > 0 && ratio < Infinity) out[i] = -Math.log(ratio);
    else {
      out[i] = NaN;
      masked++;
    }
  }
  return masked;
}

/** OD in place for flat indices [a, b) of an energy-major tile of n pixels per energy. Returns the masked count. */
export function odRange(io: Float32Array, i0: Float64Array, n: number, a: number, b: number): number {
  let masked = 0;
  for (let i = a; i < b; ) {
    const e = Math.floor(i / n);
    const end = Math.min(b, (e + 1) * n);
    const v0 = i0[e];
    const ok0 = v0 > 0 && v0 < Infinity;
    for (; i < end; i++) {
      const v = io[i];
      if (ok0 && v > 0 && v < Infinity) io[i] = -Math.log(v / v0);
      else {
        io[i] = NaN;
        masked++;
      }
    }
  }
  return masked;
}

/** The job a worker runs (kernel-worker.ts). */
export type TransmissionJob =
  | { kind: 'absorbance'; sample: Counts; flat: Counts; dark: Counts | null; out: Float32Array; a: number; b: number }
  | { kind: 'od'; io: Float32Array; i0: Float64Array; n: number; a: number; b: number };

export function runTransmissionJob(j: TransmissionJob): number {
  return j.kind === 'absorbance' ? absorbanceRange(j.sample, j.flat, j.dark, j.out, j.a, j.b) : odRange(j.io, j.i0, j.n, j.a, j.b);
}

/** Worker threads for the conversions of one stack, started on first use. */
export class TransmissionThreads {
  private pool: KernelPool | null | undefined;

  constructor(readonly threads = defaultThreads()) {}

  private get(): KernelPool | null {
    if (this.pool === undefined) this.pool = KernelPool.create(this.threads);
    return this.pool;
  }

  /** Splits [0, n) into one contiguous range per thread; returns the masked count. */
  async run(n: number, job: (a: number, b: number) => TransmissionJob): Promise<number> {
    const pool = n >= TRANSMISSION_MIN_VALUES ? this.get() : null;
    if (!pool) return runTransmissionJob(job(0, n));
    const T = pool.size;
    const parts = Array.from({ length: T }, (_, t) => [Math.floor((t * n) / T), Math.floor(((t + 1) * n) / T)]);
    const res = await Promise.all(parts.map(([a, b]) => pool.run<Float64Array>(job(a, b) as unknown as Record<string, unknown>)));
    return res.reduce((s, r) => s + r[0], 0);
  }

  /** Whether conversions of n values would run on the threads (then every array must be shared). */
  threaded(n: number): boolean {
    return n >= TRANSMISSION_MIN_VALUES && this.get() !== null;
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = null;
  }
}

/** A shared array of at least n floats, reusing `cur` when it is large enough. */
export function sharedAtLeast(cur: Float32Array, n: number): Float32Array {
  return cur.length >= n && isShared(cur) ? cur : sharedFloat32(n);
}
