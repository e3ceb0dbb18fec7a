/**
 * Finding a GPU: a hardware adapter through Dawn's default backend (Vulkan on Linux) when
 * there is one, else Dawn's OpenGL ES backend on Mesa's llvmpipe (a software GPU), else
 * nothing (the caller falls back to the CPU backend).
 *
 * The device is created with the adapter's own limits: WebGPU's defaults (128 MiB storage
 * bindings, 256 MiB buffers) are far below what a real GPU offers.
 */
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { withNativeStderrSilenced } from './quiet-stderr.js';

export interface GpuContext {
  device: GPUDevice;
  /** Human-readable adapter name, recorded in every output. */
  adapterName: string;
  /** 'vulkan' for a hardware adapter path, 'opengles' for the software fallback. */
  dawnBackend: 'default' | 'opengles';
  isSoftware: boolean;
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
  };
  /** Set once the device is lost; every wait checks it so that nothing hangs. */
  lostReason: string | null;
  /**
   * The Dawn instance and adapter. Held for the device's lifetime: if the GPU object from
   * create() is garbage-collected, Dawn's node bindings tear the instance down under the
   * live device and the process aborts at the next GPU call.
   */
  keepAlive: unknown[];
  destroy(): void;
}

export class DeviceLostError extends Error {
  constructor(reason: string) {
    super(`the GPU device was lost (${reason}); no outputs were written. Re-run, or use --backend cpu`);
    this.name = 'DeviceLostError';
  }
}

interface DawnModule {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

let dawn: DawnModule | null | undefined;

function loadDawn(): DawnModule | null {
  if (dawn !== undefined) return dawn;
  try {
    // createRequire keeps the native addon out of the bundle and lets a machine without it
    // still run the CPU backend.
    const require = createRequire(import.meta.url);
    dawn = require('webgpu') as DawnModule;
    Object.assign(globalThis, dawn.globals);
  } catch {
    dawn = null;
  }
  return dawn;
}

function describe(info: GPUAdapterInfo | undefined, backend: string): string {
  if (!info) return `unknown adapter (${backend})`;
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return `${parts.join(' ') || 'unnamed adapter'} (${backend})`;
}

function isSoftwareAdapter(name: string): boolean {
  return /llvmpipe|swiftshader|softpipe|lavapipe|software/i.test(name);
}

async function tryBackend(mod: DawnModule, backend: 'default' | 'opengles'): Promise<GpuContext | null> {
  const flags = backend === 'opengles' ? ['backend=opengles'] : [];
  let gpu: GPU;
  try {
    gpu = mod.create(flags);
  } catch {
    return null;
  }
  // Compatibility feature level is what the OpenGL ES backend offers; on Vulkan it still
  // returns the full adapter.
  const adapter = await gpu.requestAdapter(backend === 'opengles' ? { featureLevel: 'compatibility' } : { powerPreference: 'high-performance' });
  if (!adapter) return null;
  const al = adapter.limits;
  const device = await adapter.requestDevice({
    label: 'xanes-engine',
    requiredLimits: {
      maxStorageBufferBindingSize: al.maxStorageBufferBindingSize,
      maxBufferSize: al.maxBufferSize,
      maxComputeWorkgroupsPerDimension: al.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: al.maxStorageBuffersPerShaderStage,
      maxUniformBufferBindingSize: al.maxUniformBufferBindingSize,
      maxComputeInvocationsPerWorkgroup: al.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: al.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupStorageSize: al.maxComputeWorkgroupStorageSize,
      // PCA's direct mode (src/kernels/pca.ts directLayout) uses rows this wide; llvmpipe has 16384.
      maxTextureDimension2D: al.maxTextureDimension2D,
    },
  });
  const name = describe(adapter.info, backend === 'opengles' ? 'OpenGL ES' : 'Vulkan');
  const ctx: GpuContext = {
    device,
    adapterName: name,
    dawnBackend: backend,
    isSoftware: backend === 'opengles' || isSoftwareAdapter(name),
    limits: {
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
      maxComputeWorkgroupsPerDimension: device.limits.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage,
    },
    lostReason: null,
    keepAlive: [gpu, adapter],
    destroy() {
      device.destroy();
    },
  };
  device.lost.then((info) => {
    ctx.lostReason = `${info.reason}: ${info.message}`;
  });
  return ctx;
}

let shared: Promise<GpuContext | null> | null = null;

/**
 * The process-wide GPU context (one device serves every kernel), or null when no adapter
 * exists. Tries a hardware adapter first, then the software OpenGL ES path.
 */
export function getGpu(): Promise<GpuContext | null> {
  if (!shared) shared = withNativeStderrSilenced(openGpu);
  return shared;
}

/**
 * Destroys the process-wide device and forgets it (the next getGpu opens a new one). A run
 * calls this when its GPU work is done and the memory Dawn and the driver hold (on a
 * software GPU, llvmpipe's compiled shaders and buffers) is needed for writing the outputs.
 */
export async function releaseGpu(): Promise<void> {
  const p = shared;
  if (!p) return;
  shared = null;
  const ctx = await p;
  ctx?.destroy();
}

async function openGpu(): Promise<GpuContext | null> {
  // Dawn's OpenGL ES backend needs a surfaceless EGL platform when there is no display;
  // a user should not have to know that.
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const mod = loadDawn();
  if (!mod) return null;
  const hw = hasVulkanLoader() ? await tryBackend(mod, 'default').catch(() => null) : null;
  if (hw && !hw.isSoftware) return hw;
  hw?.destroy();
  return await tryBackend(mod, 'opengles').catch(() => null);
}

/**
 * Whether a Vulkan loader can be found. Dawn prints a multi-line warning straight to
 * stderr (from C++, so Node cannot filter it) when it probes Vulkan without one; on a
 * machine without Vulkan we skip the probe instead of confusing users with it.
 */
function hasVulkanLoader(): boolean {
  const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  dirs.push('/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/local/lib');
  if (dirs.some((d) => existsSync(join(d, 'libvulkan.so.1')))) return true;
  try {
    return execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('libvulkan.so.1');
  } catch {
    return process.platform !== 'linux';
  }
}

/** Throws DeviceLostError if the device has gone. */
export function checkAlive(ctx: GpuContext): void {
  if (ctx.lostReason !== null) throw new DeviceLostError(ctx.lostReason);
}

/**
 * Waits for a GPU promise but gives up as soon as the device is lost, so that a lost
 * device can never leave the process waiting forever.
 */
export async function guard<T>(ctx: GpuContext, p: Promise<T>): Promise<T> {
  checkAlive(ctx);
  const lost = ctx.device.lost.then((info) => {
    throw new DeviceLostError(`${info.reason}: ${info.message}`);
  });
  return Promise.race([p, lost]);
}

