/**
 * The per-run constants of a fit, computed once on the host in float64 and shared by both
 * backends: the internal energy coordinate, the edge plan used for start values, the free
 * parameters, bounds and global start values in scaled units, the order in which the
 * components get their start values.
 *
 * Internal units (what makes float32 work, DESIGN.md): t = (E - eRef) / eScale with eRef the
 * middle and eScale the half-width of the energy range, so t runs over [-1, 1] and an edge
 * energy keeps ~1e-5 eV resolution instead of float32's 5e-4 eV at 5.5 keV; per pixel,
 * amplitudes are divided by the pixel's largest |value| (yScale). Parameters convert by
 * their role (src/models/component.ts).
 */
import type { EdgeOptions, EdgePlan } from '../pipeline/edge-plan.js';
import { DEFAULT_EDGE_OPTIONS, indexNearest, makeEdgePlan } from '../pipeline/edge-plan.js';
import { InputError } from '../io/errors.js';
import type { ParamRole } from './component.js';
import { fitReferenceEnergy, type FitModel } from './model.js';
import type { FitOptions } from './options.js';
import { FIT_TUNING, InitRoleCode } from './layout.js';

export interface FitEdgeOptions extends Partial<EdgeOptions> {
  /** Energy (eV) at which the normalize kernel evaluates the edge step; default mid-range. */
  e0?: number;
}

export interface FitPlan {
  model: FitModel;
  nE: number;
  energies: Float64Array;
  eRef: number;
  eScale: number;
  /** Internal energies (E - eRef) / eScale. */
  t: Float64Array;
  /** Local grid step at each energy, internal units (for start widths). */
  dt: Float64Array;
  /** normalize + edge plan: pre-edge line, edge step, noise and edge energy per pixel. */
  edge: EdgePlan;
  np: number;
  /** Indices of the free parameters. */
  free: number[];
  /**
   * Bounds and global start values in "role units": energies as t, widths / eScale,
   * amplitudes as given and slopes * eScale (both still to be divided by the pixel's
   * yScale: yScaled[k] = 1), fractions as given. Open bounds are -+Infinity; no global
   * start value is NaN.
   */
  lower: Float64Array;
  upper: Float64Array;
  init: Float64Array;
  yScaled: Uint8Array;
  maxIter: number;
  /**
   * For a width parameter with the default lower bound: the index of its component's centre
   * parameter (the bound is then WIDTH_LOCAL_STEPS x the local grid step at that centre,
   * src/models/layout.ts); -1 for every other parameter.
   */
  widthCentre: Int32Array;
  /** Component indices in start-value order: baselines, slopes, steps, then peaks in model order. */
  initOrder: number[];
  /** 1 where a parameter is fitted (not --fix'ed). */
  isFree: Uint8Array;
  /**
   * A global --init sets a free parameter: every pixel is then fitted twice, from its
   * data-driven start and from the --init start, and the better fit is kept (fitBetter in
   * src/cpu/fit.ts). One start shared by every pixel lands some of them in another local
   * minimum (a peak taking the other's place: in a 10,000-pixel test 0.3 % ended
   * "converged" at 1.05-63 x the chi-square of the true parameters, as did an independent
   * float64 LM), while the data-driven start finds the right one.
   */
  initOnFree: boolean;
  /** InitRoleCode of each component. */
  compRole: number[];
  /** Parameter indices of the first step component's centre and width (-1 if none). */
  stepCentre: number;
  stepWidth: number;
  nSteps: number;
  hasSlope: boolean;
  options: FitOptions;
}

/**
 * The normalize/edge plan used for start values. Unless given, the windows come from the
 * energy grid alone (a fit step is built before any data is read, and ptychography grids
 * are too short for the Athena-style windows): the pre-edge line over the first 20 % of the
 * range (at least 3 energies), a post-edge line over the last 20 % (at least 3), the edge
 * step evaluated at e0 (default: the middle of the range) and the derivative searched over
 * the whole grid. The fit's start values guard against a pre-edge peak taken for the edge
 * (startValues in src/cpu/fit.ts).
 */
export function fitEdgePlan(energies: Float64Array, opts: FitEdgeOptions = {}): EdgePlan {
  const n = energies.length;
  if (n < 6) throw new InputError('energies', `a fit needs at least 6 energies, got ${n}`);
  const first = energies[0];
  const last = energies[n - 1];
  const range = last - first;
  const e0 = opts.e0 ?? (first + last) / 2;
  const preHi = Math.max(first + 0.2 * range, energies[2]);
  const postLo = Math.min(last - 0.2 * range, energies[n - 3]);
  const margin = range; // window limits beyond the grid on the open side
  // The windows follow larch's point rules (larchWindows): measured from the grid energy
  // nearest e0, ending before the point nearest pre2, starting at the point at or below
  // norm1. So pre2 names the first point after the pre-edge energies <= preHi, and norm1 a
  // point between the first energy at or above postLo and the next.
  const e0g = energies[indexNearest(energies, e0)];
  let jPre = 0;
  while (jPre + 1 < n && energies[jPre + 1] <= preHi) jPre++;
  let kPost = n - 1;
  while (kPost > 0 && energies[kPost - 1] >= postLo) kPost--;
  const o: EdgeOptions = {
    ...DEFAULT_EDGE_OPTIONS,
    pre1: first - e0 - margin,
    pre2: energies[Math.min(jPre + 1, n - 1)] - e0g,
    norm1: (kPost + 1 < n ? (energies[kPost] + energies[kPost + 1]) / 2 : energies[kPost]) - e0g,
    norm2: Infinity,
    nnorm: 1,
    fixedWindows: true,
    edge1: first - e0 - margin,
    edge2: last - e0 + margin,
  };
  for (const [k, v] of Object.entries(opts)) if (k !== 'e0' && v !== undefined) (o as unknown as Record<string, unknown>)[k] = v;
  return makeEdgePlan(energies, e0, o);
}

