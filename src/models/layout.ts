/**
 * Numbers shared by the fit kernel (shaders/fit.wgsl, generated constants) and its CPU twin
 * (src/cpu/fit.ts): status codes, the row layout of the per-pixel results, and the tuning
 * of the Levenberg-Marquardt core and of the start values. Written only here.
 */

/** Per-pixel status of a fit (the `status` map, uint8). */
export const FitStatus = {
  /** Relative chi-square change, step size or an exact fit met the stopping rule. */
  CONVERGED: 0,
  /** --max-iter iterations without meeting a stopping rule; the last accepted values are kept. */
  MAX_ITERATIONS: 1,
  /** J^T J not positive definite (a parameter without influence, or two that trade off
   * exactly): no standard errors; the last accepted values are kept. */
  SINGULAR: 2,
  /** Converged with a free parameter on one of its bounds: its standard error is not a
   * confidence interval. */
  AT_BOUND: 3,
  /** Too few finite points for the free parameters, or no pre-/post-edge data for the
   * start values: not fitted. */
  MASKED_INPUT: 4,
  /** The start values or the fitted values are not finite (e.g. data near float32 overflow). */
  NON_FINITE: 5,
} as const;
export const FIT_STATUS_NAMES = ['converged', 'max-iterations', 'singular', 'at-bound', 'masked-input', 'non-finite'] as const;

/**
 * Rows of the per-pixel fit results ([row][pixel], internal units; src/pipeline/fit-step.ts
 * converts them): parameters, their standard errors, the pixel's data scale, chi-square,
 * the number of finite points, iterations and status.
 */
export interface FitRows {
  param0: number;
  stderr0: number;
  yScale: number;
  chi2: number;
  nFinite: number;
  iterations: number;
  status: number;
  count: number;
}

export function fitRows(np: number): FitRows {
  return { param0: 0, stderr0: np, yScale: 2 * np, chi2: 2 * np + 1, nFinite: 2 * np + 2, iterations: 2 * np + 3, status: 2 * np + 4, count: 2 * np + 5 };
}

/**
 * Tuning of the LM core and the start values, the same on both backends. The reasons:
 * - LAMBDA_*, NU_MAX: damping of the Jacobi-scaled normal matrix (unit diagonal, so lambda
 *   is dimensionless), Nielsen's rule: after an accepted step lambda *= max(1/3, 1 - (2 rho
 *   - 1)^3) with rho = actual / predicted chi2 reduction, after a rejected one lambda *= nu,
 *   nu doubling up to NU_MAX (Madsen, Nielsen & Tingleff, "Methods for non-linear least
 *   squares problems", 2004). Marquardt's fixed x0.1 / x10 took twice the iterations on
 *   measured V spectra, alternating accepted and rejected steps. LAMBDA_INIT = 1e-3 (tau
 *   for a fair start); LAMBDA_UP when the factorisation fails; LAMBDA_MIN keeps 1 + lambda
 *   meaningful in float32; LAMBDA_MAX caps it where a step is ~1e-7 of the gradient step.
 * - FTOL: the fit ends when an accepted step lowers chi-square by at most this fraction, or
 *   (checked before the pass, which it saves) when the damped step's predicted reduction
 *   dp^T g + lambda dp^T D dp is at most this fraction. With n - k ~ 30 degrees of freedom it
 *   leaves an error of ~sqrt(FTOL (n - k)) ~ 2 % of a standard error. The predicted
 *   reduction is what float32 can judge: a difference of two float32 chi-square sums
 *   resolves ~1e-6 relative, and at FTOL = 1e-6 the GPU went on for up to 10 more rejected
 *   steps than the CPU; at 1e-5 both stop together (iterations within 1 on 99.8 %).
 * - XTOL, STEP_FLOOR: a step whose largest change |dp| / (|p| + STEP_FLOOR) (internal units,
 *   where positions run over [-1, 1] and amplitudes are <= 1) is at most XTOL ends the fit
 *   before its pass: float32 resolves ~6e-8 relative, so smaller steps change nothing.
 * - CHI2_FLOOR_REL: a fit whose RMS residual is at most this fraction of the pixel's largest
 *   |value| (1.7 x the float32 rounding of that value) reproduces the data: converged.
 * - SINGULAR_PIVOT: Cholesky pivots of the unit-diagonal matrix at or below this are taken
 *   as singular (a correlation of 1 - 5e-7 between two parameters); float32 resolves pivots
 *   to ~1e-6 of the diagonal, so anything below is noise.
 * - EDGE_LOW, STEP_WIDTH_STEPS, PEAK_WIDTH_STEPS, PEAK_MIN_HEIGHT, PEAK_EXCLUDE_WIDTHS:
 *   start-value rules (the header of src/cpu/fit.ts explains them). EDGE_LOW = 0.35: the dip
 *   between a V5+-like pre-edge peak and a broad edge only reached 0.24 of the step.
 * - OPEN_BOUND: a bound at or beyond this magnitude is open (float32 has no portable infinity
 *   in shaders compiled with fast math).
 * - WIDTH_MIN_STEPS: default lower bound of width parameters, as a fraction of the finest
 *   energy step (a narrower feature is not resolved by the grid and makes J^T J singular).
 */
export const FIT_TUNING = {
  LAMBDA_INIT: 1e-3,
  LAMBDA_UP: 10,
  LAMBDA_MIN: 1e-7,
  LAMBDA_MAX: 1e7,
  NU_MAX: 1024,
  FTOL: 1e-5,
  XTOL: 1e-6,
  STEP_FLOOR: 1e-2,
  CHI2_FLOOR_REL: 1e-7,
  SINGULAR_PIVOT: 1e-6,
  EDGE_LOW: 0.35,
  STEP_WIDTH_STEPS: 3,
  PEAK_WIDTH_STEPS: 2,
  PEAK_MIN_HEIGHT: 0.02,
  PEAK_EXCLUDE_WIDTHS: 3,
  OPEN_BOUND: 1e38,
  WIDTH_MIN_STEPS: 0.1,
} as const;

/** Component roles as the kernel sees them (COMP_ROLE). */
export const InitRoleCode = { baseline: 0, slope: 1, step: 2, peak: 3 } as const;
