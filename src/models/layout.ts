/**
 * Numbers shared by the fit kernel (shaders/fit.wgsl, generated constants) and its CPU twin
 * (src/cpu/fit.ts): status codes, the row layout of the per-pixel results, and the tuning
 * of the Levenberg-Marquardt core and of the start values. Written only here.
 */

/** Per-pixel status of a fit (the `status` map, uint8). */
export const FitStatus = {
  /** A stopping rule was met (which one: the `stop` map, FitStop). */
  CONVERGED: 0,
  /** --max-iter iterations without meeting a stopping rule; the last accepted values are kept. */
  MAX_ITERATIONS: 1,
  /** J^T J not positive definite (a parameter without influence, or two that trade off
   * exactly): no standard errors; the last accepted values are kept. */
  SINGULAR: 2,
  /** Converged with a free parameter on one of its bounds (an active bound: the
   * constrained optimum). The parameter maps keep its values; that parameter's standard
   * error is NaN (no confidence interval), the others' are computed with it held. */
  AT_BOUND: 3,
  /** Too few finite points for the free parameters, or no pre-/post-edge data for the
   * start values: not fitted. */
  MASKED_INPUT: 4,
  /** The start values or the fitted values are not finite (e.g. data near float32 overflow). */
  NON_FINITE: 5,
} as const;
export const FIT_STATUS_NAMES = ['converged', 'max-iterations', 'singular', 'at-bound', 'masked-input', 'non-finite'] as const;

/**
 * Which stopping rule ended a fit (the `stop` map), MINPACK lmder's tests (its `info`):
 * FTOL both the actual and the predicted relative reductions of chi-square of the last step
 * were at most FTOL (and actual <= 2 x predicted); XTOL the last step was small against the
 * parameters, |dp| <= XTOL (XTOL + |p|); FTOL_XTOL both; GTOL the largest cosine between the
 * residual vector and a Jacobian column, |J_j^T r| / (|J_j| |r|), was at most GTOL (the
 * parameters held on a bound left out); EXACT the residual is at float32's rounding of the
 * data (CHI2_FLOOR_REL). NONE: the fit did not converge (status max-iterations, singular,
 * masked-input, non-finite). FTOL and XTOL count only where the Gauss-Newton step from the
 * final point predicts no more than FTOL chi-square to gain: a damped step is small in a
 * flat valley too, and there the fit goes on (src/cpu/fit.ts, gnPredicted).
 */
export const FitStop = { NONE: 0, FTOL: 1, XTOL: 2, FTOL_XTOL: 3, GTOL: 4, EXACT: 5 } as const;
export const FIT_STOP_NAMES = ['none', 'ftol', 'xtol', 'ftol+xtol', 'gtol', 'exact'] as const;

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
  /** FitStop code. */
  stop: number;
  count: number;
}

export function fitRows(np: number): FitRows {
  return { param0: 0, stderr0: np, yScale: 2 * np, chi2: 2 * np + 1, nFinite: 2 * np + 2, iterations: 2 * np + 3, status: 2 * np + 4, stop: 2 * np + 5, count: 2 * np + 6 };
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
 * - FTOL, XTOL, GTOL: MINPACK lmder's stopping tests (FitStop says which one stopped a fit).
 *   scipy's least_squares defaults to 1e-8 for each; these are larger because the kernel
 *   works in float32:
 *   FTOL = 1e-5: the actual and the predicted (dp^T g + lambda dp^T D dp) relative chi-square
 *   reductions of a step both at most FTOL, on an accepted or a rejected step, as lmder.
 *   A difference of two float32 chi-square sums resolves ~1e-6 relative: at FTOL = 1e-6 the
 *   GPU went on for up to 10 more rejected steps than the CPU; at 1e-5 both stop together.
 *   With n - k ~ 30 degrees of freedom it leaves ~sqrt(FTOL (n - k)) ~ 2 % of a standard error.
 *   XTOL = 1e-6: |dp| <= XTOL (XTOL + |p|), Euclidean norms over the free parameters in
 *   internal units (positions over [-1, 1], amplitudes <= 1), scipy's form of the test;
 *   float32 resolves ~6e-8 relative, so smaller steps change nothing.
 *   GTOL = 1e-5: max_j |J_j^T r| / (|J_j| |r|); float32 sums of J r carry ~1e-6 of
 *   |J_j| |r| in rounding, so a smaller GTOL could not be told from zero.
 *   FTOL and XTOL end a fit only if the Gauss-Newton step from that point predicts a
 *   reduction of at most FTOL chi-square: a heavily damped step is small and predicts little
 *   in a flat valley too, where the fit must go on (the issue: 3 % had stopped "converged"
 *   at 1.45x the true chi-square).
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
 * - WIDTH_LOCAL_STEPS, WIDTH_MIN_STEPS: the default lower bound of a width parameter is
 *   WIDTH_LOCAL_STEPS x the local energy step at its component's centre (the smaller
 *   neighbouring step of each grid energy, interpolated to the centre: localStep in
 *   src/cpu/fit.ts), and never below WIDTH_MIN_STEPS x the finest step. A narrower peak falls between grid points: its height, centre and width
 *   lose their influence on chi-square and J^T J becomes singular. On the measured V2O5
 *   spectrum a fixed floor of half the finest step (0.25 eV) let the white-line Lorentzian
 *   run into the 7 eV-spaced pre-edge and shrink to a 0.3 eV spike between two points
 *   (status singular); the local floor (3.5 eV there) keeps it a peak. A width the data
 *   pushes against the floor is held there (an active bound: status at-bound).
 */
export const FIT_TUNING = {
  LAMBDA_INIT: 1e-3,
  LAMBDA_UP: 10,
  LAMBDA_MIN: 1e-7,
  LAMBDA_MAX: 1e7,
  NU_MAX: 1024,
  FTOL: 1e-5,
  XTOL: 1e-6,
  GTOL: 1e-5,
  CHI2_FLOOR_REL: 1e-7,
  SINGULAR_PIVOT: 1e-6,
  EDGE_LOW: 0.35,
  STEP_WIDTH_STEPS: 3,
  PEAK_WIDTH_STEPS: 2,
  PEAK_MIN_HEIGHT: 0.02,
  PEAK_EXCLUDE_WIDTHS: 3,
  OPEN_BOUND: 1e38,
  WIDTH_LOCAL_STEPS: 0.5,
  WIDTH_MIN_STEPS: 0.5,
} as const;

/** Component roles as the kernel sees them (COMP_ROLE). */
export const InitRoleCode = { baseline: 0, slope: 1, step: 2, peak: 3 } as const;
