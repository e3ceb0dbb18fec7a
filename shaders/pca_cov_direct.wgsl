// pca_cov_direct: the augmented Gram matrix of centred spectra (the same sums as pca_cov.wgsl)
// shaped for CPU-emulated adapters such as llvmpipe. Chosen by GpuGramAccumulator when the
// adapter is a software one (ctx.isSoftware); a GPU uses pca_cov (workgroup-memory panels).
//
// Why a second shape: llvmpipe runs 8 invocations as the lanes of one AVX2 vector, and every
// storage-buffer or workgroup-memory load whose address differs per lane becomes a loop over
// the lanes with a bounds check and an execution-mask branch per lane: ~7 ns of CPU per value
// (measured, Mesa 22.3), where a multiply-add costs a fraction of a nanosecond. A texel load
// from a texture has no such loop: ~3-4 ns for a whole rgba32float texel of a sampled
// texture_2d, ~1 ns per value (measured; a uniform-address load in a loop is no cheaper than
// a per-lane one, and workgroup memory costs as much as storage), less from a read-only
// storage texture, which llvmpipe loads inline with the image's stride as one value (a
// texture_2d's textureLoad calls a fetch function that gathers the mip level's size, stride
// and offset per lane and clamps them: ~half of this kernel's time under perf; as storage
// textures, pass CPU time 101-127 ms against 137-165 ms, 100k x 101, same load, alternating).
// So the tile is read from a texture whose
// texels hold 4 consecutive pixels of one energy, and each invocation keeps a register block
// of G, so each fetched texel feeds many multiply-adds; no workgroup memory, no barriers:
// - one dispatch per block class (src/kernels/pca.ts directBlockClasses): RQ x CQ 4 x 4 tiles
//   (up to 16 x 16 values), DIAG = 1 for a block on G's diagonal, which reads its rows once
//   (its columns are the same values) and adds only tiles on and above the diagonal; blocks
//   of the last column have only the columns that exist (CQ = nt % Q), so no zero-padded
//   rows are read or multiplied. Invocation g = chunk * n_blocks + q takes block q of the
//   class (its first tile row and column from `blocks`) over the texels [chunk *
//   params.chunk, ...) of the tile (4 pixels each). d = 101 (nt = 26 tiles a side): 15 full,
//   6 last-column, 6 diagonal and 1 last diagonal block, 351 4 x 4 products and 182 texel
//   fetches per texel where 28 square 16 x 16 blocks did 448 and 224 (measured on llvmpipe,
//   same process, alternating, 6 rounds: kernel CPU time 131-169 ms against 143-182 ms, ~8 %);
// - per texel: the 4 pixels' masks and B row and B column texels (2B + 1 fetches) for B^2
//   dot products of 4 pixels (4 B^2 multiply-adds): 33 fetches per 1024 multiply-adds for
//   B = 16. With 8 x 8 blocks fetches were ~80 % of the time (a fetch-only variant,
//   measured), so the largest block pays although its 256 accumulators spill (llvmpipe,
//   100k x 101, CPU time of one tile's pass, same run: 0.21-0.27 s with 8 x 8 blocks,
//   0.15-0.23 s with 16 x 16; fetches are then 55-60 %); the centres and rows are loaded
//   once per invocation. A 4 x 4 part of the block is a mat4x4f: transpose(A) * B is its
//   16 dot products; the quarters past RQ / CQ sit under constant conditions the compiler removes;
// - the block's partial sums go to partials[chunk] in pca_cov's layout (4 x 4 tiles of the
//   upper triangle, 16 floats each), so pca_reduce adds the chunks on the device and the host
//   reads back one (d+1)^2 matrix per tile of pixels, as for pca_cov. No float atomics, fixed
//   order: deterministic.
//
// Bindings: 0 params (uniform, generated),
//           1 cube: texture_storage_2d<rgba32float, read>: texel t (pixels 4t..4t+3) of energy row e at
//             x = t % TEX_W, y = e * rpe + t / TEX_W; rows e >= d are constant (row d: 1, the
//             augmented row; beyond: 0), written once when the texture is made,
//           2 mask: texture_storage_2d<rgba32float, read> from pca_mask_direct.wgsl (texel t at (t % TEX_W, t / TEX_W));
//             read only when MASKED = 1. MASKED = 0 is the pipeline for a piece of the tile
//             whose pixels are all usable: no mask pass, no mask fetch, no selects (measured
//             on llvmpipe, 100k x 101: ~30 % less CPU time in this kernel, and the mask pass,
//             ~10 % of the whole pass, is not run). The host fills the last texel's unused
//             lanes with the centres (centred value exactly 0), subtracts their count from the
//             augmented corner and checks the Gram matrix: a non-finite or too large diagonal
//             entry means an unusable pixel, and the piece runs again with MASKED = 1
//             (src/kernels/pca.ts, GpuGramAccumulator.addDirect),
//           3 centre: f32[rows]: a provisional mean chosen on the host for e < d, 0 beyond,
//           4 partials: vec4f view of f32[n_chunks][entries], entries = n_tiles * 16,
//           5 blocks: vec2u per block, its first 4 x 4 tile row and column, the classes' lists
//             one after another (params.block_offset: where this dispatch's class starts).
// Row r of the augmented vector a(p) = [x(p) - centre, 1, 0...] for an included pixel, the
// zero vector for an excluded one (select, not a product: it may hold NaN or Inf).
//
// Cost per spectrum (d = 101, the 28 blocks above): 404 B read from memory (+ 4 B of mask
// where the mask runs), 182 / 4 = 46 texel fetches from cache, 351 x 16 x 2 = 11.2 kFLOP
// (the upper triangle of 104 x 104 rows, diagonal 4 x 4 tiles in full).
// H100, 2e7 x 101: 8.2 GB -> 2.4 ms at 3.35 TB/s; 2.2e11 FLOP -> 3.4 ms at 67 TFLOP/s FP32:
// compute-bound on paper, but 256 accumulators per invocation spill on a GPU (255 registers
// at most) and texture-cache traffic of 33 texels per 1024 FMA would keep an H100 well below
// that; on a GPU pca_cov (workgroup-memory panels, 16 accumulators) is the kernel.
// On llvmpipe (perf, 100k x 101, storage-texture reads, steady state): ~80 % of the pass in
// this kernel, ~5 % the upload's one copy (src/kernels/pca.ts uploadDirect). Per 8-lane
// iteration of a 16 x 16 block ~5000 instructions: separate vmulps and vaddps (llvmpipe
// lowers every fma to a multiply and an add, so WGSL fma() changes nothing: measured),
// spilled operands and accumulators (each accumulator write inside the loop is a blend with
// the loop's execution mask and a store), and ~40 instructions per texel load (per-lane
// addresses, bounds checks, a 4 x 8 transpose).
// Tried with read-only storage textures and not paying (pass CPU time, same load,
// alternating): two texels per iteration (fewer accumulator writes; 116-136 ms against
// 108-134), 8 x 8 and 12 x 12 blocks (within the noise of 16 x 16 now that loads are cheap),
// chunks of 256-8192 pixels (smaller ones cost more partials, larger ones gain nothing),
// invocations of one block over consecutive chunks instead of blocks of one chunk (116-139
// against 102-135), texture rows of 4028 texels (an odd number of cache lines; no change).
// Also not paying, with the tile written by one writeTexture into rows of 8064 texels (one
// texture row per energy; pass CPU time medians, same load, alternating processes, 3 x 8
// passes): x = t and a loop-invariant row when a piece is one row (no division; 81-88 ms
// against 82-90), each column quarter fetched just before its 4 products (LLVM schedules the
// same; 79-84 against 78-83), rows of 9344 texels (3 pieces per 100k pixels, not 4; 85-96
// against 83-115). A pass's cost is per pixel: one piece of 32256 pixels took 25 ms of CPU,
// 100k pixels in 4 pieces 77-79 ms, 4 pixels 2 ms.
// Accuracy: float32 products of centred values; each entry sums, per texel, a dot product of
// 4 pixels into the chunk's sum (at most params.chunk texels: 512 texels = 2048 pixels by
// default, COV_DIRECT_CHUNK), pca_reduce adds chunks in blocks of 16, the host adds tiles in
// float64.
// CPU twin: pcaGramCpu in src/cpu/pca.ts (float64 throughout).

