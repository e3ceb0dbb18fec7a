/**
 * Ground truth for e0_half of the synthetic Ni stack, computed independently of the
 * kernels: the noise-free spectrum of state of charge s on the scan's energies is
 * normalised by larch's pre_edge conventions (the float64 reference in larch-preedge.ts,
 * each spectrum from its own e0) and its 0.5 crossing is found on a 5 meV grid of the model
 * function itself (the measured references, linearly interpolated).
 * Absorbance = film + t (jump mix + linear matrix background): both fits absorb the
 * linear terms exactly, so the normalised spectrum of every particle pixel depends on s
 * alone.
 */
import { niMixtureSpectrum } from '../../src/synth/ni-txm.js';
import type { EdgeOptions } from '../../src/pipeline/edge-plan.js';
import { halfCrossing, preEdge } from './larch-preedge.js';

export function e0HalfTruth(s: number, energies: Float64Array, o: EdgeOptions): number {
  const r = preEdge(energies, niMixtureSpectrum(s, energies), {
    pre1: o.pre1, pre2: o.pre2, norm1: o.norm1, norm2: o.norm2, nnorm: o.nnorm === 'auto' ? undefined : o.nnorm,
  });
  const fine = new Float64Array(6001).map((_, i) => r.e0 - 15 + i * 0.005);
  return halfCrossing(fine, niMixtureSpectrum(s, fine), r, r.e0);
}

/** e0HalfTruth over a map of s (NaN stays NaN), memoised on s rounded to 1e-4. */
export function e0HalfTruthMap(soc: Float32Array, energies: Float64Array, o: EdgeOptions): Float32Array {
  const memo = new Map<number, number>();
  return soc.map((s) => {
    if (!Number.isFinite(s)) return NaN;
    const key = Math.round(s * 1e4);
    let v = memo.get(key);
    if (v === undefined) memo.set(key, (v = e0HalfTruth(key / 1e4, energies, o)));
    return v;
  });
}
