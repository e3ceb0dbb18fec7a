/**
 * GPU wrappers of shaders/kmeans_assign.wgsl, kmeans_partial.wgsl and kmeans_reduce.wgsl
 * (CPU twins: src/cpu/kmeans.ts), and the GPU k-means engine: one Lloyd step over every
 * tile of a feature set = assignment + per-workgroup partial sums + their reduction in
 * workgroup memory, all on the GPU, and ONE readback per step of k x (d + 2) floats per tile
 * (plus labels when asked), added over tiles in float64 on the host.
 *
 * Features stay on the GPU between steps when they fit in `residentBytes` (all tiles in one
 * submit per step); otherwise each step streams the tiles through a ring of two slot (UploadRing, src/gpu/ring.ts)
 * buffers: the upload of tile i + 1 is queued while tile i computes, and the host waits
 * only to keep at most two tiles staged (never for a tile's results).
 */
import type { GpuContext } from '../gpu/device.js';
import { guard } from '../gpu/device.js';
import { UploadRing, submitChecked } from '../gpu/ring.js';
import { BufferSet, readFloat32, align4, writeFloat32 } from '../gpu/buffers.js';
import { encodeDispatch, type KernelDef } from '../gpu/kernel.js';
import { GpuOutOfMemoryError } from '../gpu/buffers.js';
import {
  KMEANS_MAX_K, KM_ROWS, KM_ROW_DIST2, KM_ROW_LABEL, entriesPerCluster, locatePixel, standardizedPixel,
  type FeatureView, type KmeansEngine, type KmeansStepResult, type Standardization,
} from '../cpu/kmeans.js';
import assignWgsl from '../../shaders/kmeans_assign.wgsl';
import partialWgsl from '../../shaders/kmeans_partial.wgsl';
import reduceWgsl from '../../shaders/kmeans_reduce.wgsl';

/** Invocations per workgroup of kmeans_partial (pixels per staged batch of labels). */
export const KM_WG = 256;
/**
 * Workgroup-memory bins of kmeans_partial (slices x k x f_wg floats): 15 KiB, so that with
 * the staged labels (1 KiB) it fits WebGPU's default 16 KiB of workgroup storage.
 */
export const KM_BINS = 3840;
/** Target float32 partials per tile and step (bounds the partials buffer, 4 MiB; kmeans_reduce adds them on the device). */
export const KM_TARGET_PARTIALS = 1 << 20;
/** Default bytes of features (+ assignment rows) kept on the GPU between steps. */
export const DEFAULT_RESIDENT_BYTES = 1 << 30;

/** Centres per sweep of kmeans_assign (two vec4 accumulators). */
export const KM_GROUP = 8;

const kmConstants = { KM_ROWS, KM_ROW_LABEL, KM_ROW_DIST2, KM_WG, KM_GROUP, KM_BINS };

/** k rounded up to whole groups of KM_GROUP: the padded centre count in aux. */
export function paddedK(k: number): number {
  return Math.ceil(k / KM_GROUP) * KM_GROUP;
}

export const kmeansAssignKernel: KernelDef = {
  name: 'kmeans_assign',
  wgsl: assignWgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'feat', kind: 'read-only-storage' },
    { name: 'aux', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
  ],
  params: [['d', 'u32'], ['k', 'u32'], ['kp', 'u32']],
  constants: kmConstants,
};

export const kmeansPartialKernel: KernelDef = {
  name: 'kmeans_partial',
  wgsl: partialWgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'feat', kind: 'read-only-storage' },
    { name: 'aux', kind: 'read-only-storage' },
    { name: 'assign', kind: 'read-only-storage' },
    { name: 'partials', kind: 'storage' },
  ],
  params: [
    ['d', 'u32'], ['k', 'u32'], ['kp', 'u32'], ['n_pixels', 'u32'], ['chunk', 'u32'], ['n_fblocks', 'u32'], ['f_wg', 'u32'],
    ['slices', 'u32'], ['n_groups', 'u32'],
  ],
  constants: kmConstants,
  workgroupSize: KM_WG,
};

