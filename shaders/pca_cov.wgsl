// pca_cov: the augmented Gram matrix of centred spectra as a tiled A^T A, one chunk of
// pixels per workgroup, with the partial sums of the workgroup's slices reduced in
// workgroup memory (no float atomics). pca_reduce.wgsl then adds the chunks on the device.
//
// Bindings: 0 params (uniform, generated),
//           1 cube: the tile, energy-major f32[d][n_pixels],
//           2 mask: f32[n_pixels] from pca_mask.wgsl (1 = every value usable),
//           3 centre: f32[d], a provisional mean chosen on the host,
//           4 partials: f32[n_chunks][n_tiles * 16]: per chunk, the 4 x 4 tiles of G's upper
//             triangle (tile q = (bi, bj), bi <= bj, row-major over the triangle), entry
//             (i, j) of tile q at q * 16 + i * 4 + j.
// The augmented vector of pixel p is a(p) = [x(p) - centre, 1], padded with zero rows to
// mp = 4 * nt rows; an excluded pixel is a zero vector. G = sum_p a a^T holds
//   G[0:d, 0:d] = sum (x-c)(x-c)^T,   G[0:d, d] = sum (x-c),   G[d, d] = n included.
// Workgroup w = chunk * n_tgroups + tg: tile group tg (tiles [tg * tpg, (tg+1) * tpg)) over
// pixels [chunk * chunk_px, ...). Per panel of `panel` pixels the workgroup stages all mp rows
// of the panel in workgroup memory (coalesced: consecutive invocations read consecutive
// pixels of one energy row), then invocation t = s * tpg + lt multiplies tile lt's 4 rows by
// its 4 columns over the panel pixels b = s, s + S, ... (slice s of S): 8 workgroup-memory
// loads per 16 FMAs, 16 accumulators in registers (4 vec4f), plus 16 for the panel sums.
// At the chunk's end the S slices are added in workgroup memory, 16 entries one at a time.
// CPU-emulated adapters (llvmpipe) use pca_cov_direct.wgsl instead (same sums and layout).
//
// Cost per spectrum (d = 101, mp = 104, T = 351 tiles): 4 * 101 B read once from global
// memory per tile group (1 group for mp <= 128), 2 * 16 * T = 11.2 kFLOP (about 2 (d+1)^2,
// the upper triangle plus padding). H100, 2e7 spectra: 8.1 GB -> 2.4 ms at 3.35 TB/s;
// 2.2e11 FLOP -> 3.4 ms at 67 TFLOP/s FP32: compute-bound, ~3-4 ms; the workgroup-memory
// traffic (8 loads per 16 FMA, from 13 KB staged) is below the SM's shared-memory bandwidth.
// Accuracy: data are centred on a provisional mean, so the sums carry no large offset;
// float32 sums are blocked: per panel (<= panel / S terms) into a panel sum, panel sums into
// the chunk sum (<= panels_per_chunk terms); pca_reduce adds chunks in blocks of 16; the host
// adds tiles in float64. CPU twin: pcaGramCpu in src/cpu/pca.ts (float64 throughout).

@group(0) @binding(1) var<storage, read> cube: array<f32>;
@group(0) @binding(2) var<storage, read> mask: array<f32>;
@group(0) @binding(3) var<storage, read> centre: array<f32>;
@group(0) @binding(4) var<storage, read_write> partials: array<f32>;

var<workgroup> panel_a: array<f32, COV_PANEL>;
var<workgroup> red: array<f32, COV_WG>;

// Row r of the augmented vector of pixel p (0 past the chunk end, past row d, or excluded).
fn aug(r: u32, p: u32, p_end: u32) -> f32 {
  if (p >= p_end || r > params.d) { return 0.0; }
  if (mask[p] < 0.5) { return 0.0; }
  if (r == params.d) { return 1.0; }
  return cube[r * params.n_pixels + p] - centre[r];
}

// Tile number q (row-major over the upper triangle of nt x nt tiles) -> (bi, bj).
fn tile_blocks(q: u32) -> vec2u {
  var bi = 0u;
  var rem = q;
  loop {
    let in_row = params.nt - bi;
    if (rem < in_row || bi + 1u >= params.nt) { break; }
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
  let chunk_i = w / params.n_tgroups;
  let tg = w % params.n_tgroups;
  let tpg = params.tpg;
  let S = params.slices;
  // Neighbouring invocations take neighbouring tiles.
  let lt = t % tpg;
  let s = t / tpg;
  let q = tg * tpg + lt;
  let works = s < S && q < params.n_tiles;
  let bij = tile_blocks(min(q, params.n_tiles - 1u));
  let B = params.panel;
  let mp = 4u * params.nt;
  let ra = 4u * bij.x * B;
  let rb = 4u * bij.y * B;
  let p_begin = chunk_i * params.chunk;
  let p_end = min(p_begin + params.chunk, params.n_pixels);

  var o0 = vec4f(0.0);
  var o1 = vec4f(0.0);
  var o2 = vec4f(0.0);
  var o3 = vec4f(0.0);
  for (var p0 = p_begin; p0 < p_end; p0 += B) {
    for (var k = t; k < mp * B; k += COV_WG) {
      let r = k / B;
      let b = k % B;
      panel_a[k] = aug(r, p0 + b, p_end);
    }
    workgroupBarrier();
    if (works) {
      var i0 = vec4f(0.0);
      var i1 = vec4f(0.0);
      var i2 = vec4f(0.0);
      var i3 = vec4f(0.0);
      for (var b = s; b < B; b += S) {
        let bv = vec4f(panel_a[rb + b], panel_a[rb + B + b], panel_a[rb + 2u * B + b], panel_a[rb + 3u * B + b]);
        i0 += panel_a[ra + b] * bv;
        i1 += panel_a[ra + B + b] * bv;
        i2 += panel_a[ra + 2u * B + b] * bv;
        i3 += panel_a[ra + 3u * B + b] * bv;
      }
      o0 += i0;
      o1 += i1;
      o2 += i2;
      o3 += i3;
    }
    workgroupBarrier();
  }

  // Add the slices: entry e of every tile, one entry at a time through `red`.
  let base = chunk_i * params.n_tiles * 16u;
  for (var e = 0u; e < 16u; e++) {
    let row = e / 4u;
    let col = e % 4u;
    var v = o0[col];
    if (row == 1u) { v = o1[col]; }
    if (row == 2u) { v = o2[col]; }
    if (row == 3u) { v = o3[col]; }
    red[t] = select(0.0, v, works);
    workgroupBarrier();
    if (s == 0u && q < params.n_tiles) {
      var acc = 0.0;
      for (var k = 0u; k < S; k++) { acc += red[k * tpg + lt]; }
      partials[base + q * 16u + e] = acc;
    }
    workgroupBarrier();
  }
}
