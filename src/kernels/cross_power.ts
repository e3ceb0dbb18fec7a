/** GPU wrapper of shaders/cross_power.wgsl (CPU twin: src/cpu/cross_power.ts). */
import type { KernelDef } from '../gpu/kernel.js';
import { alignConstants } from './align_layout.js';
import wgsl from '../../shaders/cross_power.wgsl';

export const crossPowerKernel: KernelDef = {
  name: 'cross_power',
  wgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'f', kind: 'read-only-storage' },
    { name: 'g', kind: 'read-only-storage' },
    { name: 'x', kind: 'storage' },
  ],
  params: [['ny', 'u32'], ['nx', 'u32'], ['mode', 'u32'], ['highpass', 'f32']],
  constants: alignConstants(),
};