@group(0) @binding(1) var cube: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var mask: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read> centre: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4f>;
@group(0) @binding(5) var<storage, read> blocks: array<vec2u>;

// Index of 4 x 4 tile (a, b), a <= b, row-major over the upper triangle of nt x nt tiles.
fn tile4(a: u32, b: u32) -> u32 {
  return (a * (2u * params.nt - a + 1u)) / 2u + (b - a);
}

// Writes 4 x 4 tile (a, b) of this chunk's partials, if it is in the triangle. m[j][i] is the
// sum for row i, column j of the tile (transpose(A) * B): row i of the tile is transpose(m)[i].
fn put(chunk: u32, a: u32, b: u32, m: mat4x4f) {
  if (a >= params.nt || b >= params.nt || b < a) { return; }
  let o = (chunk * params.entries + tile4(a, b) * 16u) / 4u;
  let t = transpose(m);
  partials[o] = t[0];
  partials[o + 1u] = t[1];
  partials[o + 2u] = t[2];
  partials[o + 3u] = t[3];
}

// Texture rows (first row of each energy) and centres of energy rows r0..r0+3.
struct Rows {
  y: vec4u,
  c: vec4f,
}

fn rows(r0: u32) -> Rows {
  let r = vec4u(r0, r0 + 1u, r0 + 2u, r0 + 3u);
  var out: Rows;
  out.y = r * params.rpe;
  out.c = vec4f(centre[r.x], centre[r.y], centre[r.z], centre[r.w]);
  return out;
}

