/**
 * The model components: each a value with analytic partial derivatives, in WGSL and in
 * TypeScript (src/models/component.ts defines the contract). To add one, add an entry to
 * COMPONENTS; test/models/components.test.ts then checks its derivatives against finite
 * differences and its WGSL against its TypeScript on the GPU.
 *
 * u = (t - centre) / width throughout. Derivatives with respect to centre and width follow
 * from du/dcentre = -1/width and du/dwidth = -u/width.
 */
import type { ComponentDef } from './component.js';
import { erf64, ERF_F32_WGSL } from './erf.js';

const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);
const LN2 = Math.LN2;

const constant: ComponentDef = {
  kind: 'const',
  aliases: ['constant', 'offset'],
  formula: 'offset',
  initRole: 'baseline',
  params: [{ name: 'offset', role: 'amplitude', description: 'constant level', start: 'level' }],
  wgsl: /* wgsl */ `
fn cmp_const(t: f32, c: f32) -> array<f32, 2> {
  return array<f32, 2>(c, 1.0);
}`,
  evaluate(_t, p, o, d) {
    d[o] = 1;
    return p[o];
  },
};

const linear: ComponentDef = {
  kind: 'linear',
  aliases: ['line', 'slope'],
  formula: 'slope * (E - Eref), Eref = the middle of the energy range, (E_first + E_last) / 2',
  initRole: 'slope',
  params: [{ name: 'slope', role: 'slope', description: 'data units per eV about the middle of the energy range', start: 'slope' }],
  wgsl: /* wgsl */ `
fn cmp_linear(t: f32, s: f32) -> array<f32, 2> {
  return array<f32, 2>(s * t, t);
}`,
  evaluate(t, p, o, d) {
    d[o] = t;
    return p[o] * t;
  },
};

const erfStep: ComponentDef = {
  kind: 'erf',
  aliases: ['erfstep'],
  formula: 'height / 2 * (1 + erf((E - centre) / width))',
  initRole: 'step',
  params: [
    { name: 'height', role: 'amplitude', description: 'step height (edge jump)', start: 'height' },
    { name: 'centre', role: 'energy', description: 'step centre (edge energy), eV', start: 'centre' },
    // The start hint is half the 25-75 % rise, which is 0.4769 erf widths.
    { name: 'width', role: 'width', description: 'erf width, eV (10-90 % rise = 1.81 width)', start: 'width', startFactor: 1 / 0.4769362762044699 },
  ],
  helpers: { erf_f32: ERF_F32_WGSL },
  wgsl: /* wgsl */ `
fn cmp_erf(t: f32, h: f32, c: f32, w: f32) -> array<f32, 4> {
  let u = (t - c) / w;
  let s = 0.5 * (1.0 + erf_f32(u));
  // h * d/du [ (1 + erf u) / 2 ] = h exp(-u^2) / sqrt(pi)
  let g = h * exp(-u * u) * ${INV_SQRT_PI};
  return array<f32, 4>(h * s, s, -g / w, -g * u / w);
}`,
  evaluate(t, p, o, d) {
    const h = p[o], c = p[o + 1], w = p[o + 2];
    const u = (t - c) / w;
    const s = 0.5 * (1 + erf64(u));
    const g = h * Math.exp(-u * u) * INV_SQRT_PI;
    d[o] = s;
    d[o + 1] = -g / w;
    d[o + 2] = (-g * u) / w;
    return h * s;
  },
};

const atanStep: ComponentDef = {
  kind: 'atan',
  aliases: ['arctan'],
  formula: 'height * (1/2 + atan((E - centre) / width) / pi)',
  initRole: 'step',
  params: [
    { name: 'height', role: 'amplitude', description: 'step height', start: 'height' },
    { name: 'centre', role: 'energy', description: 'step centre, eV', start: 'centre' },
    // The start hint is half the 25-75 % rise, which is one arctan width.
    { name: 'width', role: 'width', description: 'arctan width, eV', start: 'width' },
  ],
  wgsl: /* wgsl */ `
fn cmp_atan(t: f32, h: f32, c: f32, w: f32) -> array<f32, 4> {
  let u = (t - c) / w;
  let s = 0.5 + atan(u) * ${1 / Math.PI};
  let g = h * ${1 / Math.PI} / (1.0 + u * u);
  return array<f32, 4>(h * s, s, -g / w, -g * u / w);
}`,
  evaluate(t, p, o, d) {
    const h = p[o], c = p[o + 1], w = p[o + 2];
    const u = (t - c) / w;
    const s = 0.5 + Math.atan(u) / Math.PI;
    const g = h / Math.PI / (1 + u * u);
    d[o] = s;
    d[o + 1] = -g / w;
    d[o + 2] = (-g * u) / w;
    return h * s;
  },
};

