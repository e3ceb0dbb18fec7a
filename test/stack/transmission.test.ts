/**
 * Absorbance (flat/dark) and optical density (I0) on worker threads: the same bytes and the
 * same masked counts on 1 and 2 threads, into shared and ordinary tiles, and equal to the
 * formula evaluated here.
 */
import { describe, expect, test } from 'vitest';
import { makeRng } from '../../src/synth/random.js';
import { MemoryStack } from '../../src/stack/source.js';
import { AbsorbanceStack } from '../../src/stack/absorbance.js';
import { OpticalDensityStack } from '../../src/stack/od.js';
import { TRANSMISSION_MIN_VALUES } from '../../src/stack/transmission.js';
import { sharedFloat32 } from '../../src/cpu/threads.js';

const SEED = 4242;
const nE = 40, H = 64, W = 80;
const n = nE * H * W;

function counts(rng: ReturnType<typeof makeRng>, base: number): Float32Array {
  const a = new Float32Array(n).map(() => base * (0.2 + rng.uniform()));
  return a;
}

describe('transmission on threads', () => {
  test('absorbance and OD: bytes and masked counts independent of threads and of the tile memory; = the formula', async () => {
    expect(n).toBeGreaterThan(TRANSMISSION_MIN_VALUES); // so two threads really split the work
    const rng = makeRng(SEED);
    const sample = counts(rng, 800), flat = counts(rng, 1000), dark = counts(rng, 20);
    sample[3] = dark[3] / 2; // below the dark: non-positive ratio
    sample[100] = NaN;
    flat[200] = dark[200]; // zero denominator
    const i0 = Float64Array.from({ length: nE }, (_, e) => (e === 5 ? 0 : 900 + e));
    const rows = 24; // a tile that does not divide H (and holds enough values to go to the threads, with read-ahead)
    const runs: { abs: Float32Array; absMasked: number; od: Float32Array; odMasked: number }[] = [];
    for (const [threads, shared] of [[1, false], [2, false], [2, true]] as const) {
      const abs = new AbsorbanceStack(new MemoryStack(sample, nE, H, W), new MemoryStack(flat, nE, H, W), new MemoryStack(dark, nE, H, W), threads);
      const od = new OpticalDensityStack(new MemoryStack(sample, nE, H, W), { values: i0, source: { kind: 'file', path: 'i0.txt' }, nonPositiveEnergies: [] }, threads);
      const A = new Float32Array(n), O = new Float32Array(n);
      for (const [src, all] of [[abs, A], [od, O]] as const) {
        const tile = shared ? sharedFloat32(nE * rows * W) : new Float32Array(nE * rows * W);
        for (let y0 = 0; y0 < H; y0 += rows) {
          const r = Math.min(rows, H - y0);
          await src.readRows(y0, r, tile);
          for (let e = 0; e < nE; e++) all.set(tile.subarray(e * r * W, (e + 1) * r * W), e * H * W + y0 * W);
        }
        src.close();
      }
      runs.push({ abs: A, absMasked: abs.maskedPoints, od: O, odMasked: od.maskedPoints });
    }
    const [ref] = runs;
    for (const r of runs.slice(1)) {
      expect(Buffer.from(r.abs.buffer).equals(Buffer.from(ref.abs.buffer))).toBe(true);
      expect(Buffer.from(r.od.buffer).equals(Buffer.from(ref.od.buffer))).toBe(true);
      expect(r.absMasked).toBe(ref.absMasked);
      expect(r.odMasked).toBe(ref.odMasked);
    }
    // The formula, here: A = -ln((I - D) / (F - D)), OD = -ln(I / I0(E)); NaN where not positive.
    let absMasked = 0, odMasked = 0;
    const wrong: string[] = [];
    for (let i = 0; i < n; i++) {
      const ratio = (sample[i] - dark[i]) / (flat[i] - dark[i]);
      const a = ratio > 0 && Number.isFinite(ratio) ? Math.fround(-Math.log(ratio)) : NaN;
      if (Number.isNaN(a)) absMasked++;
      if (!Object.is(ref.abs[i], a)) wrong.push(`absorbance ${i}: ${ref.abs[i]} vs ${a}`);
      const v0 = i0[Math.floor(i / (H * W))];
      const o = v0 > 0 && sample[i] > 0 ? Math.fround(-Math.log(sample[i] / v0)) : NaN;
      if (Number.isNaN(o)) odMasked++;
      if (!Object.is(ref.od[i], o)) wrong.push(`od ${i}: ${ref.od[i]} vs ${o}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(ref.absMasked).toBe(absMasked);
    expect(ref.odMasked).toBe(odMasked);
    expect(absMasked).toBeGreaterThanOrEqual(3);
    expect(odMasked).toBe(H * W + 1);
  });
});
