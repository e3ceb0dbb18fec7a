// bench_stream: the device's achievable read bandwidth, for the benchmark floors.
// Bindings: 0 params (generated), 1 src: f32[n_vec4 * 4] as vec4, 2 out: f32[n_invocations].
// One invocation sums `per_thread` vec4s strided by the grid size (coalesced), so the
// kernel does almost nothing but read; the sum is written so the reads cannot be elided.
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear_index(gid, nwg);
  if (t >= params.n_invocations) { return; }
  var acc = vec4f(0.0);
  for (var i = 0u; i < params.per_thread; i++) {
    let j = i * params.n_invocations + t;
    if (j < params.n_vec4) { acc += src[j]; }
  }
  out[t] = acc.x + acc.y + acc.z + acc.w;
}
