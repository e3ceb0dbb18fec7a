// Seeded, deterministic random numbers for synthetic data and tests. Math.random cannot be
// seeded, and test failures must be reproducible from the printed seed.
//
// Generator: xoshiro128** (Blackman & Vigna), 128-bit state, 32-bit output; state filled
// from the seed with splitmix32 so nearby seeds give unrelated streams.
// Poisson: inversion by sequential search for lambda < 10 (cheap there), and for
// lambda >= 10 the transformed rejection method with squeeze "PTRS" (W. Hörmann, 1993,
// "The transformed rejection method for generating Poisson random variables"), which is
// exact (no normal approximation) and takes O(1) time for any large mean.

export interface Rng {
  /** Raw 32-bit unsigned output. */
  uint32(): number;
  /** Uniform in the open interval (0, 1): never 0 or 1, so log(u) and log(1-u) are finite. */
  uniform(): number;
  /** Standard normal N(0, 1). */
  normal(): number;
  /** Poisson-distributed count with mean lambda >= 0. */
  poisson(lambda: number): number;
}

const TWO_POW_32 = 4294967296;
const INV_TWO_POW_32 = 1 / TWO_POW_32;
const BLOCK = 512;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

// ln(k!) exactly (as float64) for small k, Stirling series above; the series error at
// k >= 16 is below 1e-13, far under what the PTRS acceptance test can resolve.
const LN_FACT_TABLE: number[] = (() => {
  const t = [0];
  for (let k = 1; k < 16; k++) t.push(t[k - 1] + Math.log(k));
  return t;
})();
const HALF_LN_2PI = 0.5 * Math.log(2 * Math.PI);

function lnFactorial(k: number): number {
  if (k < 16) return LN_FACT_TABLE[k];
  const r = 1 / k;
  const r2 = r * r;
  return (k + 0.5) * Math.log(k) - k + HALF_LN_2PI + r * (1 / 12 - r2 * (1 / 360 - r2 / 1260));
}

/** ln(lambda^k e^-lambda / k!), with k ln(lambda) - k ln(k) taken as one log (saves a log). */
function logPoissonPmf(k: number, lambda: number): number {
  if (k < 16) return -lambda + k * Math.log(lambda) - LN_FACT_TABLE[k];
  const r = 1 / k;
  const r2 = r * r;
  const series = r * (1 / 12 - r2 * (1 / 360 - r2 / 1260));
  return k * Math.log(lambda / k) + (k - lambda) - 0.5 * Math.log(k) - HALF_LN_2PI - series;
}

// Outputs are produced in blocks by a loop that keeps the xoshiro state in local variables:
// V8 boxes 32-bit values stored in object fields or closures (its small integers are
// 31-bit), which made a draw-at-a-time generator several times slower. The stack generator
// draws ~20 million variates per 256 x 256 x 101 stack, so this matters.
class Xoshiro128ss implements Rng {
  private readonly state = new Int32Array(4);
  private readonly raw = new Uint32Array(BLOCK);
  private readonly unit = new Float64Array(BLOCK); // raw mapped to (0, 1) in the block loop
  private pos = BLOCK;
  private spare = NaN; // Marsaglia's polar method yields normals in pairs

  constructor(seed: number) {
    // Seeds beyond 32 bits still matter: mix the high word in.
    const lo = Math.trunc(seed) >>> 0;
    const hi = Math.floor(Math.trunc(seed) / TWO_POW_32) >>> 0;
    const sm = splitmix32(lo ^ Math.imul(hi, 0x27d4eb2d));
    const st = this.state;
    for (let i = 0; i < 4; i++) st[i] = sm();
    if ((st[0] | st[1] | st[2] | st[3]) === 0) st[0] = 1; // all-zero is a fixed point
  }

  private refill(): void {
    const st = this.state;
    const raw = this.raw;
    const unit = this.unit;
    let a = st[0], b = st[1], c = st[2], d = st[3];
    for (let i = 0; i < BLOCK; i++) {
      const r = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
      raw[i] = r;
      unit[i] = (r + 0.5) * INV_TWO_POW_32;
      const t = b << 9;
      c ^= a;
      d ^= b;
      b ^= c;
      a ^= d;
      c ^= t;
      d = rotl(d, 11);
    }
    st[0] = a;
    st[1] = b;
    st[2] = c;
    st[3] = d;
    this.pos = 0;
  }