/** Converts a user-unit value of the given role to role units (see FitPlan.lower). */
export function toRoleUnits(role: ParamRole, v: number, eRef: number, eScale: number): number {
  switch (role) {
    case 'energy': return (v - eRef) / eScale;
    case 'width': return v / eScale;
    case 'slope': return v * eScale;
    default: return v;
  }
}

/** Converts an internal value back to user units (yScale: the pixel's data scale). */
export function fromInternal(role: ParamRole, v: number, eRef: number, eScale: number, yScale: number): number {
  switch (role) {
    case 'energy': return eRef + v * eScale;
    case 'width': return v * eScale;
    case 'amplitude': return v * yScale;
    case 'slope': return (v * yScale) / eScale;
    default: return v;
  }
}

/** Converts an internal standard error (a difference: no offset) back to user units. */
export function stderrFromInternal(role: ParamRole, v: number, eScale: number, yScale: number): number {
  switch (role) {
    case 'energy':
    case 'width': return v * eScale;
    case 'amplitude': return v * yScale;
    case 'slope': return (v * yScale) / eScale;
    default: return v;
  }
}

/** Default bounds of a role in user units (open: +-Infinity). */
export function defaultBounds(role: ParamRole, energies: Float64Array): [number, number] {
  const n = energies.length;
  let minStep = Infinity;
  for (let i = 1; i < n; i++) minStep = Math.min(minStep, energies[i] - energies[i - 1]);
  switch (role) {
    // A position outside the scanned range is not determined by the data.
    case 'energy': return [energies[0], energies[n - 1]];
    // The floor; a width of a component with a centre follows the local step there (FitPlan.widthCentre).
    case 'width': return [FIT_TUNING.WIDTH_MIN_STEPS * minStep, energies[n - 1] - energies[0]];
    case 'fraction': return [0, 1];
    default: return [-Infinity, Infinity];
  }
}

export function makeFitPlan(model: FitModel, energies: Float64Array, options: FitOptions, edgeOptions: FitEdgeOptions = {}): FitPlan {
  const nE = energies.length;
  for (let i = 1; i < nE; i++) {
    if (!(energies[i] > energies[i - 1])) throw new InputError('energies', `must be strictly increasing (index ${i})`);
  }
  const edge = fitEdgePlan(energies, edgeOptions);
  const eRef = fitReferenceEnergy(energies);
  const eScale = (energies[nE - 1] - energies[0]) / 2;
  const t = Float64Array.from(energies, (e) => (e - eRef) / eScale);
  const dt = new Float64Array(nE);
  for (let i = 0; i < nE; i++) {
    const a = Math.max(i - 1, 0);
    const b = Math.min(i + 1, nE - 1);
    dt[i] = (t[b] - t[a]) / (b - a);
  }
  const np = model.paramNames.length;
  const lower = new Float64Array(np);
  const upper = new Float64Array(np);
  const init = new Float64Array(np).fill(NaN);
  const yScaled = new Uint8Array(np);
  const free: number[] = [];
  for (let k = 0; k < np; k++) {
    const name = model.paramNames[k];
    const role = model.paramRoles[k];
    const [lo, hi] = options.bounds[name] ?? defaultBounds(role, energies);
    lower[k] = Number.isFinite(lo) ? toRoleUnits(role, lo, eRef, eScale) : -Infinity;
    upper[k] = Number.isFinite(hi) ? toRoleUnits(role, hi, eRef, eScale) : Infinity;
    if (options.init[name] !== undefined) init[k] = toRoleUnits(role, options.init[name], eRef, eScale);
    yScaled[k] = role === 'amplitude' || role === 'slope' ? 1 : 0;
    if (!options.fixed.includes(name)) free.push(k);
  }
  if (free.length === 0) throw new InputError('--fix', 'every parameter is fixed; nothing is left to fit');
  const widthCentre = new Int32Array(np).fill(-1);
  for (const c of model.components) {
    const ic = c.def.params.findIndex((q) => q.role === 'energy');
    c.def.params.forEach((q, j) => {
      if (q.role === 'width' && ic >= 0 && options.bounds[model.paramNames[c.offset + j]] === undefined) widthCentre[c.offset + j] = c.offset + ic;
    });
  }
  const compRole = model.components.map((c) => InitRoleCode[c.def.initRole]);
  const initOrder = model.components.map((_, i) => i).sort((a, b) => compRole[a] - compRole[b] || a - b);
  const steps = model.components.filter((c) => c.def.initRole === 'step');
  const firstStep = steps[0];
  const local = (hint: string): number => {
    const j = firstStep ? firstStep.def.params.findIndex((p) => p.start === hint) : -1;
    return j >= 0 ? firstStep.offset + j : -1;
  };
  return {
    model,
    nE,
    energies,
    eRef,
    eScale,
    t,
    dt,
    edge,
    np,
    free,
    lower,
    upper,
    init,
    yScaled,
    maxIter: options.maxIter,
    widthCentre,
    initOrder,
    isFree: Uint8Array.from({ length: np }, (_, k) => (free.includes(k) ? 1 : 0)),
    initOnFree: free.some((k) => !Number.isNaN(init[k])),
    compRole,
    stepCentre: local('centre'),
    stepWidth: local('width'),
    nSteps: steps.length,
    hasSlope: model.components.some((c) => c.def.initRole === 'slope'),
    options,
  };
}