const lorentz: ComponentDef = {
  kind: 'lorentz',
  aliases: ['lorentzian', 'lor'],
  formula: 'height / (1 + ((E - centre) / hwhm)^2)',
  initRole: 'peak',
  params: [
    { name: 'height', role: 'amplitude', description: 'peak height', start: 'height' },
    { name: 'centre', role: 'energy', description: 'peak centre, eV', start: 'centre' },
    { name: 'hwhm', role: 'width', description: 'half width at half maximum, eV', start: 'width' },
  ],
  wgsl: /* wgsl */ `
fn cmp_lorentz(t: f32, h: f32, c: f32, w: f32) -> array<f32, 4> {
  let u = (t - c) / w;
  let l = 1.0 / (1.0 + u * u);
  // h * dL/du = -2 h u L^2
  let g = 2.0 * h * u * l * l / w;
  return array<f32, 4>(h * l, l, g, g * u);
}`,
  evaluate(t, p, o, d) {
    const h = p[o], c = p[o + 1], w = p[o + 2];
    const u = (t - c) / w;
    const l = 1 / (1 + u * u);
    const g = (2 * h * u * l * l) / w;
    d[o] = l;
    d[o + 1] = g;
    d[o + 2] = g * u;
    return h * l;
  },
};

const gauss: ComponentDef = {
  kind: 'gauss',
  aliases: ['gaussian'],
  formula: 'height * exp(-(E - centre)^2 / (2 sigma^2))',
  initRole: 'peak',
  params: [
    { name: 'height', role: 'amplitude', description: 'peak height', start: 'height' },
    { name: 'centre', role: 'energy', description: 'peak centre, eV', start: 'centre' },
    // sigma = HWHM / sqrt(2 ln 2): the start hint is a half width at half maximum.
    { name: 'sigma', role: 'width', description: 'standard deviation, eV', start: 'width', startFactor: 1 / Math.sqrt(2 * LN2) },
  ],
  wgsl: /* wgsl */ `
fn cmp_gauss(t: f32, h: f32, c: f32, s: f32) -> array<f32, 4> {
  let u = (t - c) / s;
  let e = exp(-0.5 * u * u);
  let g = h * e * u / s;
  return array<f32, 4>(h * e, e, g, g * u);
}`,
  evaluate(t, p, o, d) {
    const h = p[o], c = p[o + 1], s = p[o + 2];
    const u = (t - c) / s;
    const e = Math.exp(-0.5 * u * u);
    const g = (h * e * u) / s;
    d[o] = e;
    d[o + 1] = g;
    d[o + 2] = g * u;
    return h * e;
  },
};

const pvoigt: ComponentDef = {
  kind: 'pvoigt',
  aliases: ['pseudovoigt', 'pseudo-voigt', 'voigt'],
  formula: 'height * (eta / (1 + u^2) + (1 - eta) * exp(-ln2 u^2)), u = (E - centre) / hwhm',
  initRole: 'peak',
  params: [
    { name: 'height', role: 'amplitude', description: 'peak height', start: 'height' },
    { name: 'centre', role: 'energy', description: 'peak centre, eV', start: 'centre' },
    { name: 'hwhm', role: 'width', description: 'half width at half maximum (both shapes), eV', start: 'width' },
    { name: 'eta', role: 'fraction', description: 'Lorentzian fraction, 0..1', start: 0.5 },
  ],
  wgsl: /* wgsl */ `
fn cmp_pvoigt(t: f32, h: f32, c: f32, w: f32, eta: f32) -> array<f32, 5> {
  let u = (t - c) / w;
  let l = 1.0 / (1.0 + u * u);
  let e = exp(-${LN2} * u * u);
  let shape = eta * l + (1.0 - eta) * e;
  // -d(shape)/du = 2u (eta L^2 + (1 - eta) ln2 G)
  let g = 2.0 * h * u * (eta * l * l + (1.0 - eta) * ${LN2} * e) / w;
  return array<f32, 5>(h * shape, shape, g, g * u, h * (l - e));
}`,
  evaluate(t, p, o, d) {
    const h = p[o], c = p[o + 1], w = p[o + 2], eta = p[o + 3];
    const u = (t - c) / w;
    const l = 1 / (1 + u * u);
    const e = Math.exp(-LN2 * u * u);
    const shape = eta * l + (1 - eta) * e;
    const g = (2 * h * u * (eta * l * l + (1 - eta) * LN2 * e)) / w;
    d[o] = shape;
    d[o + 1] = g;
    d[o + 2] = g * u;
    d[o + 3] = h * (l - e);
    return h * shape;
  },
};

/** Every component, in the order help texts list them. */
export const COMPONENTS: readonly ComponentDef[] = [constant, linear, erfStep, atanStep, lorentz, gauss, pvoigt];

/** The component a --model term names (kind or alias, case-insensitive), or undefined. */
export function findComponent(name: string): ComponentDef | undefined {
  const n = name.trim().toLowerCase();
  return COMPONENTS.find((c) => c.kind === n || c.aliases.includes(n));
}
