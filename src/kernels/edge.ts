/** GPU wrapper of shaders/edge.wgsl (CPU twin: src/cpu/edge.ts). */
import type { KernelDef } from '../gpu/kernel.js';
import type { EdgePlan } from '../pipeline/edge-plan.js';
import { layoutConstants } from './layout.js';
import wgsl from '../../shaders/edge.wgsl';

export const edgeKernel: KernelDef = {
  name: 'edge',
  wgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'x', kind: 'read-only-storage' },
    { name: 'cube', kind: 'read-only-storage' },
    { name: 'norm', kind: 'storage' },
    { name: 'out', kind: 'storage' },
  ],
  params: [
    ['n_energies', 'u32'], ['e0', 'f32'], ['pre_centre', 'f32'], ['pre_scale', 'f32'],
    ['wl_width', 'f32'],
  ],
  constants: layoutConstants(),
};

export function edgeParams(plan: EdgePlan): Record<string, number> {
  return {
    n_energies: plan.nE, e0: plan.e0, pre_centre: plan.pre.centre, pre_scale: plan.pre.scale,
    wl_width: plan.whitelineWidth,
  };
}
