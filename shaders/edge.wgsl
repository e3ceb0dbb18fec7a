// edge: per-pixel edge energies and white line from the tile and the normalize output.
//
// Bindings: 0 params (uniform, generated), 1 x: energies - e0 in eV (f32[nE]),
//           2 cube: the tile, energy-major f32[nE][P], 3 norm: f32[NORM_ROWS][P] from the
//           normalize kernel (read_write: NO_EDGE is recorded in its status row),
//           4 out: f32[EDGE_ROWS][P], absolute eV (and normalised height).
// The step is the normalize kernel's: post - pre at the pixel's own e0 (larch's pre_edge).
// One invocation = one pixel. The normalised spectrum n = (mu - pre) / step is computed on
// the fly from the pre-edge line, so it is never stored.
//  e0_deriv: the normalize kernel's derivative maximum (its NORM_E0_DERIV row) in eV;
//  e0_half:  the n = 0.5 crossing (linear interpolation) nearest to e0_deriv;
//  white line: max of n in [e0_half, e0_half + wl_width], refined by a parabola.
// Accuracy: energies relative to e0 keep sub-meV resolution in f32; the parabola is written
// about its middle point. CPU twin: src/cpu/edge.ts (same rules, same tie-breaking: the
// first of equal candidates wins).
// Cost on an H100 (3.35 TB/s, 67 TFLOP/s FP32), 2e7 spectra x 101 energies: per spectrum
// 404 B of the cube + 40 B of normalize rows read, 16 B written; ~1 kFLOP (the normalised
// value at each energy, the crossing search, the white-line parabola). 9.2 GB -> 2.7 ms vs
// 2e10 FLOP -> 0.3 ms: memory-bound.

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> cube: array<f32>;
@group(0) @binding(3) var<storage, read_write> norm: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

struct Pix { p: u32, a: f32, b: f32, step: f32 }

fn nrm(px: Pix, i: u32) -> f32 {
  let P = params.n_invocations;
  return (cube[i * P + px.p] - (px.a + px.b * (x[i] - params.pre_centre) / params.pre_scale)) / px.step;
}

// Vertex of the parabola through (t0, y0), (0, y1), (t2, y2); .x = t (NaN if not a maximum),
// .y = height. Twin of parabolaVertex in src/pipeline/edge-plan.ts.
fn parabola_vertex(t0: f32, t2: f32, y0: f32, y1: f32, y2: f32) -> vec2f {
  let s0 = (y0 - y1) / t0;
  let s2 = (y2 - y1) / t2;
  let beta = (s2 - s0) / (t2 - t0);
  let alpha = s0 - beta * t0;
  if (!(beta < 0.0)) { return vec2f(nan_f32(), y1); }
  let t = clamp(-alpha / (2.0 * beta), t0, t2);
  return vec2f(t, y1 + alpha * t + beta * t * t);
}

fn put(row: u32, p: u32, v: f32) {
  out[row * params.n_invocations + p] = v;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = linear_index(gid, nwg);
  let P = params.n_invocations;
  if (p >= P) { return; }
  for (var k = 0u; k < EDGE_ROWS; k++) { put(k, p, nan_f32()); }
  if (u32(norm[NORM_STATUS * P + p]) != STATUS_OK) { return; }
  let px = Pix(p, norm[NORM_PRE_A * P + p], norm[NORM_PRE_B * P + p], norm[NORM_STEP * P + p]);
  let nE = params.n_energies;

  // e0_deriv: found by the normalize kernel on mu (the same maximum as on n: a positive scale
  // and a constant slope move neither the argmax nor the parabola's vertex).
  let x_deriv = norm[NORM_E0_DERIV * P + p];
  if (is_finite_f32(x_deriv)) { put(EDGE_E0_DERIV, p, params.e0 + x_deriv); }

  // e0_half: the 0.5 crossing nearest to e0_deriv (to e0 when there is no derivative maximum).
  let anchor = select(0.0, x_deriv, is_finite_f32(x_deriv));
  var x_half = nan_f32();
  var best_dist = 3.4e38;
  var n_prev = nrm(px, 0u);
  for (var i = 0u; i + 1u < nE; i++) {
    let n_next = nrm(px, i + 1u);
    if (n_prev < 0.5 && n_next >= 0.5) {
      let xc = x[i] + (0.5 - n_prev) * (x[i + 1u] - x[i]) / (n_next - n_prev);
      let dist = abs(xc - anchor);
      if (dist < best_dist) { best_dist = dist; x_half = xc; }
    }
    n_prev = n_next;
  }
  if (!is_finite_f32(x_half)) {
    norm[NORM_STATUS * P + p] = f32(STATUS_NO_EDGE);
    put(EDGE_E0_DERIV, p, nan_f32());
    return;
  }
  put(EDGE_E0_HALF, p, params.e0 + x_half);

  // White line.
  var k = -1;
  var k_v = -3.4e38;
  for (var i = 0u; i < nE; i++) {
    if (x[i] < x_half || x[i] > x_half + params.wl_width) { continue; }
    let v = nrm(px, i);
    if (!is_finite_f32(v)) { continue; }
    if (v > k_v) { k_v = v; k = i32(i); }
  }
  if (k < 0) { return; }
  let kk = u32(k);
  var xw = x[kk];
  var hw = k_v;
  if (kk > 0u && kk < nE - 1u) {
    let r = parabola_vertex(x[kk - 1u] - x[kk], x[kk + 1u] - x[kk], nrm(px, kk - 1u), k_v, nrm(px, kk + 1u));
    if (is_finite_f32(r.x) && is_finite_f32(r.y)) { xw = x[kk] + r.x; hw = r.y; }
  }
  put(EDGE_WL_ENERGY, p, params.e0 + xw);
  put(EDGE_WL_HEIGHT, p, hw);
}
