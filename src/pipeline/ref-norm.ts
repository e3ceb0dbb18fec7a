/**
 * References are spectra like any other: each goes through the same Athena/larch
 * normalisation as the pixels (src/cpu/normalize.ts, xraylarch 0.9.58 pre_edge rules). A
 * file reference is placed on the stack's energies and normalised there when it covers
 * them all (so its fits see the same energies as the pixels' fits: on a sparse TXM grid the
 * post-edge line differs by several per cent from one fitted on a 1 eV grid), otherwise on
 * its own energies.
 *
 * Parameters: an Athena group's own stored ones (bkg_e0, bkg_pre1/2, bkg_nor1/2, bkg_nnorm)
 * where the project has them, as Athena would normalise that group; otherwise the run's
 * edge options (--pre, --post, --nnorm), with e0 the reference's own derivative maximum.
 */
import { DEFAULT_EDGE_OPTIONS, derivativeMaxEnergy, makeEdgePlan, type EdgeOptions } from './edge-plan.js';
import { normalizeOne } from '../cpu/normalize.js';
import { InputError } from '../io/errors.js';
import type { AthenaNormParams } from '../io/references.js';

/**
 * norm: larch's norm; flat: larch's flat; none: the raw values; auto (default): norm where
 * the reference's energies hold the pre- and post-edge windows, else raw, with a notice (a
 * soft-X-ray L-edge scan 30 eV wide has no K-edge-style windows).
 */
export const REF_NORMS = ['auto', 'norm', 'flat', 'none'] as const;
export type RefNorm = (typeof REF_NORMS)[number];

/** What was done to one reference (summary.json). */
export interface RefNormRecord {
  method: 'norm' | 'flat' | 'none';
  /** Why a reference was kept raw under 'auto'. */
  reason?: string;
  /** Normalised on the stack's energies (it covers them all) or on its own. */
  grid?: 'stack' | 'own';
  /** 'athena group' or 'run options' */
  params_from?: string;
  e0_eV?: number;
  edge_step?: number;
  nnorm?: number;
  pre_eV?: [number, number];
  post_eV?: [number, number | 'end'];
}

export interface RefNormOptions {
  kind: RefNorm;
  /** The run's edge options (windows relative to e0, nnorm). */
  edge?: Partial<EdgeOptions>;
}

/**
 * The normalised values of one spectrum on its own energies. NaN points are dropped from
 * the fits (the NaN policy) and stay NaN. Throws InputError naming `where` when the spectrum
 * cannot be normalised (windows without enough points, no edge).
 */
export function normalizeReference(where: string, energy: Float64Array, mu: Float64Array, o: RefNormOptions, athena?: AthenaNormParams): { values: Float64Array; record: RefNormRecord } {
  if (o.kind === 'none') return { values: mu, record: { method: 'none' } };
  if (o.kind === 'auto') {
    try {
      return normalizeReference(where, energy, mu, { ...o, kind: 'norm' }, athena);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      return { values: mu, record: { method: 'none', reason: e.message.replace(/^[^:]*: /, '').replace(/ \(or use --ref-norm none\)$/, '') } };
    }
  }
  const kind = o.kind;
  const options: EdgeOptions = { ...DEFAULT_EDGE_OPTIONS, ...o.edge, e0: undefined, fixedWindows: false };
  let from = 'run options';
  let e0: number;
  if (athena && Object.keys(athena).some((k) => k !== 'eshift')) {
    from = 'athena group';
    if (athena.pre1 !== undefined) options.pre1 = athena.pre1;
    if (athena.pre2 !== undefined) options.pre2 = athena.pre2;
    if (athena.norm1 !== undefined) options.norm1 = athena.norm1;
    if (athena.norm2 !== undefined) options.norm2 = athena.norm2;
    if (athena.nnorm !== undefined) options.nnorm = athena.nnorm;
  }
  if (athena?.e0 !== undefined && athena.e0 >= energy[0] && athena.e0 <= energy[energy.length - 1]) {
    // Athena normalises at the group's stored e0 (larch: pre_edge(e0=...)).
    e0 = athena.e0;
    options.fixedWindows = true;
  } else {
    try {
      e0 = derivativeMaxEnergy(energy, mu, 1);
    } catch {
      throw new InputError(where, 'cannot find the edge of the reference (no finite derivative); use --ref-norm none');
    }
  }
  let plan;
  try {
    plan = makeEdgePlan(energy, e0, options, where);
  } catch (e) {
    if (e instanceof InputError) throw new InputError(where, `cannot normalise the reference: ${e.message.replace(/^[^:]*: /, '')} (or use --ref-norm none)`);
    throw e;
  }
  const r = normalizeOne(plan, mu);
  if (!r || !(r.step > 0)) {
    throw new InputError(where, `cannot normalise the reference: ${r ? `edge step ${r.step?.toPrecision(3)} is not positive` : 'too few finite points in the pre- or post-edge window'} (or use --ref-norm none)`);
  }
  const fmt = (v: number): number | 'end' => (Number.isFinite(v) ? v : 'end');
  return {
    values: kind === 'flat' ? r.flat : r.norm,
    record: {
      method: kind, params_from: from, e0_eV: r.e0, edge_step: r.step, nnorm: r.degree,
      pre_eV: [options.pre1, options.pre2], post_eV: [options.norm1, fmt(options.norm2)],
    },
  };
}
