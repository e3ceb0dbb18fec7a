/**
 * GPU wrappers of shaders/pca_mask.wgsl, pca_cov.wgsl, pca_reduce.wgsl and pca_project.wgsl
 * (CPU twins: src/cpu/pca.ts), energy-major tiles f32[d][P]:
 *  - GpuGramAccumulator: the covariance pass over many tiles with persistent buffers, mask +
 *    tiled A^T A + on-device reduction per tile, and ONE readback of all the tiles' Gram
 *    matrices (every GRAM_FLUSH_TILES tiles at most, sooner at the start: GRAM_FIRST_TILES),
 *    added in float64 on the host. On a GPU (pca_mask, pca_cov): two upload slots
 *    (UploadRing, src/gpu/ring.ts), so tile i + 1 is queued while tile i computes; the host
 *    waits only to keep two tiles staged. On a CPU-emulated adapter (direct mode:
 *    pca_mask_direct, pca_cov_direct): the tile goes into one texture, in pieces of at most
 *    COV_DIRECT_SLOT_BYTES, each read back and checked: without the mask while every pixel
 *    is usable (see addDirect); textures and buffers kept by the device between passes;
 *  - pcaGramGpu: the same for one tile;
 *  - pcaProjectGpu: scores on the first n components and the reconstruction error.
 */
import type { GpuContext } from '../gpu/device.js';
import { guard } from '../gpu/device.js';
import { UploadRing, submitChecked } from '../gpu/ring.js';
import { BufferSet, readFloat32, writeFloat32 } from '../gpu/buffers.js';
import { encodeDispatch, type BindingResource, type KernelDef } from '../gpu/kernel.js';
import { GpuOutOfMemoryError } from '../gpu/buffers.js';
import { PCA_MAX_ABS, type PcaModel } from '../cpu/pca.js';
import maskWgsl from '../../shaders/pca_mask.wgsl';
import covWgsl from '../../shaders/pca_cov.wgsl';
import covDirectWgsl from '../../shaders/pca_cov_direct.wgsl';
import maskDirectWgsl from '../../shaders/pca_mask_direct.wgsl';
import reduceWgsl from '../../shaders/pca_reduce.wgsl';
import projectWgsl from '../../shaders/pca_project.wgsl';

/** Invocations per workgroup of pca_cov. */
export const COV_WG = 256;
/** Floats of one staged panel (mp rows x panel pixels) in workgroup memory: 12 KiB. */
export const COV_PANEL = 3072;
/** Panels per chunk (bounds the float32 chunk sums; also sets the workgroup count). */
export const COV_PANELS_PER_CHUNK = 64;
/** Largest n for pca_project (size of its private score array). */
export const PCA_MAX_COMPONENTS = 32;
/**
 * Target number of float32 partials per tile (bounds the partials buffer: 2^22 = 16 MiB);
 * the chunks grow past COV_PANELS_PER_CHUNK panels when a tile is larger.
 */
export const COV_TARGET_PARTIALS = 1 << 22;
/**
 * Direct mode without the mask: a piece counts as free of unusable pixels when each diagonal
 * entry is below this fraction of (PCA_MAX_ABS - |centre|)^2 (see addClean; a float32 value
 * centred and squared loses far less than this factor of 4 to rounding).
 */
export const CLEAN_DIAG_FRACTION = 0.25;
/** Tiles whose Gram matrices are kept on the device before one readback. */
export const GRAM_FLUSH_TILES = 256;
/**
 * Room for the first GRAM_FIRST_TILES tiles' Gram matrices, doubled at each readback up to
 * GRAM_FLUSH_TILES: a run of one tile does not make (and zero) 2 x 5.75 MB at d = 101 (7 ms
 * of CPU on llvmpipe, measured), a long run reads back a few more times at its start.
 */
export const GRAM_FIRST_TILES = 16;

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
    ['d', 'u32'], ['n_pixels', 'u32'], ['nt', 'u32'], ['n_tiles', 'u32'], ['tpg', 'u32'], ['n_tgroups', 'u32'],
    ['slices', 'u32'], ['panel', 'u32'], ['chunk', 'u32'], ['n_groups', 'u32'],
  ],
  constants: { COV_WG, COV_PANEL },
  workgroupSize: COV_WG,
};

/**
 * Direct mode (pca_cov_direct.wgsl, pca_mask_direct.wgsl): the tile is a texture of
 * rgba32float texels, 4 consecutive pixels of one energy each, TEX_W texels per texture row
 * (a multiple of COV_TEX_W, which is within 4096, the smallest maxTextureDimension2D a
 * WebGPU device may have; see directLayout: 8064 at d = 101 on llvmpipe, so that the rows of
 * one energy are one texture row and the upload is one writeTexture, with the energies
 * 126 KiB apart as with two rows of 4032), rpe rows per energy. 4032 = 63 x 64, not 4096:
 * with rows of 4096 texels (64 KiB) the rows of a block lie a power of two apart and
 * their fetches contend for the same cache sets; 4032 texels
 * (rows 63 KiB apart, bytesPerRow still a multiple of 256) cost a division by a constant
 * per texel and gave 122-142 ms of pass CPU time against 136-161 ms (medians 156-179
 * against 173-205; llvmpipe, 100k x 101, three alternating runs of 10 passes, load 1.1-1.2).
 * The same effect shows in rows per energy: 7 (one piece of 100k pixels, 51 MB) took
 * 112-117 ms, 8 took 138-143 ms (same process, alternating); the 16 MiB texture keeps 2.
 * Re-measured (same process, variants alternating, 5 rounds of 3 passes, load 1.1): one
 * piece with 7 rows per energy 105-108 ms (median; 8 rows 113-114), four pieces with the
 * same 7-row spacing 118 ms, the 16 MiB texture's four pieces of 2 rows 114-118 ms: most of
 * the one-piece gain comes from the number of pieces, and the width does not buy it back
 * within 16 MiB (4080 = 16 x 255, 4048, 3984 texels at 2 rows per energy: no gain beyond
 * the noise; 1152 texels, 7 rows per energy, pieces as now: 10-20 % slower, separate process).
 */
