// fit: per-pixel Levenberg-Marquardt fit of a model given at run time.
//
// Spliced after the code src/models/wgsl.ts generates for the model: sizes (NP parameters,
// NF free, NT = NF (NF + 1) / 2), tables, the FIT_TUNING constants, the model's value and
// Jacobian (model_eval), start-value helpers (partial_model, comp_start, near_peak) and the
// straight-line linear algebra for NF free parameters (lm_*). Status codes and row indices
// come from src/models/layout.ts through the kernel's constants.
//
// Bindings: 0 params (uniform, generated),
//           1 consts: f32 [t (nE) | dt (nE) | lower (NP) | upper (NP) | init (NP) | has_init (NP)]
//             t = internal energies (E - e_ref) / e_scale, dt = local grid step, bounds and
//             global start values in role units (src/models/plan.ts), |bound| >= OPEN_BOUND = open;
//           2 cube: the tile, energy-major f32 [nE][P];
//           3 work: f32 [rows][P]: rows 0..NORM_ROWS-1 hold the normalize kernel's output (read
//             here), rows FIT_ROW_BASE + fitRows(NP) receive the results;
//           4 edge: f32 [EDGE_ROWS][P] from the edge kernel (e0_half).
// One invocation = one pixel: its start values and all iterations of its fit (no
// per-iteration dispatch or readback). Each iteration is one solve of the damped system and
// one pass over the energies at the trial point, accumulating chi2, J^T J and J^T r;
// neighbouring invocations read neighbouring addresses at every energy (coalesced).
// Accuracy: energies are centred and scaled to [-1, 1] and amplitudes divided by the pixel's
// largest |value|, so J^T J is formed from order-one numbers in f32; the damped system is
// Jacobi-scaled to a unit diagonal before its Cholesky factorisation, so pivots compare with
// SINGULAR_PIVOT directly; parameters pushed against a bound are held for the step; the
// damping follows Nielsen's gain-ratio rule; stopping follows MINPACK lmder (ftol, xtol, gtol:
// FitStop in src/models/layout.ts), ftol and xtol only where the Gauss-Newton step has no more
// than FTOL chi2 to gain (not in a flat valley); a width's default lower bound follows the
// local energy step at its centre (local_step); NaN tests use bit
// patterns (is_finite_f32), never x != x, which fast math may fold. Results are in internal
// units; the host converts them in f64.
// CPU twin: src/cpu/fit.ts (same start values, damping schedule and stopping rules; its
// header describes them).
// Cost and shape on an H100 (3.35 TB/s, 67 TFLOP/s FP32), 2e7 fits of erf-2lorentz (NP =
// NF = 10, NT = 55) at 40 energies, median 4 iterations (maximum 100):
//  - per pass over the energies: the model and its Jacobian (~60 FLOP, erf_f32 included:
//    src/models/erf.ts, absolute error <= 1.3e-7), the packed J^T J (NT = 55 FMA) and J^T r
//    (NF FMA): ~190 FLOP per energy; ~6 passes per fit (start values + iterations): ~45 kFLOP
//    and ~6 x 160 B of cube reads (L2-resident after the first) per fit. 9e11 FLOP -> 13.5 ms
//    vs 3.2 GB from DRAM -> 1 ms: compute-bound in principle.
//  - registers: the private state below is NP x 3 + NT x 2 + NF x 5 = 30 + 110 + 50 = 190
//    floats, ~220 32-bit registers with the loop's temporaries: near the 255-register ceiling,
//    so at most 8 warps per SM resident (1/8 occupancy) and possibly spills to local memory.
//    The workgroup size (the WG override, DEFAULT_WORKGROUP_SIZE = 64 = 2 warps) keeps
//    whole workgroups schedulable at that register count; larger ones would not raise
//    occupancy.
//  - divergence: one invocation runs its pixel's whole fit, so a warp runs to its slowest
//    pixel (iterations: median 4, maximum 100). Not done here and the main gap to the
//    bound: bounded rounds of iterations with the unconverged pixels compacted between
//    dispatches (state saved to a buffer), and J^T J formed in place of the trial copy (AT)
//    to halve the NT-sized state.