/** How kmeans_partial cuts a tile of P pixels for k clusters of d features. */
export interface PartialPlan {
  d: number;
  k: number;
  P: number;
  /** Entries per cluster (d + 2), entries per workgroup (a power of two) and entry blocks. */
  m: number;
  fWg: number;
  nFblocks: number;
  /** Pixel slices per workgroup (slices x fWg <= KM_WG, slices x k x fWg <= KM_BINS). */
  slices: number;
  /** Pixels per workgroup (a multiple of KM_WG) and chunks. */
  chunk: number;
  nChunks: number;
  nGroups: number;
  /** Float32 partials read back: nGroups x k x fWg. */
  partials: number;
}

/** `targetPartials` bounds the partials per tile (tests lower it to force long chunks). */
export function partialPlan(d: number, k: number, P: number, targetPartials = KM_TARGET_PARTIALS): PartialPlan {
  const m = entriesPerCluster(d);
  let fWg = 1;
  while (fWg < Math.min(m, 64)) fWg *= 2;
  while (k * fWg > KM_BINS && fWg > 1) fWg /= 2;
  if (k * fWg > KM_BINS) throw new RangeError(`partialPlan: k = ${k} exceeds ${KM_BINS} bins`);
  const nFblocks = Math.ceil(m / fWg);
  const slices = Math.max(1, Math.min(Math.floor(KM_BINS / (k * fWg)), KM_WG / fWg));
  const perChunk = nFblocks * k * fWg;
  const maxChunks = Math.max(1, Math.floor(targetPartials / perChunk));
  const minChunk = Math.ceil(Math.max(1, P) / maxChunks);
  const chunk = Math.max(KM_WG, Math.ceil(minChunk / KM_WG) * KM_WG);
  const nChunks = Math.max(1, Math.ceil(P / chunk));
  const nGroups = nChunks * nFblocks;
  return { d, k, P, m, fWg, nFblocks, slices, chunk, nChunks, nGroups, partials: nGroups * k * fWg };
}

function partialParams(p: PartialPlan): Record<string, number> {
  return {
    d: p.d, k: p.k, kp: paddedK(p.k), n_pixels: p.P, chunk: p.chunk, n_fblocks: p.nFblocks, f_wg: p.fWg,
    slices: p.slices, n_groups: p.nGroups,
  };
}

export const kmeansReduceKernel: KernelDef = {
  name: 'kmeans_reduce',
  wgsl: reduceWgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'partials', kind: 'read-only-storage' },
    { name: 'sums', kind: 'storage' },
  ],
  params: [['k', 'u32'], ['m', 'u32'], ['f_wg', 'u32'], ['n_fblocks', 'u32'], ['n_chunks', 'u32'], ['n_entries', 'u32'], ['out_offset', 'u32']],
  constants: kmConstants,
  workgroupSize: KM_WG,
};

function reduceParams(p: PartialPlan, outOffset: number): Record<string, number> {
  return { k: p.k, m: p.m, f_wg: p.fWg, n_fblocks: p.nFblocks, n_chunks: p.nChunks, n_entries: p.k * p.m, out_offset: outOffset };
}

/**
 * aux buffer contents: shift, 1/scale, centres transposed [d][kp] (z units; zeros for
 * inactive and padding centres), active flags [kp].
 */
export function kmeansAux(st: Standardization, k: number, centres: Float64Array, active: Uint8Array): Float32Array {
  const d = st.shift.length;
  const kp = paddedK(k);
  const aux = new Float32Array(2 * d + d * kp + kp);
  for (let f = 0; f < d; f++) {
    aux[f] = st.shift[f];
    aux[d + f] = 1 / st.scale[f];
  }
  for (let j = 0; j < k; j++) {
    if (!active[j]) continue;
    for (let f = 0; f < d; f++) aux[2 * d + f * kp + j] = centres[j * d + f];
    aux[2 * d + d * kp + j] = 1;
  }
  return aux;
}