export const COV_TEX_W = 4032;

/**
 * pca_cov's shape for CPU-emulated adapters (llvmpipe): DQ x DQ 4 x 4 tiles of G per
 * invocation (16 x 16 for DQ = 4), read from textures (see the shader header); one pipeline per DQ.
 */
function covDirectKernel(c: { rq: number; cq: number; diag: boolean }, masked: boolean, texW: number): KernelDef {
  return {
    name: 'pca_cov_direct',
    wgsl: covDirectWgsl,
    bindings: [
      { name: 'params', kind: 'uniform' },
      { name: 'cube', kind: 'read-texture' },
      { name: 'mask', kind: 'read-texture' },
      { name: 'centre', kind: 'read-only-storage' },
      { name: 'partials', kind: 'storage' },
      { name: 'blocks', kind: 'read-only-storage' },
    ],
    params: [['d', 'u32'], ['n_texels', 'u32'], ['nt', 'u32'], ['n_blocks', 'u32'], ['block_offset', 'u32'], ['entries', 'u32'], ['chunk', 'u32'], ['n_chunks', 'u32'], ['rpe', 'u32']],
    constants: { RQ: c.rq, CQ: c.cq, DIAG: c.diag ? 1 : 0, TEX_W: texW, MASKED: masked ? 1 : 0 },
    workgroupSize: COV_DIRECT_WG,
  };
}
/**
 * Invocations per workgroup of pca_cov_direct: 8, one AVX2 vector of llvmpipe, so even the
 * smallest class's dispatch (the last diagonal block: one invocation per chunk) spreads over
 * the CPU threads.
 */
const COV_DIRECT_WG = 8;
/** pca_cov_direct's kernels by block class and mask (made once each). */
const covDirectKernels = new Map<string, KernelDef>();
function covDirectKernelOf(c: DirectBlockClass, masked: boolean, texW: number): KernelDef {
  const key = `${c.rq},${c.cq},${c.diag},${masked},${texW}`;
  let k = covDirectKernels.get(key);
  if (!k) covDirectKernels.set(key, (k = covDirectKernel(c, masked, texW)));
  return k;
}

/**
 * A class of pca_cov_direct's blocks, one dispatch and one pipeline each: rq x cq 4 x 4 tiles
 * (rows x columns quarters), diagonal or not, and the first tile row and column of each block.
 * The triangle of G's nt x nt tiles is cut into blocks of Q = directQuarters(nt) tiles a side
 * and the rest (nt % Q tiles): full off-diagonal blocks, off-diagonal blocks of the last
 * column (cq = nt % Q: no zero-padded columns), full diagonal blocks and the last diagonal
 * one. A diagonal block reads its rows once (its columns are the same values) and adds only
 * the tiles on and above the diagonal. At d = 101 (nt = 26): 15 + 6 + 6 + 1 blocks, 351 of
 * the 448 4 x 4 products per texel of 28 square 16 x 16 blocks, 182 of 224 texel fetches.
 */
export interface DirectBlockClass {
  rq: number;
  cq: number;
  diag: boolean;
  blocks: [number, number][];
}

export function directBlockClasses(nt: number): DirectBlockClass[] {
  const Q = directQuarters(nt);
  const nf = Math.floor(nt / Q);
  const rem = nt - nf * Q;
  const full: DirectBlockClass = { rq: Q, cq: Q, diag: false, blocks: [] };
  const lastCol: DirectBlockClass = { rq: Q, cq: rem, diag: false, blocks: [] };
  const diag: DirectBlockClass = { rq: Q, cq: Q, diag: true, blocks: [] };
  const lastDiag: DirectBlockClass = { rq: rem, cq: rem, diag: true, blocks: [] };
  for (let i = 0; i < nf; i++) {
    diag.blocks.push([Q * i, Q * i]);
    for (let j = i + 1; j < nf; j++) full.blocks.push([Q * i, Q * j]);
    if (rem > 0) lastCol.blocks.push([Q * i, Q * nf]);
  }
  if (rem > 0) lastDiag.blocks.push([Q * nf, Q * nf]);
  return [full, lastCol, diag, lastDiag].filter((c) => c.blocks.length > 0);
}

/** pca_mask's rule on the direct mode's texture of texW texels a row: one invocation per texel (4 pixels); made once per width. */
const maskDirectKernels = new Map<number, KernelDef>();
export function pcaMaskDirectKernel(texW: number): KernelDef {
  let k = maskDirectKernels.get(texW);
  if (!k) {
    maskDirectKernels.set(texW, (k = {
      name: 'pca_mask_direct',
      wgsl: maskDirectWgsl,
      bindings: [
        { name: 'params', kind: 'uniform' },
        { name: 'cube', kind: 'read-texture' },
        { name: 'mask', kind: 'write-texture' },
      ],
      params: [['d', 'u32'], ['n_pixels', 'u32'], ['rpe', 'u32'], ['max_abs', 'f32']],
      constants: { TEX_W: texW },
    }));
  }
  return k;
}

