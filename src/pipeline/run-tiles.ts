/**
 * Streams a stack through a PixelStep tile by tile within a memory budget: read rows,
 * run the step, place the tile's maps into the whole-image maps. On a GPU a step with a GPU
 * part streams through a ring of persistent slots, tile i + 1 queued while tile i computes
 * (runRing; src/pipeline/gpu-tiles.ts says what a tile moves and what bounds it on a
 * datacentre GPU). The GPU reporting
 * out-of-memory halves the tile and retries; a lost device ends the run with a clear
 * message (DeviceLostError from src/gpu/device.ts).
 */
import type { StackSource } from '../stack/source.js';
import type { Backend, GpuTilePart, PixelStep, TileDest, TileResult } from './step.js';
import { GpuTileRing, GPU_SLOT_TILE_COPIES, RING_SLOTS, type PendingTile } from './gpu-tiles.js';
import { planTiles, type TileBudget, type TilePlan } from '../stack/tiles.js';
import { GpuOutOfMemoryError, withBufferReuse } from '../gpu/buffers.js';
import { CpuPool, workerScript } from './cpu-pool.js';
import { collectGarbage, memoryPhase, withYoungGenerationHeld, WORKER_THREAD_BYTES } from './memory.js';
import { InputError } from '../io/errors.js';
import type { BandCache } from '../stack/tiles.js';
import { KernelPool, kernelWorkerScript, sharedFloat32 } from '../cpu/threads.js';
import { wasmSimd } from '../cpu/wasm.js';
import { heapF32, heapFree } from '../cpu/wasm-heap.js';

export interface RunResult {
  width: number;
  height: number;
  maps: Record<string, Float32Array>;
  status: Uint8Array;
  statusCounts: Record<string, number>;
  tilePlan: TilePlan;
  /** Tiles actually run (more than planned if out-of-memory forced smaller ones). */
  tilesRun: number;
  oomRetries: number;
  /** read: reading tiles (overlapped with the GPU after the first); compute_wait: waiting for results. */
  seconds: { read: number; compute_wait: number; total: number };
}

/** Receives each tile's rows of the maps as they are computed (e.g. to write them to disk). */
export interface MapSink {
  rows(y0: number, rows: number, maps: Record<string, Float32Array>): void;
}

export interface RunOptions {
  budgetBytes: number;
  /**
   * Maps held in memory for the whole image (default: all); the others reach only `mapSink`,
   * so a run holds the maps it needs afterwards, not every map it writes.
   */
  keepMaps?: readonly string[];
  mapSink?: MapSink;
  /** Bytes the run needs after the tiles beside the kept maps (see TileBudget.afterBytes). */
  afterBytes?: number;
  /** Bytes per pixel the source adds while reading (e.g. flat and dark buffers). */
  sourceBytesPerPixel?: number;
  /** Bytes the source's readers hold whatever the tile (OpenedStack.readerBytes). */
  readerBytes?: number;
  /** HDF5 band caches (OpenedStack.bandCache): on where the plan holds them, freed after the tiles. */
  bandCache?: BandCache | null;
  /** After each tile: spectra (pixels) done so far and in all. */
  onTile?: (done: number, total: number) => void;
  /**
   * Sees each tile as read (energy-major, rows y0..y0+rows-1), before the step runs: the
   * report's spectra recorder keeps a copy of some pixels. Must not modify the tile.
   */
  onTileData?: (cube: Float32Array, y0: number, rows: number) => void;
  /** The process's memory before the run (default: measured RSS). Tests fix it to plan exactly. */
  baselineBytes?: number;
  /**
   * Seconds a tile that blocks the process aims at (default TILE_TARGET_S): tiles start at
   * one row and grow to it. Infinity: the memory plan's tiles from the first (benchmarks,
   * tests of the plan itself).
   */
  tileTargetSeconds?: number;
}

/** Whether `a` is the view of `whole` that starts at element `offset`. */
function isViewAt(a: ArrayBufferView, whole: ArrayBufferView & { BYTES_PER_ELEMENT: number }, offset: number): boolean {
  return a.buffer === whole.buffer && a.byteOffset === whole.byteOffset + offset * whole.BYTES_PER_ELEMENT;
}

