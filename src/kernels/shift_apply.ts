/** GPU wrapper of shaders/shift_apply.wgsl (CPU twin: src/cpu/shift_apply.ts). */
import type { KernelDef } from '../gpu/kernel.js';
import { alignConstants } from './align_layout.js';
import wgsl from '../../shaders/shift_apply.wgsl';

export const shiftApplyKernel: KernelDef = {
  name: 'shift_apply',
  wgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'src', kind: 'read-only-storage' },
    { name: 'dst', kind: 'storage' },
    { name: 'shifts', kind: 'read-only-storage' },
  ],
  params: [
    ['mode', 'u32'], ['energy', 'u32'], ['height', 'u32'], ['width', 'u32'],
    ['src_y0', 'i32'], ['src_rows', 'u32'], ['y0', 'u32'], ['rows', 'u32'],
  ],
  constants: alignConstants(),
};