  uint32(): number {
    if (this.pos === BLOCK) this.refill();
    return this.raw[this.pos++];
  }

  uniform(): number {
    if (this.pos === BLOCK) this.refill();
    return this.unit[this.pos++];
  }

  normal(): number {
    if (!Number.isNaN(this.spare)) {
      const v = this.spare;
      this.spare = NaN;
      return v;
    }
    let u: number, v: number, s: number;
    do {
      u = 2 * this.uniform() - 1;
      v = 2 * this.uniform() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const f = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * f;
    return u * f;
  }

  poisson(lambda: number): number {
    if (!(lambda >= 0) || !Number.isFinite(lambda)) {
      throw new RangeError(`poisson: lambda must be finite and >= 0, got ${lambda}`);
    }
    if (lambda === 0) return 0;
    return lambda < 10 ? this.poissonSmall(lambda) : this.poissonPtrs(lambda);
  }

  private poissonSmall(lambda: number): number {
    // Inversion: walk the CDF from k = 0. Expected steps ~ lambda + 1.
    const u = this.uniform();
    let k = 0;
    let p = Math.exp(-lambda);
    let cdf = p;
    while (u > cdf) {
      k++;
      p *= lambda / k;
      // Rounding can leave the summed CDF a hair below 1; stop once the tail is negligible.
      if (p < 1e-17 * cdf) break;
      cdf += p;
    }
    return k;
  }

  // PTRS constants depend only on lambda; the stack generator calls with a different lambda
  // nearly every time, so they are not cached, and logs are left to the slow path.
  private poissonPtrs(lambda: number): number {
    const b = 0.931 + 2.53 * Math.sqrt(lambda);
    const a = -0.059 + 0.02483 * b;
    const vr = 0.9277 - 3.6224 / (b - 2);
    for (;;) {
      const u = this.uniform() - 0.5;
      const v = this.uniform();
      const us = 0.5 - Math.abs(u);
      const k = Math.floor(((2 * a) / us + b) * u + lambda + 0.43);
      if (us >= 0.07 && v <= vr) return k; // squeeze: accepted without logs (~3/4 of draws)
      if (k < 0 || (us < 0.013 && v > us)) continue;
      // Accept if v * invAlpha / (a/us^2 + b) <= pmf(k); the left side as a single log.
      const lhs = Math.log((v * (1.1239 + 1.1328 / (b - 3.4))) / (a / (us * us) + b));
      if (lhs <= logPoissonPmf(k, lambda)) return k;
    }
  }
}

/** A seeded generator; the same seed always yields the same sequence. */
export function makeRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new RangeError(`makeRng: seed must be finite, got ${seed}`);
  return new Xoshiro128ss(seed);
}

/**
 * A sampler for many Poisson draws with one fixed mean (a dark frame): inversion on a
 * precomputed CDF with a guide table (Chen & Asau), exact and several times cheaper per
 * draw than PTRS. Uses `rng` for its uniforms.
 */
export function poissonSampler(rng: Rng, lambda: number): () => number {
  if (!(lambda >= 0) || !Number.isFinite(lambda)) {
    throw new RangeError(`poissonSampler: lambda must be finite and >= 0, got ${lambda}`);
  }
  if (lambda === 0) return () => 0;
  // Tail mass beyond lambda + 12 sqrt(lambda) + 20 is below 1e-20: the table may end there.
  const kMax = Math.ceil(lambda + 12 * Math.sqrt(lambda) + 20);
  const cdf = new Float64Array(kMax + 1);
  // pmf from logs: exp(-lambda) alone underflows for lambda > ~745.
  let acc = 0;
  for (let k = 0; k <= kMax; k++) {
    acc += Math.exp(-lambda + k * Math.log(lambda) - lnFactorial(k));
    cdf[k] = acc;
  }
  for (let k = 0; k <= kMax; k++) cdf[k] /= acc; // absorbs rounding and the dropped tail
  cdf[kMax] = 1;
  const m = kMax + 1;
  const guide = new Int32Array(m); // guide[j] = first k with cdf[k] >= j / m
  for (let j = 0, k = 0; j < m; j++) {
    while (cdf[k] < j / m) k++;
    guide[j] = k;
  }
  return () => {
    const u = rng.uniform();
    let k = guide[Math.floor(u * m)];
    while (cdf[k] < u) k++;
    return k;
  };
}
