// pca_reduce: adds the per-chunk partial Gram tiles of one tile of pixels (pca_cov.wgsl) on
// the device, so the host reads back n_entries floats per tile of pixels (one map for many
// tiles) instead of n_chunks x n_entries.
//
// Bindings: 0 params (uniform, generated), 1 partials: f32[n_chunks][n_entries],
//           2 out: f32[...]: entry e of this tile at out[out_offset + e].
// One invocation = one entry: it adds the chunks in blocks of 16 (an inner sum of 16
// terms, then the blocks), reading partials[c * n_entries + e]: consecutive invocations
// read consecutive addresses (coalesced). Fixed order: deterministic.
// Cost (H100, d = 101): n_chunks x 5616 floats per tile, a few MB: ~1 us of bandwidth.
// Accuracy: each float32 addition joins a sum of at most max(16, n_chunks / 16) terms.
// CPU twin: pcaGramCpu in src/cpu/pca.ts (float64).

@group(0) @binding(1) var<storage, read> partials: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let e = linear_index(gid, nwg);
  let n = params.n_entries;
  if (e >= n) { return; }
  var outer = 0.0;
  for (var c0 = 0u; c0 < params.n_chunks; c0 += 16u) {
    var inner = 0.0;
    let c1 = min(c0 + 16u, params.n_chunks);
    for (var c = c0; c < c1; c++) { inner += partials[c * n + e]; }
    outer += inner;
  }
  out[params.out_offset + e] = outer;
}
