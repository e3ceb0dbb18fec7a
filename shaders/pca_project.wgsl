// pca_project: scores on the first n principal components and the reconstruction error.
//
// Bindings: 0 params (uniform, generated), 1 cube: the tile, energy-major f32[d][P],
//           2 basis: f32[d + n*d] = the mean spectrum, then component k at [d + k*d, d + (k+1)*d)
//             (unit vectors, float64 on the host rounded to f32),
//           3 out: f32[n + 1][P]: rows 0..n-1 the scores, row n the RMS reconstruction error.
// One invocation = one pixel p: y = x - mean; score_k = <y, v_k>; then, in a second sweep,
// the residual r = y - sum_k score_k v_k and the error sqrt(mean_e r_e^2). A pixel with any
// value that pca_mask would exclude (non-finite, or |x| >= params.max_abs) gets NaN in every row.
// Accuracy: the residual is formed value by value (not as |y|^2 - sum score^2, which would
// cancel catastrophically in f32 when the residual is small). n <= PCA_MAX_COMPONENTS (the
// private score array). CPU twin: pcaProjectCpu in src/cpu/pca.ts.
// Cost on an H100 (3.35 TB/s, 67 TFLOP/s FP32), 2e7 spectra x 101 energies, n = 3: per
// spectrum 404 B read, (n + 1) x 4 B written, ~2 d (n + 1) FLOP = 0.8 kFLOP: memory-bound,
// 8.4 GB -> 2.5 ms.

@group(0) @binding(1) var<storage, read> cube: array<f32>;
@group(0) @binding(2) var<storage, read> basis: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = linear_index(gid, nwg);
  let P = params.n_invocations;
  if (p >= P) { return; }
  let d = params.d;
  let n = params.n_comp;
  var score: array<f32, PCA_MAX_COMPONENTS>;
  for (var e = 0u; e < d; e++) {
    let x = cube[e * P + p];
    if (!is_finite_f32(x) || abs(x) >= params.max_abs) {
      for (var k = 0u; k <= n; k++) { out[k * P + p] = nan_f32(); }
      return;
    }
    let y = x - basis[e];
    for (var k = 0u; k < n; k++) { score[k] += y * basis[d + k * d + e]; }
  }
  var r2 = 0.0;
  for (var e = 0u; e < d; e++) {
    var r = cube[e * P + p] - basis[e];
    for (var k = 0u; k < n; k++) { r -= score[k] * basis[d + k * d + e]; }
    r2 += r * r;
  }
  for (var k = 0u; k < n; k++) { out[k * P + p] = score[k]; }
  out[n * P + p] = sqrt(r2 / f32(d));
}
