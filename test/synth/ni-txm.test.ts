import { describe, expect, test } from 'vitest';
import {
  makeNiTxmStack,
  niMixtureSpectrum,
  NI_TXM_PARTICLES,
  NI_TXM_PHYSICS,
  type NiTxmStack,
} from '../../src/synth/ni-txm.js';
import { makeRng, poissonSampler } from '../../src/synth/random.js';
import { interpLinear, readTwoColumnSpectrum } from '../../src/synth/references.js';
import { exampleDataPath } from '../../src/synth/paths.js';

// Small, non-square frame: catches width/height mix-ups and keeps the suite fast.
const W = 96;
const H = 72;
const SEED = 20240611;

// -ln((S-D)/(F-D)) recomputed from float32 counts: S and F carry a relative rounding of
// 2^-24 (6e-8) each, amplified by S/(S-D) <= ~1.1, and A itself is rounded to float32
// (A peaks near 2.5 on the white line: half an ulp is 1.2e-7). The sum stays below 3e-7
// (2.1e-7 seen at 256 x 256); 1e-6 leaves margin but still catches a wrong term (the
// film alone is 0.02).
const ABSORBANCE_TOL = 1e-6;

function bytes(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function idOf(role: string): number {
  const p = NI_TXM_PARTICLES.find((q) => q.role === role);
  if (!p) throw new Error(`no ${role} particle`);
  return p.id;
}

describe('makeNiTxmStack', () => {
  const clean: NiTxmStack = makeNiTxmStack({ width: W, height: H, seed: SEED, noise: false });

  test('shapes and the real energy grid', () => {
    const n = W * H;
    expect(clean.energies.length).toBe(101);
    expect(clean.energies[0]).toBeCloseTo(8212.0, 0);
    expect(clean.energies[100]).toBeCloseTo(8777.0, 0);
    for (let e = 1; e < 101; e++) expect(clean.energies[e]).toBeGreaterThan(clean.energies[e - 1]);
    for (const a of [clean.sample, clean.flat, clean.dark, clean.absorbance]) expect(a.length).toBe(101 * n);
    expect(clean.truth.soc.length).toBe(n);
    expect(clean.truth.thickness.length).toBe(n);
    expect(clean.truth.particle.length).toBe(n);
  });

  test('custom energies and count levels are honoured', () => {
    const energies = Float64Array.from([8300, 8340, 8400]);
    const s = makeNiTxmStack({ width: 8, height: 5, seed: 1, noise: false, energies, i0Counts: 1000, darkCounts: 0 });
    expect(s.sample.length).toBe(3 * 40);
    expect(s.dark.every((v) => v === 0)).toBe(true);
    // The flat is i0 times an illumination fall-off (<= 12 %) times the beam drift across
    // the scan (<= 8 %): within [1000 * 0.88 * 0.92, 1000].
    const { illuminationFalloff: f, beamDrop: d } = NI_TXM_PHYSICS;
    for (const v of s.flat) expect(v).toBeGreaterThan(1000 * (1 - f) * (1 - d)), expect(v).toBeLessThanOrEqual(1000);
  });

  test('same seed gives identical bytes; another seed differs', () => {
    const a = makeNiTxmStack({ width: W, height: H, seed: SEED, noise: true });
    const b = makeNiTxmStack({ width: W, height: H, seed: SEED, noise: true });
    const c = makeNiTxmStack({ width: W, height: H, seed: SEED + 1, noise: true });
    for (const k of ['sample', 'flat', 'dark'] as const) {
      expect(bytes(a[k]).equals(bytes(b[k])), `${k}, seed ${SEED}`).toBe(true);
      expect(bytes(a[k]).equals(bytes(c[k])), `${k}, seeds ${SEED} vs ${SEED + 1}`).toBe(false);
    }
    // The truth does not depend on the seed: only the counting noise does.
    expect(bytes(a.absorbance).equals(bytes(c.absorbance))).toBe(true);
    // Counts are whole numbers.
    for (let i = 0; i < 5000; i++) expect(Number.isInteger(a.sample[i * 137])).toBe(true);
  });

  test('noise-free counts give back the absorbance', () => {
    const { sample, flat, dark, absorbance } = clean;
    let worst = 0;
    for (let i = 0; i < absorbance.length; i++) {
      const a = -Math.log((sample[i] - dark[i]) / (flat[i] - dark[i]));
      worst = Math.max(worst, Math.abs(a - absorbance[i]));
    }
    expect(worst).toBeLessThan(ABSORBANCE_TOL);
  });

  test('absorbance follows the stated model (references mixed by the true soc)', () => {
    const P = NI_TXM_PHYSICS;
    const { soc, thickness, particle } = clean.truth;
    const n = W * H;
    let checked = 0;
    for (let p = 0; p < n; p += 7) {
      const t = thickness[p];
      const mix = particle[p] ? niMixtureSpectrum(soc[p], clean.energies) : null;
      for (let e = 0; e < clean.energies.length; e += 10) {
        const E = clean.energies[e];
        const want = mix ? P.film + t * (P.jumpPerUm * mix[e] + P.matrixBgPerUm + P.matrixBgSlopePerUmPerEv * (E - P.eRefEv)) : P.film;
        expect(Math.abs(clean.absorbance[e * n + p] - want)).toBeLessThan(ABSORBANCE_TOL);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });

  test('particle, thickness and soc agree; background soc is NaN', () => {
    const { soc, thickness, particle } = clean.truth;
    let bg = 0;
    for (let p = 0; p < W * H; p++) {
      const on = particle[p] !== 0;
      expect(thickness[p] > 0).toBe(on);
      expect(Number.isNaN(soc[p])).toBe(!on);
      if (on) expect(soc[p]).toBeGreaterThanOrEqual(0), expect(soc[p]).toBeLessThanOrEqual(1);
      else bg++;
    }
    expect(bg).toBeGreaterThan(W * H * 0.3);
    for (const q of NI_TXM_PARTICLES) expect(particle.includes(q.id), `particle ${q.id} painted`).toBe(true);
  });

  test('inactive particle has s = 0; core-shell and gradient vary; the crack is cut out', () => {
    const { soc, particle } = clean.truth;
    const inactive = idOf('inactive');
    const range = (id: number) => {
      let lo = Infinity, hi = -Infinity, count = 0;
      for (let p = 0; p < W * H; p++) {
        if (particle[p] !== id) continue;
        lo = Math.min(lo, soc[p]);
        hi = Math.max(hi, soc[p]);
        count++;
      }
      return { lo, hi, count };
    };
    const r = range(inactive);
    expect(r.count).toBeGreaterThan(20);
    expect([r.lo, r.hi]).toEqual([0, 0]);
    for (const role of ['core-shell', 'gradient']) expect(range(idOf(role)).hi - range(idOf(role)).lo).toBeGreaterThan(0.5);
    // Crack: background pixels inside the cracked particle's outline.
    const c = NI_TXM_PARTICLES.find((q) => q.role === 'cracked')!;
    const L = Math.min(W, H);
    let holes = 0;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const dx = (x + 0.5 - c.cx * W) / (c.a * L), dy = (y + 0.5 - c.cy * H) / (c.b * L);
        if (dx * dx + dy * dy < 0.8 && particle[y * W + x] === 0) holes++;
      }
    }
    expect(holes).toBeGreaterThan(3);
  });

  test('edge jumps of the particles lie in 0.2..1.5', () => {
    const { thickness, particle } = clean.truth;
    const maxT = new Map<number, number>();
    for (let p = 0; p < W * H; p++) if (particle[p]) maxT.set(particle[p], Math.max(maxT.get(particle[p]) ?? 0, thickness[p]));
    for (const [id, t] of maxT) {
      const jump = t * NI_TXM_PHYSICS.jumpPerUm;
      expect(jump, `particle ${id}`).toBeGreaterThan(0.2);
      expect(jump, `particle ${id}`).toBeLessThan(1.5);
    }
  });

  test('rejects bad options', () => {
    expect(() => makeNiTxmStack({ width: 0, height: 4, seed: 1, noise: false })).toThrow(RangeError);
    expect(() => makeNiTxmStack({ width: 4, height: 4, seed: 1, noise: false, energies: Float64Array.from([2, 1]) })).toThrow(
      /increasing/,
    );
  });
});

describe('references', () => {
  test('keV files are read in eV; interpolation is linear and holds the ends', () => {
    const nio = readTwoColumnSpectrum(exampleDataPath('ni-k/ref_NiO.txt'));
    expect(nio.energy[0]).toBeCloseTo(8200, 6);
    expect(nio.energy[nio.energy.length - 1]).toBeCloseTo(9000, 6);
    // Half-step edge of NiO near 8340.1 eV (data/README.md).
    const m = niMixtureSpectrum(0, Float64Array.from([8340.1]));
    expect(m[0]).toBeGreaterThan(0.3);
    expect(m[0]).toBeLessThan(0.7);
    const x = Float64Array.from([0, 1, 3]);
    const y = Float64Array.from([10, 20, 0]);
    expect(interpLinear(x, y, 0.25)).toBeCloseTo(12.5, 12);
    expect(interpLinear(x, y, 2)).toBeCloseTo(10, 12);
    expect(interpLinear(x, y, -5)).toBe(10);
    expect(interpLinear(x, y, 9)).toBe(0);
    expect(interpLinear(x, y, NaN)).toBeNaN();
  });

  test('a missing example file gives a clear error', () => {
    expect(() => exampleDataPath('ni-k/nope.txt')).toThrow(/not found.*looked in/s);
  });
});

describe('makeRng', () => {
  // Sample mean and variance of N draws, each compared within Z standard errors:
  // SE(mean) = sqrt(lambda / N); SE(variance) = sqrt((mu4 - sigma^4) / N) with the Poisson
  // mu4 = lambda + 3 lambda^2, i.e. sqrt((lambda + 2 lambda^2) / N). Z = 5 makes a false
  // failure (seeded, so it would be reproducible anyway) a ~1e-6 event per check.
  const N = 100_000;
  const Z = 5;

  function moments(draw: () => number) {
    let s = 0, s2 = 0;
    const xs = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      xs[i] = draw();
      s += xs[i];
    }
    const mean = s / N;
    for (let i = 0; i < N; i++) s2 += (xs[i] - mean) ** 2;
    return { mean, variance: s2 / (N - 1), xs };
  }

  test.each([0.5, 3, 9.9, 10, 12, 47, 100, 2700, 1e5])('poisson(%d): mean and variance', (lambda) => {
    const seed = 1000 + Math.round(lambda);
    const rng = makeRng(seed);
    const { mean, variance, xs } = moments(() => rng.poisson(lambda));
    expect(Math.abs(mean - lambda), `seed ${seed}`).toBeLessThan(Z * Math.sqrt(lambda / N));
    expect(Math.abs(variance - lambda), `seed ${seed}`).toBeLessThan(Z * Math.sqrt((lambda + 2 * lambda * lambda) / N));
    expect(xs.every((v) => Number.isInteger(v) && v >= 0)).toBe(true);
  });

  // Each frequency within Z binomial standard errors of the exact pmf (plus a floor for
  // the far tail, where the standard error rounds to nothing).
  function expectPmf(name: string, lambda: number, draw: () => number) {
    const counts = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      const k = draw();
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    let logP = -lambda; // ln pmf(0)
    for (let k = 0; k <= lambda * 2; k++) {
      if (k > 0) logP += Math.log(lambda / k);
      const p = Math.exp(logP);
      const f = (counts.get(k) ?? 0) / N;
      expect(Math.abs(f - p), `${name} k=${k}`).toBeLessThan(Z * Math.sqrt((p * (1 - p)) / N) + 1e-5);
    }
  }

  test('poisson (inversion and PTRS) and the fixed-mean sampler match the pmf bin by bin', () => {
    const rng = makeRng(77);
    expectPmf('inversion lambda=4, seed 77', 4, () => rng.poisson(4));
    expectPmf('PTRS lambda=12, seed 77', 12, () => rng.poisson(12));
    expectPmf('PTRS lambda=60, seed 77', 60, () => rng.poisson(60));
    expectPmf('table lambda=30, seed 77', 30, poissonSampler(rng, 30));
  });

  test('poissonSampler(100): mean and variance', () => {
    const rng = makeRng(5);
    const draw = poissonSampler(rng, 100);
    const { mean, variance } = moments(draw);
    expect(Math.abs(mean - 100)).toBeLessThan(Z * Math.sqrt(100 / N));
    expect(Math.abs(variance - 100)).toBeLessThan(Z * Math.sqrt((100 + 2e4) / N));
  });

  test('uniform is in (0,1) with mean 1/2; normal has mean 0 and variance 1', () => {
    const rng = makeRng(3);
    const u = moments(() => rng.uniform());
    expect(u.xs.every((v) => v > 0 && v < 1)).toBe(true);
    expect(Math.abs(u.mean - 0.5)).toBeLessThan(Z * Math.sqrt(1 / 12 / N));
    const g = moments(() => rng.normal());
    expect(Math.abs(g.mean)).toBeLessThan(Z * Math.sqrt(1 / N));
    expect(Math.abs(g.variance - 1)).toBeLessThan(Z * Math.sqrt(2 / N));
  });

  test('seeds give reproducible, distinct streams; bad input is rejected', () => {
    const a = makeRng(42), b = makeRng(42), c = makeRng(43), d = makeRng(42 + 2 ** 32);
    const sa = Array.from({ length: 8 }, () => a.uint32());
    expect(Array.from({ length: 8 }, () => b.uint32())).toEqual(sa);
    expect(Array.from({ length: 8 }, () => c.uint32())).not.toEqual(sa);
    expect(Array.from({ length: 8 }, () => d.uint32())).not.toEqual(sa);
    expect(() => a.poisson(-1)).toThrow(RangeError);
    expect(() => a.poisson(NaN)).toThrow(RangeError);
    expect(a.poisson(0)).toBe(0);
  });
});
