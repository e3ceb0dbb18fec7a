/**
 * The GPU runner's ring (src/pipeline/gpu-tiles.ts): edge, lcf (raw and --normalize) and the
 * fit combined over one upload per tile, in tiles of 3 rows streamed through the two slots
 * (tile i + 1 queued before tile i is read back, buffers reused and grown), give the same
 * bytes as each step alone on the whole stack in one tile, and as the step's runTile (which
 * returns maps of its own instead of writing into the runner's).
 */
import { expect, test } from 'vitest';
import { makeNiTxmStack, niMixtureSpectrum } from '../../src/synth/ni-txm.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS } from '../../src/pipeline/edge-plan.js';
import { edgeStep } from '../../src/pipeline/edge-step.js';
import { lcfStep } from '../../src/pipeline/lcf-step.js';
import { fitStep } from '../../src/pipeline/fit-step.js';
import { PRESETS } from '../../src/models/model.js';
import { combineSteps, splitRun } from '../../src/pipeline/combine.js';
import { runTiles, tileBudget } from '../../src/pipeline/run-tiles.js';
import { GPU_SLOT_TILE_COPIES, RING_SLOTS } from '../../src/pipeline/gpu-tiles.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { MemoryStack } from '../../src/stack/source.js';
import type { PixelStep } from '../../src/pipeline/step.js';
import { gpuBackend } from '../helpers/backends.js';

test('steps combined over one upload per tile, streamed through the ring in 3-row tiles, equal each step alone in one tile (webgpu)', async () => {
  // 23 columns: no tile is a multiple of the workgroup size; 3-row tiles grow no buffer after the first.
  const W = 23, H = 17;
  const s = makeNiTxmStack({ width: W, height: H, seed: 5, noise: true });
  const E = s.energies;
  const nE = E.length;
  const refs = [{ name: 'NiO', mu: niMixtureSpectrum(0, E) }, { name: 'LiNiO2', mu: niMixtureSpectrum(1, E) }];
  const edgePlan = makeEdgePlan(E, 8343, DEFAULT_EDGE_OPTIONS);
  const steps: PixelStep[] = [
    edgeStep(edgePlan),
    // The raw fit reads a window of the shared tile (rows i0 on), not an upload of its own.
    { ...lcfStep(refs, E, { mode: 'nnls', background: 'const', window: [8330, 8400] }), name: 'lcf_raw' },
    lcfStep(refs, E, { mode: 'nnls-sum1', background: 'none' }, { plan: makeEdgePlan(E, 8343, { ...DEFAULT_EDGE_OPTIONS, maskSigma: 3 }), flatten: false }),
    fitStep(PRESETS['erf-2lorentz'].make(), E),
  ];
  const backend = await gpuBackend();
  const src = new MemoryStack(s.absorbance, nE, H, W);
  const combined = combineSteps(steps);
  const b = tileBudget(src, combined, backend, 0, 0, 0);
  const tiled = await runTiles(src, combined, backend, { budgetBytes: b.fixedBytes + 3 * W * b.bytesPerPixel + 100, baselineBytes: 0, tileTargetSeconds: Infinity });
  expect(tiled.tilesRun).toBe(Math.ceil(H / 3));
  expect(tiled.tilesRun).toBeGreaterThan(2 * RING_SLOTS); // every slot reused
  const per = splitRun(tiled, steps);
  for (const step of steps) {
    const alone = await runTiles(src, step, backend, { budgetBytes: 1e12, baselineBytes: 0, tileTargetSeconds: Infinity });
    expect(alone.tilesRun).toBe(1);
    for (const m of step.mapNames) {
      expect(Buffer.from(per[step.name].maps[m].buffer).equals(Buffer.from(alone.maps[m].buffer)), `${step.name} ${m}`).toBe(true);
    }
    expect(Buffer.from(per[step.name].status).equals(Buffer.from(alone.status)), `${step.name} status`).toBe(true);
    // The runner writes maps straight into the whole-image maps; runTile returns its own.
    const own = await step.runTile(backend, s.absorbance, H * W);
    for (const m of step.mapNames) expect(Buffer.from(own.maps[m].buffer, own.maps[m].byteOffset, 4 * H * W).equals(Buffer.from(alone.maps[m].buffer)), `${step.name} ${m} runTile`).toBe(true);
    expect(Buffer.from(own.status).equals(Buffer.from(alone.status)), `${step.name} status runTile`).toBe(true);
  }
  // The test can fail: the steps found something (not all NaN).
  expect(per.edge.statusCounts.ok).toBeGreaterThan(50);
  expect(per.lcf_raw.statusCounts.ok).toBeGreaterThan(50);
  expect(per.lcf.statusCounts.ok).toBeGreaterThan(50);
  expect(Array.from(per.fit.maps.iterations).some((v) => v > 0)).toBe(true);
}, 300_000);

