// pca_mask: which pixels take part in PCA: every value of the spectrum finite and of
// magnitude below params.max_abs (PCA_MAX_ABS, 1e18: larger values are not spectra, and
// their squares would overflow the float32 sums and poison the whole covariance).
//
// Bindings: 0 params (uniform, generated), 1 cube: the tile, energy-major f32[d][P],
//           2 mask: f32[P], 1 where all d values are usable, 0 otherwise.
// One invocation = one pixel. It stops at the first non-finite value, so a masked pixel
// (NaN from a failed transmission) costs little. The covariance kernel (pca_cov.wgsl) reads
// the mask instead of re-testing d values for every block of the covariance it builds.
// CPU twin: pcaGramCpu in src/cpu/pca.ts (same rule).
// Cost on an H100: per pixel 4d B read (stops at the first unusable value), 4 B written;
// memory-bound, 2e7 x 101: 2.4 ms (the covariance pass then re-reads the cube).

@group(0) @binding(1) var<storage, read> cube: array<f32>;
@group(0) @binding(2) var<storage, read_write> mask: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = linear_index(gid, nwg);
  let P = params.n_invocations;
  if (p >= P) { return; }
  var ok = 1.0;
  for (var e = 0u; e < params.d; e++) {
    let x = cube[e * P + p];
    if (!is_finite_f32(x) || abs(x) >= params.max_abs) { ok = 0.0; break; }
  }
  mask[p] = ok;
}
