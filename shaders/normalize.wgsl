// normalize: per-pixel Athena/larch pre-edge normalisation (xraylarch 0.9.58 pre_edge rules):
//  1. the pixel's own e0: maximum of the derivative (central differences on the real grid,
//     moving average over 2*smooth_half+1 points) in the edge window, refined by a parabola,
//     moved to the nearest grid energy (index_nearest); the nominal e0's grid energy when
//     there is no finite derivative;
//  2. windows measured from that energy: from the point at or below the start (index_of) up
//     to, not including, the point nearest the end (index_nearest), widened to 2 points;
//  3. pre-edge line, post-edge polynomial of mu - pre (degree 0, 1 or 2, one per run), edge
//     step = (post - pre) at the own e0, pre-edge noise (n - 2 degrees of freedom), status.
// The line and post - pre are written in the plan's basis (u, v; NormRow in
// src/kernels/layout.ts), whatever the pixel's windows.
//
// Bindings: 0 params (uniform, generated), 1 x: energies - e0 in eV (f32[nE]),
//           2 cube: the tile, energy-major f32[nE][P], 3 out: f32[NORM_ROWS][P].
// One invocation = one pixel p. It reads its spectrum over the edge window (derivative),
// twice over the pre-edge window and once over the post-edge window; neighbouring
// invocations read neighbouring addresses at every energy (coalesced).
// Accuracy: the fits use basis variables in [-1, 1] (the pixel's window centre/half-width), so
// the 2x2/3x3 normal equations are well conditioned in f32. Non-finite points are dropped for
// this pixel only. CPU twin: src/cpu/normalize.ts.
// Cost on an H100 (3.35 TB/s, 67 TFLOP/s FP32), 2e7 spectra x 101 energies: per spectrum
// ~404 B of the cube from DRAM (the windows re-read a few points from L1/L2) + 40 B of rows
// written; ~3 kFLOP (derivative window, two small least-squares sums, the residual).
// 8.9 GB -> 2.7 ms vs 6e10 FLOP -> 0.9 ms: memory-bound, ~3 ms. (The CPU backend fuses
// normalize and edge in one sweep, src/cpu/edge-fused.ts; on the GPU the second kernel
// re-reads the cube, which a fused kernel would save: ~2.4 ms of the pair's ~5.5 ms.)

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> cube: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn put(row: u32, p: u32, v: f32) {
  out[row * params.n_invocations + p] = v;
}

fn deriv(p: u32, i: i32) -> f32 {
  if (i < 1 || i > i32(params.n_energies) - 2) { return nan_f32(); }
  let P = params.n_invocations;
  let u = u32(i);
  return (cube[(u + 1u) * P + p] - cube[(u - 1u) * P + p]) / (x[u + 1u] - x[u - 1u]);
}

fn deriv_smooth(p: u32, i: u32) -> f32 {
  let h = i32(params.smooth_half);
  var acc = 0.0;
  for (var j = -h; j <= h; j++) { acc += deriv(p, i32(i) + j); }
  return acc / f32(2 * h + 1);
}

// Vertex of the parabola through (t0, y0), (0, y1), (t2, y2); .x = t (NaN if not a maximum).
// Twin of parabolaVertex in src/pipeline/edge-plan.ts.
fn parabola_vertex(t0: f32, t2: f32, y0: f32, y1: f32, y2: f32) -> vec2f {
  let s0 = (y0 - y1) / t0;
  let s2 = (y2 - y1) / t2;
  let beta = (s2 - s0) / (t2 - t0);
  let alpha = s0 - beta * t0;
  if (!(beta < 0.0)) { return vec2f(nan_f32(), y1); }
  let t = clamp(-alpha / (2.0 * beta), t0, t2);
  return vec2f(t, y1 + alpha * t + beta * t * t);
}

// larch's index_of: the last index with x <= v; 0 below the grid.
fn index_of(v: f32) -> u32 {
  var k = 0u;
  for (var i = 1u; i < params.n_energies; i++) { if (x[i] <= v) { k = i; } }
  return k;
}

// larch's index_nearest: the first index of the smallest |x - v|.
fn index_nearest(v: f32) -> u32 {
  var k = 0u;
  for (var i = 1u; i < params.n_energies; i++) { if (abs(x[i] - v) < abs(x[k] - v)) { k = i; } }
  return k;
}

fn window(x0: f32, lo: f32, hi: f32) -> vec2u {
  let i0 = index_of(lo + x0);
  var i1 = index_nearest(hi + x0);
  if (i1 < i0 + 2u) { i1 = min(params.n_energies, i0 + 2u); }
  return vec2u(i0, i1);
}

