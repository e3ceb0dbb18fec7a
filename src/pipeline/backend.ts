/**
 * --backend auto|webgpu|cpu. auto decides by a fixed rule, never by timing, so the same
 * command on the same machine picks the same backend (and writes the same bytes) every
 * time; the rule and the reason go into summary.json:
 * - a hardware GPU adapter: webgpu;
 * - only a software adapter (Mesa's llvmpipe, SwiftShader): per-pixel steps (edge, fit,
 *   lcf, and `xanes run`) on webgpu, which bench/results measured faster than the CPU twin
 *   on the same cores (edge 1.2x, lcf 2.4x, fit 13x); PCA and k-means on the CPU, which
 *   measured faster there (a k-means iteration 2.2x);
 * - no adapter: cpu (with a notice).
 */
import os from 'node:os';
import { getGpu } from '../gpu/device.js';
import { InputError } from '../io/errors.js';
import type { Backend } from './step.js';

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';

export function parseBackend(v: string | undefined): BackendChoice {
  const s = v ?? 'auto';
  if (s === 'auto' || s === 'webgpu' || s === 'cpu') return s;
  throw new InputError('--backend', `expected auto, webgpu or cpu, got '${s}'`);
}

/**
 * The CPU backend on `threads` worker threads (default: every core). Its adapter label says
 * what the arithmetic is: float64 (the kernels' float64 twins, or their bytes), except where a
 * kernel states float32 products (the PCA covariance: float32 products, float64 sums, within
 * GRAM_F32_BOUND, src/cpu/pca-wasm.ts).
 */
export function cpuBackend(threads = os.availableParallelism()): Backend {
  const cpus = os.cpus();
  const t = Math.max(1, Math.floor(threads));
  return { name: 'cpu', adapter: `${cpus[0]?.model?.trim() ?? 'CPU'} (float64; float32 products where stated; ${t} thread${t > 1 ? 's' : ''} of ${cpus.length})`, threads: t };
}

/** What a run computes, for auto's rule: per-pixel steps, or the whole-image fits. */
export type BackendJob = 'pixels' | 'pca' | 'kmeans';

/** Jobs auto runs on the CPU when the only GPU is a software one (see the module comment). */
const CPU_ON_SOFTWARE_GPU: readonly BackendJob[] = ['pca', 'kmeans'];

export interface BackendSelection {
  backend: Backend;
  /** How auto decided (absent for an explicit choice). */
  auto?: { rule: string; reason: string };
}

export const AUTO_RULE = 'hardware GPU -> webgpu; software GPU only -> webgpu for per-pixel steps, cpu for PCA and k-means; no GPU -> cpu (fixed rule, no timing)';

export async function selectBackend(
  choice: BackendChoice,
  notice: (line: string) => void,
  job: BackendJob,
  threads?: number,
): Promise<BackendSelection> {
  if (choice === 'cpu') return { backend: cpuBackend(threads) };
  const gpu = await getGpu();
  if (choice === 'webgpu') {
    if (!gpu) throw new InputError('--backend', 'webgpu: no WebGPU adapter was found (no GPU driver and no software OpenGL ES; see the README)');
    return { backend: { name: 'webgpu', adapter: gpu.adapterName, gpu } };
  }
  if (!gpu) {
    notice('xanes: no WebGPU adapter found; running on the CPU backend');
    return { backend: cpuBackend(threads), auto: { rule: AUTO_RULE, reason: 'no WebGPU adapter' } };
  }
  const webgpu: Backend = { name: 'webgpu', adapter: gpu.adapterName, gpu };
  if (!gpu.isSoftware) return { backend: webgpu, auto: { rule: AUTO_RULE, reason: 'hardware GPU adapter' } };
  if (CPU_ON_SOFTWARE_GPU.includes(job)) {
    return { backend: cpuBackend(threads), auto: { rule: AUTO_RULE, reason: `software GPU adapter only; ${job} runs faster on the CPU twin (bench/results)` } };
  }
  return { backend: webgpu, auto: { rule: AUTO_RULE, reason: 'software GPU adapter only; per-pixel steps run faster on it than on the CPU twin (bench/results)' } };
}
