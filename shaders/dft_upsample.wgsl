// dft_upsample: the inverse DFT of a cross-power spectrum on a size x size grid of shifts at
// 1/factor pixel, by the matrix-multiply DFT of Guizar-Sicairos, Thurman & Fienup (Opt.
// Lett. 33, 156, 2008), in two stages (uniform `stage`; the 2-D kernel is separable):
//   stage 0: T[ky][j] = sum_kx X[ky][kx] K[kx][j],   K[kx][j] = exp(+2 pi i kx' (tx0 + j) / (nx factor))
//   stage 1: R[a][j]  = scale * sum_ky T[ky][j] K[ky][a],   K[ky][a] = exp(+2 pi i ky' (ty0 + a) / (ny factor))
// The kernel matrices K ([n][size], complex) come from the host, computed in float64 with
// the phase k' t reduced modulo n * factor exactly (src/cpu/dft_upsample.ts upsampleKernel)
// and rounded once, so there is no sin/cos here and the angle's accuracy does not depend on
// the image size.
//
// Bindings: 0 params, 1 src: vec2f (X [ny][nx] or T [ny][size]), 2 dst: vec2f (T or R),
//           3 kern: vec2f [n][size].
// One invocation = one output value, a sum over nx (stage 0) or ny (stage 1) products;
// neighbouring invocations (consecutive j) read the same src value and consecutive kern values.
// Accuracy: float32 sums of n terms. CPU twin: src/cpu/dft_upsample.ts.

@group(0) @binding(1) var<storage, read> src: array<vec2f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec2f>;
@group(0) @binding(3) var<storage, read> kern: array<vec2f>;

fn cmul(a: vec2f, b: vec2f) -> vec2f {
  return vec2f(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n_invocations) { return; }
  let S = params.size;
  let row = i / S;
  let j = i % S;
  var acc = vec2f(0.0, 0.0);
  if (params.stage == 0u) {
    let base = row * params.nx;
    for (var k = 0u; k < params.nx; k++) {
      acc += cmul(src[base + k], kern[k * S + j]);
    }
  } else {
    for (var k = 0u; k < params.ny; k++) {
      acc += cmul(src[k * S + j], kern[k * S + row]);
    }
  }
  dst[i] = acc * params.scale;
}