fn no_data(p: u32) {
  put(NORM_STATUS, p, f32(STATUS_NO_DATA));
  for (var k = 1u; k < NORM_ROWS; k++) { put(k, p, nan_f32()); }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = linear_index(gid, nwg);
  let P = params.n_invocations;
  if (p >= P) { return; }
  let nE = params.n_energies;

  // 1. Own e0.
  var best = -1;
  var best_v = -3.4e38;
  for (var i = params.edge_i0; i < params.edge_i1; i++) {
    let v = deriv_smooth(p, i);
    if (!is_finite_f32(v)) { continue; }
    if (v > best_v) { best_v = v; best = i32(i); }
  }
  var x_deriv = nan_f32();
  var ie0 = params.ie0;
  if (best >= 0) {
    let k = u32(best);
    x_deriv = x[k];
    if (k > params.edge_i0 && k < params.edge_i1 - 1u) {
      let r = parabola_vertex(x[k - 1u] - x[k], x[k + 1u] - x[k], deriv_smooth(p, k - 1u), best_v, deriv_smooth(p, k + 1u));
      if (is_finite_f32(r.x)) { x_deriv = x[k] + r.x; }
    }
    if (params.fixed_windows == 0u) { ie0 = k; }
    if (params.fixed_windows == 0u && k > 0u && abs(x[k - 1u] - x_deriv) <= abs(x[k] - x_deriv)) { ie0 = k - 1u; }
    if (params.fixed_windows == 0u && k + 1u < nE && abs(x[k + 1u] - x_deriv) < abs(x[ie0] - x_deriv)) { ie0 = k + 1u; }
  }
  let x0 = x[ie0];

  // 2. Windows from the own e0.
  let wa = window(x0, max(params.pre1, x[0] - x0), params.pre2);
  var lo = params.norm1;
  var hi = min(params.norm2, x[nE - 1u] - x0);
  if (lo > hi) { let t = lo; lo = hi; hi = t; }
  let wb = window(x0, lo, hi);

  // 3. Pre-edge line in the pixel's basis.
  let pc = (x[wa.x] + x[wa.y - 1u]) / 2.0;
  let ps = max((x[wa.y - 1u] - x[wa.x]) / 2.0, 1e-6);
  var s0 = 0.0; var s1 = 0.0; var s2 = 0.0; var sy = 0.0; var suy = 0.0;
  for (var i = wa.x; i < wa.y; i++) {
    let y = cube[i * P + p];
    if (!is_finite_f32(y)) { continue; }
    let u = (x[i] - pc) / ps;
    s0 += 1.0; s1 += u; s2 += u * u; sy += y; suy += u * y;
  }
  let det = s0 * s2 - s1 * s1;
  if (s0 < 3.0 || !(det > SINGULAR_REL * s0 * s0)) { no_data(p); return; }
  let la = (s2 * sy - s1 * suy) / det;
  let lb = (s0 * suy - s1 * sy) / det;

  // Post-edge polynomial of mu - pre: symmetric normal matrix m (row-major 3x3), right side r.
  let qc = (x[wb.x] + x[wb.y - 1u]) / 2.0;
  let qs = max((x[wb.y - 1u] - x[wb.x]) / 2.0, 1e-6);
  var m = array<f32, 9>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
  var r = array<f32, 3>(0.0, 0.0, 0.0);
  var n_post = 0u;
  let deg = params.post_degree;
  for (var i = wb.x; i < wb.y; i++) {
    let y = cube[i * P + p];
    if (!is_finite_f32(y)) { continue; }
    let d = y - (la + lb * (x[i] - pc) / ps);
    let t = (x[i] - qc) / qs;
    let b = array<f32, 3>(1.0, t, t * t);
    for (var a = 0u; a <= deg; a++) {
      r[a] += b[a] * d;
      for (var c = 0u; c <= deg; c++) { m[a * 3u + c] += b[a] * b[c]; }
    }
    n_post++;
  }

  // Solve: 3x3 by Cholesky, 2x2 directly, 1x1 the mean.
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
  } else if (deg == 1u) {
    let det2 = m[0] * m[4] - m[1] * m[3];
    ok = abs(det2) > SINGULAR_REL * m[0] * m[0];
    c0 = (m[4] * r[0] - m[1] * r[1]) / det2;
    c1 = (m[0] * r[1] - m[3] * r[0]) / det2;
  } else {
    ok = m[0] > 0.0;
    c0 = r[0] / m[0];
  }
  if (n_post < deg + 1u || !ok) { no_data(p); return; }

  var rss = 0.0;
  for (var i = wa.x; i < wa.y; i++) {
    let y = cube[i * P + p];
    if (!is_finite_f32(y)) { continue; }
    let res = y - (la + lb * (x[i] - pc) / ps);
    rss += res * res;
  }
  let noise = sqrt(rss / (s0 - 2.0));
  let t0 = (x0 - qc) / qs;
  let step = c0 + c1 * t0 + c2 * t0 * t0;

  // Into the plan's bases (twin: rebase in src/cpu/normalize.ts).
  put(NORM_PRE_A, p, la + lb * (params.pre_centre - pc) / ps);
  put(NORM_PRE_B, p, lb * params.pre_scale / ps);
  let alpha = params.post_scale / qs;
  let beta = (params.post_centre - qc) / qs;
  put(NORM_POST_C0, p, c0 + c1 * beta + c2 * beta * beta);
  put(NORM_POST_C1, p, (c1 + 2.0 * c2 * beta) * alpha);
  put(NORM_POST_C2, p, c2 * alpha * alpha);
  put(NORM_STEP, p, step);
  put(NORM_NOISE, p, noise);
  put(NORM_E0_DERIV, p, x_deriv);
  put(NORM_E0_OWN, p, x0);
  let ok_step = step > params.mask_sigma * noise && step > STEP_MIN_REL * abs(la + lb * (x0 - pc) / ps);
  put(NORM_STATUS, p, select(f32(STATUS_LOW_STEP), f32(STATUS_OK), ok_step));
}
