/**
 * GPU wrappers of shaders/pca_mask.wgsl, pca_cov.wgsl and pca_project.wgsl (CPU twins:
 * src/cpu/pca.ts). One call handles one tile of spectra, energy-major f32[d][P]:
 *  - pcaGramGpu: upload, mask, per-workgroup Gram partial sums, readback, and the sum of
 *    the partials in float64 on the host -> the tile's augmented Gram matrix;
 *  - pcaProjectGpu: scores on the first n components and the reconstruction error.
 */
import type { GpuContext } from '../gpu/device.js';
import { guard } from '../gpu/device.js';
import { BufferSet, readFloat32 } from '../gpu/buffers.js';
import { encodeDispatch, type KernelDef } from '../gpu/kernel.js';
import { GpuOutOfMemoryError } from '../gpu/buffers.js';
import { PCA_MAX_ABS, type PcaModel } from '../cpu/pca.js';
import maskWgsl from '../../shaders/pca_mask.wgsl';
import covWgsl from '../../shaders/pca_cov.wgsl';
import projectWgsl from '../../shaders/pca_project.wgsl';

/** Invocations per workgroup of pca_cov (the shader's slice arithmetic assumes it). */
export const COV_WG = 256;
/** Values of one block's rows staged per batch (tb rows x batch pixels). */
export const COV_TILE = 1024;
/** Batches summed into a middle accumulator before it joins the outer sum. */
export const MID_BATCHES = 16;
/** Largest n for pca_project (size of its private score array). */
export const PCA_MAX_COMPONENTS = 32;
/**
 * Target number of float32 partials one tile's covariance pass reads back: bounds the
 * readback and the host's float64 additions per tile, while leaving enough workgroups to
 * fill a large GPU (2^20 partials = 4 MiB; at d = 101 that is ~146 chunks x 28 block pairs).
 */
export const COV_TARGET_PARTIALS = 1 << 20;

export const pcaMaskKernel: KernelDef = {
  name: 'pca_mask',
  wgsl: maskWgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'cube', kind: 'read-only-storage' },
    { name: 'mask', kind: 'storage' },
  ],
  params: [['d', 'u32'], ['max_abs', 'f32']],
};

export const pcaCovKernel: KernelDef = {
  name: 'pca_cov',
  wgsl: covWgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'cube', kind: 'read-only-storage' },
    { name: 'mask', kind: 'read-only-storage' },
    { name: 'centre', kind: 'read-only-storage' },
    { name: 'partials', kind: 'storage' },
  ],
  params: [
    ['d', 'u32'], ['n_pixels', 'u32'], ['tb', 'u32'], ['nb', 'u32'], ['n_pairs', 'u32'],
    ['batch', 'u32'], ['chunk', 'u32'], ['n_groups', 'u32'],
  ],
  // Padded rows: tb rows of batch + 1 values, tb <= 16.
  constants: { COV_WG, COV_TILE, COV_TILE_PADDED: COV_TILE + 16, MID_BATCHES },
  workgroupSize: COV_WG,
};

export const pcaProjectKernel: KernelDef = {
  name: 'pca_project',
  wgsl: projectWgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'cube', kind: 'read-only-storage' },
    { name: 'basis', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
  ],
  params: [['d', 'u32'], ['n_comp', 'u32'], ['max_abs', 'f32']],
  constants: { PCA_MAX_COMPONENTS },
};

/** How the covariance pass cuts one tile of P pixels with d values each. */
export interface CovPlan {
  d: number;
  P: number;
  /** Rows per block (4, 8 or 16) and number of blocks over the d + 1 augmented rows. */
  tb: number;
  nb: number;
  nPairs: number;
  /** Pixels staged per batch, pixels per workgroup (a multiple of batch), chunks. */
  batch: number;
  chunk: number;
  nChunks: number;
  nGroups: number;
  /** Float32 partials read back: nGroups * tb * tb. */
  partials: number;
}

/**
 * The cut of one tile. `targetPartials` bounds the partials read back (tests lower it to force
 * long chunks, so the blocked float32 sums run through many batches).
 */
export function covPlan(d: number, P: number, targetPartials = COV_TARGET_PARTIALS): CovPlan {
  const m = d + 1;
  const tb = m <= 4 ? 4 : m <= 8 ? 8 : 16;
  const nb = Math.ceil(m / tb);
  const nPairs = (nb * (nb + 1)) / 2;
  const batch = COV_TILE / tb;
  const perChunk = nPairs * tb * tb;
  const maxChunks = Math.max(1, Math.floor(targetPartials / perChunk));
  const minChunk = Math.ceil(Math.max(1, P) / maxChunks);
  const chunk = Math.max(batch, Math.ceil(minChunk / batch) * batch);
  const nChunks = Math.max(1, Math.ceil(P / chunk));
  const nGroups = nChunks * nPairs;
  return { d, P, tb, nb, nPairs, batch, chunk, nChunks, nGroups, partials: nGroups * tb * tb };
}

/** Adds the float32 partials of a covariance pass into a (d+1)^2 float64 Gram matrix. */
export function reduceCovPartials(plan: CovPlan, partials: Float32Array, G: Float64Array): void {
  const m = plan.d + 1;
  const { tb, nb, nPairs } = plan;
  const tt = tb * tb;
  const pairs: [number, number][] = [];
  for (let bi = 0; bi < nb; bi++) for (let bj = bi; bj < nb; bj++) pairs.push([bi, bj]);
  // Sum over chunks first (per pair and entry), then scatter once.
  const acc = new Float64Array(nPairs * tt);
  for (let c = 0; c < plan.nChunks; c++) {
    const base = c * nPairs * tt;
    for (let q = 0; q < nPairs * tt; q++) acc[q] += partials[base + q];
  }
  pairs.forEach(([bi, bj], q) => {
    for (let i = 0; i < tb; i++) {
      const r = bi * tb + i;
      if (r >= m) break;
      for (let j = 0; j < tb; j++) {
        const col = bj * tb + j;
        if (col >= m) break;
        if (bi === bj && col < r) continue; // the lower half of a diagonal block is a mirror
        const v = acc[q * tt + i * tb + j];
        G[r * m + col] += v;
        if (r !== col) G[col * m + r] += v;
      }
    }
  });
}