/**
 * Direct mode: 4 x 4 tiles per block side (DQ): 4 (16 x 16 blocks) once G has 4 tiles per
 * side, else the smallest of 1 and 2 that covers it, so small d does no padded work (d = 3
 * in a 16 x 16 block would do 16x the multiply-adds).
 */
export function directQuarters(nt: number): number {
  return nt >= 4 ? 4 : nt >= 2 ? 2 : 1;
}

export const pcaReduceKernel: KernelDef = {
  name: 'pca_reduce',
  wgsl: reduceWgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'partials', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
  ],
  params: [['n_entries', 'u32'], ['n_chunks', 'u32'], ['out_offset', 'u32']],
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
  /** 4 x 4 tiles per side (mp = 4 nt padded rows >= d + 1) and tiles of the upper triangle. */
  nt: number;
  nTiles: number;
  /** Tiles per workgroup (tile group), tile groups, slices of the panel per tile. */
  tpg: number;
  nTgroups: number;
  slices: number;
  /** Pixels per staged panel (direct mode: the 4 pixels of a texel), pixels per workgroup (a multiple of panel), chunks. */
  panel: number;
  chunk: number;
  nChunks: number;
  nGroups: number;
  /** Float32 partials: nChunks * nTiles * 16 (summed on the device). */
  partials: number;
  /** Floats of the tile's reduced Gram tiles: nTiles * 16. */
  entries: number;
  /** Direct mode: pca_cov_direct.wgsl (for CPU-emulated adapters), not pca_cov. */
  direct: boolean;
  /** Direct mode: 4 x 4 tiles per block side (dq), blocks per side (ntb) and in the upper triangle (nBig); 0 otherwise. */
  dq: number;
  ntb: number;
  nBig: number;
}

/**
 * Direct mode: pixels per invocation (one chunk) at least, a multiple of the 4 pixels of a
 * texel; 2048 keeps ~50 chunks x 28 blocks = 1.4k invocations for 100k pixels at d = 101
 * (enough for every CPU thread) and bounds each float32 sum to 512 dot products of 4 pixels.
 */
export const COV_DIRECT_CHUNK = 2048;

/**
 * The cut of one tile. `targetPartials` bounds the partials (tests set 1 to force one chunk,
 * so the float32 sums run through every panel of the tile).
 */
export function covPlan(d: number, P: number, targetPartials = COV_TARGET_PARTIALS, direct = false): CovPlan {
  const nt = Math.ceil((d + 1) / 4);
  const mp = 4 * nt;
  if (mp > COV_PANEL) throw new RangeError(`pca_cov: ${d} energies exceed ${COV_PANEL - 1}`);
  const nTiles = (nt * (nt + 1)) / 2;
  const entries = nTiles * 16;
  const minChunk = Math.ceil((Math.max(1, P) * entries) / Math.max(1, targetPartials));
  if (direct) {
    const dq = directQuarters(nt);
    const ntb = Math.ceil(nt / dq);
    const nBig = (ntb * (ntb + 1)) / 2;
    const chunk = Math.max(COV_DIRECT_CHUNK, Math.ceil(minChunk / 4) * 4);
    const nChunks = Math.max(1, Math.ceil(P / chunk));
    return {
      d, P, nt, nTiles, tpg: 1, nTgroups: 1, slices: 1, panel: 4, chunk, nChunks,
      nGroups: Math.ceil((nChunks * nBig) / COV_DIRECT_WG),
      partials: nChunks * entries, entries, direct, dq, ntb, nBig,
    };
  }
  const nTgroups = Math.ceil(nTiles / COV_WG);
  const tpg = Math.ceil(nTiles / nTgroups);
  const slices = Math.max(1, Math.floor(COV_WG / tpg));
  const panel = Math.floor(COV_PANEL / mp);
  const chunk = Math.max(panel * COV_PANELS_PER_CHUNK, Math.ceil(minChunk / panel) * panel);
  const nChunks = Math.max(1, Math.ceil(P / chunk));
  return { d, P, nt, nTiles, tpg, nTgroups, slices, panel, chunk, nChunks, nGroups: nChunks * nTgroups, partials: nChunks * entries, entries, direct, dq: 0, ntb: 0, nBig: 0 };
}

export function covParams(plan: CovPlan): Record<string, number> {
  return {
    d: plan.d, n_pixels: plan.P, nt: plan.nt, n_tiles: plan.nTiles, tpg: plan.tpg, n_tgroups: plan.nTgroups,
    slices: plan.slices, panel: plan.panel, chunk: plan.chunk, n_groups: plan.nGroups,
  };
}

/** Encodes the covariance kernel of the plan (pca_cov, or pca_cov_direct in direct mode with its rpe). */
async function encodeCov(ctx: GpuContext, encoder: GPUCommandEncoder, plan: CovPlan, resources: BindingResource[], owned: GPUBuffer[]): Promise<void> {
  await encodeDispatch(ctx, encoder, pcaCovKernel, plan.nGroups * COV_WG, covParams(plan), resources, owned);
}

/** Encodes pca_cov_direct of the plan: one dispatch per block class of dt (cube, mask, centre, partials, blocks). */
async function encodeCovDirect(ctx: GpuContext, encoder: GPUCommandEncoder, plan: CovPlan, dt: DirectTextures, resources: BindingResource[], owned: GPUBuffer[], masked: boolean): Promise<void> {
  let offset = 0;
  for (const c of dt.classes) {
    const n = c.blocks.length;
    const params = { d: plan.d, n_texels: Math.ceil(plan.P / 4), nt: plan.nt, n_blocks: n, block_offset: offset, entries: plan.entries, chunk: plan.chunk / 4, n_chunks: plan.nChunks, rpe: dt.rpe };
    await encodeDispatch(ctx, encoder, covDirectKernelOf(c, masked, dt.texW), plan.nChunks * n, params, [...resources, dt.blocks], owned);
    offset += n;
  }
}