/** Memory the process holds before any tile: measured (after a full collection), since Dawn and Node vary. */
export function baselineBytes(): number {
  collectGarbage();
  return process.memoryUsage().rss;
}

/** The memory terms of a run of `step` over a stack, for planTiles. */
export function tileBudget(
  dims: { nE: number; height: number; width: number; path?: string },
  step: Pick<PixelStep, 'mapNames' | 'bytesPerPixel' | 'gpuBindingBytesPerPixel' | 'worker' | 'gpuHeldBytesPerPixel' | 'cpuKernelBytes' | 'splitsTiles'> & { gpuPart?: unknown },
  backend: Pick<Backend, 'gpu' | 'threads'>,
  budgetBytes: number,
  sourceBytesPerPixel = 0,
  baseline = baselineBytes(),
  held: { keepMaps?: readonly string[]; afterBytes?: number; readerBytes?: number } = {},
): TileBudget {
  const { nE, height: H, width: W } = dims;
  const gpu = backend.gpu;
  // Tiles in flight at once: one per CPU worker (plus the one being read), else two (also
  // where the workers split each tile: splitting()).
  const threads = pooled(step, backend) ? backend.threads! : 1;
  // Threads that run the CPU kernels: the workers (whole tiles, or parts of each), or this one.
  const kernelThreads = threads > 1 ? threads : splitting(step, backend) ? backend.threads! : 1;
  const workerBytes = kernelThreads > 1 ? kernelThreads * WORKER_THREAD_BYTES : 0;
  // The CPU kernels' per-thread scratch and tables (WebAssembly heaps), on every thread that
  // runs tiles: the workers, or this thread. (Workers that split tiles keep their WebAssembly
  // scratch in this thread's heap and their tables in their own: the same bytes per worker.)
  const kernelBytes = gpu ? 0 : kernelThreads * (step.cpuKernelBytes?.(nE) ?? 0);
  const kept = held.keepMaps ? step.mapNames.filter((n) => held.keepMaps!.includes(n)).length : step.mapNames.length;
  // GPU tiles in flight: the ring's slots for a step with a GPU part (runRing), else one (runInline).
  const gpuInFlight = step.gpuPart ? RING_SLOTS : 1;
  return {
    budgetBytes,
    // The whole-image maps kept (float32 each, plus the status byte) live for the whole run.
    fixedBytes: baseline + H * W * (4 * kept + 1) + workerBytes + kernelBytes + (held.readerBytes ?? 0),
    workerBytes,
    kernelBytes,
    afterBytes: held.afterBytes ?? 0,
    // Host tiles (two for double buffering, or one per worker plus one) + (on the GPU) the
    // copies each tile in flight holds (RING_SLOTS of them for a step streamed through the
    // ring, else one); each tile in flight (per worker, or per ring slot: its scratch and
    // readback, the maps of the tile being collected) has the step's own bytes; what a GPU
    // part holds once for the run beside the ring (gpuHeldBytesPerPixel) is counted once.
    bytesPerPixel: gpu
      ? 4 * nE * (GPU_HOST_TILES + gpuInFlight * GPU_SLOT_TILE_COPIES) + sourceBytesPerPixel + step.bytesPerPixel(nE) * gpuInFlight + (step.gpuHeldBytesPerPixel?.(nE) ?? 0)
      : 4 * nE * (threads + 1) + sourceBytesPerPixel + step.bytesPerPixel(nE) * threads,
    bindingBytesPerPixel: gpu ? step.gpuBindingBytesPerPixel(nE) : 0,
    maxBindingBytes: gpu ? gpu.limits.maxStorageBufferBindingSize : Infinity,
    maxBufferBytes: gpu ? gpu.limits.maxBufferSize : Infinity,
    stack: 'path' in dims && typeof dims.path === 'string' ? { path: dims.path, nE, height: H, width: W } : undefined,
  };
}

/**
 * Host tiles of the webgpu backend's runners: one being read while the GPU works, one whose
 * tile is in flight and then collected (its spectra serve the steps' host parts).
 */
const GPU_HOST_TILES = 2;