// One augmented value of 4 pixels: masked (MASKED = 1) or as read (MASKED = 0, the pass for
// tiles whose every pixel is usable; MASKED is a constant, so the select is compiled out).
fn val(v: vec4f, ok: vec4<bool>) -> vec4f {
  if (MASKED == 0u) { return v; }
  return select(vec4f(0.0), v, ok);
}

// Augmented values of rows R at texel (x, k): column j = row r0 + j over the texel's 4 pixels.
fn load4(R: Rows, x: u32, k: u32, ok: vec4<bool>) -> mat4x4f {
  return mat4x4f(
    val(textureLoad(cube, vec2u(x, R.y.x + k)) - R.c.x, ok),
    val(textureLoad(cube, vec2u(x, R.y.y + k)) - R.c.y, ok),
    val(textureLoad(cube, vec2u(x, R.y.z + k)) - R.c.z, ok),
    val(textureLoad(cube, vec2u(x, R.y.w + k)) - R.c.w, ok),
  );
}

// Accumulates one 4 x 4 tile: rows quarter i x columns quarter j, if this class has it (RQ,
// CQ, DIAG are constants: the conditions are resolved when the shader compiles).
fn has(i: u32, j: u32) -> bool {
  return i < RQ && j < CQ && (DIAG == 0u || j >= i);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = linear_index(gid, nwg);
  if (g >= params.n_chunks * params.n_blocks) { return; }
  let chunk_i = g / params.n_blocks;
  // First 4 x 4 tile row and column of this invocation's block (see the blocks binding).
  let bij = blocks[params.block_offset + g % params.n_blocks];
  let ri = 4u * bij.x;
  let rj = 4u * bij.y;
  // Quarters past RQ / CQ are never read: they are constants, so the compiler drops their code.
  // A diagonal block (DIAG = 1) reads its rows once: its columns are the same values.
  let R0 = rows(ri);
  var R1 = R0; var R2 = R0; var R3 = R0;
  if (RQ >= 2u) { R1 = rows(ri + 4u); }
  if (RQ >= 3u) { R2 = rows(ri + 8u); }
  if (RQ >= 4u) { R3 = rows(ri + 12u); }
  var C0 = R0; var C1 = R0; var C2 = R0; var C3 = R0;
  if (DIAG == 0u) {
    C0 = rows(rj);
    if (CQ >= 2u) { C1 = rows(rj + 4u); }
    if (CQ >= 3u) { C2 = rows(rj + 8u); }
    if (CQ >= 4u) { C3 = rows(rj + 12u); }
  }
  let t_begin = chunk_i * params.chunk;
  let t_end = min(t_begin + params.chunk, params.n_texels);
  // o<i><j>: rows quarter i x columns quarter j of the block.
  var o00 = mat4x4f(); var o01 = mat4x4f(); var o02 = mat4x4f(); var o03 = mat4x4f();
  var o10 = mat4x4f(); var o11 = mat4x4f(); var o12 = mat4x4f(); var o13 = mat4x4f();
  var o20 = mat4x4f(); var o21 = mat4x4f(); var o22 = mat4x4f(); var o23 = mat4x4f();
  var o30 = mat4x4f(); var o31 = mat4x4f(); var o32 = mat4x4f(); var o33 = mat4x4f();
  for (var t = t_begin; t < t_end; t++) {
    let x = t % TEX_W;
    let k = t / TEX_W;
    var ok = vec4<bool>(true);
    if (MASKED != 0u) { ok = textureLoad(mask, vec2u(x, k)) > vec4f(0.5); }
    // l<i>: the rows quarter's values (column r = row r over the 4 pixels); a<i> its transpose.
    let l0 = load4(R0, x, k, ok);
    var l1 = l0; var l2 = l0; var l3 = l0;
    if (RQ >= 2u) { l1 = load4(R1, x, k, ok); }
    if (RQ >= 3u) { l2 = load4(R2, x, k, ok); }
    if (RQ >= 4u) { l3 = load4(R3, x, k, ok); }
    var b0 = l0; var b1 = l1; var b2 = l2; var b3 = l3;
    if (DIAG == 0u) {
      b0 = load4(C0, x, k, ok);
      if (CQ >= 2u) { b1 = load4(C1, x, k, ok); }
      if (CQ >= 3u) { b2 = load4(C2, x, k, ok); }
      if (CQ >= 4u) { b3 = load4(C3, x, k, ok); }
    }
    let a0 = transpose(l0); let a1 = transpose(l1); let a2 = transpose(l2); let a3 = transpose(l3);
    if (has(0u, 0u)) { o00 += a0 * b0; }
    if (has(0u, 1u)) { o01 += a0 * b1; }
    if (has(0u, 2u)) { o02 += a0 * b2; }
    if (has(0u, 3u)) { o03 += a0 * b3; }
    if (has(1u, 0u)) { o10 += a1 * b0; }
    if (has(1u, 1u)) { o11 += a1 * b1; }
    if (has(1u, 2u)) { o12 += a1 * b2; }
    if (has(1u, 3u)) { o13 += a1 * b3; }
    if (has(2u, 0u)) { o20 += a2 * b0; }
    if (has(2u, 1u)) { o21 += a2 * b1; }
    if (has(2u, 2u)) { o22 += a2 * b2; }
    if (has(2u, 3u)) { o23 += a2 * b3; }
    if (has(3u, 0u)) { o30 += a3 * b0; }
    if (has(3u, 1u)) { o31 += a3 * b1; }
    if (has(3u, 2u)) { o32 += a3 * b2; }
    if (has(3u, 3u)) { o33 += a3 * b3; }
  }
  let a = bij.x;
  let b = bij.y;
  if (has(0u, 0u)) { put(chunk_i, a, b, o00); }
  if (has(0u, 1u)) { put(chunk_i, a, b + 1u, o01); }
  if (has(0u, 2u)) { put(chunk_i, a, b + 2u, o02); }
  if (has(0u, 3u)) { put(chunk_i, a, b + 3u, o03); }
  if (has(1u, 0u)) { put(chunk_i, a + 1u, b, o10); }
  if (has(1u, 1u)) { put(chunk_i, a + 1u, b + 1u, o11); }
  if (has(1u, 2u)) { put(chunk_i, a + 1u, b + 2u, o12); }
  if (has(1u, 3u)) { put(chunk_i, a + 1u, b + 3u, o13); }
  if (has(2u, 0u)) { put(chunk_i, a + 2u, b, o20); }
  if (has(2u, 1u)) { put(chunk_i, a + 2u, b + 1u, o21); }
  if (has(2u, 2u)) { put(chunk_i, a + 2u, b + 2u, o22); }
  if (has(2u, 3u)) { put(chunk_i, a + 2u, b + 3u, o23); }
  if (has(3u, 0u)) { put(chunk_i, a + 3u, b, o30); }
  if (has(3u, 1u)) { put(chunk_i, a + 3u, b + 1u, o31); }
  if (has(3u, 2u)) { put(chunk_i, a + 3u, b + 2u, o32); }
  if (has(3u, 3u)) { put(chunk_i, a + 3u, b + 3u, o33); }
}
