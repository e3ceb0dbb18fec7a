/**
 * A per-pixel step: turns one tile of spectra (energy-major, [nE][P], float32) into named
 * per-pixel maps. Edge energies, fits and linear-combination fits are all steps; the tiled
 * runner (src/pipeline/run-tiles.ts) streams any stack through any step within a memory
 * budget, on either backend.
 */
import type { GpuContext } from '../gpu/device.js';
import type { TileSlot } from '../gpu/ring.js';
import type { KernelPool } from '../cpu/threads.js';

export type BackendName = 'webgpu' | 'cpu';

export interface Backend {
  name: BackendName;
  /** Adapter description for outputs ("llvmpipe ... (OpenGL ES)", or the CPU model). */
  adapter: string;
  /** Present when name === 'webgpu'. */
  gpu?: GpuContext;
  /** CPU worker threads (name === 'cpu'); absent or 1 = the main thread only. */
  threads?: number;
  /**
   * CPU: worker threads on which a step that splits its tiles (PixelStep.splitsTiles) runs
   * the parts of each tile; runTiles makes them for a run (`threads` of them) and closes them.
   */
  pool?: KernelPool;
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
   * GPU path only: bytes per pixel of the tile height that the step's GPU part holds once for
   * the run beside the runner's ring slots (not once per slot), e.g. the one-slot ring of
   * `xanes lcf --normalize`'s normalised spectra. Absent: none. Kept apart from bytesPerPixel
   * so that CPU tiles are not planned smaller for memory only a GPU run holds.
   */
  gpuHeldBytesPerPixel?(nE: number): number;
  /**
   * CPU path only: bytes the step's CPU kernels keep per thread for the whole run whatever the
   * tile (each plan's WebAssembly heap scratch, which a thread's heap never returns, and the
   * tables it is built from). The runner counts it once per thread that runs tiles (each
   * worker has its own heap). Absent: none.
   */
  cpuKernelBytes?(nE: number): number;
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
  /**
   * CPU with several threads: runTile cuts each tile into parts for backend.pool's workers
   * itself, the tile read in place in this thread's WebAssembly heap (src/cpu/wasm-heap.ts).
   * runTiles then runs the step on this thread with heap tiles and a pool of `threads`
   * workers, instead of handing whole tiles to CPU workers (`worker`).
   */
  splitsTiles?: boolean;
  /** Runs one tile of P pixels. cube.length >= nE * P; only the first nE * P values are used. */
  runTile(backend: Backend, cube: Float32Array, P: number): Promise<TileResult>;
  /**
   * The step's GPU work in the form the tiled runner streams (src/pipeline/gpu-tiles.ts):
   * the tile uploaded once into a ring slot, every step's dispatches reading it, every
   * output copied into one readback buffer mapped once. runTile on a GPU runs the same part.
   */
  gpuPart?(ctx: GpuContext): GpuTilePart;
}

/** Where a tile's maps go: views of P values each, for some of the step's maps. */
export interface TileDest {
  maps: Record<string, Float32Array>;
  status?: Uint8Array;
}

/** One tile of a ring slot, as a GpuTilePart's encode sees it. */
export interface GpuTile {
  ctx: GpuContext;
  encoder: GPUCommandEncoder;
  /** The tile's spectra, energy-major [nE][P] float32 (the buffer may be larger). */
  cube: GPUBuffer;
  /** The slot's readback buffer: part rows go to [row0 + k][P] (row k of the part, float32). */
  read: GPUBuffer;
  /** The slot's persistent scratch and uniform buffers (name them after the step). */
  slot: TileSlot;
  /**
   * A buffer uploaded once per ring (per run) and shared by its slots: plan tables, energies.
   * Keyed by the `data` array itself (make it once per part, not per tile); `name` labels it.
   * A storage buffer, or with `uniform` a uniform one (`data` padded to whole 16-byte rows).
   */
  constant(name: string, data: Float32Array, uniform?: boolean): GPUBuffer;
}

/**
 * A step's GPU work on one tile, split where the runner overlaps tiles: `encode` records
 * dispatches and the copies of the outputs into the readback buffer (nothing waits on the
 * GPU), `finish` turns the mapped rows into the tile's maps.
 */
export interface GpuTilePart {
  /** Float32 rows per pixel this part copies into the readback buffer. */
  readRows: number;
  /** Device scratch bytes per pixel of one slot beyond the spectra and readback rows (memory plan). */
  scratchBytesPerPixel: number;
  encode(t: GpuTile, P: number, row0: number): Promise<void>;
  /**
   * The tile's result from `rows` ([readRows][P], a view of the mapped readback: valid until
   * the returned promise settles, never kept) and the host tile `cube` ([nE][P]). Maps (and
   * the status) found in `dest` are written there (the runner's whole-image maps at the
   * tile's rows, zero-filled: no copy when placed) and returned as they are.
   */
  finish(rows: Float32Array, cube: Float32Array, P: number, dest?: TileDest): Promise<TileResult>;
  /** Releases what the part made beyond the ring's buffers (called once the run is done). */
  dispose?(): Promise<void>;
}
