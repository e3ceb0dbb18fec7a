// dft_upsample: the inverse DFT of a cross-power spectrum on a size x size grid of shifts at
// 1/factor pixel, by the matrix-multiply DFT of Guizar-Sicairos, Thurman & Fienup (Opt.
// Lett. 33, 156, 2008), in two stages (uniform `stage`) (the 2-D kernel is separable):
//   stage 0: T[ky][j] = sum_kx X[ky][kx] exp(+2 pi i kx' (t0 + j) / (nx factor)), j < size
//   stage 1: R[a][j]  = scale * sum_ky T[ky][j] exp(+2 pi i ky' (t0 + a) / (ny factor))
// t0 is the first sample's shift in 1/factor pixels (tx0 in stage 0, ty0 in stage 1).
//
// Bindings: 0 params, 1 src: vec2f (X [ny][nx] or T [ny][size]), 2 dst: vec2f (T or R).
// One invocation = one output value, a sum over nx (stage 0) or ny (stage 1) terms.
// Accuracy: the phase k' t is reduced modulo n * factor exactly in 32-bit integers
// (MAX_REGISTER_SIDE keeps it from overflowing), so the angle is in [0, 2 pi) to float32
// precision whatever the image size; sums in float32.
// CPU twin: src/cpu/dft_upsample.ts.

@group(0) @binding(1) var<storage, read> src: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec2f>;

fn centred_i(k: u32, n: u32) -> i32 {
  return select(i32(k) - i32(n), i32(k), k < n / 2u);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n_invocations) { return; }
  let S = params.size;
  let row = i / S;
  let j = i % S;
  var n: u32;
  var t: i32;
  if (params.stage == 0u) {
    n = params.nx;
    t = params.t0 + i32(j);
  } else {
    n = params.ny;
    t = params.t0 + i32(row);
  }
  let M = i32(n * params.factor);
  let inv = 6.283185307179586 / f32(M);
  var acc = vec2f(0.0, 0.0);
  for (var k = 0u; k < n; k++) {
    var p = (centred_i(k, n) * t) % M;
    if (p < 0) { p += M; }
    let ang = inv * f32(p);
    let c = cos(ang);
    let s = sin(ang);
    var v: vec2f;
    if (params.stage == 0u) {
      v = src[row * params.nx + k];
    } else {
      v = src[k * S + j];
    }
    acc += vec2f(v.x * c - v.y * s, v.x * s + v.y * c);
  }
  dst[i] = acc * params.scale;
}
