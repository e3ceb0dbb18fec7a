// pca_cov_direct: the augmented Gram matrix of centred spectra (the same sums as pca_cov.wgsl)
// shaped for CPU-emulated adapters such as llvmpipe, where pca_cov's staged mode is slow.
// Chosen by GpuGramAccumulator when the adapter is a software one (ctx.isSoftware); a GPU
// uses pca_cov (workgroup-memory panels).
//
// Why a second shape: llvmpipe runs 8 invocations as the lanes of one AVX2 vector, but every
// storage or workgroup-memory load whose address differs per lane becomes a loop over the
// lanes (one scalar load per lane with its bounds and execution-mask checks), tens of
// instructions, while a multiply-add is one vector instruction. So the cost is the number of
// loads per multiply-add, and the kernel keeps that small with large register blocks read
// straight from global memory (no staging, no barriers, no workgroup memory):
// - invocation g = chunk * n_big + q takes the B x B block q of G's upper triangle, B = 4 DQ
//   (DQ = 4, or 1 or 2 when d + 1 <= 4 or 8: src/kernels/pca.ts directQuarters), blocks
//   row-major over the triangle of ntb x ntb blocks, ntb = ceil(nt / DQ), nt = 4 x 4 tiles
//   per side, over the pixels [chunk * chunk_px, ...) of the tile;
// - per pixel: its mask, 16 row values and 16 column values (33 loads) for 256 multiply-adds
//   (64 vec4 FMAs), against 24 loads per 16 in a 4 x 4 block (measured on llvmpipe, 100k x 101:
//   CPU time 11 s for 4 x 4, 1.7 s for 8 x 8, 1.1 s for 16 x 16); the centre and the row
//   offsets are loaded once per invocation. The 16 x 16 block is written out in full below
//   (accumulator o<row>_<column quarter>), as WGSL has no unrolled loops over registers; the
//   quarters past DQ sit under constant conditions, which the compiler removes;
// - the block's partial sums go to partials[chunk] in pca_cov's layout (4 x 4 tiles of the
//   upper triangle, 16 floats each), so pca_reduce adds the chunks on the device and the host
//   reads back one (d+1)^2 matrix per tile of pixels, as for pca_cov. No float atomics, fixed
//   order: deterministic.
//
// Bindings: 0 params (uniform, generated), 1 cube: the tile, energy-major f32[d][n_pixels],
//           2 mask: f32[n_pixels] from pca_mask.wgsl (1 = every value usable),
//           3 centre: f32[d], a provisional mean chosen on the host,
//           4 partials: vec4f view of f32[n_chunks][entries], entries = n_tiles * 16.
// Row r of the augmented vector a(p) = [x(p) - centre, 1, 0...]: r < d the centred value,
// r = d the constant 1, r > d zero (padding); an excluded pixel is a zero vector.
//
// Cost per spectrum (d = 101, 7 x 7 blocks, 28 in the triangle): 28 x 33 loads, mostly from
// cache (each pixel's 404 bytes come from memory once per chunk), 28 x 512 = 14.3 kFLOP (the
// padding to 112 rows included). H100, 2e7 spectra: 2.9e11 FLOP -> 4.3 ms at 67 TFLOP/s FP32,
// but one invocation per block and chunk holds 128 floats of accumulators (spills on a GPU);
// on a GPU pca_cov is the kernel to use.
// Accuracy: float32 products of centred values, summed per invocation in blocks of 16 pixels
// (an inner sum of <= 16 terms, then added to the chunk sum of <= chunk_px / 16 terms);
// pca_reduce adds chunks in blocks of 16; the host adds tiles in float64 — the same
// blocking as pca_cov's. CPU twin: pcaGramCpu in src/cpu/pca.ts (float64 throughout).

@group(0) @binding(1) var<storage, read> cube: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
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

