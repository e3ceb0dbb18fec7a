/**
 * PCA's NaN policy (src/cpu/pca-missing.ts): a non-finite point is dropped for that pixel
 * in the projection; the pixel is masked only when too few points remain. Checked against
 * numpy's lstsq on the observed rows (python3-numpy), against the same pixels without
 * holes, GPU against CPU, and with --mask on `xanes pca`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, test } from 'vitest';
import { makeRng } from '../../src/synth/random.js';
import { MemoryStack } from '../../src/stack/source.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { pcaProjectStep, pcaRun } from '../../src/pipeline/pca.js';
import { minProjectionPoints } from '../../src/cpu/pca-missing.js';
import { readNpy, writeNpy } from '../../src/io/npy.js';
import { gpuBackend } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-pca-nan-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** float64 CPU vs numpy lstsq on the same float64 model: rounding only. */
const LSTSQ_TOL = 1e-9;
/** GPU (float32 model and kernel for the complete pixels) vs CPU, in score units (scores ~0.3). */
const BACKEND_TOL = 2e-4;
/**
 * A holed pixel's scores vs the same pixel without holes, on the same model: dropping ~4 of
 * 40 points of noise 0.01 moves a score by the noise those points carried along the
 * component, ~0.01 x sqrt(4) x 0.22 ~ 4e-3 (1.05e-2 the worst of 240 measured); 0.03 still
 * catches a point zero-filled instead of dropped (the lost terms y_e v_ke are ~0.1-0.3).
 */
const HOLE_SCORE_TOL = 0.03;

const d = 40, H = 12, W = 20, P = H * W, n = 3;
function stack() {
  const rng = makeRng(4242);
  const basis = Array.from({ length: 3 }, (_, k) => Float64Array.from({ length: d }, (_, e) => Math.sin(((k + 1) * Math.PI * (e + 0.5)) / d)));
  const full = new Float32Array(d * P);
  for (let p = 0; p < P; p++) {
    const w = [rng.normal(), 0.5 * rng.normal(), 0.25 * rng.normal()];
    for (let e = 0; e < d; e++) full[e * P + p] = 1 + w[0] * basis[0][e] + w[1] * basis[1][e] + w[2] * basis[2][e] + 0.01 * rng.normal();
  }
  const holed = Float32Array.from(full);
  const holes = new Map<number, number[]>();
  for (let p = 0; p < P; p += 3) {
    const es: number[] = [];
    for (let e = 0; e < d; e++) if (rng.uniform() < 0.1) es.push(e);
    holes.set(p, es);
    es.forEach((e, i) => (holed[e * P + p] = i % 2 ? NaN : Infinity));
  }
  // Too few points left: more than half missing.
  const sparse = 7;
  holes.set(sparse, []);
  for (let e = 0; e < d - minProjectionPoints(d, n) + 1; e++) holed[e * P + sparse] = NaN;
  return { full, holed, holes, sparse };
}

describe('pca: a non-finite point is dropped for that pixel', () => {
  const s = stack();
  const energies = Float64Array.from({ length: d }, (_, e) => 8300 + e);
  test('scores of holed pixels: lstsq on the observed rows, close to the complete pixel, GPU = CPU', async () => {
    const cpu = await pcaRun(cpuBackend(1), new MemoryStack(s.holed, d, H, W), energies, n, { baselineBytes: 0 });
    const gpu = await pcaRun(await gpuBackend(), new MemoryStack(s.holed, d, H, W), energies, n, { baselineBytes: 0 });
    // The covariance excludes every pixel with a hole (documented).
    expect(cpu.model.nExcluded).toBe([...s.holes.values()].filter((h, i) => h.length > 0 || [...s.holes.keys()][i] === s.sparse).length);
    // numpy lstsq on the observed rows of the CPU model, for the holed pixels.
    const pix = [...s.holes.keys()].filter((p) => p !== s.sparse);
    const py = `
import sys, json, numpy as np
d = json.load(sys.stdin)
V = np.array(d['V']).reshape(${n}, ${d}).T; mean = np.array(d['mean'])
out = []
for x in d['x']:
    x = np.array([np.nan if v is None else v for v in x]); ok = np.isfinite(x)
    out.append(np.linalg.lstsq(V[ok], x[ok] - mean[ok], rcond=None)[0].tolist())
print(json.dumps(out))`;
    const xs = pix.map((p) => Array.from({ length: d }, (_, e) => (Number.isFinite(s.holed[e * P + p]) ? s.holed[e * P + p] : null)));
    const want = JSON.parse(execFileSync('/usr/bin/python3', ['-c', py], { input: JSON.stringify({ V: Array.from(cpu.model.components.subarray(0, n * d)), mean: Array.from(cpu.model.mean), x: xs }) }).toString()) as number[][];
    // The same pixels without holes, projected on the same model.
    const ref = await pcaProjectStep(cpu.model, n).runTile(cpuBackend(1), s.full, P);
    let worstHole = 0;
    pix.forEach((p, i) => {
      expect(cpu.status[p], `pixel ${p}`).toBe(0);
      expect(gpu.status[p], `pixel ${p}`).toBe(0);
      for (let k = 0; k < n; k++) {
        // The maps are float32: compare to the float32 rounding of the reference plus rounding.
        expect(Math.abs(cpu.scores[k][p] - want[i][k]), `score ${k + 1} of ${p}`).toBeLessThan(LSTSQ_TOL + 1e-7 * Math.abs(want[i][k]));
        expect(Math.abs(gpu.scores[k][p] - cpu.scores[k][p]), `gpu score ${k + 1} of ${p}`).toBeLessThan(BACKEND_TOL);
        worstHole = Math.max(worstHole, Math.abs(cpu.scores[k][p] - ref.maps[`score_${k + 1}`][p]));
      }
      expect(Number.isFinite(cpu.reconError[p])).toBe(true);
    });
    console.log(`holed pixels vs complete: worst score change ${worstHole.toExponential(2)} over ${pix.length} pixels`);
    expect(worstHole).toBeLessThan(HOLE_SCORE_TOL);
    // Too few points: masked (status 1, NaN) on both backends.
    for (const r of [cpu, gpu]) {
      expect(r.status[s.sparse]).toBe(1);
      expect(r.scores[0][s.sparse]).toBeNaN();
    }
  });

  test('xanes pca --mask: masked pixels take no part and get NaN scores; summary counts them', async () => {
    writeNpy(path.join(tmp, 'stack.npy'), s.full, [d, H, W]);
    fs.writeFileSync(path.join(tmp, 'energies.txt'), Array.from(energies).join('\n') + '\n');
    const mask = new Float32Array(P);
    for (let p = 0; p < P; p++) mask[p] = p % W < W / 2 ? 1 : 0;
    writeNpy(path.join(tmp, 'mask.npy'), mask, [H, W]);
    const out = path.join(tmp, 'pca-masked');
    const r = await runCli(['pca', path.join(tmp, 'stack.npy'), '--energies', path.join(tmp, 'energies.txt'), '--mask', path.join(tmp, 'mask.npy'), '--components', '2', '--backend', 'cpu', '--out', out]);
    expect(r.code, r.err).toBe(0);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(summary.pixels.masked_by_mask).toBe(P / 2);
    expect(summary.pixels.included).toBe(P / 2);
    const sc = readNpy(path.join(out, 'score_1.npy')).data as Float32Array;
    for (let p = 0; p < P; p++) expect(Number.isNaN(sc[p]), `pixel ${p}`).toBe(mask[p] === 0);
  });
});