@group(0) @binding(1) var<storage, read> consts: array<f32>;
@group(0) @binding(2) var<storage, read> cube: array<f32>;
@group(0) @binding(3) var<storage, read_write> work: array<f32>;
@group(0) @binding(4) var<storage, read> edge: array<f32>;

// The fit's state (per invocation). Only the generated lm_* functions index the NT/NF
// arrays, with constants.
var<private> P_CUR: array<f32, NP>;  // accepted parameters
var<private> P_TRY: array<f32, NP>;  // trial parameters
var<private> JAC: array<f32, NP>;    // partial derivatives at one energy
var<private> AM: array<f32, NT>;     // J^T J at P_CUR (packed lower triangle)
var<private> GV: array<f32, NF>;     // J^T r at P_CUR
var<private> AT: array<f32, NT>;     // J^T J at P_TRY; the Cholesky factor between passes
var<private> GT: array<f32, NF>;     // J^T r at P_TRY
var<private> SV: array<f32, NF>;     // Jacobi scales 1 / sqrt(diag AM)
var<private> ZV: array<f32, NF>;     // scaled step; the inverse's diagonal at the end
var<private> KP: array<f32, NF>;
var<private> USE_INIT: bool;      // the --init start (comp_start applies --init to free parameters)     // 1, or 0 for a parameter held on its bound this step

struct Hints { level: f32, slope: f32, height: f32, centre: f32, width: f32 }

fn t_at(i: u32) -> f32 { return consts[i]; }
fn dt_at(i: u32) -> f32 { return consts[params.n_energies + i]; }
fn y_at(i: u32, pix: u32) -> f32 { return cube[i * params.n_invocations + pix]; }
fn put(row: u32, pix: u32, v: f32) { work[(FIT_ROW_BASE + row) * params.n_invocations + pix] = v; }
fn norm_row(row: u32, pix: u32) -> f32 { return work[row * params.n_invocations + pix]; }
fn out_row(row: u32, pix: u32) -> f32 { return work[(FIT_ROW_BASE + row) * params.n_invocations + pix]; }

// A bound in internal units for this pixel (open bounds stay as they are).
fn bound(k: u32, upper: bool, ysc: f32) -> f32 {
  let b = consts[2u * params.n_energies + select(0u, NP, upper) + k];
  if (abs(b) >= OPEN_BOUND) { return b; }
  return select(b, b / ysc, Y_SCALED[k] != 0u);
}

fn clamp_param(k: u32, v: f32, ysc: f32) -> f32 {
  return min(max(v, bound(k, false, ysc)), bound(k, true, ysc));
}

// A global start value (--init) in internal units.
fn init_value(k: u32, ysc: f32) -> f32 {
  let v = consts[2u * params.n_energies + 2u * NP + k];
  return select(v, v / ysc, Y_SCALED[k] != 0u);
}

// Local grid step at the energy nearest to tc (the first of equals).
fn dt_near(tc: f32) -> f32 {
  var best = 0u;
  var bd = 3.4e38;
  for (var i = 0u; i < params.n_energies; i++) {
    let dd = abs(t_at(i) - tc);
    if (dd < bd) { bd = dd; best = i; }
  }
  return dt_at(best);
}

// The local grid step at tc: min_step at each grid energy, interpolated linearly between the
// two around tc, constant beyond the ends; it sets a width's default lower bound. Twin:
// localStep in src/cpu/fit.ts (which says why it is continuous).
fn local_step(tc: f32) -> f32 {
  let n = params.n_energies;
  if (tc <= t_at(0u)) { return min_step(0u); }
  if (tc >= t_at(n - 1u)) { return min_step(n - 1u); }
  var i = 0u;
  while (i + 2u < n && t_at(i + 1u) <= tc) { i++; }
  let f = (tc - t_at(i)) / (t_at(i + 1u) - t_at(i));
  return min_step(i) + f * (min_step(i + 1u) - min_step(i));
}

