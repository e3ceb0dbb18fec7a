/**
 * edge: GPU vs CPU twin vs known truth, on the synthetic Ni K-edge stack (measured NiO and
 * LiNiO2 spectra on a real TXM grid) and on random spectra.
 */
import { describe, expect, test } from 'vitest';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { makeRng } from '../../src/synth/random.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS, type EdgePlan } from '../../src/pipeline/edge-plan.js';
import { normalizeCpu } from '../../src/cpu/normalize.js';
import { edgeCpu, type EdgeMargins } from '../../src/cpu/edge.js';
import { edgeTileFused } from '../../src/cpu/edge-fused.js';
import { EDGE_WASM_BLOCK, EDGE_WASM_GROUP } from '../../src/cpu/edge-wasm.js';
import { heapF32, heapFree } from '../../src/cpu/wasm-heap.js';
import { EdgeThreads } from '../../src/cpu/edge-threads.js';
import { KernelPool } from '../../src/cpu/threads.js';
import { edgeStep } from '../../src/pipeline/edge-step.js';
import { EdgeRow, EdgeStatus, EDGE_ROWS, NormRow, NORM_ROWS } from '../../src/kernels/layout.js';
import { MemoryStack } from '../../src/stack/source.js';
import { AbsorbanceStack } from '../../src/stack/absorbance.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { gpuBackend } from '../helpers/backends.js';
import { e0HalfTruthMap } from '../helpers/edge-truth.js';

const E0 = 8343;
const SEED = 424242;
/** Noiseless recovery bound required by the issue. */
const NOISELESS_E0_TOL_EV = 0.05;
/**
 * GPU vs CPU energies: the output is e0 + x in float32, whose ulp at 8.3 keV is ~1 meV,
 * plus float32 arithmetic on relative energies: 3 meV.
 */
const ENERGY_TOL_EV = 3e-3;
/** White-line height (normalised units): float32 arithmetic on order-one values. */
const HEIGHT_TOL = 1e-4;
/**
 * A discrete choice (argmax, nearest crossing) may differ between float32 and float64
 * only where the CPU's best and second-best candidates are within this relative margin.
 */
const TIE_REL = 1e-3;

function cpuMaps(plan: EdgePlan, cube: Float32Array, P: number) {
  const margins: EdgeMargins = { deriv: new Float64Array(P).fill(Infinity), crossing: new Float64Array(P).fill(Infinity), whiteline: new Float64Array(P).fill(Infinity) };
  const norm = normalizeCpu(plan, cube, P, margins);
  edgeCpu(plan, cube, P, norm, margins);
  return margins;
}

/** Compares two TileResults map by map; returns pixels that differ beyond tolerance without a near tie. */
function compare(a: Record<string, Float32Array>, b: Record<string, Float32Array>, margins: EdgeMargins, P: number): string[] {
  const bad: string[] = [];
  const check = (name: string, tol: number, tie: Float64Array | null) => {
    for (let p = 0; p < P; p++) {
      const x = a[name][p], y = b[name][p];
      if (Number.isNaN(x) && Number.isNaN(y)) continue;
      if (Math.abs(x - y) <= tol) continue;
      if (tie && tie[p] < TIE_REL) continue;
      bad.push(`${name}[${p}]: gpu ${x} cpu ${y}`);
    }
  };
  check('e0_deriv', ENERGY_TOL_EV, margins.deriv);
  // e0_half hangs on e0_deriv (nearest crossing) and on its own choice.
  const either = margins.crossing.map((c, p) => Math.min(c, margins.deriv[p]));
  check('e0_half', ENERGY_TOL_EV, either);
  const wl = margins.whiteline.map((c, p) => Math.min(c, either[p]));
  check('whiteline_energy', ENERGY_TOL_EV, wl);
  check('whiteline_height', HEIGHT_TOL, wl);
  check('mask', 0, null);
  return bad;
}

