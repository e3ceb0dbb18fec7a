/**
 * A per-pixel step: turns one tile of spectra (energy-major, [nE][P], float32) into named
 * per-pixel maps. Edge energies, fits and linear-combination fits are all steps; the tiled
 * runner (src/pipeline/run-tiles.ts) streams any stack through any step within a memory
 * budget, on either backend.
 */
import type { GpuContext } from '../gpu/device.js';

export type BackendName = 'webgpu' | 'cpu';

export interface Backend {
  name: BackendName;
  /** Adapter description for outputs ("llvmpipe ... (OpenGL ES)", or the CPU model). */
  adapter: string;
  /** Present when name === 'webgpu'. */
  gpu?: GpuContext;
  /** CPU worker threads (name === 'cpu'); absent or 1 = the main thread only. */
  threads?: number;
}

export interface TileResult {
  /** Float32 maps of P pixels each, NaN where the pixel has no value. */
  maps: Record<string, Float32Array>;
  /** Per-pixel status code (0 = ok); its meaning is the step's `statusNames`. */
  status: Uint8Array;
}

export interface PixelStep {
  /** Used in labels, summary.json and error messages. */
  name: string;
  /** Names of the float32 maps runTile returns, in the order they are written. */
  mapNames: string[];
  /** statusNames[code] names each status code (for counts in summary.json). */
  statusNames: readonly string[];
  /**
   * Bytes one pixel needs beyond its input spectrum (nE float32 values, which the runner
   * counts itself): outputs, GPU scratch, readback copies, CPU temporaries. Add them up term
   * by term; the runner sizes tiles from this and the memory budget.
   */
  bytesPerPixel(nE: number): number;
  /**
   * Largest single GPU buffer (bytes) per pixel, so tiles respect maxStorageBufferBindingSize
   * (usually the input cube: 4 * nE).
   */
  gpuBindingBytesPerPixel(nE: number): number;
  /**
   * How a CPU worker thread rebuilds this step (src/pipeline/cpu-steps.ts): a registered
   * kind and structured-cloneable args. Steps without it run on the main thread only.
   */
  worker?: { kind: string; args: unknown };
  /** Runs one tile of P pixels. cube.length >= nE * P; only the first nE * P values are used. */
  runTile(backend: Backend, cube: Float32Array, P: number): Promise<TileResult>;
}