// Pre-edge line of the normalize kernel at energy index i (x = E - e0).
fn pre_line(i: u32, pre_a: f32, pre_b: f32) -> f32 {
  let x = t_at(i) * params.e_scale + params.x_ref;
  return pre_a + pre_b * (x - params.pre_centre) / params.pre_scale;
}

// The smaller of the grid steps on either side of energy index i.
fn min_step(i: u32) -> f32 {
  var m = 3.4e38;
  if (i > 0u) { m = t_at(i) - t_at(i - 1u); }
  if (i + 1u < params.n_energies) { m = min(m, t_at(i + 1u) - t_at(i)); }
  return m;
}

// What the start-value rules look at, per pixel.
struct Ctx { pix: u32, pre_a: f32, pre_b: f32, step: f32, ysc: f32, ndone: u32 }

// mode 0: the normalised spectrum; mode 1: the residual of the first ndone components in
// start-value order. The caller has checked that the point is finite.
fn value_at(mode: u32, i: u32, c: Ctx, p: array<f32, NP>) -> f32 {
  let y = y_at(i, c.pix);
  if (mode == 0u) { return (y - pre_line(i, c.pre_a, c.pre_b)) / c.step; }
  return y / c.ysc - partial_model(c.ndone, t_at(i), p);
}

// Where value_at reaches `level` walking from index `start` by `dir` within [lo, hi],
// interpolated with the previous finite point (the first point itself if it is already
// there): vec2f(t, 1), or vec2f(0, 0) if never. above: looking for v <= level, else v >= level.
fn walk_to(mode: u32, c: Ctx, p: array<f32, NP>, start: i32, dir: i32, level: f32, above: bool, lo: i32, hi: i32) -> vec2f {
  var prev_i = -1;
  var prev_v = 0.0;
  for (var i = start; i >= lo && i <= hi; i += dir) {
    if (!is_finite_f32(y_at(u32(i), c.pix))) { continue; }
    let v = value_at(mode, u32(i), c, p);
    if (select(v >= level, v <= level, above)) {
      if (prev_i < 0) { return vec2f(t_at(u32(i)), 1.0); }
      let t0 = t_at(u32(prev_i));
      return vec2f(t0 + (level - prev_v) * (t_at(u32(i)) - t0) / (v - prev_v), 1.0);
    }
    prev_i = i;
    prev_v = v;
  }
  return vec2f(0.0, 0.0);
}

// Half the distance between two crossings, or the one-sided distance from the centre; -1 if none.
fn half_width(lo: vec2f, hi: vec2f, centre: f32) -> f32 {
  var w = -1.0;
  if (lo.y > 0.0 && hi.y > 0.0) { w = (hi.x - lo.x) / 2.0; }
  else if (lo.y > 0.0) { w = centre - lo.x; }
  else if (hi.y > 0.0) { w = hi.x - centre; }
  return select(-1.0, w, w > 0.0);
}

