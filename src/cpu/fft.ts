/**
 * CPU twin of shaders/fft.wgsl, in float64: 2-D discrete Fourier transforms of complex
 * images by the radix-2 Stockham autosort algorithm (the same stages, twiddles and output
 * order as the shader, so the two can be compared value by value).
 *
 * Layout: complex values interleaved (re, im), row-major [ny][nx]; both sizes powers of
 * two (callers pad to them, see src/align/prepare.ts). Convention (numpy's): forward
 * X[k] = sum_n x[n] exp(-2 pi i k n / N), unscaled; inverse with exp(+...) and 1/(nx ny).
 */

/** exp(-2 pi i m / n) for m in [0, n/2), interleaved: the table both backends use. */
export function twiddles(n: number): Float64Array {
  const t = new Float64Array(n);
  for (let m = 0; m < n / 2; m++) {
    t[2 * m] = Math.cos((2 * Math.PI * m) / n);
    t[2 * m + 1] = -Math.sin((2 * Math.PI * m) / n);
  }
  return t;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
}

/** The smallest power of two >= n. */
export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * One Stockham radix-2 stage on `lines` lines of length n: half-size ns (1, 2, 4, ..., n/2).
 * For j in [0, n/2): k = j mod ns, a = src[j], b = w^(k n / 2ns) src[j + n/2],
 * dst[2(j - k) + k] = a + b, dst[2(j - k) + k + ns] = a - b (Govindaraju et al., SC 2008).
 * Elements of a line are `es` complex values apart, lines `ls` apart.
 */
export function fftStageCpu(src: Float64Array, dst: Float64Array, n: number, ns: number, es: number, ls: number, lines: number, tw: Float64Array, sign: number, scale: number): void {
  const half = n >> 1;
  const twStride = n / (2 * ns);
  for (let line = 0; line < lines; line++) {
    const base = line * ls;
    for (let j = 0; j < half; j++) {
      const k = j & (ns - 1);
      const m = k * twStride;
      const wr = tw[2 * m], wi = sign * tw[2 * m + 1];
      const ia = 2 * (base + j * es), ib = 2 * (base + (j + half) * es);
      const ar = src[ia], ai = src[ia + 1];
      const xr = src[ib], xi = src[ib + 1];
      const br = wr * xr - wi * xi, bi = wr * xi + wi * xr;
      const o = 2 * (j - k) + k;
      const io = 2 * (base + o * es), io2 = 2 * (base + (o + ns) * es);
      dst[io] = (ar + br) * scale;
      dst[io + 1] = (ai + bi) * scale;
      dst[io2] = (ar - br) * scale;
      dst[io2 + 1] = (ai - bi) * scale;
    }
  }
}

/**
 * 2-D FFT of `data` ([ny][nx] complex) in place: rows, then columns. `scratch` is a
 * buffer of the same length (allocated if absent).
 */
export function fft2Cpu(data: Float64Array, ny: number, nx: number, inverse = false, scratch?: Float64Array): void {
  if (!isPowerOfTwo(nx) || !isPowerOfTwo(ny)) throw new RangeError(`fft2Cpu: ${ny}x${nx} is not a power-of-two size`);
  if (data.length !== 2 * nx * ny) throw new RangeError(`fft2Cpu: ${data.length} values is not ${ny}x${nx} complex`);
  const tmp = scratch ?? new Float64Array(data.length);
  const sign = inverse ? -1 : 1;
  let src = data, dst = tmp;
  const pass = (n: number, es: number, ls: number, lines: number, finalScale: number) => {
    const tw = twiddles(n);
    for (let ns = 1; ns < n; ns *= 2) {
      fftStageCpu(src, dst, n, ns, es, ls, lines, tw, sign, ns * 2 === n ? finalScale : 1);
      [src, dst] = [dst, src];
    }
  };
  // The inverse's 1/(nx ny) goes on the very last stage (the row pass's when ny = 1).
  const s = inverse ? 1 / (nx * ny) : 1;
  pass(nx, 1, nx, ny, ny > 1 ? 1 : s);
  pass(ny, nx, 1, nx, ny > 1 ? s : 1);
  if (src !== data) data.set(src);
}

/** A direct O(N^2) 2-D DFT, for tests only (the known truth the FFTs are checked against). */
export function dft2Naive(data: Float64Array, ny: number, nx: number, inverse = false): Float64Array {
  const out = new Float64Array(data.length);
  const s = inverse ? 1 : -1;
  for (let ky = 0; ky < ny; ky++) {
    for (let kx = 0; kx < nx; kx++) {
      let re = 0, im = 0;
      for (let y = 0; y < ny; y++) {
        for (let x = 0; x < nx; x++) {
          const a = s * 2 * Math.PI * (((ky * y) % ny) / ny + ((kx * x) % nx) / nx);
          const c = Math.cos(a), d = Math.sin(a);
          const i = 2 * (y * nx + x);
          re += data[i] * c - data[i + 1] * d;
          im += data[i] * d + data[i + 1] * c;
        }
      }
      const sc = inverse ? 1 / (nx * ny) : 1;
      out[2 * (ky * nx + kx)] = re * sc;
      out[2 * (ky * nx + kx) + 1] = im * sc;
    }
  }
  return out;
}