/**
 * Growth of the resident size, bytes, after which the tiles' garbage is collected (see
 * runTiles' place): bounds what garbage adds to the tile phase, at one full collection (a few
 * ms with the engine's small JavaScript heap) per 8 MiB of tile results.
 */
export const GC_SLACK_BYTES = 8 * 2 ** 20;

/** Whether whole tiles go to CPU worker threads (runPooled). */
function pooled(step: Pick<PixelStep, 'worker' | 'splitsTiles'>, backend: Pick<Backend, 'gpu' | 'threads'>): boolean {
  return !backend.gpu && (backend.threads ?? 1) > 1 && !splitting(step, backend) && step.worker !== undefined && workerScript() !== null;
}

/**
 * Whether the step cuts each tile into parts for CPU worker threads itself (splitsTiles): the
 * tiles then run on this thread (runInline, heap tiles) with a KernelPool of `threads` workers.
 */
function splitting(step: Pick<PixelStep, 'splitsTiles'>, backend: Pick<Backend, 'gpu' | 'threads'>): boolean {
  return !backend.gpu && (backend.threads ?? 1) > 1 && step.splitsTiles === true && wasmSimd && kernelWorkerScript() !== null;
}

/**
 * Largest CPU tile, pixels. A CPU tile gains nothing from being larger (no launch cost to
 * amortise), and a smaller one keeps the progress bar moving and lets SIGINT, handled
 * between tiles, take effect within about a second.
 */
export const CPU_TILE_PIXELS = 1 << 18;

/**
 * Seconds a tile that blocks the process (GPU, or CPU without workers) aims at, measured
 * on the tiles before it. Short enough that Ctrl-C, handled between tiles, ends a run
 * within about a second on a software GPU (where a dispatch blocks the process); long
 * enough that per-tile costs stay small on any GPU.
 */
export const TILE_TARGET_S = 0.25;
/** The first such tile, pixels (rounded down to whole rows, at least one row), before any timing. */
export const FIRST_TILE_PIXELS = 256;

/**
 * The tile plan, with the HDF5 band caches on where the budget holds them beside the output
 * phase (budget.bandBytes set), else off: chunks are then decompressed again by each tile
 * that cuts through them (slower, the same values).
 */
export function planWithBandCache(H: number, W: number, budget: TileBudget, band: BandCache | null | undefined): TilePlan {
  if (band && band.bytes > 0) {
    try {
      const plan = planTiles(H, W, { ...budget, bandBytes: band.bytes });
      budget.bandBytes = band.bytes;
      band.use(true);
      return plan;
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      band.use(false);
    }
  }
  return planTiles(H, W, budget);
}