describe('edge', () => {
  test('noiseless synthetic stack: e0_half within 0.05 eV of the truth on both backends', async () => {
    const W = 48, H = 48;
    const s = makeNiTxmStack({ width: W, height: H, seed: SEED, noise: false });
    const plan = makeEdgePlan(s.energies, E0, DEFAULT_EDGE_OPTIONS);
    const truth = e0HalfTruthMap(s.truth.soc, s.energies, DEFAULT_EDGE_OPTIONS);
    const P = W * H;
    for (const backend of [await gpuBackend(), cpuBackend()]) {
      const r = await edgeStep(plan).runTile(backend, s.absorbance, P);
      let n = 0, worst = 0;
      for (let p = 0; p < P; p++) {
        if (!(s.truth.thickness[p] > 0)) continue;
        expect(r.status[p], `${backend.name} pixel ${p}`).toBe(EdgeStatus.OK);
        worst = Math.max(worst, Math.abs(r.maps.e0_half[p] - truth[p]));
        n++;
      }
      expect(n).toBeGreaterThan(500);
      expect(worst, backend.name).toBeLessThan(NOISELESS_E0_TOL_EV);
    }
  });

  test('noisy counts with flat and dark: truth recovered as well as the noise allows; GPU equals CPU', async () => {
    const W = 96, H = 96;
    const s = makeNiTxmStack({ width: W, height: H, seed: SEED, noise: true });
    const nE = s.energies.length;
    const src = new AbsorbanceStack(new MemoryStack(s.sample, nE, H, W), new MemoryStack(s.flat, nE, H, W), new MemoryStack(s.dark, nE, H, W));
    const P = W * H;
    const cube = new Float32Array(nE * P);
    await src.readRows(0, H, cube);
    const plan = makeEdgePlan(s.energies, E0, DEFAULT_EDGE_OPTIONS);
    const step = edgeStep(plan);
    const gpu = await step.runTile(await gpuBackend(), cube, P);
    const cpu = await step.runTile(cpuBackend(), cube, P);
    const bad = compare(gpu.maps, cpu.maps, cpuMaps(plan, cube, P), P);
    expect(bad.slice(0, 5), `seed ${SEED}`).toEqual([]);

    // Recovery on particle pixels thick enough to carry an edge (jump >= 0.3).
    const truth = e0HalfTruthMap(s.truth.soc, s.energies, DEFAULT_EDGE_OPTIONS);
    const err: number[] = [];
    for (let p = 0; p < P; p++) {
      if (!(s.truth.thickness[p] * 0.115 >= 0.3) || cpu.status[p] !== EdgeStatus.OK) continue;
      err.push(Math.abs(cpu.maps.e0_half[p] - truth[p]));
    }
    err.sort((a, b) => a - b);
    const median = err[err.length >> 1], p95 = err[Math.floor(err.length * 0.95)];
    console.log(`e0_half |error| on ${err.length} particle pixels (jump >= 0.3): median ${median.toFixed(3)} eV, 95th percentile ${p95.toFixed(3)} eV`);
    expect(err.length).toBeGreaterThan(1500);
    // Propagated noise: ~4,000-20,000 counts give absorbance noise 0.008-0.016, i.e. 0.01-0.05
    // in normalised units on jumps of 0.3-1.4; the edge rises ~0.15-0.3 per eV at half height,
    // so single-pixel e0_half errors of 0.05-0.3 eV are expected. Bounds leave ~40 % room.
    expect(median).toBeLessThan(0.2);
    expect(p95).toBeLessThan(0.7);
  });

  test('random spectra, NaN points and hostile pixels: GPU equals CPU', async () => {
    const rng = makeRng(SEED + 1);
    const E = makeNiTxmStack({ width: 4, height: 4, seed: 1, noise: false }).energies;
    const nE = E.length;
    const P = 1000 + 21; // not a multiple of the workgroup size
    const cube = new Float32Array(nE * P);
    for (let p = 0; p < P; p++) {
      const e0 = E0 + (rng.uniform() - 0.5) * 10, width = 0.5 + 3 * rng.uniform(), jump = 0.05 + rng.uniform();
      const wl = rng.uniform() * 0.5, noise = 0.02 * rng.uniform();
      for (let i = 0; i < nE; i++) {
        const t = (E[i] - e0) / width;
        const v = jump * (0.5 + Math.atan(t) / Math.PI) + wl * jump * Math.exp(-(((E[i] - e0 - 8) / 4) ** 2)) + noise * rng.normal();
        cube[i * P + p] = rng.uniform() < 0.02 ? NaN : v;
      }
    }
    for (let i = 0; i < nE; i++) { cube[i * P + 0] = NaN; cube[i * P + 1] = 1.5; cube[i * P + 2] = 1e30; }
    const plan = makeEdgePlan(E, E0, DEFAULT_EDGE_OPTIONS);
    const step = edgeStep(plan);
    const gpu = await step.runTile(await gpuBackend(), cube, P);
    const cpu = await step.runTile(cpuBackend(), cube, P);
    const bad = compare(gpu.maps, cpu.maps, cpuMaps(plan, cube, P), P);
    expect(bad.slice(0, 5), `seed ${SEED + 1}`).toEqual([]);
    // Exact status everywhere except pixel 2: 1e30 overflows float32 sums of squares, so the
    // GPU cannot fit it (NO_DATA) where float64 can (LOW_STEP); both mask it.
    for (let p = 0; p < P; p++) if (p !== 2) expect(gpu.status[p], `pixel ${p}`).toBe(cpu.status[p]);
    expect(cpu.status[0]).toBe(EdgeStatus.NO_DATA);
    expect(cpu.status[1]).toBe(EdgeStatus.LOW_STEP);
    expect(gpu.status[2]).not.toBe(EdgeStatus.OK);
    expect(cpu.status.filter((v) => v === EdgeStatus.OK).length).toBeGreaterThan(P * 0.8);
  });
});

