// pca_cov: per-workgroup partial sums of the augmented Gram matrix of centred spectra,
// the tiled reduction behind the PCA mean and covariance (no float atomics).
//
// Bindings: 0 params (uniform, generated),
//           1 cube: the tile, energy-major f32[d][n_pixels],
//           2 mask: f32[n_pixels] from pca_mask.wgsl (1 = every value finite),
//           3 centre: f32[d], a provisional mean chosen on the host,
//           4 partials: f32[n_groups][tb*tb], one tb x tb block per workgroup.
// The augmented vector of pixel p is a(p) = [x(p) - centre, 1] (d + 1 rows; rows beyond d
// and excluded pixels read as 0). Its Gram matrix G = sum_p a a^T holds, in one pass,
//   G[0:d, 0:d] = sum (x-c)(x-c)^T,   G[0:d, d] = sum (x-c),   G[d, d] = n included.
// The (d+1)-row index range is cut into nb blocks of tb rows (tb = 4, 8 or 16, so a block
// pair is tb*tb <= 256 entries); workgroup w = chunk * n_pairs + pair handles one upper-
// triangular block pair (bi <= bj) over one chunk of `chunk` pixels. Per batch of
// `batch` = COV_TILE / tb pixels, the workgroup stages both blocks' rows in workgroup
// memory; invocation t owns entry e = t % (tb*tb) and sums the pixels b = s, s+S, ... of
// the batch (slice s = t / (tb*tb), S = COV_WG / (tb*tb) slices); slices are added at the end.
// Accuracy: data are centred on a provisional mean, so the sums carry no large offset;
// float32 sums are blocked (per batch, then per MID_BATCHES batches, then per chunk), so
// each addition adds to a sum of at most ~max(batch, MID_BATCHES, chunk/batch/MID_BATCHES)
// terms. The host adds the partials of all workgroups and tiles in float64 (src/kernels/pca.ts).
// CPU twin: pcaGramCpu in src/cpu/pca.ts (float64 throughout).

@group(0) @binding(1) var<storage, read> cube: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> centre: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

// Rows are stored with a stride of batch + 1: with stride `batch` (a multiple of 32) the
// tb different rows one warp reads would all fall in the same shared-memory bank.
var<workgroup> rows_a: array<f32, COV_TILE_PADDED>;
var<workgroup> rows_b: array<f32, COV_TILE_PADDED>;
var<workgroup> red: array<f32, COV_WG>;

// Row r of the augmented vector of pixel p (0 past the chunk end, past row d, or excluded).
fn aug(r: u32, p: u32, p_end: u32) -> f32 {
  if (p >= p_end || r > params.d) { return 0.0; }
  if (mask[p] < 0.5) { return 0.0; }
  if (r == params.d) { return 1.0; }
  return cube[r * params.n_pixels + p] - centre[r];
}

// Block pair number q (row-major over the upper triangle, diagonal included) -> (bi, bj).
fn pair_blocks(q: u32) -> vec2u {
  var bi = 0u;
  var rem = q;
  loop {
    let in_row = params.nb - bi;
    if (rem < in_row) { break; }
    rem -= in_row;
    bi++;
  }
  return vec2u(bi, bi + rem);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wgid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  // Workgroup-uniform: the whole workgroup leaves together, before any barrier.
  let w = wgid.y * nwg.x + wgid.x;
  if (w >= params.n_groups) { return; }
  let chunk_i = w / params.n_pairs;
  let bp = pair_blocks(w % params.n_pairs);
  let tb = params.tb;
  let tt = tb * tb;
  let S = COV_WG / tt;
  let e = t % tt;
  let s = t / tt;
  let i = e / tb;
  let j = e % tb;
  let B = params.batch;
  let stride = B + 1u;
  let p_begin = chunk_i * params.chunk;
  let p_end = min(p_begin + params.chunk, params.n_pixels);

  var outer = 0.0;
  var mid = 0.0;
  var n_mid = 0u;
  for (var p0 = p_begin; p0 < p_end; p0 += B) {
    for (var q = t; q < COV_TILE; q += COV_WG) {
      let r = q / B;
      let b = q % B;
      rows_a[r * stride + b] = aug(bp.x * tb + r, p0 + b, p_end);
      rows_b[r * stride + b] = aug(bp.y * tb + r, p0 + b, p_end);
    }
    workgroupBarrier();
    var inner = 0.0;
    for (var b = s; b < B; b += S) {
      inner += rows_a[i * stride + b] * rows_b[j * stride + b];
    }
    workgroupBarrier();
    mid += inner;
    n_mid++;
    if (n_mid == MID_BATCHES) {
      outer += mid;
      mid = 0.0;
      n_mid = 0u;
    }
  }
  outer += mid;

  red[t] = outer;
  workgroupBarrier();
  if (s == 0u) {
    var acc = 0.0;
    for (var k = 0u; k < S; k++) { acc += red[k * tt + e]; }
    partials[w * tt + e] = acc;
  }
}
