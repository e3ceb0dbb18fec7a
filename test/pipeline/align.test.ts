/**
 * Alignment end to end on the synthetic cases: the project's Ni K-edge stack
 * (src/synth/ni-txm.ts) drifting by a subpixel random walk of up to +/- 8 px, Fourier-shifted
 * by an independent FFT (test/helpers/drift.ts), Poisson counts at the demo's 20,000
 * open-beam level, flat and dark fields; whole-pixel translations; hostile images.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeDriftedNiStack, randomWalk, type DriftedStack } from '../helpers/drift.js';
import { computeAlignment, type AlignOptions } from '../../src/align/align.js';
import { MemoryStack } from '../../src/stack/source.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { runEdge } from '../../src/pipeline/edge-run.js';
import { readNpy, writeNpy } from '../../src/io/npy.js';
import { makeRng } from '../../src/synth/random.js';
import { gpuBackend } from '../helpers/backends.js';

const SIZE = 128;
const SEED_DRIFT = 5, SEED_NOISE = 12, SEED_NOISE_REF = 11;
/** The bounds: recovered shifts within 0.05 px RMS; GPU and CPU twin within 0.01 px. */
const RMS_TOL_PX = 0.05;
const GPU_CPU_TOL_PX = 0.01;
/** The bound on the edge map after alignment: median |delta e0_half| within 1.2 x the noise-only one. */
const EDGE_MEDIAN_RATIO = 1.2;
/** Energies around the edge used for the GPU-vs-CPU comparison (llvmpipe is slow; the chain is the same code). */
const GPU_IMAGES = [40, 61];
const GiB = 2 ** 30;

function absorbance(s: DriftedStack): Float32Array {
  const A = new Float32Array(s.sample.length);
  for (let i = 0; i < A.length; i++) A[i] = -Math.log((s.sample[i] - s.dark[i]) / (s.flat[i] - s.dark[i]));
  return A;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[s.length >> 1];
}

