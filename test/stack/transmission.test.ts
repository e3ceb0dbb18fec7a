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
import { writeNpy } from '../../src/io/npy.js';
import { openStack } from '../../src/stack/source.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

  test('integer .npy stacks go to the threads as stored (uint16, int16, uint8): the same bytes as float32 counts read on this thread', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-raw-'));
    try {
      const rng = makeRng(SEED + 1);
      const cases = [
        { type: 'uint16', C: Uint16Array, s: 30000, f: 60000, d: 100 },
        { type: 'int16', C: Int16Array, s: 12000, f: 30000, d: -50 },
        { type: 'uint8', C: Uint8Array, s: 100, f: 250, d: 3 },
      ] as const;
      for (const c of cases) {
        const mk = (base: number) => new c.C(n).map(() => Math.round(base * (0.5 + 0.5 * rng.uniform())));
        const I = mk(c.s), F = mk(c.f), D = mk(c.d);
        I[7] = D[7]; // zero transmission: masked
        const files = ['sample', 'flat', 'dark'].map((k) => path.join(dir, `${c.type}-${k}.npy`));
        [I, F, D].forEach((a, k) => writeNpy(files[k], a, [nE, H, W]));
        const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
        const rows = 24;
        const read = async (src: AbsorbanceStack) => {
          const all = new Float32Array(n), tile = new Float32Array(nE * rows * W);
          for (let y0 = 0; y0 < H; y0 += rows) {
            const r = Math.min(rows, H - y0);
            await src.readRows(y0, r, tile);
            for (let e = 0; e < nE; e++) all.set(tile.subarray(e * r * W, (e + 1) * r * W), e * H * W + y0 * W);
          }
          const m = src.maskedPoints;
          src.close();
          return { all, m };
        };
        const ref = await read(new AbsorbanceStack(new MemoryStack(f32(I), nE, H, W), new MemoryStack(f32(F), nE, H, W), new MemoryStack(f32(D), nE, H, W), 1));
        for (const threads of [1, 2]) {
          const stacks = await Promise.all(files.map((f) => openStack(f)));
          expect(stacks[0].rawType, c.type).toBe(c.type);
          const raw = await read(new AbsorbanceStack(stacks[0], stacks[1], stacks[2], threads));
          expect(Buffer.from(raw.all.buffer).equals(Buffer.from(ref.all.buffer)), `${c.type}, ${threads} thread(s)`).toBe(true);
          expect(raw.m).toBe(ref.m);
        }
        expect(ref.m).toBeGreaterThanOrEqual(1);
        const i = 11;
        expect(Object.is(ref.all[i], Math.fround(-Math.log((I[i] - D[i]) / (F[i] - D[i]))))).toBe(true);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
