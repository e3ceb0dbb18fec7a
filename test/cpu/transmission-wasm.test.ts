/**
 * The SIMD absorbance (src/cpu/transmission-wasm.ts) against the JavaScript loop
 * absorbanceRange (float64 ratio, Math.log, rounded to float32): the same bytes and the same
 * masked count on every type combination, on ratios near 1 (e_log.c's |f| < 2^-20 branch),
 * on ratios across the whole float32 range (both of its other branches, every exponent) and
 * on invalid ones (zero, negative, NaN, infinite); and -ln of exact powers of two equals
 * k ln 2 as Math.log gives it.
 */
import { describe, expect, test } from 'vitest';
import { makeRng } from '../../src/synth/random.js';
import { absorbanceRange, absorbanceRangeFast, type Counts } from '../../src/stack/transmission.js';
import { AbsorbanceKernel, SLOT, transmissionSimd } from '../../src/cpu/transmission-wasm.js';

const SEED = 77;

function same(sample: Counts, flat: Counts, dark: Counts | null, label: string): number {
  const n = sample.length;
  const ref = new Float32Array(n), got = new Float32Array(n);
  const mRef = absorbanceRange(sample, flat, dark, ref, 0, n);
  // an offset range too (the tail of 1-3 values goes to the JavaScript loop)
  const mGot = absorbanceRangeFast(sample, flat, dark, got, 0, 3) + absorbanceRangeFast(sample, flat, dark, got, 3, n);
  const bad: string[] = [];
  const rb = new Uint32Array(ref.buffer), gb = new Uint32Array(got.buffer);
  for (let i = 0; i < n && bad.length < 5; i++) {
    if (rb[i] !== gb[i]) bad.push(`${label} ${i}: s=${sample[i]} f=${flat[i]} d=${dark?.[i]} js=${ref[i]} simd=${got[i]}`);
  }
  expect(bad).toEqual([]);
  expect(mGot).toBe(mRef);
  return mRef;
}

describe('absorbance in WebAssembly SIMD', () => {
  test('the runtime has WebAssembly SIMD (Node >= 16.4), so the kernel below is what runs', () => {
    expect(transmissionSimd).toBe(true);
  });

  test('integer counts, every type combination, with and without dark: the bytes of the JavaScript loop', () => {
    const rng = makeRng(SEED);
    const n = 40_003; // not a multiple of 4 or of the chunk
    const mk = (type: string, base: number, spread: number): Counts => {
      const C = type === 'uint16' ? Uint16Array : type === 'int16' ? Int16Array : type === 'uint8' ? Uint8Array : Float32Array;
      const a = new C(n);
      for (let i = 0; i < n; i++) a[i] = Math.round(base + spread * (rng.uniform() - 0.5));
      return a;
    };
    const types = ['uint16', 'int16', 'uint8', 'float32'];
    const base: Record<string, [number, number, number]> = { uint16: [20000, 40000, 100], int16: [9000, 20000, -40], uint8: [90, 200, 5], float32: [20000, 40000, 100] };
    let masked = 0;
    for (const ts of types) {
      for (const tf of types) {
        for (const td of [...types, null]) {
          const s = mk(ts, base[ts][0], base[ts][0]), f = mk(tf, base[tf][1], base[tf][1] / 2), d = td ? mk(td, base[td][2], 10) : null;
          masked += same(s, f, d, `${ts}/${tf}/${td}`);
        }
      }
    }
    expect(masked).toBeGreaterThan(0); // zero or negative transmissions occurred and were masked alike
  });

  test('float32 ratios near 1, across the whole range, and invalid: the bytes of the JavaScript loop', () => {
    const rng = makeRng(SEED + 1);
    const n = 200_000;
    const s = new Float32Array(n), f = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const kind = i % 4;
      if (kind === 0) {
        // within a few float32 ulps of each other: ratio - 1 below 2^-20
        f[i] = 1 + 1e4 * rng.uniform();
        s[i] = f[i] * (1 + (Math.round(40 * (rng.uniform() - 0.5)) * 2 ** -24));
      } else if (kind === 1) {
        s[i] = 2 ** (250 * (rng.uniform() - 0.5));
        f[i] = 2 ** (250 * (rng.uniform() - 0.5));
      } else if (kind === 2) {
        s[i] = rng.uniform() * 2;
        f[i] = 1;
      } else {
        const special = [0, -1, NaN, Infinity, -Infinity, 1, 2 ** -149, 3.4e38];
        s[i] = special[Math.floor(rng.uniform() * special.length)];
        f[i] = special[Math.floor(rng.uniform() * special.length)];
      }
    }
    const m = same(s, f, null, 'float32');
    expect(m).toBeGreaterThan(n / 16);
    // exact powers of two: -ln(2^k) = -(k ln2_hi + k ln2_lo), e_log.c's f = 0 case
    const p = Float32Array.from({ length: 256 }, (_, i) => 2 ** (i - 127));
    same(p, new Float32Array(256).fill(1), null, 'powers of two');
  });

  test('values whose -ln lies near a float32 rounding midpoint are listed for Math.log, and only those', () => {
    // Float32 ratios (flat 1) whose float64 -ln(ratio) has its 29 dropped bits within 2^12
    // ulps of 2^28 (found here by search: about 1 in 2^16), mixed with ordinary ones.
    const rng = makeRng(SEED + 2);
    const near: number[] = [], far: number[] = [];
    const f32 = new Float32Array(1), f64 = new Float64Array(1), u = new Uint32Array(f64.buffer);
    while (near.length < 24) {
      f32[0] = 0.05 + 4 * rng.uniform();
      f64[0] = -Math.log(f32[0]);
      const low = u[0] & ((1 << 29) - 1);
      if (Math.abs(low - (1 << 28)) < 1 << 11) near.push(f32[0]);
      else if (far.length < 4000 && Math.abs(low - (1 << 28)) > 1 << 13) far.push(f32[0]);
    }
    const n = 4 * (near.length + far.length);
    const s = new Float32Array(n), isNear = new Uint8Array(n / 4);
    let q = 0;
    for (let g = 0; g < n / 4; g++) {
      const useNear = g % 4 === 1 && q < near.length;
      isNear[g] = useNear ? 1 : 0;
      for (let j = 0; j < 4; j++) s[4 * g + j] = useNear && j === 2 ? near[q] : far[(4 * g + j) % far.length];
      if (useNear) q++;
    }
    expect(q).toBe(near.length);
    const k = new AbsorbanceKernel();
    let listed = new Set<number>();
    for (let p = 0; p < n; p += 4096) {
      const m = Math.min(4096, n - p);
      (k.slot('float32', SLOT.S, m) as Float32Array).set(s.subarray(p, p + m));
      (k.slot('float32', SLOT.F, m) as Float32Array).fill(1);
      k.run('float32', 'float32', null, m);
      listed = new Set([...listed, ...[...k.listed()].map((g) => (p + g) / 4)]);
    }
    const want = new Set([...isNear.keys()].filter((g) => isNear[g]));
    expect([...listed].sort((a, b) => a - b)).toEqual([...want].sort((a, b) => a - b));
    same(s, new Float32Array(n).fill(1), null, 'near midpoints');
  });
});
