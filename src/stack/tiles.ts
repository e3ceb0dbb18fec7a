/**
 * Tile sizing. A tile is whole rows at every energy. Its size comes from the memory budget
 * (which bounds the whole process, not only the GPU): add up the bytes one pixel needs,
 * term by term, subtract what the run holds regardless of tiling (the process baseline,
 * the full-size output maps), and divide. The device's per-binding and per-buffer limits
 * bound it too.
 */
import { InputError } from '../io/errors.js';

export const DEFAULT_MEMORY_MIB = 2048;
const MiB = 1024 * 1024;

export interface TileBudget {
  /** --memory, bytes. */
  budgetBytes: number;
  /** Bytes held whatever the tile size: process baseline, the whole-image outputs kept in memory, worker threads. */
  fixedBytes: number;
  /**
   * Bytes the run needs after its tiles, alongside what it keeps (writing map files one at
   * a time, pictures, results.h5, report.html); planned on top of the tiles (see planTiles).
   */
  afterBytes?: number;
  /**
   * Bytes held while the tiles are read and freed before the output phase, as large single
   * arrays the allocator returns to the system (HDF5 band caches): planned beside afterBytes
   * (the larger of the two), not on top of it.
   */
  bandBytes?: number;
  /** The part of fixedBytes that is worker threads (released before the after-tiles phase). */
  workerBytes?: number;
  /**
   * The part of fixedBytes that the CPU kernels keep per thread running tiles (the steps'
   * cpuKernelBytes: WebAssembly heap scratch and tables per plan, which a heap never returns).
   */
  kernelBytes?: number;
  /** Bytes per pixel of one tile: input spectrum copies, step scratch and outputs. */
  bytesPerPixel: number;
  /** Largest single GPU binding per pixel (0 on the CPU backend). */
  bindingBytesPerPixel: number;
  /** Device limits (Infinity on the CPU backend). */
  maxBindingBytes: number;
  maxBufferBytes: number;
  /** The stack, for messages: its path and shape. */
  stack?: { path: string; nE: number; height: number; width: number };
}

/**
 * The band caches of a run's HDF5 files (stack, flat, dark; src/io/hdf5.ts) as one term of
 * its memory plan: the run turns them on where the plan holds them, and frees them when its
 * tiles are done (each band is one large array, returned to the system when freed, so the
 * bytes are planned beside the output phase rather than on top of it: TileBudget.bandBytes).
 */
export interface BandCache {
  bytes: number;
  use(on: boolean): void;
  release(): void;
}

export interface TilePlan {
  rowsPerTile: number;
  tiles: number;
  /** What the plan expects the run to need at most, bytes. */
  peakBytes: number;
}

export function planTiles(height: number, width: number, b: TileBudget): TilePlan {
  const rowBytes = width * b.bytesPerPixel;
  // The output phase is planned on top of the tiles, not beside them: memory a finished tile
  // returns to the allocator is not always returned to the operating system (glibc keeps
  // freed blocks for reuse, and Dawn's software GPU keeps its buffers' host memory), so the
  // process's resident size after the tiles can stay near its tile-phase peak.
  const after = Math.max(b.afterBytes ?? 0, b.bandBytes ?? 0);
  const room = b.budgetBytes - b.fixedBytes - after;
  let rows = Math.floor(room / rowBytes);
  if (rows < 1) {
    const need = Math.ceil((b.fixedBytes + after + rowBytes) / MiB);
    const what = b.stack ? `${b.stack.path} (${b.stack.nE} energies x ${b.stack.height} x ${b.stack.width} pixels)` : 'this stack';
    throw new InputError('--memory', `a budget of ${Math.floor(b.budgetBytes / MiB)} MiB is too small for ${what}: it needs at least ${need} MiB (${Math.ceil(b.fixedBytes / MiB)} MiB of process baseline and whole-image maps, ${Math.ceil(after / MiB)} MiB to write the outputs, and one row of ${width} pixels)`);
  }
  if (b.bindingBytesPerPixel > 0) {
    const limit = Math.min(b.maxBindingBytes, b.maxBufferBytes);
    const byDevice = Math.floor(limit / (width * b.bindingBytesPerPixel));
    if (byDevice < 1) {
      throw new InputError('stack', `one row (${width} pixels) exceeds the GPU's largest buffer (${Math.floor(limit / MiB)} MiB); use --backend cpu`);
    }
    rows = Math.min(rows, byDevice);
  }
  rows = Math.min(rows, height);
  return { rowsPerTile: rows, tiles: Math.ceil(height / rows), peakBytes: b.fixedBytes + rows * rowBytes + after };
}

export function parseMemoryMiB(value: string | undefined): number {
  if (value === undefined) return DEFAULT_MEMORY_MIB * MiB;
  const v = Number(value);
  if (!Number.isFinite(v) || v <= 0) throw new InputError('--memory', `expected a positive number of MiB, got '${value}'`);
  return v * MiB;
}

/**
 * The least any run over a stack needs: the process as it is, one float32 map and the status
 * byte for every pixel, and two host rows of spectra. Checked when the inputs are opened, so
 * a stack far too large for the budget (a decompression bomb declaring 20000x20000 pages)
 * is refused before a pixel is decoded; each run's own plan (planTiles) then adds its terms.
 */
export function checkBudgetFloor(stack: { path: string; nE: number; height: number; width: number }, budgetBytes: number, baselineBytes: number, afterBytes = 0): void {
  const { nE, height: H, width: W } = stack;
  checkImageSize(stack);
  const need = baselineBytes + H * W * (4 + 1) + 2 * 4 * nE * W + afterBytes;
  if (need > budgetBytes) {
    throw new InputError('--memory', `a budget of ${Math.floor(budgetBytes / MiB)} MiB is too small for ${stack.path} (${nE} energies x ${H} x ${W} pixels): it needs at least ${Math.ceil(need / MiB)} MiB (the process itself, ${Math.ceil(baselineBytes / MiB)} MiB, one map of ${(H * W).toLocaleString('en-US')} pixels, and writing the outputs)`);
  }
}

/**
 * Most pixels one image may have: its maps are held whole (one float32 array per map), and
 * a JavaScript typed array holds at most 2^32 - 1 elements; GPU kernels index pixels with
 * 32-bit integers too. 2^31 keeps a margin on both.
 */
export const MAX_IMAGE_PIXELS = 2 ** 31;

/** Refuses an image too large for whole-image maps, before anything is read. */
export function checkImageSize(stack: { path: string; height: number; width: number }): void {
  const n = stack.height * stack.width;
  if (n > MAX_IMAGE_PIXELS) {
    throw new InputError(stack.path, `${stack.width} x ${stack.height} = ${n.toExponential(2)} pixels is more than one image may have (${MAX_IMAGE_PIXELS.toExponential(2)}: its maps are held whole in memory); split it into fields of view`);
  }
}
