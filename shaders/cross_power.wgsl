// cross_power: the normalised cross-power spectrum of a reference spectrum F and a moving
// spectrum G: X = conj(F) G, divided by |X| for phase correlation (mode CP_PHASE), times an
// optional Gaussian high-pass 1 - exp(-f^2 / (2 s^2)), f in cycles per pixel (highpass = s,
// 0 = off).
//
// Bindings: 0 params, 1 f: vec2f [ny][nx], 2 g: vec2f [ny][nx], 3 x: vec2f [ny][nx] (out).
// One invocation = one frequency bin. Centred frequencies: k for k < n/2, else k - n.
// Accuracy: float32; |X| by a scaled hypot so large spectra neither overflow nor underflow.
// CPU twin: src/cpu/cross_power.ts.

@group(0) @binding(1) var<storage, read> f: array<vec2f>;
@group(0) @binding(2) var<storage, read> g: array<vec2f>;
@group(0) @binding(3) var<storage, read_write> x: array<vec2f>;

fn centred(k: u32, n: u32) -> f32 {
  return select(f32(k) - f32(n), f32(k), k < n / 2u);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n_invocations) { return; }
  let a = f[i];
  let b = g[i];
  var v = vec2f(a.x * b.x + a.y * b.y, a.x * b.y - a.y * b.x);
  if (params.mode == CP_PHASE) {
    let s = max(abs(v.x), abs(v.y));
    if (s > 0.0) {
      let u = v / s;
      v = u / sqrt(dot(u, u));
    } else {
      v = vec2f(0.0, 0.0);
    }
  }
  if (params.highpass > 0.0) {
    let fy = centred(i / params.nx, params.ny) / f32(params.ny);
    let fx = centred(i % params.nx, params.nx) / f32(params.nx);
    v = v * (1.0 - exp(-(fx * fx + fy * fy) / (2.0 * params.highpass * params.highpass)));
  }
  x[i] = v;
}
