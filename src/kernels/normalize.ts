/** GPU wrapper of shaders/normalize.wgsl (CPU twin: src/cpu/normalize.ts). */
import type { KernelDef } from '../gpu/kernel.js';
import type { EdgePlan } from '../pipeline/edge-plan.js';
import { layoutConstants } from './layout.js';
import wgsl from '../../shaders/normalize.wgsl';

export const normalizeKernel: KernelDef = {
  name: 'normalize',
  wgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'x', kind: 'read-only-storage' },
    { name: 'cube', kind: 'read-only-storage' },
    { name: 'out', kind: 'storage' },
  ],
  params: [
    ['n_energies', 'u32'], ['edge_i0', 'u32'], ['edge_i1', 'u32'], ['smooth_half', 'u32'], ['ie0', 'u32'],
    ['pre1', 'f32'], ['pre2', 'f32'], ['norm1', 'f32'], ['norm2', 'f32'],
    ['pre_centre', 'f32'], ['pre_scale', 'f32'], ['post_centre', 'f32'], ['post_scale', 'f32'],
    ['post_degree', 'u32'], ['mask_sigma', 'f32'], ['fixed_windows', 'u32'],
  ],
  constants: layoutConstants(),
};

/** "To the end of the scan" as a finite f32 (the shader clips it to the last energy). */
const F32_BIG = 3e38;

export function normalizeParams(plan: EdgePlan): Record<string, number> {
  const l = plan.larch;
  return {
    n_energies: plan.nE, edge_i0: plan.edge.i0, edge_i1: plan.edge.i1, smooth_half: plan.smoothHalf, ie0: l.ie0,
    pre1: Math.max(l.pre1, -F32_BIG), pre2: l.pre2, norm1: l.norm1, norm2: Math.min(l.norm2, F32_BIG),
    pre_centre: plan.pre.centre, pre_scale: plan.pre.scale, post_centre: plan.post.centre, post_scale: plan.post.scale,
    post_degree: plan.post.degree, mask_sigma: plan.maskSigma, fixed_windows: l.fixed ? 1 : 0,
  };
}
