/**
 * The process's own memory, for an honest --memory budget: the resident size when the
 * command started (Node, the bundle, nothing of the run yet), the resident size now, and a
 * full garbage collection between the phases of a run (tiles, then maps written one by one,
 * then pictures), so that the buffers of a finished phase are returned before the next
 * phase allocates instead of whenever V8 next decides to collect.
 */
import os from 'node:os';
import v8 from 'node:v8';
import { InputError } from '../io/errors.js';
import vm from 'node:vm';
import { defaultThreads } from '../cpu/threads.js';
import { PICTURE_MAX_SIDE } from '../plot/map-scale.js';

const MiB = 2 ** 20;

/** RSS when this module was first loaded (the CLI loads it before anything else runs). */
let startRss = process.memoryUsage().rss;

/** Records the baseline again (the CLI calls this first thing). */
export function markProcessBaseline(): number {
  startRss = process.memoryUsage().rss;
  return startRss;
}

/** The resident size of the process when the command started, bytes. */
export function processBaselineBytes(): number {
  return startRss;
}

/**
 * A CPU worker thread (a V8 isolate with the worker bundle loaded), bytes: measured at
 * ~10 MiB idle on Node 20 (x86-64); 24 MiB leaves room for its heap and allocator between
 * tiles (the tile's own temporaries are counted by the step's bytesPerPixel, and each
 * worker collects them after its tile).
 */
export const WORKER_THREAD_BYTES = 24 * MiB;

/** Worker threads a backend starts for its CPU kernels (none on webgpu, none with one thread). */
export function workerBytes(backend: { name: string; threads?: number }): number {
  const threads = backend.threads ?? defaultThreads();
  return backend.name === 'cpu' && threads > 1 ? threads * WORKER_THREAD_BYTES : 0;
}

let gcFn: (() => void) | null | undefined;

/** A full garbage collection, when V8 allows it (it always does on Node >= 20). */
export function collectGarbage(): void {
  if (gcFn === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      gcFn = vm.runInNewContext('gc') as () => void;
    } catch {
      gcFn = null;
    }
  }
  gcFn?.();
}

/** V8's factor for growing its young generation (--semi-space-growth-factor's default). */
const V8_SEMI_SPACE_GROWTH = 2;
let youngHeld = 0;

/**
 * Runs `fn` with V8's young generation held at its present size. A loop that keeps
 * allocating (the GPU runner's tiles: promises, map records, typed-array handles) makes V8
 * grow its new space from semi-spaces of 1 MiB towards 16 MiB each (32 MiB committed on
 * Node 20), memory no tile term counts: measured on llvmpipe (2000 x 2000 x 101 at --memory
 * 256) the V8 heap grew from 23.8 to 32.3 MiB between tiles 300 and 400, most of the process
 * outgrowing its tile plan. The objects of a tile are short-lived and small (spectra and maps
 * are typed arrays outside the V8 heap), so a small young generation costs only cheap
 * scavenges. The default growth is restored when `fn` settles.
 */
export async function withYoungGenerationHeld<T>(fn: () => Promise<T>): Promise<T> {
  if (youngHeld++ === 0) v8.setFlagsFromString('--semi-space-growth-factor=1');
  try {
    return await fn();
  } finally {
    if (--youngHeld === 0) v8.setFlagsFromString(`--semi-space-growth-factor=${V8_SEMI_SPACE_GROWTH}`);
  }
}

/** The memory block of summary.json: budget, the process at start, and the peak so far (MiB). */
/** summary.json's "memory": the budget, the process before the run, the tile plan, the peak. */
export interface MemorySummary {
  budget_MiB: number;
  process_baseline_MiB: number;
  rows_per_tile?: number;
  tiles?: number;
  oom_retries?: number;
  planned_peak_MiB?: number;
  peak_rss_MiB: number;
}

export function memorySummary(budgetBytes: number, extra: Pick<MemorySummary, 'rows_per_tile' | 'tiles' | 'oom_retries' | 'planned_peak_MiB'> = {}): MemorySummary {
  return {
    budget_MiB: budgetBytes / MiB,
    process_baseline_MiB: Math.round(startRss / MiB),
    ...extra,
    peak_rss_MiB: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

/**
 * What a run that holds its maps (fit, lcf, run; `xanes edge` streams them, see
 * edgeOutputPhaseBytes) needs after its tiles beside the maps it keeps, measured. The phases come one
 * after another, with a full collection between them:
 *  - each map read back from its .npy while its .tif is written (4 bytes a pixel, and as much
 *    again for the TIFF's bytes);
 *  - pictures of at most 1000 x 1000 map pixels (src/plot/map-scale.ts; Vega and resvg,
 *    30-40 MiB that stay mapped) and their colour range (a sorted float32 copy of the map);
 *  - report.html (src/report/html.ts): each map read and written in blocks of rows (~2 MiB);
 *  - results.h5 (h5wasm's code and WebAssembly heap, 25-30 MiB, maps written a slice of
 *    rows at a time).
 * What one phase frees is not always returned to the operating system, so the fixed parts
 * add up: 72 MiB + 8 bytes a pixel (measured on 2000 x 2000 edge runs).
 */
export function outputPhaseBytes(height: number, width: number): number {
  return 64 * MiB + 6 * height * width;
}

/**
 * What `xanes edge` needs after its tiles. It holds no whole map: every map is on disk and
 * read back in blocks of ~1 MiB (each .tif, the histogram, the pictures, report.html), and
 * results.h5 is written in slices of 256 KiB; so the phase does not grow with the image,
 * except the pictures' block means and colours (~16 bytes a picture pixel, pictures of at
 * most PICTURE_MAX_SIDE^2 map pixels). The fixed part is Vega and resvg drawing a picture
 * (~25 MiB) or HDF5 (h5wasm loaded by the baseline compiler, ~30 MiB), one after the other.
 * Measured on 2000 x 2000 x 101 runs on llvmpipe: the process's peak after the tiles was
 * 28-43 MiB above its resident size when the tiles ended; 40 MiB + 16 bytes a picture pixel
 * (55 MiB there) is planned.
 */
export function edgeOutputPhaseBytes(height: number, width: number): number {
  return 40 * MiB + 16 * Math.min(height * width, PICTURE_MAX_SIDE * PICTURE_MAX_SIDE);
}

/**
 * A budget beyond the machine's memory would only move the failure to the operating system
 * (swapping, or the process killed): refused while it is a clear message.
 */
export function checkBudgetFitsMachine(budgetBytes: number): void {
  const total = os.totalmem();
  if (budgetBytes > total) {
    throw new InputError('--memory', `${+(budgetBytes / MiB).toPrecision(6)} MiB is more than this machine's memory (${Math.floor(total / MiB)} MiB)`);
  }
}

/**
 * With XANES_DEBUG_MEMORY set, one stderr line per phase boundary: the resident size now and
 * the peak so far (MiB), for finding where a run's peak comes from. Silent otherwise.
 */
export function memoryPhase(label: string): void {
  if (!process.env.XANES_DEBUG_MEMORY) return;
  const rss = process.memoryUsage.rss() / MiB;
  const peak = process.resourceUsage().maxRSS / 1024;
  process.stderr.write(`xanes-memory: ${label}: rss ${rss.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB\n`);
}
