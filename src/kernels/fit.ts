/**
 * GPU wrapper of shaders/fit.wgsl (CPU twin: src/cpu/fit.ts). The kernel is built per fit
 * plan: the model's WGSL (src/models/wgsl.ts) is spliced in front of the generic LM core,
 * so each model (and set of fixed parameters) is its own pipeline, cached by its source.
 */
import type { KernelDef } from '../gpu/kernel.js';
import type { FitPlan } from '../models/plan.js';
import { generateModelWgsl } from '../models/wgsl.js';
import { FitStatus, FitStop, fitRows, FIT_TUNING, InitRoleCode } from '../models/layout.js';
import { layoutConstants, NORM_ROWS } from './layout.js';
import fitWgsl from '../../shaders/fit.wgsl';

/** The fit's rows start after the normalize kernel's rows in the shared work buffer. */
export const FIT_ROW_BASE = NORM_ROWS;

const kernels = new WeakMap<FitPlan, KernelDef>();

export function fitKernel(plan: FitPlan): KernelDef {
  const hit = kernels.get(plan);
  if (hit) return hit;
  const L = fitRows(plan.np);
  const constants: Record<string, number> = {
    ...layoutConstants(),
    FIT_ROW_BASE,
    FIT_PARAM0: L.param0,
    FIT_STDERR0: L.stderr0,
    FIT_YSCALE: L.yScale,
    FIT_CHI2: L.chi2,
    FIT_NFINITE: L.nFinite,
    FIT_ITERATIONS: L.iterations,
    FIT_STATUS: L.status,
    FIT_STOP: L.stop,
  };
  for (const [k, v] of Object.entries(FitStatus)) constants[`FIT_${k}`] = v;
  for (const [k, v] of Object.entries(FitStop)) constants[`STOP_${k}`] = v;
  for (const [k, v] of Object.entries(InitRoleCode)) constants[`ROLE_${k.toUpperCase()}`] = v;
  const def: KernelDef = {
    name: 'fit',
    wgsl: `${generateModelWgsl(plan)}\n// ---- shaders/fit.wgsl ----\n${fitWgsl}`,
    bindings: [
      { name: 'params', kind: 'uniform' },
      { name: 'consts', kind: 'read-only-storage' },
      { name: 'cube', kind: 'read-only-storage' },
      { name: 'work', kind: 'storage' },
      { name: 'edge', kind: 'read-only-storage' },
    ],
    params: [
      ['n_energies', 'u32'], ['max_iter', 'u32'], ['e_ref', 'f32'], ['e_scale', 'f32'],
      ['x_ref', 'f32'], ['pre_centre', 'f32'], ['pre_scale', 'f32'],
    ],
    constants,
  };
  kernels.set(plan, def);
  return def;
}

export function fitParams(plan: FitPlan): Record<string, number> {
  return {
    n_energies: plan.nE,
    max_iter: plan.maxIter,
    e_ref: plan.eRef,
    e_scale: plan.eScale,
    x_ref: plan.eRef - plan.edge.e0,
    pre_centre: plan.edge.pre.centre,
    pre_scale: plan.edge.pre.scale,
  };
}

/** The consts buffer: t, dt, bounds (open: +-OPEN_BOUND x 3), global start values and their flags. */
export function fitConsts(plan: FitPlan): Float32Array {
  const { nE, np } = plan;
  const c = new Float32Array(2 * nE + 4 * np);
  c.set(plan.t, 0);
  c.set(plan.dt, nE);
  const open = 3 * FIT_TUNING.OPEN_BOUND;
  for (let k = 0; k < np; k++) {
    c[2 * nE + k] = Number.isFinite(plan.lower[k]) ? plan.lower[k] : -open;
    c[2 * nE + np + k] = Number.isFinite(plan.upper[k]) ? plan.upper[k] : open;
    const has = !Number.isNaN(plan.init[k]);
    c[2 * nE + 2 * np + k] = has ? plan.init[k] : 0;
    c[2 * nE + 3 * np + k] = has ? 1 : 0;
  }
  return c;
}