// Start values (internal units); the rules are in the header of src/cpu/fit.ts.
fn start_values(pix: u32, ysc: f32) -> array<f32, NP> {
  let nE = params.n_energies;
  let last = i32(nE) - 1;
  let pre_a = norm_row(NORM_PRE_A, pix);
  let pre_b = norm_row(NORM_PRE_B, pix);
  let step = norm_row(NORM_STEP, pix);
  var level = pre_a / ysc;
  if (HAS_SLOPE) { level = (pre_a + pre_b * (params.x_ref - params.pre_centre) / params.pre_scale) / ysc; }
  let slope = pre_b / params.pre_scale * params.e_scale / ysc;
  let step_ok = is_finite_f32(step);
  let height = select(0.0, step / ysc, step_ok);
  let step_up = step_ok && step > 0.0;
  var p: array<f32, NP>;
  var c = Ctx(pix, pre_a, pre_b, step, ysc, 0u);

  // Step centre: e0_half, guarded against a crossing the spectrum falls back from.
  let e0h = edge[EDGE_E0_HALF * params.n_invocations + pix];
  var has_c = is_finite_f32(e0h);
  var centre = 0.0;
  if (has_c) { centre = (e0h - params.e_ref) / params.e_scale; }
  var last_low = -1;
  if (step_up) {
    for (var i = 0u; i < nE; i++) {
      if (!is_finite_f32(y_at(i, pix))) { continue; }
      if (value_at(0u, i, c, p) < EDGE_LOW) { last_low = i32(i); }
    }
    if (last_low >= 0 && (!has_c || t_at(u32(last_low)) >= centre)) {
      var prev_i = u32(last_low);
      var prev_n = value_at(0u, prev_i, c, p);
      for (var i = prev_i + 1u; i < nE; i++) {
        if (!is_finite_f32(y_at(i, pix))) { continue; }
        let n = value_at(0u, i, c, p);
        if (prev_n < 0.5 && n >= 0.5) {
          centre = t_at(prev_i) + (0.5 - prev_n) * (t_at(i) - t_at(prev_i)) / (n - prev_n);
          has_c = true;
          break;
        }
        prev_n = n;
        prev_i = i;
      }
    }
  }
  if (!has_c) { centre = 0.0; }
  // Step width: half the distance between the 0.25 and 0.75 crossings about the centre.
  var width = -1.0;
  if (step_up) {
    var k = -1;
    for (var i = 0u; i < nE; i++) {
      if (is_finite_f32(y_at(i, pix)) && t_at(i) <= centre) { k = i32(i); }
    }
    var lo25 = walk_to(0u, c, p, k, -1, 0.25, true, max(last_low, 0), last);
    if (lo25.y == 0.0 && last_low >= 0 && last_low <= k) { lo25 = vec2f(t_at(u32(last_low)), 1.0); }
    width = half_width(lo25, walk_to(0u, c, p, k + 1, 1, 0.75, false, 0, last), centre);
  }
  let dtc = dt_near(centre);
  if (width > 0.0) { width = max(width, 0.5 * dtc); } else { width = STEP_WIDTH_STEPS * dtc; }
  let href = select(1.0, abs(height), abs(height) > 0.0);

  var step_index = 0u;
  var peak_index = 0u;
  for (var j = 0u; j < N_COMP; j++) {
    let k = INIT_ORDER[j];
    let role = COMP_ROLE[k];
    var h = Hints(level, slope, height, centre, width);
    if (role == ROLE_STEP) {
      h.height = height / f32(N_STEPS);
      h.centre = centre + (f32(step_index) - 0.5 * f32(N_STEPS - 1u)) * width;
      step_index++;
    } else if (role == ROLE_PEAK) {
      // With a step: the first peak below it (pre-edge), the second above it (white line).
      var lo = -3.4e38;
      var hi = 3.4e38;
      if (N_STEPS > 0u && peak_index == 0u) { hi = p[STEP_C] - p[STEP_W]; }
      if (N_STEPS > 0u && peak_index == 1u) { lo = p[STEP_C] + p[STEP_W]; }
      c.ndone = j;
      var best = -1;
      var best_r = -3.4e38;
      for (var sweep = 0u; sweep < 2u && best < 0; sweep++) {
        for (var i = 0u; i < nE; i++) {
          if (!is_finite_f32(y_at(i, pix))) { continue; }
          let ti = t_at(i);
          if (sweep == 0u && (!(ti < hi && ti > lo) || near_peak(j, p, ti))) { continue; }
          let r = value_at(1u, i, c, p);
          if (r > best_r) { best_r = r; best = i32(i); }
        }
      }
      // Width: the half width at half maximum of the residual peak.
      var w = -1.0;
      if (best_r > 0.0) {
        w = half_width(walk_to(1u, c, p, best - 1, -1, best_r / 2.0, true, 0, last),
                       walk_to(1u, c, p, best + 1, 1, best_r / 2.0, false, 0, last), t_at(u32(best)));
      }
      let ms = min_step(u32(best));
      if (w > 0.0) { w = max(w, 0.5 * ms); } else { w = PEAK_WIDTH_STEPS * ms; }
      h.height = max(best_r, PEAK_MIN_HEIGHT * href);
      h.centre = t_at(u32(best));
      h.width = w;
      peak_index++;
    }
    comp_start(k, &p, h, ysc);
  }
  return p;
}

