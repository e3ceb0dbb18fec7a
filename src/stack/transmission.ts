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
 *
 * Absorbance runs in WebAssembly SIMD where the runtime has it (src/cpu/transmission-wasm.ts:
 * the same float64 operations as absorbanceRange below, Math.log's own algorithm, so the
 * same bytes). Where the three stacks are plain files (.npy, RawFile) the workers also read
 * the counts themselves, straight into the kernel's memory: this thread only hands out
 * ranges of the tile.
 */
import fs from 'node:fs';
import { KernelPool, defaultThreads, isShared, sharedFloat32 } from '../cpu/threads.js';
import { AbsorbanceKernel, CHUNK, SLOT, countType, transmissionSimd, type CountType } from '../cpu/transmission-wasm.js';

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

/** This thread's SIMD kernel (each worker has its own), made on first use. */
let kernel: AbsorbanceKernel | null = null;
function simdKernel(): AbsorbanceKernel | null {
  if (!transmissionSimd) return null;
  return (kernel ??= new AbsorbanceKernel());
}

/**
 * Converts the values staged in the kernel's slots [0, m) and returns the masked count: the
 * SIMD kernel on the first m - m % 4, absorbanceRange on the rest (on the same slots).
 */
function convertStaged(k: AbsorbanceKernel, t: [CountType, CountType, CountType | null], m: number): number {
  const m4 = m & ~3;
  let masked = k.run(t[0], t[1], t[2], m4);
  const sl = (type: CountType, at: number) => k.slot(type, at, m) as Counts;
  const S = sl(t[0], SLOT.S), F = sl(t[1], SLOT.F), D = t[2] ? sl(t[2], SLOT.D) : null, O = k.slot('float32', SLOT.O, m) as Float32Array;
  // Groups whose float32 the kernel could not settle (near a rounding midpoint): Math.log
  // here (their masked count is the kernel's already).
  for (const g of k.listed()) absorbanceRange(S, F, D, O, g, g + 4);
  if (m4 < m) masked += absorbanceRange(S, F, D, O, m4, m);
  return masked;
}

/** absorbanceRange, the same bytes, by the SIMD kernel where there is one (chunks staged into its memory). */
export function absorbanceRangeFast(sample: Counts, flat: Counts, dark: Counts | null, out: Float32Array, a: number, b: number): number {
  const k = simdKernel();
  if (!k) return absorbanceRange(sample, flat, dark, out, a, b);
  const t: [CountType, CountType, CountType | null] = [countType(sample), countType(flat), dark ? countType(dark) : null];
  let masked = 0;
  for (let p = a; p < b; p += CHUNK) {
    const m = Math.min(CHUNK, b - p);
    (k.slot(t[0], SLOT.S, m) as Counts).set(sample.subarray(p, p + m));
    (k.slot(t[1], SLOT.F, m) as Counts).set(flat.subarray(p, p + m));
    if (dark) (k.slot(t[2]!, SLOT.D, m) as Counts).set(dark.subarray(p, p + m));
    masked += convertStaged(k, t, m);
    out.set(k.slot('float32', SLOT.O, m) as Float32Array, p);
  }
  return masked;
}

/**
 * A stack stored as one C-order array [E, rows, W] in a plain file, read by positioned reads
 * from any thread (an open descriptor is the process's): value (e, y, x) at byte
 * dataOffset + ((e * height + y) * W + x) * size, little-endian, of a CountType.
 */
export interface RawFile { fd: number; dataOffset: number; type: CountType }

/**
 * Absorbance of tile values [a, b) (energy-major, `rows` rows from y0) read straight from
 * the three files into the kernel's memory, one chunk of one energy's rows at a time.
 * Returns the masked count, or -(k + 1) if file k could not be read in full.
 */