/** The centres (k x d) as aux holds them (float32), i.e. as the GPU uses them. */
export function auxCentres(aux: Float32Array, d: number, k: number): Float64Array {
  const kp = paddedK(k);
  const c = new Float64Array(k * d);
  for (let j = 0; j < k; j++) for (let f = 0; f < d; f++) c[j * d + f] = aux[2 * d + f * kp + j];
  return c;
}

/** Largest tile (pixels) whose feature and assignment buffers fit the device's binding limits. */
export function maxKmeansTilePixels(ctx: GpuContext, d: number): number {
  const limit = Math.min(ctx.limits.maxStorageBufferBindingSize, ctx.limits.maxBufferSize);
  return Math.max(KM_WG, Math.min(1 << 24, Math.floor(limit / (4 * Math.max(d, KM_ROWS)))));
}

/** Uploads a view into a [d][count] buffer (one write if contiguous, else one per feature). */
export function writeView(ctx: GpuContext, buf: GPUBuffer, view: FeatureView, d: number): void {
  const { data, stride, offset, count } = view;
  if (stride === count && offset === 0) {
    writeFloat32(ctx, buf, 0, data.subarray(0, d * count));
    return;
  }
  for (let f = 0; f < d; f++) writeFloat32(ctx, buf, f * count * 4, data.subarray(f * stride + offset, f * stride + offset + count));
}

interface Tile {
  view: FeatureView;
  /** First global pixel of the tile. */
  start: number;
  feat: GPUBuffer | null;
  out: GPUBuffer | null;
}

/** Tiles whose uploads may be staged at once in streamed mode (the slot ring). */
const RING = 2;

/**
 * The GPU engine. Create with GpuKmeansEngine.create; call release() when done (destroys
 * every buffer it owns after the last submit).
 */
export class GpuKmeansEngine implements KmeansEngine {
  readonly n: number;
  private readonly set: BufferSet;
  private readonly tiles: Tile[];
  private readonly aux: GPUBuffer;
  /** Partials (shared by the tiles: queue order serialises them), per-tile sums and their readback; sized for `sizedK`. */
  private partials: GPUBuffer | null = null;
  private tileSums: GPUBuffer | null = null;
  private sumsRead: GPUBuffer | null = null;
  private sizedK = 0;
  /** Streamed mode: the slot ring (features and assignment buffer per slot). */
  private ring: UploadRing<{ feat: GPUBuffer; out: GPUBuffer }> | null = null;

  private constructor(
    readonly ctx: GpuContext,
    readonly d: number,
    readonly views: FeatureView[],
    readonly st: Standardization,
    readonly resident: boolean,
    private readonly targetPartials = KM_TARGET_PARTIALS,
  ) {
    this.set = new BufferSet(ctx, 'kmeans');
    let start = 0;
    this.tiles = views.map((view) => {
      const t = { view, start, feat: null, out: null };
      start += view.count;
      return t;
    });
    this.n = start;
    this.aux = this.set.storage('aux', 4 * (2 * d + (d + 1) * paddedK(KMEANS_MAX_K)));
  }

