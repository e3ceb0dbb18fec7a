/**
 * CPU twin of shaders/corr_peak.wgsl: the index of the largest |c|^2 of a complex array
 * (lowest index on ties), as the shader computes it in chunks of PEAK_CHUNK values and the
 * host reduces the partials. Non-finite values are skipped.
 */
import { PEAK_CHUNK } from '../kernels/align_layout.js';

/** Per-chunk partials, as the shader writes them: value (-1 when a chunk has no finite value) and index. */
export function corrPeakPartialsCpu(c: ArrayLike<number>, n: number): { value: Float64Array; index: Uint32Array } {
  const chunks = Math.ceil(n / PEAK_CHUNK);
  const value = new Float64Array(chunks).fill(-1);
  const index = new Uint32Array(chunks);
  for (let k = 0; k < chunks; k++) {
    const end = Math.min(n, (k + 1) * PEAK_CHUNK);
    for (let i = k * PEAK_CHUNK; i < end; i++) {
      const m = c[2 * i] * c[2 * i] + c[2 * i + 1] * c[2 * i + 1];
      if (m > value[k]) {
        value[k] = m;
        index[k] = i;
      }
    }
  }
  return { value, index };
}

/** The host's reduction of the partials: largest value, lowest index on ties; -1 if none. */
export function reducePeak(value: ArrayLike<number>, index: ArrayLike<number>): { index: number; value: number } {
  let best = -1, at = -1;
  for (let k = 0; k < value.length; k++) {
    if (value[k] > best || (value[k] === best && best >= 0 && index[k] < at)) {
      best = value[k];
      at = index[k];
    }
  }
  return { index: best >= 0 ? at : -1, value: best };
}

export function corrPeakCpu(c: ArrayLike<number>, n: number): { index: number; value: number } {
  const p = corrPeakPartialsCpu(c, n);
  return reducePeak(p.value, p.index);
}
