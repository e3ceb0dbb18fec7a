/**
 * CPU twin of shaders/edge.wgsl, in float64. Per pixel with normalize status OK:
 *  - the normalised spectrum n(x) = (mu(x) - pre(x)) / step, computed on the fly from the
 *    normalize rows (never stored: it would double the bytes read); the step is the one at
 *    the pixel's own e0 (larch's pre_edge convention, see src/cpu/normalize.ts);
 *  - e0_deriv: the normalize kernel's derivative maximum (smoothed central differences on the
 *    real grid, in the edge window, refined by a parabola), as an absolute energy;
 *  - e0_half: the crossing of n = 0.5 (linear interpolation) nearest to e0_deriv, so a noise
 *    crossing in the pre-edge or a dip after the edge is not taken for the edge;
 *  - the white line: the maximum of n within whitelineWidth eV after e0_half, refined by a
 *    parabola (energy and height).
 * Energies are relative to e0 (plan.x); outputs are absolute eV. A pixel with no 0.5 crossing
 * gets status NO_EDGE (written into `norm`) and NaN everywhere.
 *
 * Optional `margins` (for tests): per pixel, the relative gap between the best and the
 * second-best candidate of each discrete choice, so GPU/CPU differences can be excused
 * only where the CPU's own choice nearly ties (`deriv` is filled by normalizeCpu).
 */
import type { EdgePlan } from '../pipeline/edge-plan.js';
import { parabolaVertex } from '../pipeline/edge-plan.js';
import { EdgeRow, EdgeStatus, EDGE_ROWS, NormRow } from '../kernels/layout.js';
import { preEdgeLine } from './normalize.js';

export interface EdgeMargins {
  deriv: Float64Array;
  crossing: Float64Array;
  whiteline: Float64Array;
}

export function edgeCpu(plan: EdgePlan, cube: Float32Array, P: number, norm: Float64Array, margins?: EdgeMargins): Float64Array {
  const out = new Float64Array(EDGE_ROWS * P).fill(NaN);
  const { x, nE } = plan;
  for (let p = 0; p < P; p++) {
    if (norm[NormRow.STATUS * P + p] !== EdgeStatus.OK) continue;
    const a = norm[NormRow.PRE_A * P + p];
    const b = norm[NormRow.PRE_B * P + p];
    const step = norm[NormRow.STEP * P + p];
    const n = (i: number) => (cube[i * P + p] - preEdgeLine(plan, a, b, x[i])) / step;
    // e0_deriv: found by the normalize kernel on mu (the same maximum as on n: a positive
    // scale and a constant slope move neither the argmax nor the parabola's vertex).
    const xDeriv = norm[NormRow.E0_DERIV * P + p];
    if (Number.isFinite(xDeriv)) out[EdgeRow.E0_DERIV * P + p] = plan.e0 + xDeriv;

    // e0_half: the 0.5 crossing nearest to e0_deriv (to e0 itself if there is no derivative).
    const anchor = Number.isFinite(xDeriv) ? xDeriv : 0;
    let xHalf = NaN, bestDist = Infinity, secondDist = Infinity;
    let nPrev = n(0);
    for (let i = 0; i < nE - 1; i++) {
      const nNext = n(i + 1);
      if (nPrev < 0.5 && nNext >= 0.5) {
        const xc = x[i] + ((0.5 - nPrev) * (x[i + 1] - x[i])) / (nNext - nPrev);
        const dist = Math.abs(xc - anchor);
        if (dist < bestDist) { secondDist = bestDist; bestDist = dist; xHalf = xc; } else if (dist < secondDist) secondDist = dist;
      }
      nPrev = nNext;
    }
    if (!Number.isFinite(xHalf)) {
      norm[NormRow.STATUS * P + p] = EdgeStatus.NO_EDGE;
      out[EdgeRow.E0_DERIV * P + p] = NaN;
      continue;
    }
    out[EdgeRow.E0_HALF * P + p] = plan.e0 + xHalf;
    if (margins) margins.crossing[p] = (secondDist - bestDist) / Math.max(secondDist, 1e-9);

    // White line: maximum of n in [xHalf, xHalf + width].
    let k = -1, kV = -Infinity, kSecond = -Infinity;
    for (let i = 0; i < nE; i++) {
      if (x[i] < xHalf || x[i] > xHalf + plan.whitelineWidth) continue;
      const v = n(i);
      if (!Number.isFinite(v)) continue;
      if (v > kV) { kSecond = kV; kV = v; k = i; } else if (v > kSecond) kSecond = v;
    }
    if (k < 0) continue;
    let xw = x[k], hw = kV;
    if (k > 0 && k < nE - 1) {
      const r = parabolaVertex(x[k - 1] - x[k], x[k + 1] - x[k], n(k - 1), kV, n(k + 1));
      if (Number.isFinite(r.t) && Number.isFinite(r.y)) { xw = x[k] + r.t; hw = r.y; }
    }
    out[EdgeRow.WL_ENERGY * P + p] = plan.e0 + xw;
    out[EdgeRow.WL_HEIGHT * P + p] = hw;
    if (margins) margins.whiteline[p] = (kV - kSecond) / Math.abs(kV);
  }
  return out;
}