  /**
   * Views must each fit maxKmeansTilePixels(ctx, d). Features stay on the GPU if all tiles'
   * feature and assignment buffers take at most `residentBytes` (default 1 GiB). `targetPartials`
   * as in partialPlan (tests).
   */
  static async create(
    ctx: GpuContext, d: number, views: FeatureView[], st: Standardization, opts: { residentBytes?: number; targetPartials?: number } = {},
  ): Promise<GpuKmeansEngine> {
    const maxP = maxKmeansTilePixels(ctx, d);
    for (const v of views) if (v.count > maxP) throw new RangeError(`GpuKmeansEngine: a tile of ${v.count} pixels exceeds ${maxP}`);
    const bytes = views.reduce((s, v) => s + 4 * (d + KM_ROWS) * v.count, 0);
    const resident = bytes <= (opts.residentBytes ?? DEFAULT_RESIDENT_BYTES);
    const eng = new GpuKmeansEngine(ctx, d, views, st, resident, opts.targetPartials);
    const device = ctx.device;
    device.pushErrorScope('out-of-memory');
    if (resident) {
      for (const t of eng.tiles) {
        t.feat = eng.set.storage('features', 4 * d * t.view.count);
        t.out = eng.set.storage('assign', 4 * KM_ROWS * t.view.count);
        writeView(ctx, t.feat, t.view, d);
      }
    } else {
      const maxCount = Math.max(...views.map((v) => v.count));
      const slots = Array.from({ length: Math.min(RING, views.length) }, (_, r) => ({
        feat: eng.set.storage(`featureSlot${r}`, 4 * d * maxCount),
        out: eng.set.storage(`assignSlot${r}`, 4 * KM_ROWS * maxCount),
      }));
      eng.ring = new UploadRing(ctx, slots);
    }
    const oom = await guard(ctx, device.popErrorScope());
    if (oom) {
      await eng.release();
      throw new GpuOutOfMemoryError(`k-means features (${(bytes / 2 ** 20).toFixed(0)} MiB kept on the device; lower residentBytes)`);
    }
    return eng;
  }

