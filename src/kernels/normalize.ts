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
    ['pre_i0', 'u32'], ['pre_i1', 'u32'], ['pre_centre', 'f32'], ['pre_scale', 'f32'],
    ['post_i0', 'u32'], ['post_i1', 'u32'], ['post_centre', 'f32'], ['post_scale', 'f32'],
    ['post_degree', 'u32'], ['mask_sigma', 'f32'],
  ],
  constants: layoutConstants(),
};

export function normalizeParams(plan: EdgePlan): Record<string, number> {
  return {
    pre_i0: plan.pre.i0, pre_i1: plan.pre.i1, pre_centre: plan.pre.centre, pre_scale: plan.pre.scale,
    post_i0: plan.post.i0, post_i1: plan.post.i1, post_centre: plan.post.centre, post_scale: plan.post.scale,
    post_degree: plan.post.degree, mask_sigma: plan.maskSigma,
  };
}
