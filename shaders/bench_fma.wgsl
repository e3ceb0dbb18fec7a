// bench_fma: the device's achievable FP32 rate, for the benchmark floors.
// Bindings: 0 params (generated), 1 out: f32[n_invocations].
// One invocation runs `iters` iterations of 8 independent fused multiply-adds (two vec4
// FMAs = 16 flops per iteration): enough independent chains to hide FMA latency.
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = linear_index(gid, nwg);
  if (t >= params.n_invocations) { return; }
  let s = f32(t) * 1e-9;
  var a = vec4f(s, s + 1.0, s + 2.0, s + 3.0);
  var b = vec4f(s + 4.0, s + 5.0, s + 6.0, s + 7.0);
  let m = vec4f(0.999999);
  let c = vec4f(1e-7);
  for (var i = 0u; i < params.iters; i++) {
    a = fma(a, m, c);
    b = fma(b, m, c);
  }
  out[t] = a.x + a.y + a.z + a.w + b.x + b.y + b.z + b.w;
}
