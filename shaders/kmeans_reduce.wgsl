// kmeans_reduce: adds one tile's per-workgroup partial sums (kmeans_partial.wgsl) into the
// tile's k x (d + 2) cluster sums, on the device, so the host reads back k(d + 2) floats per
// tile instead of up to KM_TARGET_PARTIALS (1M) and adds nothing but the tiles.
//
// Bindings: 0 params (uniform, generated), 1 partials: f32[n_groups][k][f_wg] as written by
//           kmeans_partial (group w = chunk * n_fblocks + fb), 2 sums: f32[...]: entry (j, f)
//           of this tile at sums[out_offset + j * m + f], m = d + 2.
// One workgroup per entry (j, f) (n_entries = k * m workgroups of KM_WG): invocation t adds
// chunks t, t + KM_WG, ... in order, then a fixed tree reduction in workgroup memory;
// invocation 0 writes. The order is fixed, so the result is deterministic.
// Cost (H100, 2e7 pixels x 101 features, k = 20): reads n_chunks x k x m partials per tile
// (~4 MiB), ~1 us of bandwidth; bound by launch latency, negligible beside kmeans_partial.
// Accuracy: float32 sums of n_chunks partials (each a sum of a few hundred values); the tree
// keeps the error ~log2(n_chunks) ulp; the host adds the tiles in float64.
// CPU side: the engines compare against kmeansPartialCpu (src/cpu/kmeans.ts).

@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;

var<workgroup> acc: array<f32, KM_WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wgid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  // Workgroup-uniform: the whole workgroup leaves together, before any barrier.
  let w = wgid.y * nwg.x + wgid.x;
  if (w >= params.n_entries) { return; }
  let m = params.m;
  let j = w / m;
  let f = w % m;
  let fb = f / params.f_wg;
  let q = f % params.f_wg;
  var s = 0.0;
  for (var c = t; c < params.n_chunks; c += KM_WG) {
    s += partials[((c * params.n_fblocks + fb) * params.k + j) * params.f_wg + q];
  }
  acc[t] = s;
  workgroupBarrier();
  for (var h = KM_WG / 2u; h > 0u; h = h / 2u) {
    if (t < h) { acc[t] += acc[t + h]; }
    workgroupBarrier();
  }
  if (t == 0u) { sums[params.out_offset + w] = acc[0]; }
}