// chi2 at P_TRY, with J^T J and J^T r into AT and GT (non-finite points skipped).
fn accumulate(pix: u32, ysc: f32) -> f32 {
  lm_zero_trial();
  var chi2 = 0.0;
  for (var i = 0u; i < params.n_energies; i++) {
    let y = y_at(i, pix);
    if (!is_finite_f32(y)) { continue; }
    let r = y / ysc - model_eval(t_at(i));
    chi2 += r * r;
    lm_add_point(r);
  }
  return chi2;
}

fn finish_empty(pix: u32, status: u32) {
  for (var k = 0u; k < NP; k++) {
    put(FIT_PARAM0 + k, pix, nan_f32());
    put(FIT_STDERR0 + k, pix, nan_f32());
  }
  put(FIT_CHI2, pix, nan_f32());
  put(FIT_ITERATIONS, pix, 0.0);
  put(FIT_STATUS, pix, f32(status));
  put(FIT_STOP, pix, f32(STOP_NONE));
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let pix = linear_index(gid, nwg);
  let P = params.n_invocations;
  if (pix >= P) { return; }
  let nE = params.n_energies;

  var n_fin = 0u;
  var ymax = 0.0;
  for (var i = 0u; i < nE; i++) {
    let y = y_at(i, pix);
    if (is_finite_f32(y)) { n_fin++; ymax = max(ymax, abs(y)); }
  }
  let ysc = select(1.0, ymax, ymax > 0.0);
  put(FIT_YSCALE, pix, ysc);
  put(FIT_NFINITE, pix, f32(n_fin));
  if (n_fin < NF + 1u || u32(norm_row(NORM_STATUS, pix)) == STATUS_NO_DATA) {
    finish_empty(pix, FIT_MASKED_INPUT);
    return;
  }

  // One fit from the data-driven start; with a global --init on free parameters, a second
  // one from the --init start, kept if better. Same order as the CPU twin.
  USE_INIT = false;
  lm_run(pix, ysc, n_fin, false);
  if (TWO_STARTS) {
    USE_INIT = true;
    lm_run(pix, ysc, n_fin, true);
  }
}

// A usable fit (converged, or on a bound) beats one that is not; else the lower chi2 wins.
fn fit_better(sb: u32, cb: f32, sa: u32, ca: f32) -> bool {
  let okb = sb == FIT_CONVERGED || sb == FIT_AT_BOUND;
  let oka = sa == FIT_CONVERGED || sa == FIT_AT_BOUND;
  if (okb != oka) { return okb; }
  if (!is_finite_f32(cb)) { return false; }
  return !is_finite_f32(ca) || cb < ca;
}

