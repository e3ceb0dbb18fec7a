/** GPU wrapper of shaders/corr_peak.wgsl (CPU twin: src/cpu/corr_peak.ts). */
import type { KernelDef } from '../gpu/kernel.js';
import { alignConstants, PEAK_CHUNK } from './align_layout.js';
import wgsl from '../../shaders/corr_peak.wgsl';

export const corrPeakKernel: KernelDef = {
  name: 'corr_peak',
  wgsl,
  bindings: [
    { name: 'params', kind: 'uniform' },
    { name: 'c', kind: 'read-only-storage' },
    { name: 'val', kind: 'storage' },
    { name: 'idx', kind: 'storage' },
  ],
  params: [['n', 'u32']],
  constants: alignConstants(),
};

export function peakChunks(n: number): number {
  return Math.ceil(n / PEAK_CHUNK);
}