export function absorbanceFromFiles(files: [RawFile, RawFile, RawFile | null], height: number, W: number, y0: number, rows: number, out: Float32Array, a: number, b: number): number {
  const k = simdKernel() ?? new AbsorbanceKernel(); // (without SIMD: the slots only, absorbanceRange converts)
  const t: [CountType, CountType, CountType | null] = [files[0].type, files[1].type, files[2] ? files[2].type : null];
  const slots = [SLOT.S, SLOT.F, SLOT.D];
  const bytes = new Uint8Array(k.mem.buffer);
  const n = rows * W;
  let masked = 0;
  for (let p = a; p < b; ) {
    const e = Math.floor(p / n);
    const m = Math.min(CHUNK, b - p, (e + 1) * n - p);
    const element = e * height * W + y0 * W + (p - e * n);
    for (let f = 0; f < 3; f++) {
      const file = files[f];
      if (!file) continue;
      const size = file.type === 'float32' ? 4 : file.type === 'uint8' ? 1 : 2;
      if (!readAt(file.fd, bytes, slots[f], m * size, file.dataOffset + element * size)) return -(f + 1);
    }
    if (transmissionSimd) masked += convertStaged(k, t, m);
    else {
      const sl = (type: CountType, at: number) => k.slot(type, at, m) as Counts;
      masked += absorbanceRange(sl(t[0], SLOT.S), sl(t[1], SLOT.F), t[2] ? sl(t[2], SLOT.D) : null, k.slot('float32', SLOT.O, m) as Float32Array, 0, m);
    }
    out.set(k.slot('float32', SLOT.O, m) as Float32Array, p);
    p += m;
  }
  return masked;
}

/** Reads exactly `length` bytes at `position` into bytes[at..]; false if the file ended or failed. */
function readAt(fd: number, bytes: Uint8Array, at: number, length: number, position: number): boolean {
  for (let done = 0; done < length; ) {
    let got: number;
    try {
      got = fs.readSync(fd, bytes, at + done, length - done, position + done);
    } catch {
      return false;
    }
    if (got === 0) return false;
    done += got;
  }
  return true;
}

/** The job a worker runs (kernel-worker.ts). */
export type TransmissionJob =
  | { kind: 'absorbance'; sample: Counts; flat: Counts; dark: Counts | null; out: Float32Array; a: number; b: number }
  | { kind: 'absorbance-file'; files: [RawFile, RawFile, RawFile | null]; height: number; W: number; y0: number; rows: number; out: Float32Array; a: number; b: number }
  | { kind: 'od'; io: Float32Array; i0: Float64Array; n: number; a: number; b: number };

export function runTransmissionJob(j: TransmissionJob): number {
  if (j.kind === 'absorbance') return absorbanceRangeFast(j.sample, j.flat, j.dark, j.out, j.a, j.b);
  if (j.kind === 'absorbance-file') return absorbanceFromFiles(j.files, j.height, j.W, j.y0, j.rows, j.out, j.a, j.b);
  return odRange(j.io, j.i0, j.n, j.a, j.b);
}

/** Worker threads for the conversions of one stack, started on first use. */
export class TransmissionThreads {
  private pool: KernelPool | null | undefined;

  constructor(readonly threads = defaultThreads()) {}

  private get(): KernelPool | null {
    // One worker too (--threads 1): the conversion then still runs beside this thread's reading.
    if (this.pool === undefined) this.pool = KernelPool.create(this.threads, 1);
    return this.pool;
  }

  /**
   * Splits [0, n) into one contiguous range per thread; returns the masked count (or the
   * negative code of absorbanceFromFiles of the first range that failed).
   */
  async run(n: number, job: (a: number, b: number) => TransmissionJob): Promise<number> {
    const pool = n >= TRANSMISSION_MIN_VALUES ? this.get() : null;
    if (!pool) return runTransmissionJob(job(0, n));
    const T = pool.size;
    const parts = Array.from({ length: T }, (_, t) => [Math.floor((t * n) / T), Math.floor(((t + 1) * n) / T)]);
    const res = await Promise.all(parts.map(([a, b]) => pool.run<Float64Array>(job(a, b) as unknown as Record<string, unknown>)));
    const failed = res.find((r) => r[0] < 0);
    return failed ? failed[0] : res.reduce((s, r) => s + r[0], 0);
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
