// lcf: per-pixel linear combination of reference spectra (+ background terms), with
// optional non-negativity and sum-to-one constraints, solved exactly.
//
// Bindings: 0 params (uniform, generated: n_invocations = pixels P, n_window = nW,
//             window0 = the window's first energy row in the cube),
//           1 cube: the tile, energy-major f32[..][P]; the fit window is rows
//             window0 .. window0 + nW - 1 (the whole tile is bound, as uploaded once for
//             every step of a run: src/pipeline/gpu-tiles.ts),
//           2 plan: f32, built on the host in float64 (src/cpu/lcf.ts makeLcfPlan), read
//             through pl(i). Its declaration is generated (src/kernels/lcf.ts): a uniform
//             array<vec4f, PLAN_VEC4> when the plan fits the device's uniform-binding limit
//             (64 KiB on llvmpipe: 6 references + linear background up to ~230 energies,
//             far more with fewer terms), else a read-only storage array. Every invocation
//             reads the same plan entries at the same time; from a uniform buffer that is a
//             broadcast even on SIMD software rasterisers (llvmpipe), where storage loads
//             become per-lane gathers (measured: ~3x slower streaming pass).
//             [SUB_OFF]  per subset s, SUB_STRIDE floats at offsets
//                        SUB_A (theta = A z + b), SUB_B, SUB_E (reduced residual r = E z + e),
//                        SUB_EV, SUB_W (dual violation of excluded reference j = W_j . z + c_j),
//                        SUB_C, SUB_MASK (its bit mask; src/cpu/lcf.ts subsetLayout)
//             [ROT_OFF]  Givens angles (c, s) per (energy, column): [nW][N_COLS][2]
//           3 out: f32[OUT_ROWS][P]: coefficients (references, then background), residual
//             rms, rfactor, status.
// One invocation = one pixel. It reads its spectrum once, in energy order, rotating each
// value through the fixed sequence of Givens rotations that triangularises the design
// matrix: z = Q^T y accumulates in N_COLS registers and what is left after the last
// rotation is the part of y outside the columns' span, summed as rho2 (no cancellation).
// Then each candidate subset of free references (only the full set in ls / sum1) gives
// theta = A z + b; among the primal-feasible ones (free weights >= 0 where constrained)
// the one with the smallest KKT dual violation max_j (W_j . z + c_j)+ is the exact
// constrained optimum (convexity; src/cpu/lcf.ts explains why the violation, precomputed
// as an affine map of z, and not the residual, decides: it keeps float32 accurate for
// nearly collinear references).
// Specialised per plan: N_REFS, N_COLS, N_SUBSETS are constants, so the inner loops have
// constant bounds and the small arrays stay in registers.
// Accuracy: rotations are orthogonal, so z and rho2 carry float32 rounding relative to
// ||y|| (~1e-7 sqrt(nW)); theta amplifies it by the condition number of the scaled design
// matrix (the host rejects it above 1e5). A non-finite value in the window gives status
// NO_DATA and NaN outputs. CPU twin: lcfCpu in src/cpu/lcf.ts (same subset order, same
// ties: the first subset with the smallest dual violation wins).
// Cost on an H100 (3.35 TB/s, 67 TFLOP/s FP32), 2e7 spectra x 101 energies, 2 references
// + constant (M = 3): per spectrum 404 B read, (M + 3) x 4 B written; M Givens rotations
// per energy (6 FLOP each: 1.8 kFLOP) + the subset search (2^K small mat-vecs, < 0.2 kFLOP).
// 8.2 GB -> 2.4 ms vs 4e10 FLOP -> 0.6 ms: memory-bound (6 references: 2^6 subsets,
// ~3 kFLOP more, still memory-bound).

