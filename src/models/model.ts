/**
 * A fit model: a sum of components (src/models/components.ts) with globally named
 * parameters, given on the command line as a sum ("const + erf + lorentz + lorentz"), a
 * preset name ("erf-2lorentz") or JSON.
 *
 * Parameter names of a sum (the rule users rely on, e.g. for --init / --fix / --bounds and
 * the output file names):
 *   <kind><n>_<local>   where <kind> is the component's kind as listed in COMPONENTS
 *                       ('const', 'linear', 'erf', 'atan', 'lorentz', 'gauss', 'pvoigt'; an
 *                       alias in the spec is normalised to it), <n> is the component's
 *                       1-based occurrence among components of that kind, written only when
 *                       the kind occurs more than once, and <local> is the component's own
 *                       parameter name (offset; slope; height, centre, width; height,
 *                       centre, hwhm; height, centre, sigma; height, centre, hwhm, eta).
 *   "const + erf + lorentz + lorentz" -> const_offset, erf_height, erf_centre, erf_width,
 *   lorentz1_height, lorentz1_centre, lorentz1_hwhm, lorentz2_height, ...
 * JSON components may instead give "prefix" (-> <prefix>_<local>) or "names" (one per
 * parameter, used as they are).
 *
 * JSON: {"components": [ "const", {"type": "erf", "names": ["b1", "b2", "b3"]},
 *                        {"type": "lorentz", "prefix": "pre"} ]}   (or just the array).
 */
import * as v from 'valibot';
import { InputError } from '../io/errors.js';
import type { ComponentDef, ParamRole } from './component.js';
import { COMPONENTS, findComponent } from './components.js';

/** Private per-invocation arrays on the GPU are sized from this; more also makes LM slow. */
export const MAX_FIT_PARAMS = 12;

export interface ModelComponent {
  def: ComponentDef;
  /** Global names of this component's parameters, in the component's order. */
  names: string[];
  /** Index of its first parameter in the model's parameter vector. */
  offset: number;
}

/**
 * A map computed on the host from the fitted parameters (and the pixel's pre-edge noise):
 * the preset's PE and PE_over_b1. NaN means "no value" (masked).
 */
export interface DerivedMap {
  name: string;
  description: string;
  compute(params: Float64Array, noise: number): number;
}

export interface FitModel {
  /** The spec as given, or the preset name. */
  spec: string;
  components: ModelComponent[];
  paramNames: string[];
  paramRoles: ParamRole[];
  derived: DerivedMap[];
}

/** Names a parameter may not take: they would collide with output maps or files. */
const RESERVED = /^(redchi|iterations|status|summary|PE|PE_over_b1|.*_stderr)$/;
const NAME_RE = /^[A-Za-z][A-Za-z0-9_]*$/;

interface ComponentRequest {
  def: ComponentDef;
  prefix?: string;
  names?: string[];
}

function buildModel(spec: string, requests: ComponentRequest[], derived: DerivedMap[] = []): FitModel {
  if (requests.length === 0) throw new InputError('--model', 'no components given');
  const total = requests.reduce((n, r) => n + r.def.params.length, 0);
  if (total > MAX_FIT_PARAMS) {
    throw new InputError('--model', `${total} parameters; at most ${MAX_FIT_PARAMS} can be fitted per pixel`);
  }
  const kindCount = new Map<string, number>();
  for (const r of requests) kindCount.set(r.def.kind, (kindCount.get(r.def.kind) ?? 0) + 1);
  const seen = new Map<string, number>();
  const components: ModelComponent[] = [];
  const paramNames: string[] = [];
  const paramRoles: ParamRole[] = [];
  for (const r of requests) {
    const k = r.def.kind;
    const n = (seen.get(k) ?? 0) + 1;
    seen.set(k, n);
    let names: string[];
    if (r.names) {
      if (r.names.length !== r.def.params.length) {
        throw new InputError('--model', `component '${k}' has ${r.def.params.length} parameters (${r.def.params.map((p) => p.name).join(', ')}), but ${r.names.length} names were given`);
      }
      names = r.names;
    } else {
      const prefix = r.prefix ?? (kindCount.get(k)! > 1 ? `${k}${n}` : k);
      names = r.def.params.map((p) => `${prefix}_${p.name}`);
    }
    for (const name of names) {
      if (!NAME_RE.test(name)) throw new InputError('--model', `parameter name '${name}' must start with a letter and hold only letters, digits and _`);
      if (RESERVED.test(name)) throw new InputError('--model', `parameter name '${name}' is reserved for an output map`);
      if (paramNames.includes(name)) throw new InputError('--model', `parameter name '${name}' is used twice`);
      paramNames.push(name);
    }
    components.push({ def: r.def, names, offset: paramRoles.length });
    for (const p of r.def.params) paramRoles.push(p.role);
  }
  return { spec, components, paramNames, paramRoles, derived };
}

