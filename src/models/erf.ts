/**
 * The error function, twice: `erf64` in float64 for the CPU twin (absolute error 1.1e-16),
 * and `ERF_F32_WGSL`, a float32 approximation for the GPU whose largest absolute error is
 * 1.3e-7 (one float32 ulp of 1), so 1 + erf(u) in the left tail is as good as float32 allows.
 *
 * erf64: Chebyshev interpolants of smooth functions, summed by Clenshaw's recurrence
 * (coefficients computed for this project with mpmath at 50 digits, interpolation at the
 * Chebyshev points, then rounded to float64; checked against mpmath.erf on 40,001 points):
 *   |x| <= 1:        erf(x) = x A(z), A = erf(x)/x in z = 2x^2 - 1 (degree 11);
 *   1 < |x| <= 3:    erfc(|x|) = exp(-x^2) B(z), B = erfc(x) exp(x^2) in z = |x| - 2 (degree 19);
 *   3 < |x| < 6.5:   erfc(|x|) = exp(-x^2) C(z) / |x|, C = x erfc(x) exp(x^2) in z mapping
 *                    1/|x| in [1/6.5, 1/3] to [-1, 1] (degree 12);
 *   |x| >= 6.5:      +-1 (erfc(6.5) = 3.8e-20).
 * About 20 ns a call, against ~300 ns for a series / continued fraction: erf is evaluated
 * at every energy of every iteration of every pixel.
 *
 * erf_f32: coefficients fitted for this project (iteratively reweighted least squares towards
 * minimax, numpy, float64, then rounded to float32) and checked in float32 arithmetic:
 *   |x| <= 0.875:       erf(x) = x P(x^2), P of degree 5 (relative error 8.6e-9);
 *   0.875 < |x| < 4:    erfc(|x|) = exp(-x^2) Q(s), s = 1 / (1 + |x|/2), Q of degree 7
 *                       (relative error 4.1e-10);
 *   |x| >= 4:           +-1 (erfc(4) = 1.5e-8).
 * test/models/components.test.ts checks both against each other on the GPU.
 */

const CHEB_A = [
  0.9754769393826541, -0.14226120510371365, 0.010035582187599796, -0.0005768764699767485, 2.741993125219606e-5,
  -1.1043175507344507e-6, 3.8488755420345036e-8, -1.1808582533875466e-9, 3.2334215826050435e-11,
  -7.991015946679151e-13, 1.7990723022320763e-14, -3.717374242306777e-16,
];
const CHEB_B = [
  0.2785389365977923, -0.11964641832736307, 0.02392588774648554, -0.004503974067265867, 0.0008045451692536015,
  -0.00013720361484011932, 2.244458275373349e-5, -3.535572865202117e-6, 5.380083091307861e-7,
  -7.92969488788695e-8, 1.1346142347924916e-8, -1.579118251021591e-9, 2.1413966089607874e-10,
  -2.833660827914984e-11, 3.663915449245124e-12, -4.634539762079998e-13, 5.741110396956438e-14,
  -6.971597702211598e-15, 8.304754970906511e-16, -9.591013829017397e-17,
];
const CHEB_C = [
  0.5480634740015163, -0.010405844755280762, -0.0006932110155525947, 3.924895050630415e-5, -1.1490416887317027e-7,
  -1.0524275179222339e-7, 6.557887487044545e-9, -2.34734275074453e-11, -2.6646043321143147e-11,
  2.1852649787316496e-12, -4.4990423777201666e-14, -8.06836359176749e-15, 1.0156777817162176e-15,
];
const C_W0 = 1 / 6.5;
const C_W1 = 1 / 3;

/** sum_k c_k T_k(z) by Clenshaw's recurrence. */
function clenshaw(c: readonly number[], z: number): number {
  let b1 = 0;
  let b2 = 0;
  const z2 = 2 * z;
  for (let k = c.length - 1; k > 0; k--) {
    const b0 = z2 * b1 - b2 + c[k];
    b2 = b1;
    b1 = b0;
  }
  return z * b1 - b2 + c[0];
}

export function erf64(x: number): number {
  const a = Math.abs(x);
  if (a <= 1) return x * clenshaw(CHEB_A, 2 * x * x - 1);
  if (!(a < 6.5)) return Number.isNaN(x) ? NaN : x > 0 ? 1 : -1;
  const ec = a <= 3
    ? Math.exp(-a * a) * clenshaw(CHEB_B, a - 2)
    : (Math.exp(-a * a) * clenshaw(CHEB_C, (2 * (1 / a - C_W0)) / (C_W1 - C_W0) - 1)) / a;
  return x > 0 ? 1 - ec : ec - 1;
}

export const ERF_F32_WGSL = /* wgsl */ `
// erf in float32, absolute error <= 1.3e-7 (src/models/erf.ts explains the fit).
fn erf_f32(x: f32) -> f32 {
  let a = abs(x);
  if (a <= 0.875) {
    let s = x * x;
    var q = -0.0006203462835401297;
    q = q * s + 0.005032218527048826;
    q = q * s - 0.026791486889123917;
    q = q * s + 0.11282455921173096;
    q = q * s - 0.3761255145072937;
    q = q * s + 1.1283791065216064;
    return x * q;
  }
  if (a >= 4.0) { return sign(x); }
  let s = 1.0 / (1.0 + 0.5 * a);
  var q = 0.11954706907272339;
  q = q * s - 0.47192955017089844;
  q = q * s + 0.564400315284729;
  q = q * s - 0.10456972569227219;
  q = q * s + 0.34828048944473267;
  q = q * s + 0.25954750180244446;
  q = q * s + 0.284934937953949;
  q = q * s - 0.0001556877832626924;
  return sign(x) * (1.0 - exp(-(a * a)) * q);
}
`;
