// corr_peak: the largest |c|^2 of a complex array, in two levels: each invocation scans
// PEAK_CHUNK consecutive values and writes its maximum and the index where it occurs (the
// first on ties; -1 when the chunk has no finite value); the host reduces the partials
// (src/cpu/corr_peak.ts reducePeak).
//
// Bindings: 0 params, 1 c: vec2f [n], 2 val: f32 [chunks] (out), 3 idx: u32 [chunks] (out).
// One invocation = one chunk. CPU twin: src/cpu/corr_peak.ts.

@group(0) @binding(1) var<storage, read> c: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> val: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let k = linear_index(gid, nwg);
  if (k >= params.n_invocations) { return; }
  var best = -1.0;
  var at = 0u;
  let end = min(params.n, (k + 1u) * PEAK_CHUNK);
  for (var i = k * PEAK_CHUNK; i < end; i++) {
    let v = c[i];
    let m = dot(v, v);
    if (is_finite_f32(m) && m > best) {
      best = m;
      at = i;
    }
  }
  val[k] = best;
  idx[k] = at;
}