describe('align: drifted Ni K-edge stacks', () => {
  let drifted: DriftedStack;
  let A: Float32Array;
  let nE: number;
  beforeAll(() => {
    const nE0 = 101;
    drifted = makeDriftedNiStack({ size: SIZE, seed: SEED_NOISE, drift: randomWalk(nE0, SEED_DRIFT, 0.6, 8) });
    nE = drifted.energies.length;
    A = absorbance(drifted);
  });

  test(`random-walk drift up to 8 px: recovered within ${RMS_TOL_PX} px RMS (seeds ${SEED_DRIFT}, ${SEED_NOISE}); GPU within ${GPU_CPU_TOL_PX} px of the CPU twin`, async () => {
    const src = new MemoryStack(A, nE, SIZE, SIZE);
    const cpu = await computeAlignment(src, drifted.energies, {}, cpuBackend(1), GiB);
    const ref = cpu.estimate!.referenceIndex;
    expect(ref).toBe(50); // the chain's anchor: the middle of the scan, where the truth has no drift
    let ss = 0, max = 0, maxDrift = 0;
    for (let e = 0; e < nE; e++) {
      const ey = cpu.dy[e] - drifted.dy[e], ex = cpu.dx[e] - drifted.dx[e];
      ss += ey * ey + ex * ex;
      max = Math.max(max, Math.abs(ey), Math.abs(ex));
      maxDrift = Math.max(maxDrift, Math.abs(drifted.dy[e]), Math.abs(drifted.dx[e]));
    }
    const rms = Math.sqrt(ss / (2 * nE));
    console.log(`align accuracy ${SIZE}x${SIZE}x${nE}: RMS ${rms.toFixed(4)} px, max ${max.toFixed(4)} px, drift up to ${maxDrift.toFixed(2)} px`);
    expect(maxDrift).toBeGreaterThan(5);
    expect(rms).toBeLessThan(RMS_TOL_PX);

    // GPU: the same chain over a run of images across the edge, anchored at the same image.
    const [a, b] = GPU_IMAGES;
    const sub = A.subarray(a * SIZE * SIZE, b * SIZE * SIZE);
    const energies = drifted.energies.subarray(a, b);
    const refE = energies[ref - a];
    const g = await computeAlignment(new MemoryStack(sub, b - a, SIZE, SIZE), energies, { refEnergy: refE }, await gpuBackend(), GiB);
    const c = await computeAlignment(new MemoryStack(sub, b - a, SIZE, SIZE), energies, { refEnergy: refE }, cpuBackend(1), GiB);
    let gmax = 0;
    for (let e = 0; e < b - a; e++) gmax = Math.max(gmax, Math.abs(g.dy[e] - c.dy[e]), Math.abs(g.dx[e] - c.dx[e]));
    console.log(`align GPU vs CPU (${b - a} images): max difference ${gmax.toFixed(5)} px`);
    expect(gmax).toBeLessThan(GPU_CPU_TOL_PX);
  });

  /**
   * On a 2 x 2-averaged copy the 128-pixel stack is registered at 64 pixels: each neighbour
   * step is half as precise and the chain of 50 steps accumulates it (measured 0.25 px RMS).
   * The bound catches a wrong scale (a missing factor 2 gives errors of pixels), not precision.
   */
  test('a stack larger than the budget is registered on a block-averaged copy (factor 2), shifts scaled back', async () => {
    // The budget left after this process's own memory holds the half-size copy and its registration, not the full one.
    const half = 4 * nE * (SIZE / 2) ** 2 + 6 * 16 * (SIZE / 2) ** 2;
    const full = 4 * nE * SIZE ** 2 + 6 * 16 * SIZE ** 2;
    const read = 4 * nE * SIZE * SIZE; // one read of 16 MiB covers the whole 128-pixel stack
    const a = await computeAlignment(new MemoryStack(A, nE, SIZE, SIZE), drifted.energies, {}, cpuBackend(1), read + (half + full) / 2, () => {}, 0);
    expect(a.factor).toBe(2);
    expect(a.record.downsample_factor).toBe(2);
    let ss = 0;
    for (let e = 0; e < nE; e++) ss += (a.dy[e] - drifted.dy[e]) ** 2 + (a.dx[e] - drifted.dx[e]) ** 2;
    const rms = Math.sqrt(ss / (2 * nE));
    console.log(`align on a 2x2-averaged copy: RMS ${rms.toFixed(4)} px`);
    expect(rms).toBeLessThan(0.5);
  });

  test(`edge map after --align matches the unshifted stack's: median |delta e0_half| within ${EDGE_MEDIAN_RATIO} x the noise-only difference`, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-align-edge-'));
    try {
      const write = (name: string, s: DriftedStack) => {
        for (const k of ['sample', 'flat', 'dark'] as const) writeNpy(path.join(dir, `${name}_${k}.npy`), s[k], [nE, SIZE, SIZE]);
      };
      write('shifted', drifted);
      write('still', makeDriftedNiStack({ size: SIZE, seed: SEED_NOISE_REF }));
      write('still2', makeDriftedNiStack({ size: SIZE, seed: SEED_NOISE }));
      fs.writeFileSync(path.join(dir, 'e.txt'), Array.from(drifted.energies).join('\n'));
      const edge = async (name: string, align: boolean) => (await runEdge({
        stack: path.join(dir, `${name}_sample.npy`), flat: path.join(dir, `${name}_flat.npy`), dark: path.join(dir, `${name}_dark.npy`),
        energies: path.join(dir, 'e.txt'), out: path.join(dir, `out_${name}`), edge: { maskSigma: 5 }, backend: 'cpu', threads: 1, budgetBytes: GiB,
        align: align ? { budgetBytes: GiB, backend: 'cpu', threads: 1 } : undefined, notice: () => {},
      // The edge run streams its maps to disk (it holds none): e0_half from its file.
      })) && (readNpy(path.join(dir, `out_${name}`, 'e0_half.npy')).data as Float32Array);
      const still = await edge('still', false);
      const still2 = await edge('still2', false);
      const aligned = await edge('shifted', true);
      const unaligned = await edge('shifted', false);
      const noise: number[] = [], after: number[] = [], before: number[] = [];
      for (let p = 0; p < SIZE * SIZE; p++) {
        if (!(Number.isFinite(still[p]) && Number.isFinite(still2[p]) && Number.isFinite(aligned[p]))) continue;
        noise.push(Math.abs(still[p] - still2[p]));
        after.push(Math.abs(still[p] - aligned[p]));
        if (Number.isFinite(unaligned[p])) before.push(Math.abs(still[p] - unaligned[p]));
      }
      console.log(`edge after --align: median |de0| ${median(after).toFixed(4)} eV, noise-only ${median(noise).toFixed(4)} eV, without alignment ${median(before).toFixed(4)} eV, over ${noise.length} pixels`);
      expect(noise.length).toBeGreaterThan(0.2 * SIZE * SIZE);
      expect(median(after)).toBeLessThan(EDGE_MEDIAN_RATIO * median(noise));
      // The test can fail: without alignment the maps differ far more.
      expect(median(before)).toBeGreaterThan(EDGE_MEDIAN_RATIO * median(noise));
      const summary = JSON.parse(fs.readFileSync(path.join(dir, 'out_shifted', 'summary.json'), 'utf8'));
      expect(summary.alignment).toBeNull(); // the last run (without --align) replaced the folder
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('align: exact cases and hostile stacks', () => {
  // Powers of two, so the padded FFT frame is the image and a roll is an exact translation.
  const H = 64, W = 32;
  const rng = makeRng(4242);
  const base = Float32Array.from({ length: H * W }, () => rng.normal());
  const roll = (dy: number, dx: number) => {
    // Content moved by (+dy, +dx), periodically.
    const out = new Float32Array(H * W);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[((y + dy + H) % H) * W + ((x + dx + W) % W)] = base[y * W + x];
    return out;
  };
  const stackOf = (imgs: Float32Array[]) => {
    const c = new Float32Array(imgs.length * H * W);
    imgs.forEach((im, i) => c.set(im, i * H * W));
    return new MemoryStack(c, imgs.length, H, W);
  };
  const shifts = [[0, 0], [3, -2], [-5, 7], [1, 1], [-8, 0]];
  const energies = Float64Array.from(shifts, (_, i) => 8300 + i);

  test('whole-pixel translations are recovered exactly (CPU to 1e-9 px, GPU float32 to 1e-3 px), chained and to a reference', async () => {
    const s = stackOf(shifts.map(([dy, dx]) => roll(dy, dx)));
    for (const [backend, tol] of [[cpuBackend(1), 1e-9], [await gpuBackend(), 1e-3]] as const) {
      for (const refEnergy of [undefined, energies[0]]) {
        const a = await computeAlignment(s, energies, { refEnergy }, backend, GiB);
        const r = a.estimate!.referenceIndex;
        shifts.forEach(([dy, dx], e) => {
          expect(Math.abs(a.dy[e] - (dy - shifts[r][0])), `${backend.name} image ${e}`).toBeLessThan(tol);
          expect(Math.abs(a.dx[e] - (dx - shifts[r][1])), `${backend.name} image ${e}`).toBeLessThan(tol);
        });
      }
    }
  });

  /** A field translated by `shifts` (the frame stays, content enters and leaves), 64 x 64. */
  const translatedField = () => {
    const big = 96;
    const r2 = makeRng(77);
    // A smooth random scene (sums of Gaussian blobs), so the gradient and windowed variants have structure.
    const scene = new Float32Array(big * big);
    for (let k = 0; k < 60; k++) {
      const cy = r2.uniform() * big, cx = r2.uniform() * big, s = 1.5 + 3 * r2.uniform(), a = r2.normal();
      for (let y = Math.max(0, Math.floor(cy - 4 * s)); y < Math.min(big, cy + 4 * s); y++) {
        for (let x = Math.max(0, Math.floor(cx - 4 * s)); x < Math.min(big, cx + 4 * s); x++) scene[y * big + x] += a * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s));
      }
    }
    const crop = (dy: number, dx: number) => {
      // The frame stays, the content moves by (+dy, +dx): out(y, x) = scene(y - dy + 16, x - dx + 16).
      const out = new Float32Array(H * H);
      for (let y = 0; y < H; y++) for (let x = 0; x < H; x++) out[y * H + x] = scene[(y - dy + 16) * big + (x - dx + 16)];
      return out;
    };
    const c = new Float32Array(shifts.length * H * H);
    shifts.forEach(([dy, dx], i) => c.set(crop(dy, dx), i * H * H));
    return c;
  };

  /** Registration options, each on the same translated field: every one must find the shifts. */
  const OPTION_CASES: [string, AlignOptions, number][] = [
    // Measured: 0.006 px with 2 refinement passes, 0.61 px with none (the frame's edges pull a
    // plain correlation toward zero shift when content enters and leaves the field).
    ['--refine 2', { refine: 2 }, 0.02],
    ['--refine 3', { refine: 3 }, 0.005],
    ['--taper hann --normalization phase --refine 3', { window: 'hann', normalization: 'phase', refine: 3 }, 0.05],
    ['--on gradient --refine 2', { on: 'gradient', refine: 2 }, 0.05],
    ['--highpass 0.05 --refine 2', { highpass: 0.05, refine: 2 }, 0.05],
    ['--roi rect:8,8,56,56 --refine 2', { roi: 'rect:8,8,56,56', refine: 2 }, 0.05],
  ];

  test('without refinement (the default) the frame edges bias the shift of a translated field: --refine is needed there', async () => {
    const c = translatedField();
    const a = await computeAlignment(new MemoryStack(c, shifts.length, H, H), energies, { refEnergy: energies[0] }, cpuBackend(1), GiB);
    expect(Math.max(...shifts.map(([dy, dx], e) => Math.max(Math.abs(a.dy[e] - dy), Math.abs(a.dx[e] - dx))))).toBeGreaterThan(0.1);
  });

  test.each(OPTION_CASES)('whole-pixel translation of a field (content entering and leaving the frame), %s', async (_name, opts, tol) => {
    const c = translatedField();
    const a = await computeAlignment(new MemoryStack(c, shifts.length, H, H), energies, { ...opts, refEnergy: energies[0] }, cpuBackend(1), GiB);
    shifts.forEach(([dy, dx], e) => {
      expect(Math.abs(a.dy[e] - dy), `image ${e}`).toBeLessThan(tol);
      expect(Math.abs(a.dx[e] - dx), `image ${e}`).toBeLessThan(tol);
    });
  });

  test('a constant image and an all-NaN image get a status and interpolated shifts; nothing hangs', async () => {
    const imgs = shifts.map(([dy, dx]) => roll(dy, dx));
    imgs[1] = new Float32Array(H * W).fill(0.7);
    imgs[3] = new Float32Array(H * W).fill(NaN);
    const a = await computeAlignment(stackOf(imgs), energies, { refEnergy: energies[0] }, cpuBackend(1), GiB);
    expect(a.estimate!.status).toEqual(['ok', 'no_contrast', 'ok', 'no_data', 'ok']);
    expect(a.dy[2]).toBeCloseTo(-5, 9);
    expect(a.dy[1]).toBeCloseTo((0 + -5) / 2, 9); // between its registered neighbours
    expect(a.dx[3]).toBeCloseTo((7 + 0) / 2, 9);
    expect(a.record.unregistered_images).toEqual([1, 3]);
  });

  test('one image, or no image that can be registered, is a clear error', async () => {
    await expect(computeAlignment(stackOf([base]), energies.subarray(0, 1), {}, cpuBackend(1), GiB)).rejects.toThrow(/at least two images/);
    const flat = [0, 1, 2].map(() => new Float32Array(H * W).fill(1));
    await expect(computeAlignment(stackOf(flat), energies.subarray(0, 3), {}, cpuBackend(1), GiB)).rejects.toThrow(/no image can be registered/);
    const s = stackOf(shifts.map(([dy, dx]) => roll(dy, dx)));
    await expect(computeAlignment(s, energies, { refEnergy: 9000 }, cpuBackend(1), GiB)).rejects.toThrow(/--ref-energy: 9000 eV is outside/);
    await expect(computeAlignment(s, energies, { roi: 'rect:0,0,4,4' }, cpuBackend(1), GiB)).rejects.toThrow(/--roi.*too small/);
  });

  test('a jump larger than --max-jump is reported', async () => {
    const a = await computeAlignment(stackOf(shifts.map(([dy, dx]) => roll(dy, dx))), energies, { maxJump: 5 }, cpuBackend(1), GiB);
    // Steps: (3,-2) |3.6|; (-8,9) |12.0|; (6,-6) |8.5|; (-9,-1) |9.1|.
    expect((a.record.jumps as { index: number }[]).map((j) => j.index)).toEqual([2, 3, 4]);
  });
});