/** Adds one tile's reduced Gram tiles (float32, nTiles x 16) into a (d+1)^2 float64 Gram matrix. */
export function addGramTiles(d: number, tiles: Float32Array, offset: number, G: Float64Array): void {
  const m = d + 1;
  const nt = Math.ceil(m / 4);
  let q = 0;
  for (let bi = 0; bi < nt; bi++) {
    for (let bj = bi; bj < nt; bj++, q++) {
      for (let i = 0; i < 4; i++) {
        const r = 4 * bi + i;
        if (r >= m) break;
        for (let j = 0; j < 4; j++) {
          const c = 4 * bj + j;
          if (c >= m) break;
          if (c < r) continue; // the lower half of a diagonal tile is a mirror
          const v = tiles[offset + q * 16 + i * 4 + j];
          G[r * m + c] += v;
          if (r !== c) G[c * m + r] += v;
        }
      }
    }
  }
}

/** Bytes the covariance pass needs on the GPU per pixel: two cube slots and the mask (plus partials per tile). */
export function covGpuBytesPerPixel(d: number): number {
  return 8 * d + 4;
}

/**
 * Direct mode: bytes of the upload texture at most (unless one texture row per energy is
 * more); a larger tile runs in pieces. Fresh pages cost the driver more than the pieces do:
 * making one 51 MB texture (100k pixels x 112 rows) took 50 ms of CPU on llvmpipe
 * (allocation, page faults, Dawn's zero-fill), a quarter of the pass; on a large tile the
 * texture would also take host memory the tile plan does not count (llvmpipe's GPU memory
 * is the host's). A 64 MiB cap does not pay where the set is made once per run (xanes pca,
 * one covariance pass per process): 100k x 101 with the set made in every pass took 239 ms
 * of pass CPU time as one 51 MB piece against 145 ms as four 16 MiB pieces, while with the
 * set kept it saves ~10 ms per 100k pixels (111 against 122 ms; same process, alternating,
 * load 1.1), so it would break even only near 10^6 pixels per pass.
 */
export const COV_DIRECT_SLOT_BYTES = 16 << 20;

/**
 * Direct mode's textures (see pca_cov_direct.wgsl): the upload texture of `rows` energy rows
 * (d, then the constant augmented row, then zero rows up to the block size), rpe texture
 * rows per energy, and the mask; tiles larger than `subP` pixels run in pieces. One upload
 * texture, not two: the direct mode serves CPU-emulated adapters, where Dawn's OpenGL
 * backend runs each submit to completion before it returns (add() returns with its work
 * done, measured), so a second slot overlaps nothing and its pages cost ~15 ms per 100k
 * pixels to make. With them the partial sums, one piece's reduced Gram tiles and their
 * readback buffer. The set outlives its accumulator: the device keeps one (directSets) for
 * the next pass of the same d, so a run's passes (and a benchmark's repeats) do not make
 * and zero-fill them again (7-17 ms per pass on llvmpipe, measured); it is at most
 * COV_DIRECT_SLOT_BYTES of texture (and as much of upload staging buffer once a tile in
 * shared memory came, see uploadDirect) plus the small buffers, and goes with the device.
 */
interface DirectTextures {
  d: number;
  rows: number;
  rpe: number;
  /** Texels per texture row (TEX_W of the shaders; see directLayout). */
  texW: number;
  subP: number;
  cube: GPUTexture;
  mask: GPUTexture;
  partials: GPUBuffer;
  /** The upload staging buffer for tiles in shared memory (d energies x rpe texture rows, mapped for writing); made when first needed. */
  staging: GPUBuffer | null;
  /** pca_cov_direct's block classes and every block's first tile row and column (u32 pairs, class after class). */
  classes: DirectBlockClass[];
  blocks: GPUBuffer;
  /** One piece's reduced Gram tiles (entries floats) and their readback. */
  results: GPUBuffer;
  resultsRead: GPUBuffer;
}

/** The one idle direct-mode set each device keeps (see DirectTextures); taken while in use. */
const directSets = new WeakMap<GPUDevice, DirectTextures>();

function destroyDirect(dt: DirectTextures): void {
  dt.cube.destroy();
  dt.mask.destroy();
  dt.partials.destroy();
  dt.results.destroy();
  dt.resultsRead.destroy();
  dt.blocks.destroy();
  dt.staging?.destroy();
}

/**
 * Direct mode's texture layout for d energies and tiles of up to maxP pixels on a device
 * whose textures have at most maxDim texels a side: rows (d + 1 padded to the block size),
 * texels per texture row (texW: the largest multiple of COV_TEX_W within maxDim whose `rows`
 * rows fit in COV_DIRECT_SLOT_BYTES, COV_TEX_W at least), texture rows per energy (rpe) and
 * pixels per piece (subP). Wide rows make rpe = 1 at d = 101 (texW = 8064 where textures
 * may be 8064 texels wide: llvmpipe allows 16384, getGpu asks for the adapter's limit), so a
 * piece is one texture row per energy and a tile in ordinary memory goes into the texture in
 * one writeTexture call with the tile's own row pitch (see uploadDirect).
 */
