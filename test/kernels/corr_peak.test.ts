/** corr_peak: GPU partials vs CPU twin vs the known planted maximum; ties, NaN, ragged chunks. */
import { describe, expect, test } from 'vitest';
import { makeRng } from '../../src/synth/random.js';
import { corrPeakCpu, corrPeakPartialsCpu, reducePeak } from '../../src/cpu/corr_peak.js';
import { corrPeakKernel, peakChunks } from '../../src/kernels/corr_peak.js';
import { PEAK_CHUNK } from '../../src/kernels/align_layout.js';
import { runKernel } from '../helpers/gpu-run.js';
import { gpuBackend } from '../helpers/backends.js';

const SEED = 9301;

async function gpuPeak(c: Float32Array, n: number) {
  const chunks = peakChunks(n);
  const [val, idx] = await runKernel((await gpuBackend()).gpu!, corrPeakKernel, chunks, { n }, [{ upload: c }, { output: 4 * chunks }, { output: 4 * chunks }]);
  const index = new Uint32Array(idx.buffer, idx.byteOffset, chunks);
  return reducePeak(val, index);
}

describe('corr_peak', () => {
  test(`planted maximum in ${PEAK_CHUNK * 37 + 5} values (not a multiple of the chunk), with NaN (seed ${SEED})`, async () => {
    const n = PEAK_CHUNK * 37 + 5;
    const rng = makeRng(SEED);
    const c = Float32Array.from({ length: 2 * n }, () => rng.normal());
    for (let i = 0; i < n; i += 97) c[2 * i] = NaN;
    const at = PEAK_CHUNK * 37 + 3;
    c[2 * at] = 30;
    c[2 * at + 1] = -40;
    const cpu = corrPeakCpu(c, n);
    expect(cpu.index).toBe(at);
    expect(cpu.value).toBe(2500);
    const gpu = await gpuPeak(c, n);
    expect(gpu.index).toBe(at);
    expect(gpu.value).toBe(2500);
  });

  test('ties: the lowest index wins on both backends; an all-NaN array has no peak', async () => {
    const n = 3 * PEAK_CHUNK;
    const c = new Float32Array(2 * n);
    for (const i of [PEAK_CHUNK + 7, 2 * PEAK_CHUNK + 1, PEAK_CHUNK + 9]) c[2 * i + 1] = 2;
    expect(corrPeakCpu(c, n).index).toBe(PEAK_CHUNK + 7);
    expect((await gpuPeak(c, n)).index).toBe(PEAK_CHUNK + 7);
    const nan = new Float32Array(2 * n).fill(NaN);
    expect(corrPeakCpu(nan, n).index).toBe(-1);
    expect((await gpuPeak(nan, n)).index).toBe(-1);
    const p = corrPeakPartialsCpu(nan, n);
    expect([...p.value]).toEqual([-1, -1, -1]);
  });
});