  /** Partials, per-tile sums and their readback for k clusters (re-made when k changes: elbow runs; every step waits for its own work, so this is safe). */
  private sized(k: number): void {
    if (this.sizedK === k) return;
    for (const b of [this.partials, this.tileSums, this.sumsRead]) b?.destroy();
    const partials = Math.max(...this.tiles.map((t) => partialPlan(this.d, k, t.view.count, this.targetPartials).partials));
    const sums = this.tiles.length * k * entriesPerCluster(this.d);
    const device = this.ctx.device;
    this.partials = device.createBuffer({ label: 'kmeans.partials', size: align4(4 * partials), usage: GPUBufferUsage.STORAGE });
    this.tileSums = device.createBuffer({ label: 'kmeans.tileSums', size: align4(4 * sums), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    this.sumsRead = device.createBuffer({ label: 'kmeans.tileSums.readback', size: align4(4 * sums), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.sizedK = k;
  }

  async step(k: number, centres: Float64Array, active: Uint8Array, wantPixels: boolean): Promise<KmeansStepResult> {
    if (!(k >= 1 && k <= KMEANS_MAX_K)) throw new RangeError(`k = ${k}: the GPU k-means supports 1..${KMEANS_MAX_K}`);
    const { ctx, d } = this;
    const device = ctx.device;
    const m = entriesPerCluster(d);
    const aux = kmeansAux(this.st, k, centres, active);
    device.queue.writeBuffer(this.aux, 0, aux);
    const base = auxCentres(aux, d, k);
    this.sized(k);
    const nT = this.tiles.length;
    const labels = wantPixels ? new Int32Array(this.n) : undefined;
    const dist2 = wantPixels ? new Float32Array(this.n) : undefined;
    const scratch = new BufferSet(ctx, 'kmeansStep');
    const rbs: (GPUBuffer | null)[] = [];
    try {
      const encodeTile = async (encoder: GPUCommandEncoder, ti: number, feat: GPUBuffer, out: GPUBuffer): Promise<void> => {
        const P = this.tiles[ti].view.count;
        const plan = partialPlan(d, k, P, this.targetPartials);
        await encodeDispatch(ctx, encoder, kmeansAssignKernel, P, { d, k, kp: paddedK(k) }, [feat, this.aux, out], scratch.buffers);
        await encodeDispatch(ctx, encoder, kmeansPartialKernel, plan.nGroups * KM_WG, partialParams(plan), [feat, this.aux, out, this.partials!], scratch.buffers);
        await encodeDispatch(ctx, encoder, kmeansReduceKernel, k * m * KM_WG, reduceParams(plan, ti * k * m), [this.partials!, this.tileSums!], scratch.buffers);
        if (ti === nT - 1) encoder.copyBufferToBuffer(this.tileSums!, 0, this.sumsRead!, 0, align4(4 * nT * k * m));
        if (!wantPixels) {
          rbs.push(null);
          return;
        }
        const rb = scratch.readback('assign', KM_ROWS * P * 4);
        encoder.copyBufferToBuffer(out, 0, rb, 0, KM_ROWS * P * 4);
        rbs.push(rb);
      };
      if (this.resident) {
        const encoder = device.createCommandEncoder({ label: 'kmeans.step' });
        for (let ti = 0; ti < nT; ti++) await encodeTile(encoder, ti, this.tiles[ti].feat!, this.tiles[ti].out!);
        await submitChecked(ctx, encoder, 'k-means');
      } else {
        const ring = this.ring!;
        for (let ti = 0; ti < nT; ti++) {
          const slot = await ring.acquire(ti);
          writeView(ctx, slot.feat, this.tiles[ti].view, d);
          const encoder = device.createCommandEncoder({ label: 'kmeans.stepTile' });
          await encodeTile(encoder, ti, slot.feat, slot.out);
          await ring.submit(ti, encoder, 'k-means');
        }
      }
      // One map for every tile's sums; float64 across tiles, in tile order.
      const tileSums = await readFloat32(ctx, this.sumsRead!, nT * k * m);
      const sums = new Float64Array(k * m);
      for (let ti = 0; ti < nT; ti++) for (let q = 0; q < k * m; q++) sums[q] += tileSums[ti * k * m + q];
      if (labels && dist2) {
        for (let ti = 0; ti < nT; ti++) {
          const t = this.tiles[ti];
          const P = t.view.count;
          const rows = await readFloat32(ctx, rbs[ti]!, KM_ROWS * P);
          for (let i = 0; i < P; i++) labels[t.start + i] = rows[KM_ROW_LABEL * P + i];
          dist2.set(rows.subarray(KM_ROW_DIST2 * P, KM_ROW_DIST2 * P + P), t.start);
        }
      }
      return { sums, base, labels, dist2 };
    } finally {
      await scratch.release();
    }
  }

  pixel(p: number, z: Float64Array): boolean {
    const { view, i } = locatePixel(this.views, p);
    return standardizedPixel(view, i, this.d, this.st, z);
  }

  async release(): Promise<void> {
    try {
      await this.set.release();
    } finally {
      for (const b of [this.partials, this.tileSums, this.sumsRead]) b?.destroy();
      this.partials = this.tileSums = this.sumsRead = null;
      this.sizedK = 0;
    }
  }
}

/**
 * One assignment over a single tile on the GPU (for the PixelStep): rows f32[KM_ROWS][P]
 * (label as float, -1 excluded; squared distance, NaN excluded).
 */
export async function kmeansAssignGpu(
  ctx: GpuContext, cube: Float32Array, P: number, st: Standardization, k: number, centres: Float64Array, active: Uint8Array,
): Promise<Float32Array> {
  const d = st.shift.length;
  const set = new BufferSet(ctx, 'kmeansAssign');
  try {
    const device = ctx.device;
    device.pushErrorScope('out-of-memory');
    const feat = set.upload('features', cube.subarray(0, d * P));
    const aux = set.upload('aux', kmeansAux(st, k, centres, active));
    const out = set.storage('assign', KM_ROWS * P * 4);
    const read = set.readback('assign', KM_ROWS * P * 4);
    const oom = await guard(ctx, device.popErrorScope());
    if (oom) throw new GpuOutOfMemoryError(`a k-means tile of ${P} pixels`);
    const encoder = device.createCommandEncoder({ label: 'kmeansAssign.encoder' });
    await encodeDispatch(ctx, encoder, kmeansAssignKernel, P, { d, k, kp: paddedK(k) }, [feat, aux, out], set.buffers);
    encoder.copyBufferToBuffer(out, 0, read, 0, KM_ROWS * P * 4);
    await submitChecked(ctx, encoder, 'kmeans_assign');
    return await readFloat32(ctx, read, KM_ROWS * P);
  } finally {
    await set.release();
  }
}
