/**
 * Both backends for a test body. The GPU must exist (CI has Dawn's OpenGL ES backend on
 * llvmpipe): a missing adapter fails the test instead of skipping it.
 */
import { getGpu } from '../../src/gpu/device.js';
import { cpuBackend } from '../../src/pipeline/backend.js';
import type { Backend } from '../../src/pipeline/step.js';

export async function gpuBackend(): Promise<Backend> {
  const gpu = await getGpu();
  if (!gpu) throw new Error('no WebGPU adapter: the GPU tests need one (install libegl1 libegl-mesa0 libgl1-mesa-dri)');
  return { name: 'webgpu', adapter: gpu.adapterName, gpu };
}

export async function bothBackends(): Promise<Backend[]> {
  return [await gpuBackend(), cpuBackend()];
}