export async function runTiles(source: StackSource, step: PixelStep, backend: Backend, opts: RunOptions): Promise<RunResult> {
  const { nE, height: H, width: W } = source;
  const N = H * W;
  const budget = tileBudget(source, step, backend, opts.budgetBytes, opts.sourceBytesPerPixel, opts.baselineBytes, opts);
  const tilePlan = planWithBandCache(H, W, budget, opts.bandCache);
  if (!backend.gpu && tilePlan.rowsPerTile * W > CPU_TILE_PIXELS) {
    tilePlan.rowsPerTile = Math.max(1, Math.floor(CPU_TILE_PIXELS / W));
    tilePlan.tiles = Math.ceil(H / tilePlan.rowsPerTile);
  }
  const maps: Record<string, Float32Array> = {};
  const kept = opts.keepMaps ? step.mapNames.filter((n) => opts.keepMaps!.includes(n)) : step.mapNames;
  for (const name of kept) maps[name] = new Float32Array(N);
  const status = new Uint8Array(N);
  let rows = tilePlan.rowsPerTile;
  // A GPU part writes a tile's maps straight into the whole-image maps (dest): nothing to copy then.
  const dest = (y0: number, r: number): TileDest => ({
    maps: Object.fromEntries(kept.map((name) => [name, maps[name].subarray(y0 * W, (y0 + r) * W)])),
    status: status.subarray(y0 * W, (y0 + r) * W),
  });
  const place = (y0: number, result: TileResult) => {
    for (const name of kept) if (!isViewAt(result.maps[name], maps[name], y0 * W)) maps[name].set(result.maps[name], y0 * W);
    if (!isViewAt(result.status, status, y0 * W)) status.set(result.status, y0 * W);
    opts.mapSink?.rows(y0, result.status.length / W, result.maps);
    // Finished tiles' results are garbage; V8 collects them when it likes, which may be long
    // after the process has passed its plan (measured on llvmpipe, 2000 x 2000 x 101 at
    // --memory 256: the resident size crept up ~35 MiB over 470 tiles). Collected whenever the
    // process has grown by GC_SLACK_BYTES since the last collection, or is over the plan.
    const rss = process.memoryUsage.rss();
    if (rss > tilePlan.peakBytes || rss - rssAtGc > GC_SLACK_BYTES) {
      collectGarbage();
      rssAtGc = process.memoryUsage.rss();
    }
  };
  let rssAtGc = process.memoryUsage.rss();
  const finish = (tilesRun: number, oomRetries: number, tRead: number, tWait: number, t0: number): RunResult => {
    opts.bandCache?.release();
    const statusCounts: Record<string, number> = {};
    step.statusNames.forEach((n) => (statusCounts[n] = 0));
    for (let i = 0; i < N; i++) {
      const name = step.statusNames[status[i]] ?? `code_${status[i]}`;
      statusCounts[name] = (statusCounts[name] ?? 0) + 1;
    }
    return {
      width: W, height: H, maps, status, statusCounts, tilePlan, tilesRun, oomRetries,
      seconds: { read: tRead / 1000, compute_wait: tWait / 1000, total: (performance.now() - t0) / 1000 },
    };
  };
  if (pooled(step, backend)) return runPooled(source, step, backend.threads!, rows, place, finish, opts);
  // On a GPU, the tile loop holds V8's young generation at its size (withYoungGenerationHeld:
  // its growth is memory no tile term counts).
  if (backend.gpu && step.gpuPart) return withYoungGenerationHeld(() => runRing(source, step, step.gpuPart!(backend.gpu!), backend, opts, budget, tilePlan, rows, place, dest, finish));
  // On a GPU, each tile's buffers are kept for the next tile of the same height (BufferSet).
  if (backend.gpu) return withYoungGenerationHeld(() => withBufferReuse(backend.gpu!, () => runInline(source, step, backend, opts, budget, tilePlan, rows, place, finish)));
  // The CPU on this thread: the host tiles in this thread's WebAssembly heap (see runInline),
  // freed when the run ends (the next run's tiles reuse the blocks). A step that splits its
  // tiles gets a pool of workers for the run (Backend.pool).
  const heapTiles: Float32Array[] = [];
  const pool = splitting(step, backend) ? KernelPool.create(backend.threads!) : null;
  try {
    return await runInline(source, step, pool ? { ...backend, pool } : backend, opts, budget, tilePlan, rows, place, finish, (n) => {
      const t = heapF32(n);
      heapTiles.push(t);
      return t;
    });
  } finally {
    // The workers first: they may write into the tiles' rows until they end.
    await pool?.close();
    for (const t of heapTiles) heapFree(t);
  }
}

