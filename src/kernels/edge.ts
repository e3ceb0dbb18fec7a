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
    ['edge_i0', 'u32'], ['edge_i1', 'u32'], ['smooth_half', 'u32'], ['wl_width', 'f32'],
  ],
  constants: layoutConstants(),
};

export function edgeParams(plan: EdgePlan): Record<string, number> {
  return {
    n_energies: plan.nE, e0: plan.e0, pre_centre: plan.pre.centre, pre_scale: plan.pre.scale,
    edge_i0: plan.edge.i0, edge_i1: plan.edge.i1, smooth_half: plan.smoothHalf, wl_width: plan.whitelineWidth,
  };
}