test('lcf --normalize: the one-slot ring of normalised spectra is in the GPU plan, and only there (CPU tiles do not shrink)', async () => {
  const W = 23, H = 17;
  const s = makeNiTxmStack({ width: W, height: H, seed: 6, noise: true });
  const E = s.energies;
  const nE = E.length;
  const refs = [{ name: 'NiO', mu: niMixtureSpectrum(0, E) }, { name: 'LiNiO2', mu: niMixtureSpectrum(1, E) }];
  const step = lcfStep(refs, E, { mode: 'nnls-sum1', background: 'none' }, { plan: makeEdgePlan(E, 8343, { ...DEFAULT_EDGE_OPTIONS, maskSigma: 3 }), flatten: false });
  const backend = await gpuBackend();
  const device = backend.gpu!.device;
  // The device bytes of the second ring's buffers (labelled lcf.normalized.*), live at most.
  const live = new Map<GPUBuffer, number>();
  let held = 0, heldMax = 0, cubeMax = 0;
  const create = device.createBuffer.bind(device);
  device.createBuffer = (d: GPUBufferDescriptor): GPUBuffer => {
    const b = create(d);
    if (d.label?.startsWith('lcf.normalized.slot')) {
      live.set(b, d.size);
      held += d.size;
      heldMax = Math.max(heldMax, held);
      if (d.label === 'lcf.normalized.slot0.cube') cubeMax = Math.max(cubeMax, d.size);
      const destroy = b.destroy.bind(b);
      b.destroy = () => {
        held -= live.get(b) ?? 0;
        live.delete(b);
        destroy();
      };
    }
    return b;
  };
  const src = new MemoryStack(s.absorbance, nE, H, W);
  try {
    const b = tileBudget(src, step, backend, 0, 0, 0);
    const run = await runTiles(src, step, backend, { budgetBytes: b.fixedBytes + 3 * W * b.bytesPerPixel + 100, baselineBytes: 0, tileTargetSeconds: Infinity });
    expect(run.tilesRun).toBe(Math.ceil(H / 3));
    expect(run.statusCounts.ok).toBeGreaterThan(50);
  } finally {
    delete (device as { createBuffer?: unknown }).createBuffer;
  }
  // The ring held a device copy of a 3-row tile's spectra (and its rows): measured, not assumed.
  const P = 3 * W;
  expect(cubeMax).toBeGreaterThanOrEqual(4 * nE * P);
  // The plan counts, per pixel of a tile and beyond the runner's own ring, at least that
  // device copy and Dawn's staging copy of its upload (GPU_SLOT_TILE_COPIES copies, as a slot
  // of the runner's ring: on llvmpipe the device's memory is host memory too); every buffer of
  // the second ring is within that and the step's bytes (its lcf rows).
  const held1 = step.gpuHeldBytesPerPixel!(nE);
  expect(held1).toBeGreaterThanOrEqual((2 * cubeMax) / P);
  expect(heldMax / P).toBeLessThanOrEqual(held1 + step.bytesPerPixel(nE));
  expect(held1).toBe(GPU_SLOT_TILE_COPIES * 4 * nE);
  const gpu = tileBudget(src, step, backend, 0, 0, 0);
  expect(gpu.bytesPerPixel).toBe(4 * nE * (2 + RING_SLOTS * GPU_SLOT_TILE_COPIES) + RING_SLOTS * step.bytesPerPixel(nE) + held1);
  // On the CPU (one thread) the tile terms are the host tiles and the step's bytes: no GPU ring.
  const cpu = tileBudget(src, step, cpuBackend(1), 0, 0, 0);
  expect(cpu.bytesPerPixel).toBe(4 * nE * 2 + step.bytesPerPixel(nE));
}, 300_000);

test('a slot binds its buffers once: bind groups are made per slot, not per dispatch per tile (webgpu)', async () => {
  const W = 23, H = 17;
  const s = makeNiTxmStack({ width: W, height: H, seed: 7, noise: true });
  const nE = s.energies.length;
  const step = edgeStep(makeEdgePlan(s.energies, 8343, DEFAULT_EDGE_OPTIONS));
  const backend = await gpuBackend();
  const device = backend.gpu!.device;
  let groups = 0;
  const create = device.createBindGroup.bind(device);
  device.createBindGroup = (d: GPUBindGroupDescriptor): GPUBindGroup => {
    groups++;
    return create(d);
  };
  const src = new MemoryStack(s.absorbance, nE, H, W);
  try {
    const whole = await runTiles(src, step, backend, { budgetBytes: 1e12, baselineBytes: 0, tileTargetSeconds: Infinity });
    expect(whole.tilesRun).toBe(1);
    const perTile = groups; // the dispatches of one tile
    expect(perTile).toBeGreaterThan(0);
    groups = 0;
    // One row a tile: every tile the same height, so no slot buffer grows after the first.
    const b = tileBudget(src, step, backend, 0, 0, 0);
    const rows = await runTiles(src, step, backend, { budgetBytes: b.fixedBytes + W * b.bytesPerPixel + 100, baselineBytes: 0, tileTargetSeconds: Infinity });
    expect(rows.tilesRun).toBe(H);
    expect(groups).toBeLessThanOrEqual(RING_SLOTS * perTile);
    for (const m of step.mapNames) expect(Buffer.from(rows.maps[m].buffer).equals(Buffer.from(whole.maps[m].buffer)), m).toBe(true);
  } finally {
    delete (device as { createBindGroup?: unknown }).createBindGroup;
  }
}, 300_000);
