/**
 * What a fit-model component is: its value and analytic partial derivatives at one energy,
 * written once in WGSL (for the GPU kernel) and once in TypeScript (for the float64 CPU
 * twin), plus the data it needs for start values, scaling and default bounds. A model is
 * a sum of components; the LM core (shaders/fit.wgsl, src/cpu/fit.ts) never looks inside
 * one, so a new component is a new entry in src/models/components.ts and nothing else.
 *
 * Units. Components are written in any consistent units: an energy coordinate t, positions
 * and widths in the units of t, amplitudes in the units of the data. The fit runs them in
 * internal units chosen for float32 (t = (E - eRef) / eScale, amplitudes / the pixel's
 * data scale), so every formula must be covariant under those scalings: positions and
 * widths enter only as (t - centre) / width, amplitudes linearly. The parameter `role`
 * says how each parameter scales.
 */

/** How a parameter converts between user units and the fit's internal units. */
export type ParamRole =
  /** an absolute energy (eV): internal = (E - eRef) / eScale */
  | 'energy'
  /** an energy difference (eV): internal = w / eScale */
  | 'width'
  /** in the units of the data: internal = v / yScale (yScale per pixel) */
  | 'amplitude'
  /** data units per eV: internal = s * eScale / yScale */
  | 'slope'
  /** dimensionless, unscaled (e.g. a mixing fraction) */
  | 'fraction';

/**
 * Where a parameter's per-pixel start value comes from (src/models/README in the header of
 * src/cpu/fit.ts describes the rules): 'level' the pre-edge level, 'slope' the pre-edge
 * slope, 'height' / 'centre' / 'width' the step or peak found for this component; or a
 * fixed number (internal units, so only sensible for 'fraction' parameters).
 */
export type StartHint = 'level' | 'slope' | 'height' | 'centre' | 'width';

/**
 * How the start-value rules treat a component: 'baseline' and 'slope' from the pre-edge
 * line, 'step' from the edge step and edge energy, 'peak' at the largest residual left by
 * the components started before it.
 */
export type InitRole = 'baseline' | 'slope' | 'step' | 'peak';

export interface ComponentParam {
  /** Local name; the model prefixes it (src/models/model.ts explains the naming rule). */
  name: string;
  role: ParamRole;
  description: string;
  start: StartHint | number;
  /** Multiplies a hint (e.g. a Gaussian's sigma is 0.85 x the half width at half maximum). */
  startFactor?: number;
}

export interface ComponentDef {
  /** The name used in --model specs (lower case). */
  kind: string;
  aliases: readonly string[];
  /** The formula, for help texts and reports. */
  formula: string;
  initRole: InitRole;
  params: readonly ComponentParam[];
  /**
   * WGSL defining `fn cmp_<kind>(t: f32, <one f32 argument per parameter>) -> array<f32, K + 1>`
   * returning the value, then the partial derivative with respect to each parameter in order.
   */
  wgsl: string;
  /** Shared WGSL helpers this component calls, by name (emitted once per model). */
  helpers?: Readonly<Record<string, string>>;
  /**
   * TypeScript twin of the WGSL: the value at t, with the partial derivatives written into
   * d[o], d[o + 1], ... for the parameters p[o], p[o + 1], ...
   */
  evaluate(t: number, p: ArrayLike<number>, o: number, d: Float64Array): number;
}
