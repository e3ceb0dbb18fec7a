/** GPU wrapper of shaders/dft_upsample.wgsl (CPU twin: src/cpu/dft_upsample.ts). */
import type { KernelDef } from '../gpu/kernel.js';
import { alignConstants } from './align_layout.js';
import wgsl from '../../shaders/dft_upsample.wgsl';

export const dftUpsampleKernel: KernelDef = {
  name: 'dft_upsample',
  wgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'src', kind: 'read-only-storage' },
    { name: 'dst', kind: 'storage' },
    { name: 'kern', kind: 'read-only-storage' },
  ],
  params: [['stage', 'u32'], ['ny', 'u32'], ['nx', 'u32'], ['size', 'u32'], ['scale', 'f32']],
  constants: alignConstants(),
};