// Writes 4 x 4 tile (a, b) of this chunk's partials (rows r0..r3), if it is in the triangle.
fn put(chunk: u32, a: u32, b: u32, r0: vec4f, r1: vec4f, r2: vec4f, r3: vec4f) {
  if (a >= params.nt || b >= params.nt || b < a) { return; }
  let o = (chunk * params.entries + tile4(a, b) * 16u) / 4u;
  partials[o] = r0;
  partials[o + 1u] = r1;
  partials[o + 2u] = r2;
  partials[o + 3u] = r3;
}

// Per-row constants of rows r0..r0+3: offset of the (clamped) row in cube, centre, weight
// (1 below d, else 0) and the constant (1 at row d, else 0): a = (x - c) * w + k.
struct Rows {
  off: vec4u,
  c: vec4f,
  w: vec4f,
  k: vec4f,
}

fn rows(r0: u32) -> Rows {
  let d = params.d;
  let r = vec4u(r0, r0 + 1u, r0 + 2u, r0 + 3u);
  let rc = min(r, vec4u(d - 1u));
  var out: Rows;
  out.off = rc * params.n_pixels;
  out.c = vec4f(centre[rc.x], centre[rc.y], centre[rc.z], centre[rc.w]);
  out.w = select(vec4f(0.0), vec4f(1.0), r < vec4u(d));
  out.k = select(vec4f(0.0), vec4f(1.0), r == vec4u(d));
  return out;
}