/** Tiles on this thread: a GPU, or the CPU without workers. */
async function runInline(
  source: StackSource,
  step: PixelStep,
  backend: Backend,
  opts: RunOptions,
  budget: TileBudget,
  tilePlan: TilePlan,
  rows: number,
  place: (y0: number, r: TileResult) => void,
  finish: (tiles: number, oom: number, tRead: number, tWait: number, t0: number) => RunResult,
  hostTile: (n: number) => Float32Array = (n) => new Float32Array(n),
): Promise<RunResult> {
  const { nE, height: H, width: W } = source;
  // Two host tiles: while the GPU computes one, the next is read into the other. On the CPU
  // they are blocks of the WebAssembly heap (src/cpu/wasm-heap.ts): shared memory, so a source
  // converting on worker threads (AbsorbanceStack) writes into them directly, and the
  // WebAssembly kernels (edge, lcf) read a tile where it lies instead of copying it in. Dawn
  // takes no shared memory, so a GPU's are ordinary.
  const tile = () => hostTile(nE * rows * W);
  const buffers = [tile(), tile()];
  const t0 = performance.now();
  let tRead = 0, tWait = 0, tilesRun = 0, oomRetries = 0;
  const read = async (y0: number, r: number, buf: Float32Array) => {
    const t = performance.now();
    await source.readRows(y0, r, buf);
    tRead += performance.now() - t;
    opts.onTileData?.(buf, y0, r);
  };

  // Here (a GPU, or the CPU on this thread) a tile blocks the process while it runs, and a
  // signal is handled between tiles: the tile grows from a small first one to what takes
  // about TILE_TARGET_S (never past the memory plan), so Ctrl-C ends a run within about a
  // second even where one big dispatch would block for minutes (llvmpipe runs a dispatch
  // synchronously). Maps do not depend on the tile size.
  let maxRows = rows;
  const target = opts.tileTargetSeconds ?? TILE_TARGET_S;
  if (Number.isFinite(target)) rows = Math.max(1, Math.min(maxRows, Math.floor(FIRST_TILE_PIXELS / W)));
  let y0 = 0;
  let r = Math.min(rows, H);
  let which = 0;
  const rssBefore = process.memoryUsage.rss();
  await read(0, r, buffers[0]);
  while (y0 < H) {
    const P = r * W;
    const tTile = performance.now();
    const pending = step.runTile(backend, buffers[which], P);
    pending.catch(() => undefined); // observed below; avoids an unhandled rejection while reading
    // Let the step reach its submit, then read ahead while the GPU works.
    await new Promise((res) => setImmediate(res));
    const nextY = y0 + r;
    const nextR = Math.min(rows, H - nextY);
    const readAhead = nextR > 0 ? read(nextY, nextR, buffers[1 - which]) : Promise.resolve();
    let result;
    const t = performance.now();
    try {
      result = await pending;
    } catch (e) {
      await readAhead;
      if (e instanceof GpuOutOfMemoryError && rows > 1) {
        rows = Math.max(1, Math.floor(rows / 2));
        oomRetries++;
        r = Math.min(rows, H - y0);
        await read(y0, r, buffers[which]);
        continue;
      }
      throw e;
    }
    await readAhead;
    tWait += performance.now() - t;
    if (Number.isFinite(target)) rows = nextTileRows(rows, maxRows, (performance.now() - tTile) / 1000 / P, target, W);
    place(y0, result);
    if (backend.gpu && tilesRun === 0 && opts.baselineBytes === undefined) {
      // The first (small) tile compiled the step's pipelines. On a software GPU that costs the
      // process tens of MiB that stay (Mesa's llvmpipe compiles the shader with LLVM): measured
      // here, beyond the tile's own planned bytes, and the tiles re-planned with it, so the
      // budget holds (or the run stops with the one-line --memory error that says the need).
      const again = replanAfterFirstTile(H, W, budget, tilePlan, rssBefore, r);
      rows = Math.min(rows, again.rowsPerTile);
      maxRows = Math.min(maxRows, again.rowsPerTile);
    }
    y0 = nextY;
    r = nextR;
    which = 1 - which;
    tilesRun++;
    opts.onTile?.(y0 * W, H * W);
  }

  return finish(tilesRun, oomRetries, tRead, tWait, t0);
}

/**
 * The next tile height from the last tile's time per pixel: grow (at most 4x a tile) while
 * `target` seconds allow twice the rows, shrink when they allow under half; otherwise keep the
 * height: a steady height lets a source's read-ahead (AbsorbanceStack reads the next tile of
 * the same height) be used, not discarded. Never past maxRows (the memory plan).
 */
function nextTileRows(rows: number, maxRows: number, secondsPerPixel: number, target: number, W: number): number {
  const fit = Math.floor(target / Math.max(secondsPerPixel, 1e-12) / W);
  if (fit >= 2 * rows) rows = Math.min(maxRows, 4 * rows, fit);
  else if (2 * fit < rows) rows = Math.max(1, fit);
  return Math.max(1, Math.min(maxRows, rows));
}

/**
 * After the first GPU tile (of `tileRows` rows): what the process grew beyond the tile's
 * planned bytes since `rssBefore` (the pipelines it compiled) joins the fixed bytes and the
 * tiles are planned again (tilePlan.peakBytes updated). Returns the new plan's rows per tile
 * and the tile phase's fixed bytes.
 */
