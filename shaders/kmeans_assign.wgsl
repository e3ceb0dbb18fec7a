// kmeans_assign: nearest centre of each pixel (the assignment step of Lloyd's k-means).
//
// Bindings: 0 params (uniform, generated), 1 feat: the tile's raw features, feature-major
//           f32[d][P], 2 aux: f32[2d + d*kp + kp] = shift[d], inv_scale[d] (standardisation:
//           z = (x - shift) * inv_scale), centres transposed [d][kp] in z units (centre j,
//           feature f at 2d + f*kp + j; kp = k rounded up to KM_GROUP), active[kp] (1 = in use),
//           3 out: f32[KM_ROWS][P]: row KM_ROW_LABEL the centre index (-1 when a feature is
//           not finite: excluded), row KM_ROW_DIST2 the squared distance to it (NaN if excluded).
// One invocation = one pixel. Centres are taken KM_GROUP (8) at a time: one sweep over the
// features accumulates the 8 squared distances in two vec4 registers (fixed size, so they
// stay in registers; a running-sum array indexed by centre would live in slow private /
// local memory), so features are read ceil(k/8) times, coalesced across pixels; the
// centres are read by all invocations alike (broadcast). The first sweep also checks that
// every feature is finite. Ties go to the lower index, as in the CPU twin; inactive centres
// (not yet placed, or left empty with too few distinct points) are skipped.
// Accuracy: standardised values are O(1), so f32 distances carry a relative error of a
// few ulp times d; tests excuse label differences only where the CPU's best and second-best
// squared distances nearly tie. CPU twin: kmeansAssignCpu in src/cpu/kmeans.ts.
// Cost on an H100 (3.35 TB/s, 67 TFLOP/s FP32), 2e7 pixels: per pixel 4d B read once from
// DRAM (the ceil(k/8) sweeps after the first hit L2 for a tile that fits it), 8 B written;
// 3 d k FLOP. d = 101, k = 20: 8.2 GB -> 2.5 ms vs 1.2e11 FLOP -> 1.8 ms: memory-bound;
// d = 3, k = 6: 0.4 GB -> 0.1 ms, launch-bound.

@group(0) @binding(1) var<storage, read> feat: array<f32>;
@group(0) @binding(2) var<storage, read> aux: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = linear_index(gid, nwg);
  let P = params.n_invocations;
  if (p >= P) { return; }
  let d = params.d;
  let k = params.k;
  let kp = params.kp;
  let c0 = 2u * d;
  let a0 = c0 + d * kp;
  var best = -1;
  var best_v = 0.0;
  for (var j0 = 0u; j0 < k; j0 += KM_GROUP) {
    var lo = vec4f(0.0);
    var hi = vec4f(0.0);
    for (var f = 0u; f < d; f++) {
      let x = feat[f * P + p];
      if (j0 == 0u && !is_finite_f32(x)) {
        out[KM_ROW_LABEL * P + p] = -1.0;
        out[KM_ROW_DIST2 * P + p] = nan_f32();
        return;
      }
      let z = (x - aux[f]) * aux[d + f];
      let c = c0 + f * kp + j0;
      let tl = vec4f(z) - vec4f(aux[c], aux[c + 1u], aux[c + 2u], aux[c + 3u]);
      let th = vec4f(z) - vec4f(aux[c + 4u], aux[c + 5u], aux[c + 6u], aux[c + 7u]);
      lo += tl * tl;
      hi += th * th;
    }
    for (var i = 0u; i < KM_GROUP; i++) {
      let j = j0 + i;
      if (j >= k || aux[a0 + j] < 0.5) { continue; }
      let v = select(hi[i - 4u], lo[i], i < 4u);
      if (best < 0 || v < best_v) {
        best = i32(j);
        best_v = v;
      }
    }
  }
  out[KM_ROW_LABEL * P + p] = f32(best);
  out[KM_ROW_DIST2 * P + p] = select(nan_f32(), best_v, best >= 0);
}
