/**
 * Seed 002, composition maps of spectroscopic ptychography:
 *  - the maps equal the formulas (written here from their definitions with CODATA
 *    constants in SI units) to float32 precision, on a synthetic phase stack;
 *  - the examples/seed-002 recipe runs (`xanes run recipe.json`) on a small synthetic V K-edge
 *    case whose phase image follows known compositions: the electrons per V of each domain
 *    come out as the composition's, and the clustering on b2, Re_Ne/N_V and PE/b1 runs.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compositionMaps, theoreticalRatios } from '../../src/pipeline/composition.js';
import { makeVkPtychoStack, vkPhaseImage, VK_DOMAIN_COMPOSITIONS } from '../../src/synth/vk-ptycho.js';
import { makeRng } from '../../src/synth/random.js';
import { writeNpy, readNpy } from '../../src/io/npy.js';
import { runCli } from '../helpers/cli.js';

/** CODATA 2018: classical electron radius (m), Planck constant x c (eV m). */
const RE_M = 2.8179403262e-15;
const HC_EV_M = 1.23984198e-6;
/** float32 rounding of the stored maps: 2^-23 relative, twice for the ratio of two of them. */
const F32_REL = 2 * 2 ** -23;

describe('composition maps', () => {
  test('N_V, Re_Ne and their ratio equal the formulas to float32 precision', () => {
    const rng = makeRng(120501);
    const n = 5000;
    const b1 = Float32Array.from({ length: n }, () => 1.5 * rng.uniform());
    const phase = Float32Array.from({ length: n }, () => -3 * rng.uniform());
    const E_PHASE = 5450, E_EDGE = 5480, DF2 = 3.53;
    const m = compositionMaps(b1, phase, { phaseEnergy: E_PHASE, edgeEnergy: E_EDGE, deltaF2: DF2 });
    for (let p = 0; p < n; p++) {
      // Per nm^2: r_e lambda in m^2 times 1e18 nm^2 per m^2.
      const nv = b1[p] / (RE_M * (HC_EV_M / E_EDGE) * DF2 * 1e18);
      const ne = -phase[p] / (RE_M * (HC_EV_M / E_PHASE) * 1e18);
      expect(Math.abs(m.N_V[p] - nv)).toBeLessThanOrEqual(F32_REL * Math.abs(nv));
      expect(Math.abs(m.Re_Ne[p] - ne)).toBeLessThanOrEqual(F32_REL * Math.abs(ne));
      if (nv > 0) expect(Math.abs(m.Re_Ne_over_N_V[p] - ne / nv)).toBeLessThanOrEqual(2 * F32_REL * Math.abs(ne / nv));
    }
  });

  test('theoretical electrons per V: sum of n (Z + f\') over n_V', () => {
    const t = Object.fromEntries(theoreticalRatios().map((r) => [r.name, r.Re_Ne_over_N_V]));
    expect(t.V2O5).toBeCloseTo((2 * (23 - 7.14) + 5 * (8 + 0.0757)) / 2, 10);
    expect(t.VO2).toBeCloseTo(23 - 7.14 + 2 * (8 + 0.0757), 10);
    expect(t.LiV2O5).toBeCloseTo((3 + 0.00278 + 2 * (23 - 7.14) + 5 * (8 + 0.0757)) / 2, 10);
  });
});

describe('the seed-002 recipe (examples/seed-002/recipe.json)', () => {
  let dir: string;
  const SIZE = 24;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-seed002-'));
    const v = makeVkPtychoStack(SIZE, 120502, 0.005);
    writeNpy(path.join(dir, 'vk_ptycho.npy'), v.cube, [v.energies.length, SIZE, SIZE]);
    fs.writeFileSync(path.join(dir, 'vk_energies.txt'), Array.from(v.energies).join('\n') + '\n');
    writeNpy(path.join(dir, 'vk_phase.npy'), vkPhaseImage(v.truth.b1, v.truth.domain, 5450, 5480), [SIZE, SIZE]);
    writeNpy(path.join(dir, 'truth_domain.npy'), v.truth.domain, [SIZE, SIZE]);
    const recipe = fileURLToPath(new URL('../../examples/seed-002/recipe.json', import.meta.url));
    fs.copyFileSync(recipe, path.join(dir, 'recipe.json'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('runs; electrons per V of each domain as its composition; clusters weighted by N_V', async () => {
    const r = await runCli(['run', path.join(dir, 'recipe.json'), '--backend', 'cpu', '--threads', '1']);
    expect(r.code, r.err).toBe(0);
    const out = path.join(dir, 'seed-002-out');
    const field = fs.readdirSync(out).find((f) => f.startsWith('vk_ptycho'))!;
    const ratio = readNpy(path.join(out, field, 'fit', 'Re_Ne_over_N_V.npy')).data as Float32Array;
    const domain = readNpy(path.join(dir, 'truth_domain.npy')).data as Int16Array;
    const theory = Object.fromEntries(theoreticalRatios().map((t) => [t.name, t.Re_Ne_over_N_V]));
    VK_DOMAIN_COMPOSITIONS.forEach((name, d) => {
      const v = Array.from(ratio).filter((x, p) => domain[p] === d && Number.isFinite(x)).sort((a, b) => a - b);
      expect(v.length, name).toBeGreaterThan(20);
      const med = v[v.length >> 1];
      // The fitted edge jump b1 carries the fit's error (~1 % at this noise on thick pixels).
      expect(Math.abs(med / theory[name] - 1), `${name}: median ${med}, theory ${theory[name]}`).toBeLessThan(0.03);
    });
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    expect(JSON.stringify(summary)).toContain('theoretical_Re_Ne_over_N_V');
    expect(fs.existsSync(path.join(out, 'combined'))).toBe(true);
    expect(fs.readdirSync(path.join(out, 'combined')).some((f) => /cluster|labels|elbow/.test(f))).toBe(true);
  }, 120_000);
});