function component(kind: string): ComponentDef {
  const def = findComponent(kind);
  if (!def) {
    throw new InputError('--model', `unknown component '${kind}'; known: ${COMPONENTS.map((c) => c.kind).join(', ')} (or a preset: ${Object.keys(PRESETS).join(', ')})`);
  }
  return def;
}

/**
 * The preset's derived maps: PE = pi c11 c13 (the area of the pre-edge Lorentzian) and
 * PE / b1, both NaN where the edge jump b1 is below the pre-edge noise sigma (or either is
 * not finite), as in the ptychography study the preset comes from.
 */
function peDerived(model: () => FitModel): DerivedMap[] {
  const idx = (name: string) => model().paramNames.indexOf(name);
  // 'Below the noise' includes equal: a flat pixel has b1 = noise = 0.
  const masked = (p: Float64Array, noise: number) => !(p[idx('b1')] > noise) || !Number.isFinite(noise);
  return [
    {
      name: 'PE',
      description: 'pre-edge peak area pi * c11 * c13 (NaN where b1 < pre-edge noise)',
      compute: (p, noise) => (masked(p, noise) ? NaN : Math.PI * p[idx('c11')] * p[idx('c13')]),
    },
    {
      name: 'PE_over_b1',
      description: 'PE / b1 (NaN where b1 < pre-edge noise)',
      compute: (p, noise) => (masked(p, noise) ? NaN : (Math.PI * p[idx('c11')] * p[idx('c13')]) / p[idx('b1')]),
    },
  ];
}

function presetErfLorentz(name: string, peaks: number): FitModel {
  const req: ComponentRequest[] = [
    { def: component('const'), names: ['a'] },
    { def: component('erf'), names: ['b1', 'b2', 'b3'] },
  ];
  for (let i = 1; i <= peaks; i++) req.push({ def: component('lorentz'), names: [`c${i}1`, `c${i}2`, `c${i}3`] });
  let m: FitModel;
  m = buildModel(name, req, peDerived(() => m));
  return m;
}

/**
 * Presets. erf-2lorentz: mu(E) = a + b1/2 (1 + erf((E - b2)/b3)) + sum_i c_i1 / (1 + ((E - c_i2)/c_i3)^2),
 * i = 1, 2 (b1 edge jump, b2 edge energy, c1* the pre-edge peak); erf-lorentz: one peak.
 */
export const PRESETS: Record<string, { description: string; make: () => FitModel }> = {
  'erf-2lorentz': {
    description: 'a + b1/2 (1 + erf((E - b2)/b3)) + two Lorentzians c_i1 / (1 + ((E - c_i2)/c_i3)^2); maps PE = pi c11 c13 and PE_over_b1',
    make: () => presetErfLorentz('erf-2lorentz', 2),
  },
  'erf-lorentz': {
    description: 'a + b1/2 (1 + erf((E - b2)/b3)) + c11 / (1 + ((E - c12)/c13)^2); maps PE and PE_over_b1',
    make: () => presetErfLorentz('erf-lorentz', 1),
  },
};

/**
 * A JSON model, checked by a valibot schema (as every structured input is; see
 * src/options/schema.ts): a list of components, or {"components": [...]}; a component is a
 * name or {"type": name, "prefix"?: text, "names"?: [text, ...]}, no other keys.
 */
const componentSchema = v.union(
  [
    v.string(),
    v.strictObject(
      { type: v.string('"type" must be a component name'), prefix: v.optional(v.string('"prefix" must be a string')), names: v.optional(v.array(v.string('"names" must be an array of strings'), '"names" must be an array of strings')) },
      (issue) => `unknown key '${String((issue.path?.[0] as { key?: unknown } | undefined)?.key ?? issue.input)}' (allowed: type, prefix, names)`,
    ),
  ],
  'expected a name or an object with "type"',
);
const jsonModelSchema = v.union(
  [v.array(componentSchema), v.strictObject({ components: v.array(componentSchema) })],
  'JSON model must be an array of components or {"components": [...]}',
);

