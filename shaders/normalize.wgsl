// normalize: per-pixel pre-edge line, post-edge polynomial, edge step and pre-edge noise.
//
// Bindings: 0 params (uniform, generated), 1 x: energies - e0 in eV (f32[nE]),
//           2 cube: the tile, energy-major f32[nE][P], 3 out: f32[NORM_ROWS][P].
// One invocation = one pixel p. It reads its spectrum twice over the pre-edge window (fit,
// then residuals) and once over the post-edge window; neighbouring invocations read
// neighbouring addresses at every energy (coalesced).
// Accuracy: the fits use basis variables u, v in [-1, 1] (window centre/half-width from the
// host), so the 2x2/3x3 normal equations are well conditioned in f32. Non-finite points
// (NaN from masked transmission) are skipped. CPU twin: src/cpu/normalize.ts.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> cube: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn put(row: u32, p: u32, v: f32) {
  out[row * params.n_invocations + p] = v;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = linear_index(gid, nwg);
  let P = params.n_invocations;
  if (p >= P) { return; }

  // Pre-edge line.
  var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var sy = 0.0; var suy = 0.0;
  for (var i = params.pre_i0; i < params.pre_i1; i++) {
    let y = cube[i * P + p];
    if (!is_finite_f32(y)) { continue; }
    let u = (x[i] - params.pre_centre) / params.pre_scale;
    s0 += 1.0; s1 += u; s2 += u * u; sy += y; suy += u * y;
  }

  // Post-edge polynomial: symmetric normal matrix m (row-major 3x3) and right side r.
  var m = array<f32, 9>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
  var r = array<f32, 3>(0.0, 0.0, 0.0);
  var n_post = 0u;
  let deg = params.post_degree;
  for (var i = params.post_i0; i < params.post_i1; i++) {
    let y = cube[i * P + p];
    if (!is_finite_f32(y)) { continue; }
    let v = (x[i] - params.post_centre) / params.post_scale;
    let b = array<f32, 3>(1.0, v, v * v);
    for (var a = 0u; a <= deg; a++) {
      r[a] += b[a] * y;
      for (var c = 0u; c <= deg; c++) { m[a * 3u + c] += b[a] * b[c]; }
    }
    n_post++;
  }

  // Solve the post-edge system: 2x2 directly, 3x3 by Cholesky.
  var c0 = 0.0; var c1 = 0.0; var c2 = 0.0;
  var ok = true;
  if (deg == 2u) {
    let l00 = sqrt(m[0]);
    let l10 = m[3] / l00;
    let l20 = m[6] / l00;
    let d1 = m[4] - l10 * l10;
    let l11 = sqrt(max(d1, 0.0));
    let l21 = (m[7] - l20 * l10) / l11;
    let d2 = m[8] - l20 * l20 - l21 * l21;
    let l22 = sqrt(max(d2, 0.0));
    ok = m[0] > 0.0 && d1 > SINGULAR_REL * m[0] && d2 > SINGULAR_REL * m[0];
    let z0 = r[0] / l00;
    let z1 = (r[1] - l10 * z0) / l11;
    let z2 = (r[2] - l20 * z0 - l21 * z1) / l22;
    c2 = z2 / l22;
    c1 = (z1 - l21 * c2) / l11;
    c0 = (z0 - l10 * c1 - l20 * c2) / l00;
  } else {
    let det2 = m[0] * m[4] - m[1] * m[3];
    ok = abs(det2) > SINGULAR_REL * m[0] * m[0];
    c0 = (m[4] * r[0] - m[1] * r[1]) / det2;
    c1 = (m[0] * r[1] - m[3] * r[0]) / det2;
  }

  let det = s0 * s2 - s1 * s1;
  if (s0 < 3.0 || n_post < deg + 2u || !(det > SINGULAR_REL * s0 * s0) || !ok) {
    put(NORM_STATUS, p, f32(STATUS_NO_DATA));
    for (var k = 1u; k < NORM_ROWS; k++) { put(k, p, nan_f32()); }
    return;
  }
  let a = (s2 * sy - s1 * suy) / det;
  let b = (s0 * suy - s1 * sy) / det;

  var rss = 0.0;
  for (var i = params.pre_i0; i < params.pre_i1; i++) {
    let y = cube[i * P + p];
    if (!is_finite_f32(y)) { continue; }
    let res = y - (a + b * (x[i] - params.pre_centre) / params.pre_scale);
    rss += res * res;
  }
  let noise = sqrt(rss / (s0 - 2.0));
  let pre_e0 = a + b * (0.0 - params.pre_centre) / params.pre_scale;
  let v0 = (0.0 - params.post_centre) / params.post_scale;
  let step = c0 + c1 * v0 + c2 * v0 * v0 - pre_e0;

  put(NORM_PRE_A, p, a);
  put(NORM_PRE_B, p, b);
  put(NORM_POST_C0, p, c0);
  put(NORM_POST_C1, p, c1);
  put(NORM_POST_C2, p, c2);
  put(NORM_STEP, p, step);
  put(NORM_NOISE, p, noise);
  put(NORM_STATUS, p, select(f32(STATUS_LOW_STEP), f32(STATUS_OK), step > params.mask_sigma * noise));
}
