// shift_apply: removes each image's displacement (dy, dx), i.e. out(y, x) = in(y + dy, x + dx)
// where positive dy means the content had moved down (to larger row index).
//   mode SHIFT_FOURIER: src and dst are one spectrum [ny][nx] (complex, interleaved f32);
//     dst = src * exp(+2 pi i (ky' dy / ny + kx' dx / nx)), centred frequencies; the
//     inverse FFT of dst is the shifted image (periodic: the caller masks what wrapped).
//   modes SHIFT_BILINEAR, SHIFT_BICUBIC (Keys 1981, a = -0.5): src holds source rows
//     [src_y0, src_y0 + src_rows) of every energy, dst the output rows [y0, y0 + rows):
//     [e][r][x] each. An output is NaN when (y + dy, x + dx) lies outside [0, height-1] x
//     [0, width-1]; neighbours beyond the frame are clamped to its edge; NaN propagates.
//
// Bindings: 0 params, 1 src: f32, 2 dst: f32 (out), 3 shifts: f32 [nE][2] (dy, dx).
// One invocation = one frequency bin (Fourier; shift index `energy`) or one output pixel of
// one energy (interpolation). Accuracy: float32; the Fourier phase is reduced to [0, 1)
// cycles before the angle is formed. CPU twin: src/cpu/shift_apply.ts.

@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> shifts: array<f32>;

fn centred(k: u32, n: u32) -> f32 {
  return select(f32(k) - f32(n), f32(k), k < n / 2u);
}

fn keys(x: f32) -> f32 {
  let a = -0.5;
  let ax = abs(x);
  if (ax <= 1.0) { return ((a + 2.0) * ax - (a + 3.0)) * ax * ax + 1.0; }
  if (ax < 2.0) { return ((a * ax - 5.0 * a) * ax + 8.0 * a) * ax - 4.0 * a; }
  return 0.0;
}

fn src_at(e: u32, y: i32, x: i32) -> f32 {
  let W = i32(params.width);
  let yy = clamp(clamp(y, 0, i32(params.height) - 1), params.src_y0, params.src_y0 + i32(params.src_rows) - 1) - params.src_y0;
  let xx = clamp(x, 0, W - 1);
  return src[(e * params.src_rows + u32(yy)) * params.width + u32(xx)];
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = linear_index(gid, nwg);
  if (i >= params.n_invocations) { return; }
  if (params.mode == SHIFT_FOURIER) {
    let dy = shifts[2u * params.energy];
    let dx = shifts[2u * params.energy + 1u];
    let ky = i / params.width;
    let kx = i % params.width;
    let ph = centred(ky, params.height) * dy / f32(params.height) + centred(kx, params.width) * dx / f32(params.width);
    let ang = 6.283185307179586 * (ph - floor(ph));
    let c = cos(ang);
    let s = sin(ang);
    let re = src[2u * i];
    let im = src[2u * i + 1u];
    dst[2u * i] = re * c - im * s;
    dst[2u * i + 1u] = re * s + im * c;
    return;
  }
  let W = params.width;
  let per = params.rows * W;
  let e = i / per;
  let r = (i % per) / W;
  let x = i % W;
  let dy = shifts[2u * e];
  let dx = shifts[2u * e + 1u];
  let sy = f32(params.y0 + r) + dy;
  let sx = f32(x) + dx;
  if (!(sy >= 0.0 && sy <= f32(params.height - 1u) && sx >= 0.0 && sx <= f32(W - 1u))) {
    dst[i] = nan_f32();
    return;
  }
  let iy = i32(floor(sy));
  let ix = i32(floor(sx));
  let fy = sy - floor(sy);
  let fx = sx - floor(sx);
  var v = 0.0;
  if (params.mode == SHIFT_BILINEAR) {
    v = (1.0 - fy) * ((1.0 - fx) * src_at(e, iy, ix) + fx * src_at(e, iy, ix + 1))
      + fy * ((1.0 - fx) * src_at(e, iy + 1, ix) + fx * src_at(e, iy + 1, ix + 1));
  } else {
    let wy = vec4f(keys(1.0 + fy), keys(fy), keys(1.0 - fy), keys(2.0 - fy));
    let wx = vec4f(keys(1.0 + fx), keys(fx), keys(1.0 - fx), keys(2.0 - fx));
    for (var a = 0; a < 4; a++) {
      let row = vec4f(src_at(e, iy - 1 + a, ix - 1), src_at(e, iy - 1 + a, ix), src_at(e, iy - 1 + a, ix + 1), src_at(e, iy - 1 + a, ix + 2));
      v += wy[a] * dot(wx, row);
    }
  }
  dst[i] = v;
}