function parseJsonModel(spec: string): FitModel {
  let json: unknown;
  try {
    json = JSON.parse(spec);
  } catch (e) {
    throw new InputError('--model', `not valid JSON: ${(e as Error).message}`);
  }
  // Component by component, so that an error names the component it is about.
  const list = Array.isArray(json) ? json : (json as { components?: unknown })?.components;
  const whole = v.safeParse(jsonModelSchema, json);
  if (!Array.isArray(list)) throw new InputError('--model', 'JSON model must be an array of components or {"components": [...]}');
  const req = list.map((c, i): ComponentRequest => {
    const r = v.safeParse(componentSchema, c);
    if (!r.success) {
      // The deepest issue says what is wrong (a union reports its branches' issues).
      let issue: v.BaseIssue<unknown> = r.issues[0];
      while (issue.issues?.length) issue = issue.issues[issue.issues.length - 1];
      const message = typeof c === 'object' && c !== null && !Array.isArray(c) ? issue.message : 'expected a name or an object with "type"';
      throw new InputError('--model', `component ${i + 1}: ${message}`);
    }
    const o = r.output;
    if (typeof o === 'string') return { def: component(o) };
    const def = component(o.type);
    if (o.prefix !== undefined && o.names !== undefined) throw new InputError('--model', `component ${i + 1}: give "prefix" or "names", not both`);
    return { def, prefix: o.prefix, names: o.names };
  });
  if (!whole.success) throw new InputError('--model', 'JSON model must be an array of components or {"components": [...]}');
  return buildModel(spec, req);
}

/**
 * A model from --model: a preset name, a JSON model, or a sum of component names.
 * Throws InputError('--model', ...) on anything else.
 */
export function parseModelSpec(spec: string): FitModel {
  const s = spec.trim();
  if (s === '') throw new InputError('--model', 'empty; give a sum of components such as "const + erf + lorentz" or a preset (' + Object.keys(PRESETS).join(', ') + ')');
  const preset = PRESETS[s.toLowerCase()];
  if (preset) return preset.make();
  if (s.startsWith('{') || s.startsWith('[')) return parseJsonModel(s);
  const terms = s.split('+').map((t) => t.trim());
  if (terms.some((t) => t === '')) throw new InputError('--model', `'${spec}': empty term in the sum`);
  return buildModel(s, terms.map((t) => ({ def: component(t) })));
}

/**
 * Evaluates the model (float64) at energy E for parameters in user units (tests, plots,
 * synthetic data). eRef is the reference energy of 'linear' components: the fit uses the
 * middle of the energy range, (E_first + E_last) / 2.
 */
export function evaluateModel(model: FitModel, E: number, params: ArrayLike<number>, eRef: number): number {
  const np = model.paramNames.length;
  // Every formula depends on (E - position) only, so positions shift with E; 'linear' is about eRef.
  const p = new Float64Array(np);
  for (let k = 0; k < np; k++) p[k] = model.paramRoles[k] === 'energy' ? params[k] - eRef : params[k];
  const d = new Float64Array(np);
  let f = 0;
  for (const c of model.components) f += c.def.evaluate(E - eRef, p, c.offset, d);
  return f;
}

/**
 * Each component's value at energy E (same formula and units as evaluateModel, whose sum
 * they are): what the report draws under the fitted curve.
 */
export function evaluateComponents(model: FitModel, E: number, params: ArrayLike<number>, eRef: number): number[] {
  const np = model.paramNames.length;
  const p = new Float64Array(np);
  for (let k = 0; k < np; k++) p[k] = model.paramRoles[k] === 'energy' ? params[k] - eRef : params[k];
  const d = new Float64Array(np);
  return model.components.map((c) => c.def.evaluate(E - eRef, p, c.offset, d));
}

/** The reference energy of 'linear' components in a fit over these energies (as the fit plan sets it). */
export function fitReferenceEnergy(energies: ArrayLike<number>): number {
  return (energies[0] + energies[energies.length - 1]) / 2;
}