fn load4(R: Rows, p: u32, ok: bool) -> vec4f {
  let x = vec4f(cube[R.off.x + p], cube[R.off.y + p], cube[R.off.z + p], cube[R.off.w + p]);
  // select, not a product with the mask: an excluded pixel may hold NaN or Inf.
  return select(vec4f(0.0), (x - R.c) * R.w + R.k, ok);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let g = linear_index(gid, nwg);
  if (g >= params.n_chunks * params.n_big) { return; }
  let chunk_i = g / params.n_big;
  let q = g % params.n_big;
  let bij = big_blocks(q);
  let ri = 4u * DQ * bij.x;
  let rj = 4u * DQ * bij.y;
  // Quarters past DQ are never read: DQ is a constant, so the compiler drops their code.
  let R0 = rows(ri + 0u);
  let C0 = rows(rj + 0u);
  let R1 = rows(ri + 4u);
  let C1 = rows(rj + 4u);
  let R2 = rows(ri + 8u);
  let C2 = rows(rj + 8u);
  let R3 = rows(ri + 12u);
  let C3 = rows(rj + 12u);
  let p_begin = chunk_i * params.chunk;
  let p_end = min(p_begin + params.chunk, params.n_pixels);
  var o0_0 = vec4f(0.0); var o0_1 = vec4f(0.0); var o0_2 = vec4f(0.0); var o0_3 = vec4f(0.0);
  var o1_0 = vec4f(0.0); var o1_1 = vec4f(0.0); var o1_2 = vec4f(0.0); var o1_3 = vec4f(0.0);
  var o2_0 = vec4f(0.0); var o2_1 = vec4f(0.0); var o2_2 = vec4f(0.0); var o2_3 = vec4f(0.0);
  var o3_0 = vec4f(0.0); var o3_1 = vec4f(0.0); var o3_2 = vec4f(0.0); var o3_3 = vec4f(0.0);
  var o4_0 = vec4f(0.0); var o4_1 = vec4f(0.0); var o4_2 = vec4f(0.0); var o4_3 = vec4f(0.0);
  var o5_0 = vec4f(0.0); var o5_1 = vec4f(0.0); var o5_2 = vec4f(0.0); var o5_3 = vec4f(0.0);
  var o6_0 = vec4f(0.0); var o6_1 = vec4f(0.0); var o6_2 = vec4f(0.0); var o6_3 = vec4f(0.0);
  var o7_0 = vec4f(0.0); var o7_1 = vec4f(0.0); var o7_2 = vec4f(0.0); var o7_3 = vec4f(0.0);
  var o8_0 = vec4f(0.0); var o8_1 = vec4f(0.0); var o8_2 = vec4f(0.0); var o8_3 = vec4f(0.0);
  var o9_0 = vec4f(0.0); var o9_1 = vec4f(0.0); var o9_2 = vec4f(0.0); var o9_3 = vec4f(0.0);
  var o10_0 = vec4f(0.0); var o10_1 = vec4f(0.0); var o10_2 = vec4f(0.0); var o10_3 = vec4f(0.0);
  var o11_0 = vec4f(0.0); var o11_1 = vec4f(0.0); var o11_2 = vec4f(0.0); var o11_3 = vec4f(0.0);
  var o12_0 = vec4f(0.0); var o12_1 = vec4f(0.0); var o12_2 = vec4f(0.0); var o12_3 = vec4f(0.0);
  var o13_0 = vec4f(0.0); var o13_1 = vec4f(0.0); var o13_2 = vec4f(0.0); var o13_3 = vec4f(0.0);
  var o14_0 = vec4f(0.0); var o14_1 = vec4f(0.0); var o14_2 = vec4f(0.0); var o14_3 = vec4f(0.0);
  var o15_0 = vec4f(0.0); var o15_1 = vec4f(0.0); var o15_2 = vec4f(0.0); var o15_3 = vec4f(0.0);
  for (var p1 = p_begin; p1 < p_end; p1 += 16u) {
    var i0_0 = vec4f(0.0); var i0_1 = vec4f(0.0); var i0_2 = vec4f(0.0); var i0_3 = vec4f(0.0);
    var i1_0 = vec4f(0.0); var i1_1 = vec4f(0.0); var i1_2 = vec4f(0.0); var i1_3 = vec4f(0.0);
    var i2_0 = vec4f(0.0); var i2_1 = vec4f(0.0); var i2_2 = vec4f(0.0); var i2_3 = vec4f(0.0);
    var i3_0 = vec4f(0.0); var i3_1 = vec4f(0.0); var i3_2 = vec4f(0.0); var i3_3 = vec4f(0.0);
    var i4_0 = vec4f(0.0); var i4_1 = vec4f(0.0); var i4_2 = vec4f(0.0); var i4_3 = vec4f(0.0);
    var i5_0 = vec4f(0.0); var i5_1 = vec4f(0.0); var i5_2 = vec4f(0.0); var i5_3 = vec4f(0.0);
    var i6_0 = vec4f(0.0); var i6_1 = vec4f(0.0); var i6_2 = vec4f(0.0); var i6_3 = vec4f(0.0);
    var i7_0 = vec4f(0.0); var i7_1 = vec4f(0.0); var i7_2 = vec4f(0.0); var i7_3 = vec4f(0.0);
    var i8_0 = vec4f(0.0); var i8_1 = vec4f(0.0); var i8_2 = vec4f(0.0); var i8_3 = vec4f(0.0);
    var i9_0 = vec4f(0.0); var i9_1 = vec4f(0.0); var i9_2 = vec4f(0.0); var i9_3 = vec4f(0.0);
    var i10_0 = vec4f(0.0); var i10_1 = vec4f(0.0); var i10_2 = vec4f(0.0); var i10_3 = vec4f(0.0);
    var i11_0 = vec4f(0.0); var i11_1 = vec4f(0.0); var i11_2 = vec4f(0.0); var i11_3 = vec4f(0.0);
    var i12_0 = vec4f(0.0); var i12_1 = vec4f(0.0); var i12_2 = vec4f(0.0); var i12_3 = vec4f(0.0);
    var i13_0 = vec4f(0.0); var i13_1 = vec4f(0.0); var i13_2 = vec4f(0.0); var i13_3 = vec4f(0.0);
    var i14_0 = vec4f(0.0); var i14_1 = vec4f(0.0); var i14_2 = vec4f(0.0); var i14_3 = vec4f(0.0);
    var i15_0 = vec4f(0.0); var i15_1 = vec4f(0.0); var i15_2 = vec4f(0.0); var i15_3 = vec4f(0.0);
    let p2 = min(p1 + 16u, p_end);
    for (var p = p1; p < p2; p++) {
      let ok = mask[p] > 0.5;
      var a0 = load4(R0, p, ok); var a1 = vec4f(0.0); var a2 = vec4f(0.0); var a3 = vec4f(0.0);
      var b0 = load4(C0, p, ok); var b1 = vec4f(0.0); var b2 = vec4f(0.0); var b3 = vec4f(0.0);
      if (DQ >= 2u) { a1 = load4(R1, p, ok); b1 = load4(C1, p, ok); }
      if (DQ >= 4u) { a2 = load4(R2, p, ok); b2 = load4(C2, p, ok); a3 = load4(R3, p, ok); b3 = load4(C3, p, ok); }
      i0_0 += a0.x * b0; i1_0 += a0.y * b0; i2_0 += a0.z * b0; i3_0 += a0.w * b0;
      if (DQ >= 2u) { i0_1 += a0.x * b1; i1_1 += a0.y * b1; i2_1 += a0.z * b1; i3_1 += a0.w * b1; }
      if (DQ >= 4u) { i0_2 += a0.x * b2; i1_2 += a0.y * b2; i2_2 += a0.z * b2; i3_2 += a0.w * b2; }
      if (DQ >= 4u) { i0_3 += a0.x * b3; i1_3 += a0.y * b3; i2_3 += a0.z * b3; i3_3 += a0.w * b3; }
      if (DQ >= 2u) { i4_0 += a1.x * b0; i5_0 += a1.y * b0; i6_0 += a1.z * b0; i7_0 += a1.w * b0; }
      if (DQ >= 2u) { i4_1 += a1.x * b1; i5_1 += a1.y * b1; i6_1 += a1.z * b1; i7_1 += a1.w * b1; }
      if (DQ >= 4u) { i4_2 += a1.x * b2; i5_2 += a1.y * b2; i6_2 += a1.z * b2; i7_2 += a1.w * b2; }
      if (DQ >= 4u) { i4_3 += a1.x * b3; i5_3 += a1.y * b3; i6_3 += a1.z * b3; i7_3 += a1.w * b3; }
      if (DQ >= 4u) { i8_0 += a2.x * b0; i9_0 += a2.y * b0; i10_0 += a2.z * b0; i11_0 += a2.w * b0; }
      if (DQ >= 4u) { i8_1 += a2.x * b1; i9_1 += a2.y * b1; i10_1 += a2.z * b1; i11_1 += a2.w * b1; }
      if (DQ >= 4u) { i8_2 += a2.x * b2; i9_2 += a2.y * b2; i10_2 += a2.z * b2; i11_2 += a2.w * b2; }
      if (DQ >= 4u) { i8_3 += a2.x * b3; i9_3 += a2.y * b3; i10_3 += a2.z * b3; i11_3 += a2.w * b3; }
      if (DQ >= 4u) { i12_0 += a3.x * b0; i13_0 += a3.y * b0; i14_0 += a3.z * b0; i15_0 += a3.w * b0; }
      if (DQ >= 4u) { i12_1 += a3.x * b1; i13_1 += a3.y * b1; i14_1 += a3.z * b1; i15_1 += a3.w * b1; }
      if (DQ >= 4u) { i12_2 += a3.x * b2; i13_2 += a3.y * b2; i14_2 += a3.z * b2; i15_2 += a3.w * b2; }
      if (DQ >= 4u) { i12_3 += a3.x * b3; i13_3 += a3.y * b3; i14_3 += a3.z * b3; i15_3 += a3.w * b3; }
    }
    o0_0 += i0_0; o0_1 += i0_1; o0_2 += i0_2; o0_3 += i0_3;
    o1_0 += i1_0; o1_1 += i1_1; o1_2 += i1_2; o1_3 += i1_3;
    o2_0 += i2_0; o2_1 += i2_1; o2_2 += i2_2; o2_3 += i2_3;
    o3_0 += i3_0; o3_1 += i3_1; o3_2 += i3_2; o3_3 += i3_3;
    o4_0 += i4_0; o4_1 += i4_1; o4_2 += i4_2; o4_3 += i4_3;
    o5_0 += i5_0; o5_1 += i5_1; o5_2 += i5_2; o5_3 += i5_3;
    o6_0 += i6_0; o6_1 += i6_1; o6_2 += i6_2; o6_3 += i6_3;
    o7_0 += i7_0; o7_1 += i7_1; o7_2 += i7_2; o7_3 += i7_3;
    o8_0 += i8_0; o8_1 += i8_1; o8_2 += i8_2; o8_3 += i8_3;
    o9_0 += i9_0; o9_1 += i9_1; o9_2 += i9_2; o9_3 += i9_3;
    o10_0 += i10_0; o10_1 += i10_1; o10_2 += i10_2; o10_3 += i10_3;
    o11_0 += i11_0; o11_1 += i11_1; o11_2 += i11_2; o11_3 += i11_3;
    o12_0 += i12_0; o12_1 += i12_1; o12_2 += i12_2; o12_3 += i12_3;
    o13_0 += i13_0; o13_1 += i13_1; o13_2 += i13_2; o13_3 += i13_3;
    o14_0 += i14_0; o14_1 += i14_1; o14_2 += i14_2; o14_3 += i14_3;
    o15_0 += i15_0; o15_1 += i15_1; o15_2 += i15_2; o15_3 += i15_3;
  }
  let a = DQ * bij.x;
  let b = DQ * bij.y;
  put(chunk_i, a + 0u, b + 0u, o0_0, o1_0, o2_0, o3_0);
  if (DQ >= 2u) { put(chunk_i, a + 0u, b + 1u, o0_1, o1_1, o2_1, o3_1); }
  if (DQ >= 4u) { put(chunk_i, a + 0u, b + 2u, o0_2, o1_2, o2_2, o3_2); }
  if (DQ >= 4u) { put(chunk_i, a + 0u, b + 3u, o0_3, o1_3, o2_3, o3_3); }
  if (DQ >= 2u) { put(chunk_i, a + 1u, b + 0u, o4_0, o5_0, o6_0, o7_0); }
  if (DQ >= 2u) { put(chunk_i, a + 1u, b + 1u, o4_1, o5_1, o6_1, o7_1); }
  if (DQ >= 4u) { put(chunk_i, a + 1u, b + 2u, o4_2, o5_2, o6_2, o7_2); }
  if (DQ >= 4u) { put(chunk_i, a + 1u, b + 3u, o4_3, o5_3, o6_3, o7_3); }
  if (DQ >= 4u) { put(chunk_i, a + 2u, b + 0u, o8_0, o9_0, o10_0, o11_0); }
  if (DQ >= 4u) { put(chunk_i, a + 2u, b + 1u, o8_1, o9_1, o10_1, o11_1); }
  if (DQ >= 4u) { put(chunk_i, a + 2u, b + 2u, o8_2, o9_2, o10_2, o11_2); }
  if (DQ >= 4u) { put(chunk_i, a + 2u, b + 3u, o8_3, o9_3, o10_3, o11_3); }
  if (DQ >= 4u) { put(chunk_i, a + 3u, b + 0u, o12_0, o13_0, o14_0, o15_0); }
  if (DQ >= 4u) { put(chunk_i, a + 3u, b + 1u, o12_1, o13_1, o14_1, o15_1); }
  if (DQ >= 4u) { put(chunk_i, a + 3u, b + 2u, o12_2, o13_2, o14_2, o15_2); }
  if (DQ >= 4u) { put(chunk_i, a + 3u, b + 3u, o12_3, o13_3, o14_3, o15_3); }
}