function replanAfterFirstTile(H: number, W: number, budget: TileBudget, tilePlan: TilePlan, rssBefore: number, tileRows: number): { rowsPerTile: number; fixedBytes: number } {
  const extra = Math.max(0, process.memoryUsage.rss() - rssBefore - tileRows * W * budget.bytesPerPixel);
  const fixedBytes = budget.fixedBytes + extra;
  const again = planTiles(H, W, { ...budget, fixedBytes });
  tilePlan.peakBytes = again.peakBytes;
  return { rowsPerTile: again.rowsPerTile, fixedBytes };
}

/** With XANES_DEBUG_MEMORY: the resident size every DEBUG_TILES GPU tiles, beside the tile phase's plan. */
const DEBUG_TILES = 100;
function debugTiles(tiles: number, rows: number, planned: number): void {
  const m = process.memoryUsage();
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  memoryPhase(`${tiles} tile(s), this one ${rows} row(s), tile phase planned at most ${mib(planned)} MiB; V8 heap ${mib(m.heapTotal)} MiB, array buffers ${mib(m.arrayBuffers)} MiB`);
}

/**
 * A step with a GPU part (src/pipeline/gpu-tiles.ts): tiles go through a ring of RING_SLOTS
 * slots of persistent device buffers. Tile i + 1 is submitted (uploaded, its work queued)
 * before tile i is collected (its readback mapped once and turned into maps), and tile i + 2
 * is read from the source while the GPU works on tile i + 1: two host tiles, two slots.
 * Tile heights grow by measured time as in runInline; the GPU reporting out-of-memory for
 * a slot's buffers halves the tile.
 */
async function runRing(
  source: StackSource,
  step: PixelStep,
  part: GpuTilePart,
  backend: Backend,
  opts: RunOptions,
  budget: TileBudget,
  tilePlan: TilePlan,
  rows: number,
  place: (y0: number, r: TileResult) => void,
  dest: (y0: number, r: number) => TileDest,
  finish: (tiles: number, oom: number, tRead: number, tWait: number, t0: number) => RunResult,
): Promise<RunResult> {
  const { nE, height: H, width: W } = source;
  const ctx = backend.gpu!;
  const ring = new GpuTileRing(ctx, part, nE, step.name);
  const host = [new Float32Array(nE * rows * W), new Float32Array(nE * rows * W)];
  const t0 = performance.now();
  let tRead = 0, tWait = 0, tilesRun = 0, oomRetries = 0;
  type Tile = { y0: number; r: number; which: number };
  const read = async (t: Tile) => {
    const t1 = performance.now();
    await source.readRows(t.y0, t.r, host[t.which]);
    tRead += performance.now() - t1;
    opts.onTileData?.(host[t.which], t.y0, t.r);
  };
  // As runInline: tiles start small and grow to about TILE_TARGET_S (Ctrl-C is handled
  // between tiles), never past the memory plan; maps do not depend on the tile size.
  let maxRows = rows;
  const target = opts.tileTargetSeconds ?? TILE_TARGET_S;
  if (Number.isFinite(target)) rows = Math.max(1, Math.min(maxRows, Math.floor(FIRST_TILE_PIXELS / W)));
  const rssBefore = process.memoryUsage.rss();
  let next: Tile | null = { y0: 0, r: Math.min(rows, H), which: 0 };
  let inFlight: (Tile & { pending: PendingTile; t: number }) | null = null;
  let lastDone = performance.now();
  let tilePhase = budget.fixedBytes;
  try {
    await read(next);
    while (next || inFlight) {
      let submitted: (Tile & { pending: PendingTile; t: number }) | null = null;
      if (next) {
        try {
          submitted = { ...next, pending: await ring.submit(host[next.which].subarray(0, nE * next.r * W), next.r * W), t: performance.now() };
        } catch (e) {
          if (!(e instanceof GpuOutOfMemoryError) || rows <= 1) throw e;
          // Collect the tile in flight first (its slot holds device memory too), then retry
          // this tile at half the height.
          if (inFlight) {
            const r = await ring.collect(inFlight.pending, host[inFlight.which], dest(inFlight.y0, inFlight.r));
            place(inFlight.y0, r);
            tilesRun++;
            opts.onTile?.((inFlight.y0 + inFlight.r) * W, H * W);
            inFlight = null;
          }
          rows = Math.max(1, Math.floor(rows / 2));
          maxRows = Math.min(maxRows, rows);
          oomRetries++;
          next.r = Math.min(rows, H - next.y0);
          await read(next);
          continue;
        }
      }
      if (inFlight) {
        const tw = performance.now();
        const result = await ring.collect(inFlight.pending, host[inFlight.which], dest(inFlight.y0, inFlight.r));
        const now = performance.now();
        tWait += now - tw;
        const P = inFlight.r * W;
        // Time of this tile: from its submit, or from the previous tile's end when it queued
        // behind that one.
        if (Number.isFinite(target)) rows = nextTileRows(rows, maxRows, (now - Math.max(inFlight.t, lastDone)) / 1000 / P, target, W);
        lastDone = now;
        place(inFlight.y0, result);
        if (tilesRun === 0 && opts.baselineBytes === undefined) {
          // The first (small) tiles compiled the steps' pipelines: measured here and the
          // tiles re-planned with it, as runInline does.
          const again = replanAfterFirstTile(H, W, budget, tilePlan, rssBefore, inFlight.r);
          rows = Math.min(rows, again.rowsPerTile);
          maxRows = Math.min(maxRows, again.rowsPerTile);
          tilePhase = again.fixedBytes;
        }
        tilesRun++;
        if (tilesRun === 1 || tilesRun % DEBUG_TILES === 0) debugTiles(tilesRun, inFlight.r, tilePhase + maxRows * W * budget.bytesPerPixel);
        opts.onTile?.((inFlight.y0 + inFlight.r) * W, H * W);
      }
      inFlight = submitted;
      next = null;
      if (submitted) {
        // The freed host tile takes the next rows while the GPU works on `submitted`.
        const y0: number = submitted.y0 + submitted.r;
        if (y0 < H) {
          next = { y0, r: Math.min(rows, H - y0), which: 1 - submitted.which };
          await read(next);
        }
      }
    }
  } finally {
    await ring.destroy();
  }
  return finish(tilesRun, oomRetries, tRead, tWait, t0);
}