describe('edge CPU kernel', () => {
  test('the fused CPU kernel = the twins (normalizeCpu + edgeCpu) bit for bit, for every post-edge degree, own and fixed windows', () => {
    const rng = makeRng(SEED + 2);
    const E = makeNiTxmStack({ width: 4, height: 4, seed: 1, noise: false }).energies;
    const nE = E.length;
    const P = 1500;
    const cube = new Float32Array(nE * P);
    for (let p = 0; p < P; p++) {
      const e0 = E0 + (rng.uniform() - 0.5) * 16, width = 0.3 + 4 * rng.uniform(), jump = 0.02 + rng.uniform();
      const wl = rng.uniform() * 0.6, noise = 0.03 * rng.uniform(), slope = 1e-4 * rng.normal();
      for (let i = 0; i < nE; i++) {
        const t = (E[i] - e0) / width;
        const v = 0.3 + slope * (E[i] - E0) + jump * (0.5 + Math.atan(t) / Math.PI) + wl * jump * Math.exp(-(((E[i] - e0 - 8) / 4) ** 2)) + noise * rng.normal();
        cube[i * P + p] = rng.uniform() < 0.03 ? NaN : v;
      }
    }
    for (let i = 0; i < nE; i++) { cube[i * P + 0] = NaN; cube[i * P + 1] = 1.5; cube[i * P + 2] = 1e30; cube[i * P + 3] = i % 2; }
    for (const nnorm of [0, 1, 2, 'auto'] as const) {
      for (const fixedWindows of [false, true]) {
        const plan = makeEdgePlan(E, E0, { ...DEFAULT_EDGE_OPTIONS, nnorm, fixedWindows });
        const twinNorm = normalizeCpu(plan, cube, P);
        const twinEdge = edgeCpu(plan, cube, P, twinNorm);
        const fused = edgeTileFused(plan, cube, P);
        const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
        expect(same(fused.norm, Float32Array.from(twinNorm)), `norm rows, nnorm ${nnorm}, fixed ${fixedWindows}`).toBe(true);
        expect(same(fused.edge, Float32Array.from(twinEdge)), `edge rows, nnorm ${nnorm}, fixed ${fixedWindows}`).toBe(true);
        const st = fused.norm.subarray(0, P);
        expect(st.filter((v) => v === EdgeStatus.OK).length).toBeGreaterThan(P * 0.5);
      }
    }
    // Grids that are not strictly increasing (a repeated energy, two energies swapped): the
    // kernel's general paths (the crossing's full scan, the white line tested point by point).
    // Three equal energies inside the derivative window (x(i+1) - x(i-1) = 0 there): the
    // WebAssembly derivative search without its screen (edge-wasm.ts derivScreen).
    const k3 = makeEdgePlan(E, E0, DEFAULT_EDGE_OPTIONS).edge.i0 + 3;
    for (const change of ['repeat', 'swap', 'triple'] as const) {
      const G = Float64Array.from(E);
      if (change === 'repeat') G[50] = G[49];
      else if (change === 'swap') [G[45], G[46]] = [G[46], G[45]];
      else G[k3 - 1] = G[k3 + 1] = G[k3];
      const plan = makeEdgePlan(G, E0, DEFAULT_EDGE_OPTIONS);
      const twinNorm = normalizeCpu(plan, cube, P);
      const twinEdge = edgeCpu(plan, cube, P, twinNorm);
      const fused = edgeTileFused(plan, cube, P);
      const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      expect(same(fused.norm, Float32Array.from(twinNorm)), `norm rows, grid with a ${change}`).toBe(true);
      expect(same(fused.edge, Float32Array.from(twinEdge)), `edge rows, grid with a ${change}`).toBe(true);
      expect(fused.norm.subarray(0, P).filter((v) => v === EdgeStatus.OK).length).toBeGreaterThan(P * 0.5);
    }
    // The WebAssembly half (edge-wasm.ts: gather, derivative search by pixel pairs): every
    // smoothing width (1 .. 7 points), an edge window reaching the first and last energies
    // (NaN differences there), an odd tile (the last pair's spare lane), and the tile in the
    // WebAssembly heap (staged by memory.copy) as the rows of a larger tile.
    const Q = P - 3;
    const odd = new Float32Array(nE * Q);
    for (let i = 0; i < nE; i++) odd.set(cube.subarray(i * P, i * P + Q), i * Q);
    const inHeapTile = heapF32(nE * Q + 2 * Q);
    inHeapTile.set(odd, Q);
    for (const derivSmooth of [1, 3, 5, 7]) {
      for (const search of [null, [E[0] - E0 - 1, E[nE - 1] - E0 + 1]] as const) {
        const plan = makeEdgePlan(E, E0, { ...DEFAULT_EDGE_OPTIONS, derivSmooth, ...(search ? { edge1: search[0], edge2: search[1] } : {}) });
        if (search) expect([plan.edge.i0, plan.edge.i1]).toEqual([0, nE]);
        const twinNorm = normalizeCpu(plan, odd, Q);
        const twinEdge = edgeCpu(plan, odd, Q, twinNorm);
        for (const tile of [odd, inHeapTile.subarray(Q, Q + nE * Q)]) {
          const fused = edgeTileFused(plan, tile, Q);
          const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
          const where = `derivSmooth ${derivSmooth}, window ${search ?? 'default'}, ${tile === odd ? 'plain' : 'heap'} tile`;
          expect(same(fused.norm, Float32Array.from(twinNorm)), where).toBe(true);
          expect(same(fused.edge, Float32Array.from(twinEdge)), where).toBe(true);
        }
      }
    }
    heapFree(inHeapTile);
    // A tile of several staging groups (EDGE_WASM_GROUP blocks are copied at once) and a
    // partial last group, plain and in the heap.
    const Q2 = 2 * EDGE_WASM_BLOCK * EDGE_WASM_GROUP + 77;
    const big = new Float32Array(nE * Q2);
    for (let i = 0; i < nE; i++) for (let q = 0; q < Q2; q++) big[i * Q2 + q] = cube[i * P + ((q * 7) % P)];
    const bigHeap = heapF32(nE * Q2);
    bigHeap.set(big);
    const plan = makeEdgePlan(E, E0, DEFAULT_EDGE_OPTIONS);
    const twinNorm = normalizeCpu(plan, big, Q2);
    const twinEdge = edgeCpu(plan, big, Q2, twinNorm);
    for (const tile of [big, bigHeap]) {
      const fused = edgeTileFused(plan, tile, Q2);
      const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      expect(same(fused.norm, Float32Array.from(twinNorm)), `several staging groups, ${tile === big ? 'plain' : 'heap'} tile`).toBe(true);
      expect(same(fused.edge, Float32Array.from(twinEdge)), `several staging groups, ${tile === big ? 'plain' : 'heap'} tile`).toBe(true);
    }
    // Rows into the caller's arrays (out), reused tile after tile: in the heap (fit() and
    // edge() write them in place) and plain (copied out per block), on an increasing grid and
    // on one with two energies swapped (the JavaScript path). Each is first filled with a
    // value no row holds, so a value the kernel left unwritten shows.
    const sameRows = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    const G = Float64Array.from(E);
    [G[45], G[46]] = [G[46], G[45]];
    const swapPlan = makeEdgePlan(G, E0, DEFAULT_EDGE_OPTIONS);
    const swapNorm = normalizeCpu(swapPlan, big, Q2);
    const swapEdge = edgeCpu(swapPlan, big, Q2, swapNorm);
    for (const rows of ['heap', 'plain'] as const) {
      const out = rows === 'heap' ? { norm: heapF32(NORM_ROWS * Q2), edge: heapF32(EDGE_ROWS * Q2) } : { norm: new Float32Array(NORM_ROWS * Q2), edge: new Float32Array(EDGE_ROWS * Q2) };
      for (const [pl, tn, te, grid] of [[plan, twinNorm, twinEdge, 'increasing'], [swapPlan, swapNorm, swapEdge, 'swapped']] as const) {
        for (const tile of [big, bigHeap]) {
          out.norm.fill(-12345);
          out.edge.fill(-12345);
          const r = edgeTileFused(pl, tile, Q2, out);
          expect(r.norm).toBe(out.norm);
          expect(r.edge).toBe(out.edge);
          const where = `rows into ${rows} out arrays, ${grid} grid, ${tile === big ? 'plain' : 'heap'} tile`;
          expect(sameRows(out.norm, Float32Array.from(tn)), where).toBe(true);
          expect(sameRows(out.edge, Float32Array.from(te)), where).toBe(true);
        }
      }
      expect(() => edgeTileFused(plan, big, Q2 - 1, out)).toThrow(/out rows/);
      heapFree(out.norm);
      heapFree(out.edge);
    }
    heapFree(bigHeap);
    // Fixed windows with the derivative search over the whole grid, the derivative's maximum
    // at the grid's first energies and status OK: the crossing search starts next to index 0
    // (its near intervals reach below the grid; nothing may be read outside the memory).
    {
      const G = Float64Array.from({ length: 141 }, (_, i) => E0 - 60 + i);
      const nG = G.length, R = 64;
      const low = new Float32Array(nG * R);
      for (let p = 0; p < R; p++) {
        for (let i = 0; i < nG; i++) {
          const jump = i >= 2 + (p % 3) ? 0.3 + (0.5 * p) / R : 0;
          low[i * R + p] = 0.2 + jump + (0.5 + Math.atan((G[i] - E0) / 3) / Math.PI) + 0.001 * Math.sin(7 * i + p);
        }
      }
      const lowPlan = makeEdgePlan(G, E0, { ...DEFAULT_EDGE_OPTIONS, fixedWindows: true, edge1: G[0] - E0 - 1, edge2: G[nG - 1] - E0 + 1 });
      const twinNorm = normalizeCpu(lowPlan, low, R);
      const twinEdge = edgeCpu(lowPlan, low, R, twinNorm);
      const atStart = Array.from({ length: R }, (_, p) => p).filter((p) => twinNorm[p] === EdgeStatus.OK && twinNorm[8 * R + p] < G[3] - E0);
      expect(atStart.length).toBeGreaterThan(5);
      const fused = edgeTileFused(lowPlan, low, R);
      const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      expect(same(fused.norm, Float32Array.from(twinNorm)), 'derivative maximum at the grid start').toBe(true);
      expect(same(fused.edge, Float32Array.from(twinEdge)), 'derivative maximum at the grid start').toBe(true);
    }
    // The same at the grid's last energies (the crossing window, edge-wasm.ts, reaches past
    // the last interval: its candidates are cut there).
    {
      const G = Float64Array.from({ length: 141 }, (_, i) => E0 - 80 + i);
      const nG = G.length, R = 64;
      const high = new Float32Array(nG * R);
      for (let p = 0; p < R; p++) {
        for (let i = 0; i < nG; i++) {
          const jump = i >= nG - 3 - (p % 3) ? 0.3 + (0.5 * p) / R : 0;
          high[i * R + p] = 0.2 + jump + 0.2 * (0.5 + Math.atan((G[i] - E0) / 3) / Math.PI) + 0.001 * Math.sin(7 * i + p);
        }
      }
      const highPlan = makeEdgePlan(G, E0, { ...DEFAULT_EDGE_OPTIONS, fixedWindows: true, edge1: G[0] - E0 - 1, edge2: G[nG - 1] - E0 + 1 });
      const twinNorm = normalizeCpu(highPlan, high, R);
      const twinEdge = edgeCpu(highPlan, high, R, twinNorm);
      const atEnd = Array.from({ length: R }, (_, p) => p).filter((p) => twinNorm[p] === EdgeStatus.OK && twinNorm[NormRow.E0_DERIV * R + p] > G[nG - 7] - E0);
      expect(atEnd.length).toBeGreaterThan(5);
      const fused = edgeTileFused(highPlan, high, R);
      const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      expect(same(fused.norm, Float32Array.from(twinNorm)), 'derivative maximum at the grid end').toBe(true);
      expect(same(fused.edge, Float32Array.from(twinEdge)), 'derivative maximum at the grid end').toBe(true);
    }
    // The 0.5 crossing far from the derivative maximum (a broad first step, then a sharp small
    // one): more than the crossing window's 8 points away, so the outward search decides; and
    // crossings near it on both sides, some nearer than the window's reach.
    {
      const R = 256;
      const far = new Float32Array(nE * R);
      for (let p = 0; p < R; p++) {
        const gap = 4 + (p % 16), wide = 1 + (p % 5);
        for (let i = 0; i < nE; i++) {
          const first = 0.6 * (0.5 + Math.atan((E[i] - (E0 - gap)) / wide) / Math.PI);
          const sharp = 0.4 * (0.5 + Math.atan((E[i] - E0) / 0.2) / Math.PI);
          far[i * R + p] = 0.3 + first + sharp + 0.002 * Math.sin(3 * i + p);
        }
      }
      const plan = makeEdgePlan(E, E0, DEFAULT_EDGE_OPTIONS);
      const twinNorm = normalizeCpu(plan, far, R);
      const twinEdge = edgeCpu(plan, far, R, twinNorm);
      const dist = Array.from({ length: R }, (_, p) => Math.abs(twinEdge[EdgeRow.E0_HALF * R + p] - twinEdge[EdgeRow.E0_DERIV * R + p]));
      expect(dist.filter((d) => d > 10).length).toBeGreaterThan(R / 8);
      expect(dist.filter((d) => d < 6).length).toBeGreaterThan(R / 8);
      const fused = edgeTileFused(plan, far, R);
      const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      expect(same(fused.norm, Float32Array.from(twinNorm)), 'crossing far from the derivative maximum').toBe(true);
      expect(same(fused.edge, Float32Array.from(twinEdge)), 'crossing far from the derivative maximum').toBe(true);
    }
  });
});

