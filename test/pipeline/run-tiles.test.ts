/**
 * The tiled runner: a run with a tiny memory budget (many tiles) gives the same bytes as
 * a whole-stack run on the same backend; too small a budget is a clear error.
 */
import { describe, expect, test } from 'vitest';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS } from '../../src/pipeline/edge-plan.js';
import { edgeStep } from '../../src/pipeline/edge-step.js';
import { runTiles, tileBudget } from '../../src/pipeline/run-tiles.js';
import { MemoryStack } from '../../src/stack/source.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { InputError } from '../../src/io/errors.js';
import { gpuBackend } from '../helpers/backends.js';

describe('runTiles', () => {
  // 37 columns: tiles are never a multiple of the workgroup size.
  const W = 37, H = 29;
  const s = makeNiTxmStack({ width: W, height: H, seed: 99, noise: true });
  const nE = s.energies.length;
  const absorb = new Float32Array(s.sample.length);
  for (let i = 0; i < absorb.length; i++) absorb[i] = -Math.log((s.sample[i] - s.dark[i]) / (s.flat[i] - s.dark[i]));
  const plan = makeEdgePlan(s.energies, 8343, DEFAULT_EDGE_OPTIONS);
  const step = edgeStep(plan);

  test('a tiny budget (3 rows a tile) gives the same bytes as one whole-stack tile, on each backend', async () => {
    for (const backend of [await gpuBackend(), cpuBackend()]) {
      const src = new MemoryStack(absorb, nE, H, W);
      // Baseline fixed at 0 so the plan is exact: room for 3 rows and a few bytes more.
      const b = tileBudget(src, step, backend, 0, 0, 0);
      const whole = await runTiles(src, step, backend, { budgetBytes: 1e12, baselineBytes: 0, tileTargetSeconds: Infinity });
      expect(whole.tilesRun).toBe(1);
      const tiled = await runTiles(src, step, backend, { budgetBytes: b.fixedBytes + 3 * W * b.bytesPerPixel + 100, baselineBytes: 0, tileTargetSeconds: Infinity });
      expect(tiled.tilePlan.rowsPerTile).toBe(3);
      expect(tiled.tilesRun).toBe(Math.ceil(H / 3));
      for (const name of step.mapNames) {
        expect(Buffer.from(tiled.maps[name].buffer).equals(Buffer.from(whole.maps[name].buffer)), `${backend.name} ${name}`).toBe(true);
      }
      expect(Buffer.from(tiled.status).equals(Buffer.from(whole.status))).toBe(true);
      expect(whole.statusCounts.ok).toBeGreaterThan(100);
      // Tiles that start at one row and grow by their measured time (the default, so that
      // Ctrl-C is handled between short tiles): the same bytes again.
      // (A target of a nanosecond keeps every tile after the first at one row; on the CPU
      // this is the one-thread path, where a tile blocks the process.)
      const grown = await runTiles(src, step, backend.gpu ? backend : cpuBackend(1), { budgetBytes: 1e12, baselineBytes: 0, tileTargetSeconds: 1e-9 });
      expect(grown.tilesRun).toBeGreaterThan(H / 2);
      for (const name of step.mapNames) expect(Buffer.from(grown.maps[name].buffer).equals(Buffer.from(whole.maps[name].buffer)), `${backend.name} ${name} grown`).toBe(true);
    }
  });

  test('CPU worker threads give the same bytes as the main thread', async () => {
    const src = new MemoryStack(absorb, nE, H, W);
    const b = tileBudget(src, step, cpuBackend(3), 0, 0, 0);
    const budget = b.fixedBytes + 2 * W * b.bytesPerPixel + 100; // 2 rows a tile: many tiles in flight
    const one = await runTiles(src, step, cpuBackend(1), { budgetBytes: 1e12, baselineBytes: 0 });
    const pooled = await runTiles(src, step, cpuBackend(3), { budgetBytes: budget, baselineBytes: 0 });
    expect(pooled.tilesRun).toBe(Math.ceil(H / 2));
    for (const name of step.mapNames) expect(Buffer.from(pooled.maps[name].buffer).equals(Buffer.from(one.maps[name].buffer)), name).toBe(true);
    expect(Buffer.from(pooled.status).equals(Buffer.from(one.status))).toBe(true);
    // The edge step cuts each tile into parts for the workers (splitsTiles): one whole-stack
    // tile (1073 pixels: five blocks, so up to three parts) on 2 and 3 threads, and tiles
    // grown by time, give the one-thread bytes.
    for (const threads of [2, 3]) {
      for (const tileTargetSeconds of [Infinity, 1e-9]) {
        const r = await runTiles(src, step, cpuBackend(threads), { budgetBytes: 1e12, baselineBytes: 0, tileTargetSeconds });
        if (tileTargetSeconds === Infinity) expect(r.tilesRun).toBe(1);
        else expect(r.tilesRun).toBeGreaterThan(H / 2);
        for (const name of step.mapNames) expect(Buffer.from(r.maps[name].buffer).equals(Buffer.from(one.maps[name].buffer)), `${name}, ${threads} threads`).toBe(true);
        expect(Buffer.from(r.status).equals(Buffer.from(one.status))).toBe(true);
      }
    }
  });

  test('the edge step splitting its tiles on workers: tiles and the workers\' kernels in the memory plan', () => {
    const src = new MemoryStack(absorb, nE, H, W);
    const one = tileBudget(src, step, cpuBackend(1), 0, 0, 0);
    const three = tileBudget(src, step, cpuBackend(3), 0, 0, 0);
    // One tile in flight beside the one being read, as on one thread; three workers' kernels.
    expect(three.bytesPerPixel).toBe(one.bytesPerPixel);
    expect(three.kernelBytes).toBe(3 * one.kernelBytes!);
    expect(three.workerBytes).toBeGreaterThan(0);
    expect(three.fixedBytes).toBe(one.fixedBytes + three.workerBytes! + 2 * one.kernelBytes!);
  });

  test('a budget below one row is an error that names --memory and the need', async () => {
    const src = new MemoryStack(absorb, nE, H, W);
    await expect(runTiles(src, step, cpuBackend(), { budgetBytes: 1024 })).rejects.toThrow(InputError);
    await expect(runTiles(src, step, cpuBackend(), { budgetBytes: 1024 })).rejects.toThrow(/--memory: .*needs at least \d+ MiB/);
  });
});
