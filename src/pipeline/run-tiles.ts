/**
 * Streams a stack through a PixelStep tile by tile within a memory budget: read rows,
 * run the step, place the tile's maps into the whole-image maps. The GPU reporting
 * out-of-memory halves the tile and retries; a lost device ends the run with a clear
 * message (DeviceLostError from src/gpu/device.ts).
 */
import type { StackSource } from '../stack/source.js';
import type { Backend, PixelStep } from './step.js';
import { planTiles, type TileBudget, type TilePlan } from '../stack/tiles.js';
import { GpuOutOfMemoryError } from './edge-tile.js';

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

export interface RunOptions {
  budgetBytes: number;
  /** Bytes per pixel the source adds while reading (e.g. flat and dark buffers). */
  sourceBytesPerPixel?: number;
  onTile?: (done: number, total: number) => void;
  /** The process's memory before the run (default: measured RSS). Tests fix it to plan exactly. */
  baselineBytes?: number;
}

/** Memory the process holds before any tile: measured, since Dawn and Node vary. */
export function baselineBytes(): number {
  return process.memoryUsage().rss;
}

/** The memory terms of a run of `step` over a stack, for planTiles. */
export function tileBudget(
  dims: { nE: number; height: number; width: number },
  step: Pick<PixelStep, 'mapNames' | 'bytesPerPixel' | 'gpuBindingBytesPerPixel'>,
  backend: Pick<Backend, 'gpu'>,
  budgetBytes: number,
  sourceBytesPerPixel = 0,
  baseline = baselineBytes(),
): TileBudget {
  const { nE, height: H, width: W } = dims;
  const gpu = backend.gpu;
  return {
    budgetBytes,
    // The whole-image maps (float32 each, plus the status byte) live for the whole run.
    fixedBytes: baseline + H * W * (4 * step.mapNames.length + 1),
    // Two host tiles (double buffering) + (on the GPU) the device copy and Dawn's staging copy.
    bytesPerPixel: 4 * nE * (gpu ? 4 : 2) + sourceBytesPerPixel + step.bytesPerPixel(nE),
    bindingBytesPerPixel: gpu ? step.gpuBindingBytesPerPixel(nE) : 0,
    maxBindingBytes: gpu ? gpu.limits.maxStorageBufferBindingSize : Infinity,
    maxBufferBytes: gpu ? gpu.limits.maxBufferSize : Infinity,
  };
}

export async function runTiles(source: StackSource, step: PixelStep, backend: Backend, opts: RunOptions): Promise<RunResult> {
  const { nE, height: H, width: W } = source;
  const N = H * W;
  const tilePlan = planTiles(H, W, tileBudget(source, step, backend, opts.budgetBytes, opts.sourceBytesPerPixel, opts.baselineBytes));
  const maps: Record<string, Float32Array> = {};
  for (const name of step.mapNames) maps[name] = new Float32Array(N);
  const status = new Uint8Array(N);
  let rows = tilePlan.rowsPerTile;
  // Two host tiles: while the GPU computes one, the next is read into the other.
  const buffers = [new Float32Array(nE * rows * W), new Float32Array(nE * rows * W)];
  const t0 = performance.now();
  let tRead = 0, tWait = 0, tilesRun = 0, oomRetries = 0;
  const read = async (y0: number, r: number, buf: Float32Array) => {
    const t = performance.now();
    await source.readRows(y0, r, buf);
    tRead += performance.now() - t;
  };

  let y0 = 0;
  let r = Math.min(rows, H);
  let which = 0;
  await read(0, r, buffers[0]);
  while (y0 < H) {
    const P = r * W;
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
    for (const name of step.mapNames) maps[name].set(result.maps[name], y0 * W);
    status.set(result.status, y0 * W);
    y0 = nextY;
    r = nextR;
    which = 1 - which;
    tilesRun++;
    opts.onTile?.(y0, H);
  }

  const statusCounts: Record<string, number> = {};
  step.statusNames.forEach((n) => (statusCounts[n] = 0));
  for (let i = 0; i < N; i++) {
    const name = step.statusNames[status[i]] ?? `code_${status[i]}`;
    statusCounts[name] = (statusCounts[name] ?? 0) + 1;
  }
  return {
    width: W,
    height: H,
    maps,
    status,
    statusCounts,
    tilePlan,
    tilesRun,
    oomRetries,
    seconds: { read: tRead / 1000, compute_wait: tWait / 1000, total: (performance.now() - t0) / 1000 },
  };
}