describe('edge CPU kernel on worker threads', () => {
  test('a tile cut into parts for 1, 2 and 3 workers (in the owner\'s heap) = the twins bit for bit; the step with a pool = one thread, heap and plain tiles', async () => {
    const rng = makeRng(SEED + 7);
    const E = makeNiTxmStack({ width: 4, height: 4, seed: 1, noise: false }).energies;
    const nE = E.length;
    // Several blocks per part, a partial last block (parts are cut at whole blocks), NaN
    // points (pixels the JavaScript half takes, in the worker) and hostile pixels.
    const P = 5 * EDGE_WASM_BLOCK + 77;
    const cube = new Float32Array(nE * P);
    for (let p = 0; p < P; p++) {
      const e0 = E0 + (rng.uniform() - 0.5) * 16, width = 0.3 + 4 * rng.uniform(), jump = 0.02 + rng.uniform();
      const wl = rng.uniform() * 0.6, noise = 0.03 * rng.uniform();
      for (let i = 0; i < nE; i++) {
        const v = 0.3 + jump * (0.5 + Math.atan((E[i] - e0) / width) / Math.PI) + wl * jump * Math.exp(-(((E[i] - e0 - 8) / 4) ** 2)) + noise * rng.normal();
        cube[i * P + p] = rng.uniform() < 0.02 ? NaN : v;
      }
    }
    for (let i = 0; i < nE; i++) { cube[i * P + 300] = NaN; cube[i * P + 301] = 1.5; cube[i * P + 302] = 1e30; cube[i * P + 303] = i % 2; }
    const heapTile = heapF32(nE * P + 8);
    const tile = heapTile.subarray(8, 8 + nE * P); // not at a block's start
    tile.set(cube);
    const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    const G = Float64Array.from(E);
    [G[45], G[46]] = [G[46], G[45]]; // not increasing: the JavaScript half for every pixel
    const plans = [['increasing', makeEdgePlan(E, E0, DEFAULT_EDGE_OPTIONS)], ['nnorm 1, fixed windows', makeEdgePlan(E, E0, { ...DEFAULT_EDGE_OPTIONS, nnorm: 1, fixedWindows: true })], ['swapped grid', makeEdgePlan(G, E0, DEFAULT_EDGE_OPTIONS)]] as const;
    for (const threads of [1, 2, 3]) {
      const pool = KernelPool.create(threads, 1);
      expect(pool, 'dist/kernel-worker.js (npm run build)').not.toBeNull();
      try {
        for (const [name, plan] of plans) {
          const twinNorm = normalizeCpu(plan, cube, P);
          const twinEdge = edgeCpu(plan, cube, P, twinNorm);
          expect(twinNorm.subarray(0, P).filter((v) => v === EdgeStatus.OK).length).toBeGreaterThan(P * 0.5);
          const out = { norm: heapF32(NORM_ROWS * P), edge: heapF32(EDGE_ROWS * P) };
          // Twice: a value the workers left unwritten shows; the second run reuses the workers' modules.
          for (const fill of [-12345, 54321]) {
            out.norm.fill(fill);
            out.edge.fill(fill);
            const et = new EdgeThreads(plan, pool!);
            await et.run(tile, P, out);
            expect(same(out.norm, Float32Array.from(twinNorm)), `norm rows, ${name}, ${threads} thread(s)`).toBe(true);
            expect(same(out.edge, Float32Array.from(twinEdge)), `edge rows, ${name}, ${threads} thread(s)`).toBe(true);
          }
          expect(() => EdgeThreads.runs(cube, out)).not.toThrow();
          expect(EdgeThreads.runs(cube, out)).toBe(false); // a plain tile: not in the heap
          await expect(new EdgeThreads(plan, pool!).run(cube, P, out)).rejects.toThrow(/heap/);
          heapFree(out.norm);
          heapFree(out.edge);
          // The step: with the pool (heap tile: parts on the workers; plain tile: this thread) = without.
          const step = edgeStep(plan);
          const one = await step.runTile(cpuBackend(1), cube, P);
          for (const t of [tile, cube]) {
            const r = await step.runTile({ ...cpuBackend(threads), pool: pool! }, t, P);
            for (const m of step.mapNames) expect(same(r.maps[m], one.maps[m]), `${m}, ${name}, ${threads} thread(s), ${t === cube ? 'plain' : 'heap'} tile`).toBe(true);
            expect(Buffer.from(r.status).equals(Buffer.from(one.status)), `status, ${name}, ${threads} thread(s)`).toBe(true);
          }
        }
      } finally {
        await pool!.close();
      }
    }
    heapFree(heapTile);
  });
});