export function directLayout(d: number, maxP: number, maxDim: number): { rows: number; rpe: number; texW: number; subP: number } {
  const nt = Math.ceil((d + 1) / 4);
  const dq = directQuarters(nt);
  const rows = 4 * dq * Math.ceil(nt / dq);
  const texW = COV_TEX_W * Math.max(1, Math.min(Math.floor(maxDim / COV_TEX_W), Math.floor(COV_DIRECT_SLOT_BYTES / (16 * COV_TEX_W * rows))));
  const rowBytes = 16 * texW * rows;
  const rpe = Math.max(1, Math.min(Math.floor(maxDim / rows), Math.floor(COV_DIRECT_SLOT_BYTES / rowBytes), Math.ceil(Math.ceil(maxP / 4) / texW)));
  return { rows, rpe, texW, subP: Math.min(maxP, 4 * texW * rpe) };
}

/**
 * A direct-mode set for d energies and tiles of up to maxP pixels: the device's idle one when
 * it fits (same d, at least as many texture rows per energy, room for the partials), else a
 * new one. Returned to the device by putDirect.
 */
function takeDirect(ctx: GpuContext, d: number, maxP: number, targetPartials: number | undefined): DirectTextures {
  const device = ctx.device;
  const need = directLayout(d, maxP, device.limits.maxTextureDimension2D);
  const idle = directSets.get(device);
  if (idle) {
    directSets.delete(device);
    const subP = Math.min(maxP, 4 * idle.texW * idle.rpe);
    if (idle.d === d && idle.texW === need.texW && idle.rpe >= need.rpe && idle.partials.size >= 4 * covPlan(d, subP, targetPartials, true).partials) {
      return { ...idle, subP };
    }
    destroyDirect(idle);
  }
  return directTextures(ctx, d, need, targetPartials);
}

/** Keeps `dt` as the device's idle set (its work is done), destroying the one kept before. */
function putDirect(ctx: GpuContext, dt: DirectTextures): void {
  const old = directSets.get(ctx.device);
  if (old) destroyDirect(old);
  if (ctx.lostReason) {
    destroyDirect(dt);
    return;
  }
  directSets.set(ctx.device, dt);
}