/**
 * The CPU backend on worker threads: the main thread reads tiles and hands each to an idle
 * worker (transferring its buffer); results are placed by row as they come back.
 */
async function runPooled(
  source: StackSource,
  step: PixelStep,
  threads: number,
  rows: number,
  place: (y0: number, r: TileResult) => void,
  finish: (tiles: number, oom: number, tRead: number, tWait: number, t0: number) => RunResult,
  opts: RunOptions,
): Promise<RunResult> {
  const { nE, height: H, width: W } = source;
  const t0 = performance.now();
  const pool = new CpuPool(step, threads);
  // Shared tiles: a source converting on worker threads writes into them, and the step's
  // worker reads them in place (CpuPool hands a shared tile over without a copy).
  const free: Float32Array[] = Array.from({ length: threads + 1 }, () => sharedFloat32(nE * rows * W));
  const freed: (() => void)[] = [];
  const inFlight = new Set<Promise<void>>();
  let tRead = 0, tiles = 0, doneRows = 0;
  let failure: unknown = null;
  try {
    for (let y0 = 0; y0 < H && failure === null; y0 += rows) {
      const r = Math.min(rows, H - y0);
      while (free.length === 0) await new Promise<void>((res) => freed.push(res));
      const buf = free.pop()!;
      const t = performance.now();
      await source.readRows(y0, r, buf);
      tRead += performance.now() - t;
      opts.onTileData?.(buf, y0, r);
      const { done } = await pool.submit(buf, r * W);
      const p: Promise<void> = done.then(
        ({ result, cube }) => {
          place(y0, result);
          free.push(cube);
          tiles++;
          doneRows += r;
          opts.onTile?.(doneRows * W, H * W);
        },
        (e: unknown) => {
          failure = e;
        },
      ).finally(() => {
        inFlight.delete(p);
        freed.shift()?.();
      });
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    if (failure !== null) throw failure;
  } finally {
    await pool.close();
  }
  return finish(tiles, 0, tRead, 0, t0);
}
