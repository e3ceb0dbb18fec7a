/** Several steps over one pass of tiles give what each step gives alone. */
import { expect, test } from 'vitest';
import { makeNiTxmStack } from '../../src/synth/ni-txm.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS } from '../../src/pipeline/edge-plan.js';
import { edgeStep } from '../../src/pipeline/edge-step.js';
import { combineSteps, splitRun } from '../../src/pipeline/combine.js';
import { runTiles } from '../../src/pipeline/run-tiles.js';
import { MemoryStack } from '../../src/stack/source.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { gpuBackend } from '../helpers/backends.js';

test('combined edge steps with different windows equal separate runs, on each backend', async () => {
  const W = 30, H = 22;
  const s = makeNiTxmStack({ width: W, height: H, seed: 3, noise: false });
  const nE = s.energies.length;
  const a = edgeStep(makeEdgePlan(s.energies, 8343, DEFAULT_EDGE_OPTIONS));
  const b = { ...edgeStep(makeEdgePlan(s.energies, 8343, { ...DEFAULT_EDGE_OPTIONS, nnorm: 1, maskSigma: 3 })), name: 'edge_linear', worker: undefined };
  for (const backend of [await gpuBackend(), cpuBackend(1)]) {
    const src = new MemoryStack(s.absorbance, nE, H, W);
    const both = splitRun(await runTiles(src, combineSteps([a, b]), backend, { budgetBytes: 1e12, baselineBytes: 0 }), [a, b]);
    for (const step of [a, b]) {
      const alone = await runTiles(src, step, backend, { budgetBytes: 1e12, baselineBytes: 0 });
      for (const m of step.mapNames) expect(Buffer.from(both[step.name].maps[m].buffer).equals(Buffer.from(alone.maps[m].buffer)), `${backend.name} ${step.name} ${m}`).toBe(true);
      expect(both[step.name].statusCounts).toEqual(alone.statusCounts);
    }
    // The two normalisations differ, so the test could tell them apart.
    expect(Buffer.from(both.edge.maps.edge_step.buffer).equals(Buffer.from(both.edge_linear.maps.edge_step.buffer))).toBe(false);
  }
});
