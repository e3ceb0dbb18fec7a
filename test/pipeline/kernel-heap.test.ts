/**
 * The memory plan counts the CPU kernels' per-thread memory (PixelStep.cpuKernelBytes,
 * TileBudget.kernelBytes): the WebAssembly heap a thread's kernels keep per plan (which
 * never shrinks) and the tables it is built from, once per thread running tiles (each worker
 * has its own heap). Measured here as the growth of this thread's heap when the kernels first
 * run a plan (its own file: a fresh heap, no freed blocks of other tests to reuse).
 */
import { expect, test } from 'vitest';
import { makeNiTxmStack, niMixtureSpectrum } from '../../src/synth/ni-txm.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS } from '../../src/pipeline/edge-plan.js';
import { edgeStep } from '../../src/pipeline/edge-step.js';
import { edgeTileCpu } from '../../src/pipeline/edge-tile.js';
import { lcfStep } from '../../src/pipeline/lcf-step.js';
import { lcfWasm } from '../../src/cpu/lcf-wasm.js';
import { heapF32, heapF64, wasmHeap } from '../../src/cpu/wasm-heap.js';
import { LcfThreads } from '../../src/cpu/lcf-threads.js';
import { lcfRows } from '../../src/cpu/lcf.js';
import { EdgeThreads } from '../../src/cpu/edge-threads.js';
import { KernelPool } from '../../src/cpu/threads.js';
import { EDGE_ROWS, NORM_ROWS } from '../../src/kernels/layout.js';
import { tileBudget } from '../../src/pipeline/run-tiles.js';
import { MemoryStack } from '../../src/stack/source.js';
import { cpuBackend } from '../../src/pipeline/backend.js';

const MiB = 2 ** 20;
const heap = () => wasmHeap().buffer.byteLength;

test('each CPU thread\'s kernel heap is in the plan: edge at 1000 energies (16 nE^2 bytes of tables), on worker threads in this heap, then lcf\'s scratch', async () => {
  // 1000 energies, 0.5 eV apart across the Ni K edge; 64 pixels of a known mixture.
  const nE = 1000, P = 64;
  const E = Float64Array.from({ length: nE }, (_, i) => 8200 + 0.5 * i);
  const mu = niMixtureSpectrum(0.3, E);
  const cube = new Float32Array(nE * P);
  for (let i = 0; i < nE; i++) cube.fill(mu[i], i * P, (i + 1) * P);
  const plan = makeEdgePlan(E, 8343, DEFAULT_EDGE_OPTIONS);
  const h0 = heap();
  const r = edgeTileCpu(plan, cube, P);
  expect(Number.isFinite(r.edge[0])).toBe(true);
  const edgeGrowth = heap() - h0;
  // The tables are in the heap (the measurement sees them; a fresh heap starts at 1 MiB).
  expect(edgeGrowth).toBeGreaterThan(16 * nE * nE);
  const src = { nE, height: 4, width: 4 };
  const step = edgeStep(plan);
  const one = tileBudget(src, step, cpuBackend(1), 0, 0, 0);
  // The heap block and the JavaScript tables it is copied from (u, t: another 16 nE^2 bytes).
  expect(one.kernelBytes).toBeGreaterThanOrEqual(edgeGrowth + 16 * nE * nE);
  expect(one.kernelBytes).toBeLessThan(edgeGrowth + 16 * nE * nE + 2 * MiB); // no wild over-count
  expect(one.fixedBytes).toBe(16 * (4 * step.mapNames.length + 1) + one.kernelBytes!);
  // One heap per worker thread: counted per thread, beside the workers themselves.
  const three = tileBudget(src, step, cpuBackend(3), 0, 0, 0);
  expect(three.kernelBytes).toBe(3 * one.kernelBytes!);
  expect(three.fixedBytes - three.workerBytes! - three.kernelBytes!).toBe(one.fixedBytes - one.kernelBytes!);
  // Not on a GPU: its tiles run no CPU kernel.
  const gpu = { limits: { maxStorageBufferBindingSize: 2 ** 30, maxBufferSize: 2 ** 30 } } as never;
  expect(tileBudget(src, step, { gpu }, 0, 0, 0).kernelBytes).toBe(0);

  // lcf: the WebAssembly kernel's scratch per plan (a block of 2048 pixels staged, ~1 MiB at ~100 energies).
  const s = makeNiTxmStack({ width: 16, height: 16, seed: 3, noise: true });
  const refs = [{ name: 'NiO', mu: niMixtureSpectrum(0, s.energies) }, { name: 'LiNiO2', mu: niMixtureSpectrum(1, s.energies) }];
  const lcf = lcfStep(refs, s.energies, { mode: 'nnls', background: 'const' });
  const N = 16 * 16;
  const h1 = heap();
  lcfWasm(lcf.plan, s.absorbance.subarray(lcf.plan.i0 * N, lcf.plan.i1 * N), N);
  const lcfGrowth = heap() - h1;
  expect(lcfGrowth).toBeGreaterThan(MiB / 2);
  const two = tileBudget(new MemoryStack(s.absorbance, s.energies.length, 16, 16), lcf, cpuBackend(2), 0, 0, 0);
  expect(two.kernelBytes).toBeGreaterThanOrEqual(2 * lcfGrowth);
  expect(two.kernelBytes).toBeLessThan(2 * (lcfGrowth + 2 * 65536)); // the block and at most one page of rounding

  // Workers that split the tiles (edge-threads.ts) keep their WebAssembly scratch and a copy
  // of the tables in this thread's heap, one block per worker, and their JavaScript tables
  // (another 16 nE^2 bytes each) in their own: within the plan's per-thread bytes. (Last in
  // this test: the lcf measurement above would reuse the blocks freed after it.)
  const tile = heapF32(nE * P), out = { norm: heapF32(NORM_ROWS * P), edge: heapF32(EDGE_ROWS * P) };
  tile.set(cube);
  const pool = KernelPool.create(3)!;
  try {
    const h2 = heap();
    await new EdgeThreads(plan, pool).run(tile, P, out);
    expect(Buffer.from(out.edge.buffer, out.edge.byteOffset, out.edge.byteLength).equals(Buffer.from(r.edge.buffer, r.edge.byteOffset, r.edge.byteLength))).toBe(true);
    const workersGrowth = heap() - h2;
    expect(workersGrowth).toBeGreaterThan(3 * 16 * nE * nE);
    expect(workersGrowth + 3 * 16 * nE * nE).toBeLessThanOrEqual(three.kernelBytes!);
    // lcf split on the workers (lcf-threads.ts): a scratch block per worker in this thread's
    // heap, within the plan's per-thread bytes for three threads.
    const lt = new LcfThreads(pool);
    const lTile = heapF32(lcf.plan.nW * N), lOut = heapF64(lcfRows(lcf.plan.M).ROWS * N);
    lTile.set(s.absorbance.subarray(lcf.plan.i0 * N, lcf.plan.i1 * N));
    const h3 = heap();
    await lt.run(lcf.plan, lTile, N, lOut);
    const lcfWorkers = heap() - h3;
    expect(lcfWorkers).toBeGreaterThan(3 * (MiB / 2));
    const threeLcf = tileBudget(new MemoryStack(s.absorbance, s.energies.length, 16, 16), lcf, cpuBackend(3), 0, 0, 0);
    expect(lcfWorkers).toBeLessThanOrEqual(threeLcf.kernelBytes!);
    expect(Buffer.from(lOut.buffer, lOut.byteOffset, lOut.byteLength).equals(Buffer.from(lcfWasm(lcf.plan, lTile, N).buffer))).toBe(true);
  } finally {
    await pool.close();
  }
});