/** Bytes the covariance pass needs on the GPU per pixel: cube copy and mask (plus partials per tile). */
export function covGpuBytesPerPixel(d: number): number {
  return 4 * d + 4;
}

/**
 * The augmented Gram matrix of one tile (see pcaGramCpu), computed on the GPU: float32
 * partial sums per workgroup, added in float64 here. `cube` is f32[d][P].
 */
export async function pcaGramGpu(
  ctx: GpuContext, cube: Float32Array, P: number, d: number, centre: Float64Array, opts: { targetPartials?: number } = {},
): Promise<Float64Array> {
  const plan = covPlan(d, P, opts.targetPartials);
  const set = new BufferSet(ctx, 'pcaCov');
  try {
    const device = ctx.device;
    device.pushErrorScope('out-of-memory');
    const cubeBuf = set.upload('cube', cube.subarray(0, d * P));
    const maskBuf = set.storage('mask', P * 4);
    const centreBuf = set.upload('centre', Float32Array.from(centre));
    const partBuf = set.storage('partials', plan.partials * 4);
    const partRead = set.readback('partials', plan.partials * 4);
    const oom = await guard(ctx, device.popErrorScope());
    if (oom) throw new GpuOutOfMemoryError(`a PCA tile of ${P} pixels x ${d} values`);
    const encoder = device.createCommandEncoder({ label: 'pcaCov.encoder' });
    await encodeDispatch(ctx, encoder, pcaMaskKernel, P, { d, max_abs: PCA_MAX_ABS }, [cubeBuf, maskBuf], set.buffers);
    await encodeDispatch(ctx, encoder, pcaCovKernel, plan.nGroups * COV_WG, covParams(plan), [cubeBuf, maskBuf, centreBuf, partBuf], set.buffers);
    encoder.copyBufferToBuffer(partBuf, 0, partRead, 0, plan.partials * 4);
    device.pushErrorScope('validation');
    device.queue.submit([encoder.finish()]);
    const invalid = await guard(ctx, device.popErrorScope());
    if (invalid) throw new Error(`GPU validation error in pca_cov: ${invalid.message}`);
    const partials = await readFloat32(ctx, partRead, plan.partials);
    const G = new Float64Array((d + 1) * (d + 1));
    reduceCovPartials(plan, partials, G);
    return G;
  } finally {
    await set.release();
  }
}

export function covParams(plan: CovPlan): Record<string, number> {
  return {
    d: plan.d, n_pixels: plan.P, tb: plan.tb, nb: plan.nb, n_pairs: plan.nPairs,
    batch: plan.batch, chunk: plan.chunk, n_groups: plan.nGroups,
  };
}

/** mean, then the first n components, as float32 for pca_project. */
export function projectBasis(model: PcaModel, n: number): Float32Array {
  const { d } = model;
  const basis = new Float32Array(d + n * d);
  basis.set(model.mean, 0);
  for (let k = 0; k < n; k++) for (let e = 0; e < d; e++) basis[d + k * d + e] = model.components[k * d + e];
  return basis;
}

/**
 * Scores on the first n components (rows 0..n-1) and the RMS reconstruction error (row n)
 * of one tile on the GPU: f32[n + 1][P], NaN for pixels with a non-finite value.
 */
export async function pcaProjectGpu(ctx: GpuContext, cube: Float32Array, P: number, model: PcaModel, n: number): Promise<Float32Array> {
  if (!(Number.isInteger(n) && n >= 0 && n <= PCA_MAX_COMPONENTS && n <= model.d)) {
    throw new RangeError(`pcaProjectGpu: n = ${n} components, expected 0..${Math.min(PCA_MAX_COMPONENTS, model.d)}`);
  }
  const d = model.d;
  const rows = n + 1;
  const set = new BufferSet(ctx, 'pcaProject');
  try {
    const device = ctx.device;
    device.pushErrorScope('out-of-memory');
    const cubeBuf = set.upload('cube', cube.subarray(0, d * P));
    const basisBuf = set.upload('basis', projectBasis(model, n));
    const outBuf = set.storage('out', rows * P * 4);
    const outRead = set.readback('out', rows * P * 4);
    const oom = await guard(ctx, device.popErrorScope());
    if (oom) throw new GpuOutOfMemoryError(`a PCA projection tile of ${P} pixels`);
    const encoder = device.createCommandEncoder({ label: 'pcaProject.encoder' });
    await encodeDispatch(ctx, encoder, pcaProjectKernel, P, { d, n_comp: n, max_abs: PCA_MAX_ABS }, [cubeBuf, basisBuf, outBuf], set.buffers);
    encoder.copyBufferToBuffer(outBuf, 0, outRead, 0, rows * P * 4);
    device.pushErrorScope('validation');
    device.queue.submit([encoder.finish()]);
    const invalid = await guard(ctx, device.popErrorScope());
    if (invalid) throw new Error(`GPU validation error in pca_project: ${invalid.message}`);
    return await readFloat32(ctx, outRead, rows * P);
  } finally {
    await set.release();
  }
}