@group(0) @binding(1) var<storage, read> cube: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn put(row: u32, p: u32, v: f32) {
  out[row * params.n_invocations + p] = v;
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let p = linear_index(gid, nwg);
  let P = params.n_invocations;
  if (p >= P) { return; }

  // Streaming pass: one read of the spectrum.
  var z: array<f32, N_COLS>;
  for (var k = 0u; k < N_COLS; k++) { z[k] = 0.0; }
  var rho2 = 0.0;
  var sumsq = 0.0;
  var finite = true;
  for (var e = 0u; e < params.n_window; e++) {
    var t = cube[(params.window0 + e) * P + p];
    // No early exit: a divergent break would make every later load per-lane (on SIMD
    // backends such as llvmpipe); NaN just flows through and the flag decides at the end.
    finite = finite && is_finite_f32(t);
    sumsq += t * t;
    let base = ROT_OFF + e * (2u * N_COLS);
    for (var k = 0u; k < N_COLS; k++) {
      let c = pl(base + 2u * k);
      let s = pl(base + 2u * k + 1u);
      let zk = z[k];
      z[k] = c * zk + s * t;
      t = c * t - s * zk;
    }
    rho2 += t * t;
  }
  if (!finite) {
    for (var k = 0u; k < OUT_STATUS; k++) { put(k, p, nan_f32()); }
    put(OUT_STATUS, p, f32(STATUS_NO_DATA));
    return;
  }

  // Subset enumeration in the reduced (N_COLS-dimensional) problem.
  var best_v = 3.0e38;
  var best_s = 0u;
  for (var s = 0u; s < N_SUBSETS; s++) {
    let off = SUB_OFF + s * SUB_STRIDE;
    let mask = u32(pl(off + SUB_MASK));
    var ok = true;
    if (NONNEG == 1u) {
      for (var i = 0u; i < N_REFS; i++) {
        if (((mask >> i) & 1u) == 0u) { continue; }
        var acc = pl(off + SUB_B + i);
        for (var j = 0u; j < N_COLS; j++) { acc += pl(off + SUB_A + i * N_COLS + j) * z[j]; }
        if (acc < 0.0) { ok = false; }
      }
    }
    // No `continue` on infeasible subsets: divergent control flow in this loop would make
    // its (uniform) plan reads per-lane. They are evaluated anyway and not taken.
    var v = 0.0;
    for (var j = 0u; j < N_REFS; j++) {
      if (((mask >> j) & 1u) == 1u) { continue; }
      var acc = pl(off + SUB_C + j);
      for (var k = 0u; k < N_COLS; k++) { acc += pl(off + SUB_W + j * N_COLS + k) * z[k]; }
      v = max(v, acc);
    }
    if (ok && v < best_v) {
      best_v = v;
      best_s = s;
    }
    // v >= 0, so the first exact KKT point (v = 0) is what the full search would keep
    // (ties go to the first subset): stop there. Subsets come largest first.
    if (best_v <= 0.0) { break; }
  }

  let off = SUB_OFF + best_s * SUB_STRIDE;
  var best_f = 0.0;
  for (var i = 0u; i < N_COLS; i++) {
    var acc = pl(off + SUB_EV + i);
    for (var j = 0u; j < N_COLS; j++) { acc += pl(off + SUB_E + i * N_COLS + j) * z[j]; }
    best_f += acc * acc;
  }
  var best: array<f32, N_COLS>;
  for (var i = 0u; i < N_COLS; i++) {
    var acc = pl(off + SUB_B + i);
    for (var j = 0u; j < N_COLS; j++) { acc += pl(off + SUB_A + i * N_COLS + j) * z[j]; }
    best[i] = acc;
  }

  let rss = rho2 + best_f;
  for (var k = 0u; k < N_COLS; k++) { put(OUT_THETA0 + k, p, best[k]); }
  put(OUT_RMS, p, sqrt(max(rss, 0.0) / f32(params.n_window)));
  put(OUT_RFACTOR, p, select(nan_f32(), rss / sumsq, sumsq > 0.0));
  put(OUT_STATUS, p, f32(STATUS_OK));
}
