/**
 * --backend auto|webgpu|cpu. auto takes a hardware GPU when there is one. With only a
 * software adapter (llvmpipe) it measures: the step runs on a sample tile on both
 * backends and the faster per pixel wins; the measurement goes into summary.json.
 */
import os from 'node:os';
import { getGpu } from '../gpu/device.js';
import { InputError } from '../io/errors.js';
import type { StackSource } from '../stack/source.js';
import type { Backend, PixelStep } from './step.js';

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';

export function parseBackend(v: string | undefined): BackendChoice {
  const s = v ?? 'auto';
  if (s === 'auto' || s === 'webgpu' || s === 'cpu') return s;
  throw new InputError('--backend', `expected auto, webgpu or cpu, got '${s}'`);
}

/** The CPU backend on `threads` worker threads (default: every core). */
export function cpuBackend(threads = os.availableParallelism()): Backend {
  const cpus = os.cpus();
  const t = Math.max(1, Math.floor(threads));
  return { name: 'cpu', adapter: `${cpus[0]?.model?.trim() ?? 'CPU'} (float64, ${t} thread${t > 1 ? 's' : ''} of ${cpus.length})`, threads: t };
}

export interface BackendSelection {
  backend: Backend;
  /** How auto decided (absent for an explicit choice). */
  auto?: { reason: string; pixelsPerSecond?: Record<string, number> };
}

/**
 * A measurement for auto: items per second of the real job on a sample, on one backend.
 * Either a PixelStep on the first rows of the stack, or any function (k-means, PCA).
 */
export type Calibration = { step: PixelStep; source: StackSource } | ((b: Backend) => Promise<number>);

export async function selectBackend(
  choice: BackendChoice,
  notice: (line: string) => void,
  calibrate?: Calibration,
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
    return { backend: cpuBackend(threads), auto: { reason: 'no WebGPU adapter' } };
  }
  const webgpu: Backend = { name: 'webgpu', adapter: gpu.adapterName, gpu };
  if (!gpu.isSoftware) return { backend: webgpu, auto: { reason: 'hardware GPU adapter' } };
  if (!calibrate) return { backend: webgpu, auto: { reason: 'software GPU adapter (not measured)' } };
  const cpu = cpuBackend(threads);
  const rate: Record<string, number> = {};
  if (typeof calibrate === 'function') {
    for (const b of [webgpu, cpu]) rate[b.name] = await calibrate(b);
  } else {
    Object.assign(rate, await measure(calibrate.step, calibrate.source, [webgpu, cpu]));
  }
  const pick = rate.webgpu >= rate.cpu ? webgpu : cpu;
  return { backend: pick, auto: { reason: `software GPU adapter: measured on a sample tile, ${pick.name} was faster`, pixelsPerSecond: rate } };
}

/**
 * Pixels per second of the step on each backend, on the first rows of the stack. The CPU
 * rate is one thread's, scaled by the worker threads the run would use (tiles are
 * independent, so the pool scales with cores).
 */
async function measure(step: PixelStep, source: StackSource, backends: Backend[]): Promise<Record<string, number>> {
  const rows = Math.max(1, Math.min(source.height, Math.ceil(8192 / source.width)));
  const P = rows * source.width;
  const tile = new Float32Array(source.nE * P);
  await source.readRows(0, rows, tile);
  const out: Record<string, number> = {};
  for (const b of backends) {
    await step.runTile(b, tile, P); // warm-up: pipeline compilation is not throughput
    const t = performance.now();
    await step.runTile(b, tile, P);
    out[b.name] = (P / ((performance.now() - t) / 1000)) * (b.gpu ? 1 : (b.threads ?? 1));
  }
  return out;
}
