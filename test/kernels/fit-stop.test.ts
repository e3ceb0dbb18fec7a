/**
 * The fit's stopping rules (MINPACK lmder's ftol, xtol, gtol; src/models/layout.ts FitStop)
 * and its default width bound, on both backends:
 *  - every fit reported converged sits at a minimum: polishing it from its own reported
 *    parameters with the independent float64 LM (test/helpers/lm-peer.ts, scipy's 1e-8
 *    tolerances) gains almost nothing; a fit stopped by a small damped step in a flat valley
 *    would gain a large fraction of its chi-square (the issue saw 1.45x);
 *  - the `stop` map names a rule exactly where the status is converged or at-bound;
 *  - no fitted width is below half the local energy step at its centre.
 */
import { describe, expect, test } from 'vitest';
import { syntheticPresetSpectra, vkGrid40 } from '../../src/models/synthetic.js';
import { parseFitOptions } from '../../src/models/options.js';
import { fitStep, FitStatus } from '../../src/pipeline/fit-step.js';
import { FitStop } from '../../src/models/layout.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import { gpuBackend } from '../helpers/backends.js';
import { lmFit, model, NP } from '../helpers/lm-peer.js';

const SEED = 777001;
const P = 1600;
const LEVELS = [0.003, 0.01, 0.03];
/**
 * Largest chi-square a converged fit may still lose to a float64 polish, relative, beyond
 * what the float32 rounding of the reported parameters costs (added per pixel: delta^T A
 * delta <= NP sum_k (ulp_k / 2)^2 A_kk; an energy near 5480 eV is rounded by up to 2.4e-4
 * eV): FTOL (1e-5) of the Gauss-Newton prediction, float32 sums on the GPU; 1e-4 is 4000
 * times smaller than the flat-valley stops the issue reported (1.45x); 5e-7 the worst measured.
 */
const POLISH_GAIN_MAX = 1e-4;

/**
 * The bound is evaluated at the centre before it is rounded to float32 for the map: up to
 * 2.4e-4 eV near 5490 eV, where the local step changes by 0.33 eV per eV, ~2e-5 of the bound.
 */
const WIDTH_BOUND_REL = 1e-4;

function ulp32(x: number): number {
  const a = new Float32Array([Math.abs(x)]);
  const u = new Uint32Array(a.buffer);
  const v = a[0];
  u[0]++;
  return a[0] - v;
}

describe('stopping rules and width bounds', () => {
  const E = vkGrid40();
  const nE = E.length;
  const d = syntheticPresetSpectra(E, P, SEED, LEVELS);
  const names = d.model.paramNames;
  // Half the start spread of test/kernels/fit-init.test.ts: a global --init as well.
  const init = JSON.stringify({ b3: 3.3, c13: 1.1, c23: 3.6 });
  for (const which of ['cpu', 'webgpu'] as const) {
    test(`${which}: converged fits are at a minimum; stop codes match statuses; widths >= half the local step`, async () => {
      const backend = which === 'cpu' ? cpuBackend() : await gpuBackend();
      const st = fitStep(d.model, E, parseFitOptions({ init }, d.model));
      const r = await st.runTile(backend, d.cube, P);
      const stops: Record<number, number> = {};
      let worst = 0, checked = 0;
      const y = new Float64Array(nE);
      const f = new Float64Array(nE);
      const J = new Float64Array(nE * NP);
      const chi2At = (q: Float64Array) => {
        model(E, q, f);
        let c = 0;
        for (let i = 0; i < nE; i++) c += (y[i] - f[i]) ** 2;
        return c;
      };
      for (let p = 0; p < P; p++) {
        const s = r.status[p];
        const usable = s === FitStatus.CONVERGED || s === FitStatus.AT_BOUND;
        const stop = r.maps.stop[p];
        stops[stop] = (stops[stop] ?? 0) + 1;
        expect(stop > FitStop.NONE, `stop ${stop} at status ${s}, pixel ${p}`).toBe(usable);
        expect(stop).toBeLessThanOrEqual(FitStop.EXACT);
        if (!usable) continue;
        // Widths (b3, c13, c23) against half the local step at their centres (b2, c12, c22).
        for (const [w, c] of [['b3', 'b2'], ['c13', 'c12'], ['c23', 'c22']]) {
          const ce = r.maps[c][p];
          let i = 0;
          while (i + 2 < nE && E[i + 1] <= ce) i++;
          const h = (j: number) => Math.min(j > 0 ? E[j] - E[j - 1] : Infinity, j < nE - 1 ? E[j + 1] - E[j] : Infinity);
          const fr = Math.min(Math.max((ce - E[i]) / (E[i + 1] - E[i]), 0), 1);
          const local = h(i) + fr * (h(i + 1) - h(i));
          expect(r.maps[w][p], `${w} at pixel ${p} (centre ${ce.toFixed(2)} eV)`).toBeGreaterThanOrEqual(0.5 * local * (1 - WIDTH_BOUND_REL));
        }
        if (s !== FitStatus.CONVERGED) continue; // the unbounded peer may cross the bound
        for (let i = 0; i < nE; i++) y[i] = d.cube[i * P + p];
        const q = Float64Array.from({ length: NP }, (_, k) => r.maps[names[k]][p]);
        const here = chi2At(q);
        model(E, q, f, J);
        let rounding = 0;
        for (let k = 0; k < NP; k++) {
          let akk = 0;
          for (let i = 0; i < nE; i++) akk += J[i * NP + k] ** 2;
          rounding += NP * (0.5 * ulp32(q[k])) ** 2 * akk;
        }
        const pol = lmFit(E, y, q);
        const gain = (here - pol.chi2 - rounding) / here;
        worst = Math.max(worst, gain);
        checked++;
        expect(gain, `pixel ${p} (noise ${d.sigma[p]}, stop ${stop}): chi2 ${here} polishes to ${pol.chi2}`).toBeLessThanOrEqual(POLISH_GAIN_MAX);
      }
      console.log(`${which}: stop codes ${JSON.stringify(stops)}; ${checked} converged fits polished, worst relative gain ${worst.toExponential(2)}`);
      expect(checked).toBeGreaterThan(0.9 * P);
    }, 120_000);
  }
});