// Start values, LM and standard errors from one start; keep_first: write only if better
// than the fit already written for this pixel.
fn lm_run(pix: u32, ysc: f32, n_fin: u32, keep_first: bool) {
  P_TRY = start_values(pix, ysc);
  lm_clamp_start(ysc);
  for (var k = 0u; k < NP; k++) {
    if (!is_finite_f32(P_TRY[k])) {
      if (!keep_first) { finish_empty(pix, FIT_NON_FINITE); }
      return;
    }
  }

  let chi2_floor = f32(n_fin) * CHI2_FLOOR_REL * CHI2_FLOOR_REL;
  var chi2 = 0.0;
  var lambda = LAMBDA_INIT;
  var it = 0u;
  var status = FIT_MAX_ITERATIONS;
  var stop = STOP_NONE;
  var first = true;
  var nu = 2.0;
  var predicted = 0.0;
  var xtol_hit = false;
  loop {
    // One pass at the trial point (the start values on the first pass).
    let chi2t = accumulate(pix, ysc);
    var ftol_hit = false;
    if (first) {
      if (!is_finite_f32(chi2t)) {
        if (!keep_first) { finish_empty(pix, FIT_NON_FINITE); }
        return;
      }
      P_CUR = P_TRY; AM = AT; GV = GT; chi2 = chi2t;
      first = false;
    } else {
      // MINPACK lmder's ftol test, on an accepted or a rejected step.
      var actred = -3.4e38;
      if (is_finite_f32(chi2t)) { actred = (chi2 - chi2t) / chi2; }
      let prered = predicted / chi2;
      ftol_hit = abs(actred) <= FTOL && prered <= FTOL && actred <= 2.0 * prered;
      if (is_finite_f32(chi2t) && chi2t < chi2) {
        // Nielsen's damping update from the gain ratio rho = actual / predicted reduction.
        let q = 2.0 * (chi2 - chi2t) / predicted - 1.0;
        P_CUR = P_TRY; AM = AT; GV = GT; chi2 = chi2t;
        lambda = max(lambda * max(1.0 / 3.0, 1.0 - q * q * q), LAMBDA_MIN);
        nu = 2.0;
      } else {
        lambda = min(lambda * nu, LAMBDA_MAX);
        nu = min(2.0 * nu, NU_MAX);
      }
    }
    // A parameter on a bound that the gradient pushes outwards is held there for the next
    // step (its clamped step would only spoil the others'), and left out of the tests.
    lm_hold(ysc);
    if (chi2 <= chi2_floor) {
      status = FIT_CONVERGED; stop = STOP_EXACT;
    } else if (ftol_hit || xtol_hit) {
      // Only where the Gauss-Newton step has nothing left to gain either (not a flat valley).
      if (!(lm_gn_predicted() > FTOL * chi2)) {
        status = FIT_CONVERGED;
        stop = select(0u, STOP_FTOL, ftol_hit) | select(0u, STOP_XTOL, xtol_hit);
      }
    }
    if (status == FIT_MAX_ITERATIONS && lm_gtol(chi2) <= GTOL) { status = FIT_CONVERGED; stop = STOP_GTOL; }
    // The next trial point: solve (J^T J + lambda diag J^T J) dp = J^T r, raising lambda
    // while the factorisation fails.
    var have_step = false;
    loop {
      if (status != FIT_MAX_ITERATIONS || it >= params.max_iter) { break; }
      it++;
      if (!lm_scale(lambda)) { status = FIT_SINGULAR; break; }
      if (lm_factor()) { have_step = true; break; }
      if (lambda >= LAMBDA_MAX) { status = FIT_SINGULAR; break; }
      lambda = min(lambda * LAMBDA_UP, LAMBDA_MAX);
    }
    if (!have_step) { break; }
    lm_solve();
    let norms = lm_trial_point(ysc);
    predicted = lm_predicted(lambda);
    // xtol (judged with the pass at the trial point, as lmder): the step against the parameters.
    xtol_hit = norms.x <= XTOL * (XTOL + norms.y);
  }

  // Standard errors from the undamped J^T J at the solution, every parameter on a bound held
  // (an active bound: no confidence interval, its error NaN).
  var ok = status != FIT_SINGULAR;
  let any_held = lm_hold_bounds(ysc);
  if (ok) { ok = lm_scale(0.0) && lm_factor(); }
  if (ok) { lm_inverse_diag(); } else { status = FIT_SINGULAR; }
  if (status == FIT_CONVERGED && any_held) { status = FIT_AT_BOUND; }
  if (status != FIT_CONVERGED && status != FIT_AT_BOUND) { stop = STOP_NONE; }
  // The second start replaces the first only if it is better (twin: fitBetter in src/cpu/fit.ts).
  if (keep_first && !fit_better(status, chi2, u32(out_row(FIT_STATUS, pix)), out_row(FIT_CHI2, pix))) { return; }
  lm_write(pix, ok, chi2, f32(n_fin - NF));
  put(FIT_CHI2, pix, chi2);
  put(FIT_ITERATIONS, pix, f32(it));
  put(FIT_STATUS, pix, f32(status));
  put(FIT_STOP, pix, f32(stop));
}
