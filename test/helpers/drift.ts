/**
 * Drifted stacks with known shifts, for the alignment tests. The shifts are applied by an
 * independent textbook FFT (iterative Cooley-Tukey with bit reversal, not the engine's Stockham kernels), so
 * the truth is not produced by the code under test.
 *
 * The sample moves, the illumination does not: the noise-free absorbance of the project's
 * Ni K-edge generator (src/synth/ni-txm.ts) is Fourier-shifted by each energy's drift, then
 * counts are drawn: sample ~ Poisson(open * exp(-A_shifted) + dark), flat ~ Poisson(open +
 * dark), dark ~ Poisson(dark), with the demo's 20,000 open-beam counts.
 */
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { makeRng } from '../../src/synth/random.js';

/** Textbook iterative radix-2 FFT (bit reversal, then butterflies), in place. */
function fftIter(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  const s = inverse ? 1 : -1;
  for (let len = 2; len <= n; len <<= 1) {
    const a = (s * 2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const c = Math.cos(a * k), d = Math.sin(a * k);
        const u = i + k, v = i + k + len / 2;
        const tr = c * re[v] - d * im[v], ti = c * im[v] + d * re[v];
        re[v] = re[u] - tr; im[v] = im[u] - ti;
        re[u] += tr; im[u] += ti;
      }
    }
  }
}

/** Moves the content of a real [h][w] image (powers of two) by (+dy, +dx), periodically. */
export function fourierShiftReference(img: ArrayLike<number>, h: number, w: number, dy: number, dx: number): Float64Array {
  const re = Float64Array.from({ length: h * w }, (_, i) => img[i]);
  const im = new Float64Array(h * w);
  const rows = (inverse: boolean) => {
    for (let y = 0; y < h; y++) {
      const r = re.slice(y * w, y * w + w), i = im.slice(y * w, y * w + w);
      fftIter(r, i, inverse);
      re.set(r, y * w); im.set(i, y * w);
    }
  };
  const cols = (inverse: boolean) => {
    for (let x = 0; x < w; x++) {
      const r = new Float64Array(h), i = new Float64Array(h);
      for (let y = 0; y < h; y++) { r[y] = re[y * w + x]; i[y] = im[y * w + x]; }
      fftIter(r, i, inverse);
      for (let y = 0; y < h; y++) { re[y * w + x] = r[y]; im[y * w + x] = i[y]; }
    }
  };
  rows(false); cols(false);
  for (let ky = 0; ky < h; ky++) {
    const fy = (ky < h / 2 ? ky : ky - h) / h;
    for (let kx = 0; kx < w; kx++) {
      const fx = (kx < w / 2 ? kx : kx - w) / w;
      const a = -2 * Math.PI * (fy * dy + fx * dx);
      const c = Math.cos(a), s = Math.sin(a);
      const i = ky * w + kx;
      const r0 = re[i], i0 = im[i];
      re[i] = r0 * c - i0 * s; im[i] = r0 * s + i0 * c;
    }
  }
  rows(true); cols(true);
  const out = new Float64Array(h * w);
  for (let i = 0; i < h * w; i++) out[i] = re[i] / (h * w);
  return out;
}

/**
 * Random-walk drift: steps N(0, step) px, reflected to stay within +/- max, starting from 0
 * at image `anchor` and walking outward both ways (so the anchor's frame is the truth frame).
 */
export function randomWalk(n: number, seed: number, step: number, max: number, anchor = Math.floor(n / 2)): { dy: Float64Array; dx: Float64Array } {
  const rng = makeRng(seed);
  const dy = new Float64Array(n), dx = new Float64Array(n);
  const reflect = (v: number) => (v > max ? 2 * max - v : v < -max ? -2 * max - v : v);
  for (const dir of [1, -1]) {
    for (let e = anchor + dir; e >= 0 && e < n; e += dir) {
      dy[e] = reflect(dy[e - dir] + step * rng.normal());
      dx[e] = reflect(dx[e - dir] + step * rng.normal());
    }
  }
  return { dy, dx };
}

export interface DriftedStack {
  energies: Float64Array;
  width: number;
  height: number;
  sample: Float32Array;
  flat: Float32Array;
  dark: Float32Array;
  /** Displacement of each energy's content, px (positive dy: moved down). */
  dy: Float64Array;
  dx: Float64Array;
}

/**
 * A size x size Ni K-edge stack drifting by a random walk (or the given shifts; zero drift
 * gives the unshifted twin with its own noise). `seed` drives the counting noise.
 */
export function makeDriftedNiStack(o: { size: number; seed: number; drift?: { dy: Float64Array; dx: Float64Array } }): DriftedStack {
  const clean = makeNiTxmStack({ width: o.size, height: o.size, seed: 1, noise: false });
  const { energies, absorbance, flat: flatClean } = clean;
  const nE = energies.length, N = o.size * o.size;
  const drift = o.drift ?? { dy: new Float64Array(nE), dx: new Float64Array(nE) };
  const darkMean = 100;
  const rng = makeRng(o.seed);
  const sample = new Float32Array(nE * N), flat = new Float32Array(nE * N), dark = new Float32Array(nE * N);
  for (let e = 0; e < nE; e++) {
    const A = drift.dy[e] === 0 && drift.dx[e] === 0
      ? Float64Array.from(absorbance.subarray(e * N, (e + 1) * N))
      : fourierShiftReference(absorbance.subarray(e * N, (e + 1) * N), o.size, o.size, drift.dy[e], drift.dx[e]);
    for (let p = 0; p < N; p++) {
      const open = flatClean[e * N + p] - darkMean;
      sample[e * N + p] = rng.poisson(open * Math.exp(-A[p]) + darkMean);
      flat[e * N + p] = rng.poisson(open + darkMean);
      dark[e * N + p] = rng.poisson(darkMean);
    }
  }
  return { energies, width: o.size, height: o.size, sample, flat, dark, dy: drift.dy, dx: drift.dx };
}