function directTextures(ctx: GpuContext, d: number, layout: { rows: number; rpe: number; texW: number; subP: number }, targetPartials: number | undefined): DirectTextures {
  const { rows, rpe, texW, subP } = layout;
  const device = ctx.device;
  const cube = device.createTexture({
    label: 'pcaGram.cube', size: [texW, rows * rpe], format: 'rgba32float', usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
  });
  // Rows d..rows-1 never change: the augmented row (1; the mask zeroes excluded pixels) and zero padding.
  const constRows = new Float32Array(4 * texW * rpe * (rows - d));
  constRows.fill(1, 0, 4 * texW * rpe);
  device.queue.writeTexture({ texture: cube, origin: [0, d * rpe] }, constRows, { bytesPerRow: 16 * texW }, [texW, (rows - d) * rpe]);
  const mask = device.createTexture({
    label: 'pcaGram.mask', size: [texW, rpe], format: 'rgba32float', usage: GPUTextureUsage.STORAGE_BINDING,
  });
  const plan = covPlan(d, subP, targetPartials, true);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  const partials = device.createBuffer({ label: 'pcaGram.partials', size: 4 * plan.partials, usage });
  const results = device.createBuffer({ label: 'pcaGram.gramTiles', size: 4 * plan.entries, usage });
  const resultsRead = device.createBuffer({ label: 'pcaGram.gramTiles.readback', size: 4 * plan.entries, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const classes = directBlockClasses(plan.nt);
  const coords = Uint32Array.from(classes.flatMap((c) => c.blocks.flat()));
  const blocks = device.createBuffer({ label: 'pcaGram.blocks', size: coords.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(blocks, 0, coords);
  return { d, rows, rpe, texW, subP, cube, mask, partials, classes, blocks, results, resultsRead, staging: null };
}

/**
 * Writes pixels [p0, p0 + n) of every energy of the tile `cube` (f32[d][P]) into the direct
 * layout's texture (energy e's texels from texture row e * rpe, texW per row). The last
 * texel's unused lanes get the centre, so their centred values are exactly 0 in
 * pca_cov_direct without the mask (the host takes their 1s off the augmented corner).
 *
 * A tile in ordinary memory goes straight into the texture with queue.writeTexture from the
 * tile itself: one host copy, made by the driver (Dawn's OpenGL backend hands the pointer to
 * glTexSubImage2D). With rpe = 1 (d = 101: see directLayout) that is ONE call for every
 * energy, its bytesPerRow the tile's energy stride (4 P bytes), for the piece's whole
 * texels, and one more for the last texel when n is not a multiple of 4 (from a small array
 * padded with the centres); otherwise two calls per energy (whole rows, the last part row)
 * and the last texel per energy. Per call ~18 us of CPU on llvmpipe (808 calls for 100k x
 * 101 took 15-19 ms, measured), hence the wide rows. The mapped staging buffer below took
 * two copies (into the mapping on the host, then buffer to texture by the driver: each ~5 ms
 * of CPU per 100k x 101, ~11 % of the pass under perf).
 *
 * Dawn takes no shared memory (writeTexture refuses a SharedArrayBuffer view: "Invalid
 * argument"), so a tile there goes through the staging buffer (made when first needed).
 * There queue.writeTexture from a bounce array cost one more than the mapping: 12 ms of the
 * 17 ms upload at 100k x 101 where the copy into the bounce array took 5 (measured on
 * llvmpipe; pass CPU time 136-139 ms against 138-152 ms, same process, alternating, 6 rounds).
 */
async function uploadDirect(ctx: GpuContext, dt: DirectTextures, cube: Float32Array, d: number, P: number, p0: number, n: number, centre: Float32Array): Promise<void> {
  if (typeof SharedArrayBuffer !== 'undefined' && cube.buffer instanceof SharedArrayBuffer) {
    await uploadStaged(ctx, dt, cube, d, P, p0, n, centre);
    return;
  }
  const queue = ctx.device.queue;
  const W = dt.texW;
  const whole = Math.floor(n / 4);
  if (whole > 0) {
    if (dt.rpe === 1) {
      // Energy e's texels [0, whole) are tile row e from pixel p0: the tile's own row pitch.
      queue.writeTexture({ texture: dt.cube }, cube.subarray(p0), { bytesPerRow: 4 * P }, [whole, d]);
    } else {
      const full = Math.floor(whole / W);
      const rest = whole - full * W;
      for (let e = 0; e < d; e++) {
        const src = cube.subarray(e * P + p0);
        if (full > 0) queue.writeTexture({ texture: dt.cube, origin: [0, e * dt.rpe] }, src, { bytesPerRow: 16 * W }, [W, full]);
        if (rest > 0) queue.writeTexture({ texture: dt.cube, origin: [0, e * dt.rpe + full] }, src.subarray(4 * W * full), { bytesPerRow: 16 * W }, [rest, 1]);
      }
    }
  }
  const tail = n - 4 * whole;
  if (tail > 0) {
    const last = new Float32Array(4 * d);
    for (let e = 0; e < d; e++) {
      const q = e * P + p0 + 4 * whole;
      last.set(cube.subarray(q, q + tail), 4 * e);
      last.fill(centre[e], 4 * e + tail, 4 * e + 4);
    }
    const x = whole % W;
    const k = Math.floor(whole / W);
    if (dt.rpe === 1) queue.writeTexture({ texture: dt.cube, origin: [x, 0] }, last, { bytesPerRow: 16 }, [1, d]);
    else for (let e = 0; e < d; e++) queue.writeTexture({ texture: dt.cube, origin: [x, e * dt.rpe + k] }, last.subarray(4 * e, 4 * e + 4), {}, [1, 1]);
  }
}

/** uploadDirect for a tile in shared memory: through the mapped staging buffer (see uploadDirect). */
async function uploadStaged(ctx: GpuContext, dt: DirectTextures, cube: Float32Array, d: number, P: number, p0: number, n: number, centre: Float32Array): Promise<void> {
  const W = dt.texW;
  const texels = Math.ceil(n / 4);
  const rowsUsed = Math.ceil(texels / W);
  const st = (dt.staging ??= ctx.device.createBuffer({ label: 'pcaGram.staging', size: 16 * W * dt.rpe * d, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC }));
  await guard(ctx, st.mapAsync(GPUMapMode.WRITE));
  const f = new Float32Array(st.getMappedRange());
  const per = 4 * W * dt.rpe;
  for (let e = 0; e < d; e++) {
    f.set(cube.subarray(e * P + p0, e * P + p0 + n), e * per);
    f.fill(centre[e], e * per + n, e * per + 4 * texels);
  }
  st.unmap();
  const encoder = ctx.device.createCommandEncoder({ label: 'pcaGram.upload' });
  if (rowsUsed === dt.rpe) {
    encoder.copyBufferToTexture({ buffer: st, bytesPerRow: 16 * W }, { texture: dt.cube }, [W, d * dt.rpe]);
  } else {
    for (let e = 0; e < d; e++) encoder.copyBufferToTexture({ buffer: st, offset: 4 * e * per, bytesPerRow: 16 * W }, { texture: dt.cube, origin: [0, e * dt.rpe] }, [W, rowsUsed]);
  }
  ctx.device.queue.submit([encoder.finish()]);
}

/**
 * The covariance pass over many tiles on the GPU (see the module header). Tiles may have
 * any size up to `maxP` pixels; add() returns once the tile is queued (its host array may be
 * reused at once); finish() returns the float64 sum of every tile's Gram matrix.
 */
export class GpuGramAccumulator {
  private readonly set: BufferSet;
  /** Staged mode (pca_cov): buffer slots and the mask buffer; direct mode: textures. */
  private readonly ring: UploadRing<GPUBuffer> | null = null;
  private readonly mask: GPUBuffer | null = null;
  private readonly tex: DirectTextures | null = null;
  /** Direct mode: the centres as the shader subtracts them (float32, padded rows 0). */
  private readonly centreF32: Float32Array = new Float32Array(0);
  /** Direct mode: one piece's Gram matrix in float64 before it is checked and added. */
  private readonly pieceGram: Float64Array = new Float64Array(0);
  /** Direct mode: a piece had an unusable pixel, so the rest of the pass runs the mask first. */
  private masked = false;
  /** Direct mode: the set failed to allocate, so release() destroys it instead of keeping it. */
  private discard = false;
  private readonly centreBuf: GPUBuffer;
  private readonly partials: GPUBuffer;
  /** Room for `capacity` tiles' Gram matrices and their readback (resultSet owns them). */
  private resultSet: BufferSet;
  private results: GPUBuffer;
  private resultsRead: GPUBuffer;
  private capacity = GRAM_FIRST_TILES;
  private readonly gram: Float64Array;
  private readonly entries: number;
  private pending = 0;
  private added = 0;
  private scratch: BufferSet;

  private constructor(
    readonly ctx: GpuContext, readonly d: number, readonly maxP: number, centre: Float64Array,
    private readonly targetPartials: number | undefined, readonly direct: boolean,
  ) {
    this.set = new BufferSet(ctx, 'pcaGram');
    this.scratch = new BufferSet(ctx, 'pcaGramParams');
    this.resultSet = new BufferSet(ctx, 'pcaGramTiles');
    if (direct) {
      const dt = (this.tex = takeDirect(ctx, d, maxP, targetPartials));
      // Centres of the padded rows: 0 for the augmented row and the zero rows.
      this.centreF32 = new Float32Array(dt.rows);
      this.centreF32.set(centre);
      this.centreBuf = this.set.upload('centre', this.centreF32);
      this.pieceGram = new Float64Array((d + 1) * (d + 1));
      this.entries = covPlan(d, dt.subP, targetPartials, true).entries;
      // Each piece is read back on its own (see addDirect); the flush buffers stay unused.
      this.partials = dt.partials;
      this.results = dt.results;
      this.resultsRead = dt.resultsRead;
    } else {
      this.ring = new UploadRing(ctx, [0, 1].map((r) => this.set.storage(`cube${r}`, 4 * d * maxP)));
      this.mask = this.set.storage('mask', 4 * maxP);
      this.centreBuf = this.set.upload('centre', Float32Array.from(centre));
      const plan = covPlan(d, maxP, targetPartials, false);
      this.entries = plan.entries;
      this.partials = this.set.storage('partials', 4 * plan.partials);
      this.results = this.resultSet.storage('gramTiles', 4 * plan.entries * this.capacity);
      this.resultsRead = this.resultSet.readback('gramTiles', 4 * plan.entries * this.capacity);
    }
    this.gram = new Float64Array((d + 1) * (d + 1));
  }

  /** Allocates the buffers for tiles of up to maxP pixels; GpuOutOfMemoryError if they do not fit. */
  static async create(
    ctx: GpuContext, d: number, maxP: number, centre: Float64Array, opts: { targetPartials?: number; direct?: boolean } = {},
  ): Promise<GpuGramAccumulator> {
    ctx.device.pushErrorScope('out-of-memory');
    // Direct mode on CPU-emulated adapters (see pca_cov_direct.wgsl), staged on GPUs.
    const acc = new GpuGramAccumulator(ctx, d, Math.max(1, maxP), centre, opts.targetPartials, opts.direct ?? ctx.isSoftware);
    const oom = await guard(ctx, ctx.device.popErrorScope());
    if (oom) {
      acc.discard = true;
      await acc.release();
      throw new GpuOutOfMemoryError(`a PCA tile of ${maxP} pixels x ${d} values`);
    }
    return acc;
  }

  async add(cube: Float32Array, P: number): Promise<void> {
    if (P > this.maxP) throw new RangeError(`GpuGramAccumulator: a tile of ${P} pixels exceeds ${this.maxP}`);
    if (!this.tex) {
      await this.addStaged(cube, P);
      return;
    }
    // Equal pieces (whole texels but the last), so no piece is left with too little work for the threads.
    const pieces = Math.ceil(P / this.tex.subP);
    const step = Math.ceil(Math.ceil(P / pieces) / 4) * 4;
    for (let p0 = 0; p0 < P; p0 += step) await this.addDirect(cube, P, p0, Math.min(step, P - p0));
  }

  private async addStaged(cube: Float32Array, P: number): Promise<void> {
    const { ctx, d } = this;
    const i = this.added;
    const slot = await this.ring!.acquire(i);
    writeFloat32(ctx, slot, 0, cube.subarray(0, d * P));
    const plan = covPlan(d, P, this.targetPartials, false);
    const encoder = ctx.device.createCommandEncoder({ label: 'pcaGram.tile' });
    await encodeDispatch(ctx, encoder, pcaMaskKernel, P, { d, max_abs: PCA_MAX_ABS }, [slot, this.mask!], this.scratch.buffers);
    await encodeCov(ctx, encoder, plan, [slot, this.mask!, this.centreBuf, this.partials], this.scratch.buffers);
    await this.reduceAndSubmit(encoder, plan, i, this.ring!);
  }

  /**
   * Pixels [p0, p0 + n) of a tile of P pixels in direct mode: one Gram matrix on the device,
   * read back and added here. First without the mask (pca_cov_direct with MASKED = 0: no
   * mask pass, no mask fetches), then, if the piece's Gram matrix shows an unusable pixel
   * (see addClean), again with the mask, as is every later piece of the pass. A piece whose
   * pixels are all usable gives the masked pass's float32 sums bit for bit (the same values
   * in the same order; the unused lanes of the last texel add exact zeros and exact 1s to
   * the corner, taken off on the host).
   */
  private async addDirect(cube: Float32Array, P: number, p0: number, n: number): Promise<void> {
    const { ctx, d } = this;
    const dt = this.tex!;
    await uploadDirect(ctx, dt, cube, d, P, p0, n, this.centreF32);
    const plan = covPlan(d, n, this.targetPartials, true);
    if (!this.masked) {
      const tiles = await this.runDirect(plan, n, false);
      if (this.addClean(tiles, 4 * Math.ceil(n / 4) - n)) {
        this.added++;
        return;
      }
      this.masked = true;
    }
    addGramTiles(d, await this.runDirect(plan, n, true), 0, this.gram);
    this.added++;
  }

  /** One direct-mode piece of n pixels (already in the texture) on the device: its reduced Gram tiles. */
  private async runDirect(plan: CovPlan, n: number, masked: boolean): Promise<Float32Array> {
    const { ctx, d } = this;
    const dt = this.tex!;
    const encoder = ctx.device.createCommandEncoder({ label: 'pcaGram.tile' });
    const cubeView = dt.cube.createView();
    const maskView = dt.mask.createView();
    const owned = this.scratch.buffers;
    if (masked) await encodeDispatch(ctx, encoder, pcaMaskDirectKernel(dt.texW), Math.ceil(n / 4), { d, n_pixels: n, rpe: dt.rpe, max_abs: PCA_MAX_ABS }, [cubeView, maskView], owned);
    await encodeCovDirect(ctx, encoder, plan, dt, [cubeView, maskView, this.centreBuf, dt.partials], owned, masked);
    await encodeDispatch(ctx, encoder, pcaReduceKernel, plan.entries, { n_entries: plan.entries, n_chunks: plan.nChunks, out_offset: 0 }, [dt.partials, dt.results], owned);
    encoder.copyBufferToBuffer(dt.results, 0, dt.resultsRead, 0, 4 * plan.entries);
    await submitChecked(ctx, encoder, 'pca_cov');
    const tiles = await readFloat32(ctx, dt.resultsRead, plan.entries);
    // The readback waited for the piece's work: its uniform buffers are done with.
    for (const b of owned) b.destroy();
    owned.length = 0;
    return tiles;
  }

  /**
   * Adds a piece's Gram tiles computed without the mask, less the `pads` unused lanes of its
   * last texel in the augmented corner, if no pixel of it was unusable; false (nothing added)
   * otherwise. An unusable pixel (a non-finite value, or one of magnitude >= PCA_MAX_ABS)
   * makes the diagonal entry of its energy NaN, +Inf or at least (PCA_MAX_ABS - |centre|)^2
   * (a float32 sum of squares is never below its largest term); CLEAN_DIAG_FRACTION leaves
   * room for the rounding of the centred value. A usable piece above that bound (values near
   * PCA_MAX_ABS) is only run again with the mask: the result is the same.
   */
  private addClean(tiles: Float32Array, pads: number): boolean {
    const d = this.d;
    const m = d + 1;
    const G = this.pieceGram;
    G.fill(0);
    addGramTiles(d, tiles, 0, G);
    for (let e = 0; e < d; e++) {
      const c = Math.abs(this.centreF32[e]);
      if (!(c < PCA_MAX_ABS) || !(G[e * m + e] < CLEAN_DIAG_FRACTION * (PCA_MAX_ABS - c) ** 2)) return false;
    }
    G[m * m - 1] -= pads;
    for (let k = 0; k < m * m; k++) this.gram[k] += G[k];
    return true;
  }

  private async reduceAndSubmit<S>(encoder: GPUCommandEncoder, plan: CovPlan, i: number, ring: UploadRing<S>): Promise<void> {
    await encodeDispatch(this.ctx, encoder, pcaReduceKernel, plan.entries, { n_entries: plan.entries, n_chunks: plan.nChunks, out_offset: this.pending * this.entries }, [this.partials, this.results], this.scratch.buffers);
    await ring.submit(i, encoder, 'pca_cov');
    this.added++;
    this.pending++;
    if (this.pending === this.capacity) {
      await this.flush();
      if (this.capacity < GRAM_FLUSH_TILES) {
        await this.resultSet.release();
        this.capacity = Math.min(GRAM_FLUSH_TILES, 2 * this.capacity);
        this.resultSet = new BufferSet(this.ctx, 'pcaGramTiles');
        this.results = this.resultSet.storage('gramTiles', 4 * this.entries * this.capacity);
        this.resultsRead = this.resultSet.readback('gramTiles', 4 * this.entries * this.capacity);
      }
    }
  }

  /** One readback of the pending tiles' Gram matrices, added in float64 in tile order. */
  private async flush(): Promise<void> {
    if (this.pending === 0) return;
    const { ctx } = this;
    const n = this.pending * this.entries;
    const encoder = ctx.device.createCommandEncoder({ label: 'pcaGram.flush' });
    encoder.copyBufferToBuffer(this.results, 0, this.resultsRead, 0, 4 * n);
    ctx.device.queue.submit([encoder.finish()]);
    const tiles = await readFloat32(ctx, this.resultsRead, n);
    for (let t = 0; t < this.pending; t++) addGramTiles(this.d, tiles, t * this.entries, this.gram);
    this.pending = 0;
    // The uniform buffers of the flushed tiles are done with.
    await this.scratch.release();
    this.scratch = new BufferSet(ctx, 'pcaGramParams');
  }

  /** The float64 sum of every added tile's Gram matrix. */
  async finish(): Promise<Float64Array> {
    await this.flush();
    return Float64Array.from(this.gram);
  }

  async release(): Promise<void> {
    await this.scratch.release();
    // BufferSet.release waits for the queue, so the textures are idle when destroyed.
    await this.set.release();
    await this.resultSet.release();
    if (this.tex) {
      if (this.discard) destroyDirect(this.tex);
      else putDirect(this.ctx, this.tex);
    }
  }
}

/**
 * The augmented Gram matrix of one tile (see pcaGramCpu), computed on the GPU (float32 sums
 * blocked per panel and chunk, tiles of the matrix added in float64 here). `cube` is f32[d][P].
 */
export async function pcaGramGpu(
  ctx: GpuContext, cube: Float32Array, P: number, d: number, centre: Float64Array, opts: { targetPartials?: number; direct?: boolean } = {},
): Promise<Float64Array> {
  const acc = await GpuGramAccumulator.create(ctx, d, P, centre, opts);
  try {
    await acc.add(cube, P);
    return await acc.finish();
  } finally {
    await acc.release();
  }
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
    await submitChecked(ctx, encoder, 'pca_project');
    return await readFloat32(ctx, outRead, rows * P);
  } finally {
    await set.release();
  }
}
