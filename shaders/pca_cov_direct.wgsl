// pca_cov_direct: the augmented Gram matrix of centred spectra (the same sums as pca_cov.wgsl)
// shaped for CPU-emulated adapters such as llvmpipe. Chosen by GpuGramAccumulator when the
// adapter is a software one (ctx.isSoftware); a GPU uses pca_cov (workgroup-memory panels).
//
// Why a second shape: llvmpipe runs 8 invocations as the lanes of one AVX2 vector, and every
// storage-buffer or workgroup-memory load whose address differs per lane becomes a loop over
// the lanes with a bounds check and an execution-mask branch per lane: ~7 ns of CPU per value
// (measured, Mesa 22.3), where a multiply-add costs a fraction of a nanosecond. A texel fetch
// from a texture has no such loop: ~4 ns for a whole rgba32float texel, i.e. ~1 ns per value
// (measured; a uniform-address load in a loop is no cheaper than a per-lane one, and
// workgroup memory costs as much as storage). So the tile is read from a texture whose
// texels hold 4 consecutive pixels of one energy, and each invocation keeps a register block
// of G, so each fetched texel feeds many multiply-adds; no workgroup memory, no barriers:
// - invocation g = chunk * n_big + q takes the B x B block q of G's upper triangle, B = 4 DQ
//   (DQ = 2: 8 x 8, or 1: 4 x 4 when d + 1 <= 4; src/kernels/pca.ts directQuarters), blocks
//   row-major over the triangle of ntb x ntb blocks, ntb = ceil(nt / DQ), nt = 4 x 4 tiles
//   per side, over the texels [chunk * params.chunk, ...) of the tile (4 pixels each);
// - per texel: the 4 pixels' masks and B row and B column texels (2B + 1 fetches) for B^2
//   dot products of 4 terms (4 B^2 multiply-adds): 17 fetches per 256 multiply-adds for B = 8
//   (16 x 16 blocks fetch half as much per multiply-add but spill: measured no faster, 3x the
//   compile time); the centres and texture rows are loaded once per invocation. A 4 x 4 part
//   of the block is a mat4x4f: transpose(A) * B is its 16 dot products;
// - the block's partial sums go to partials[chunk] in pca_cov's layout (4 x 4 tiles of the
//   upper triangle, 16 floats each), so pca_reduce adds the chunks on the device and the host
//   reads back one (d+1)^2 matrix per tile of pixels, as for pca_cov. No float atomics, fixed
//   order: deterministic.
//
// Bindings: 0 params (uniform, generated),
//           1 cube: texture_2d<f32> rgba32float: texel t (pixels 4t..4t+3) of energy row e at
//             x = t % TEX_W, y = e * rpe + t / TEX_W; rows e >= d are constant (row d: 1, the
//             augmented row; beyond: 0), written once when the texture is made,
//           2 mask: texture_2d<f32> from pca_mask_direct.wgsl (texel t at (t % TEX_W, t / TEX_W)),
//           3 centre: f32[rows]: a provisional mean chosen on the host for e < d, 0 beyond,
//           4 partials: vec4f view of f32[n_chunks][entries], entries = n_tiles * 16.
// Row r of the augmented vector a(p) = [x(p) - centre, 1, 0...] for an included pixel, the
// zero vector for an excluded one (select, not a product: it may hold NaN or Inf).
//
// Cost per spectrum (d = 101, 8 x 8 blocks, ntb = 13, 91 blocks in the triangle): reads 404 B
// (+ 4 B of mask) from memory and 91 x 17 / 4 = 387 texel fetches from cache; 91 x 64 x 2 =
// 11.6 kFLOP (the upper triangle of 104 x 104 padded rows, diagonal blocks in full).
// H100, 2e7 x 101: 8.1 GB -> 2.4 ms at 3.35 TB/s; 2.3e11 FLOP -> 3.5 ms at 67 TFLOP/s FP32:
// compute-bound on paper, but 64 accumulators per invocation and texture-cache traffic of
// 17 texels per 256 FMA would keep an H100 well below that; on a GPU pca_cov is the kernel.
// Accuracy: float32 products of centred values; each entry sums, per texel, a dot product of
// 4 pixels into the chunk's sum (at most params.chunk texels: 512 texels = 2048 pixels by
// default, COV_DIRECT_CHUNK), pca_reduce adds chunks in blocks of 16, the host adds tiles in float64.
// CPU twin: pcaGramCpu in src/cpu/pca.ts (float64 throughout).

@group(0) @binding(1) var cube: texture_2d<f32>;
@group(0) @binding(2) var mask: texture_2d<f32>;
@group(0) @binding(3) var<storage, read> centre: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<vec4f>;

// Block number q (row-major over the upper triangle of ntb x ntb blocks) -> (bi, bj).
fn big_blocks(q: u32) -> vec2u {
  var bi = 0u;
  var rem = q;
  loop {
    let in_row = params.ntb - bi;
    if (rem < in_row || bi + 1u >= params.ntb) { break; }
    rem -= in_row;
    bi++;
  }
  return vec2u(bi, bi + rem);
}

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

// Augmented values of rows R at texel (x, k): column j = row r0 + j over the texel's 4 pixels.
fn load4(R: Rows, x: u32, k: u32, ok: vec4<bool>) -> mat4x4f {
  let z = vec4f(0.0);
  return mat4x4f(
    select(z, textureLoad(cube, vec2u(x, R.y.x + k), 0) - R.c.x, ok),
    select(z, textureLoad(cube, vec2u(x, R.y.y + k), 0) - R.c.y, ok),
    select(z, textureLoad(cube, vec2u(x, R.y.z + k), 0) - R.c.z, ok),
    select(z, textureLoad(cube, vec2u(x, R.y.w + k), 0) - R.c.w, ok),
  );
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = linear_index(gid, nwg);
  if (g >= params.n_chunks * params.n_big) { return; }
  let chunk_i = g / params.n_big;
  let bij = big_blocks(g % params.n_big);
  let ri = 4u * DQ * bij.x;
  let rj = 4u * DQ * bij.y;
  // The second quarter is never read when DQ = 1: DQ is a constant, the compiler drops it.
  let R0 = rows(ri);
  let C0 = rows(rj);
  var R1 = R0;
  var C1 = C0;
  if (DQ >= 2u) {
    R1 = rows(ri + 4u);
    C1 = rows(rj + 4u);
  }
  let t_begin = chunk_i * params.chunk;
  let t_end = min(t_begin + params.chunk, params.n_texels);
  var o00 = mat4x4f();
  var o01 = mat4x4f();
  var o10 = mat4x4f();
  var o11 = mat4x4f();
  for (var t = t_begin; t < t_end; t++) {
    let x = t & (TEX_W - 1u);
    let k = t >> TEX_SHIFT;
    let ok = textureLoad(mask, vec2u(x, k), 0) > vec4f(0.5);
    let a0 = load4(R0, x, k, ok);
    let b0 = load4(C0, x, k, ok);
    o00 += transpose(a0) * b0;
    if (DQ >= 2u) {
      let a1 = load4(R1, x, k, ok);
      let b1 = load4(C1, x, k, ok);
      o01 += transpose(a0) * b1;
      o10 += transpose(a1) * b0;
      o11 += transpose(a1) * b1;
    }
  }
  let a = DQ * bij.x;
  let b = DQ * bij.y;
  put(chunk_i, a, b, o00);
  if (DQ >= 2u) {
    put(chunk_i, a, b + 1u, o01);
    put(chunk_i, a + 1u, b, o10);
    put(chunk_i, a + 1u, b + 1u, o11);
  }
}
