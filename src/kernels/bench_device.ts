/**
 * Device floors for the benchmark tables (bench/README.md): achievable read bandwidth and
 * FP32 rate, measured with shaders/bench_stream.wgsl and shaders/bench_fma.wgsl on the GPU,
 * and with equivalent loops on the CPU. Benchmarks only; no test times anything.
 */
import type { KernelDef } from '../gpu/kernel.js';
import { encodeDispatch } from '../gpu/kernel.js';
import { BufferSet } from '../gpu/buffers.js';
import { guard, type GpuContext } from '../gpu/device.js';
import streamWgsl from '../../shaders/bench_stream.wgsl';
import fmaWgsl from '../../shaders/bench_fma.wgsl';

export const benchStreamKernel: KernelDef = {
  name: 'bench_stream',
  wgsl: streamWgsl,
  bindings: [{ name: 'params', kind: 'uniform' }, { name: 'src', kind: 'read-only-storage' }, { name: 'out', kind: 'storage' }],
  params: [['n_vec4', 'u32'], ['per_thread', 'u32']],
  workgroupSize: 256,
};

export const benchFmaKernel: KernelDef = {
  name: 'bench_fma',
  wgsl: fmaWgsl,
  bindings: [{ name: 'params', kind: 'uniform' }, { name: 'out', kind: 'storage' }],
  params: [['iters', 'u32']],
  workgroupSize: 256,
};

async function timeSubmits(ctx: GpuContext, record: (enc: GPUCommandEncoder, owned: GPUBuffer[]) => Promise<void>, repeats: number): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    const owned: GPUBuffer[] = [];
    const enc = ctx.device.createCommandEncoder({ label: 'bench.encoder' });
    await record(enc, owned);
    const t0 = performance.now();
    ctx.device.queue.submit([enc.finish()]);
    await guard(ctx, ctx.device.queue.onSubmittedWorkDone());
    if (r > 0) times.push((performance.now() - t0) / 1000); // r = 0 is the warm-up
    owned.forEach((b) => b.destroy());
  }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

/**
 * GB/s reading `bytes` (a multiple of 16) once, median of `repeats`; the best over a few
 * grid sizes (a software rasteriser prefers few long invocations, a GPU many short ones).
 */
export async function gpuReadBandwidth(ctx: GpuContext, bytes: number, repeats = 5): Promise<number> {
  const set = new BufferSet(ctx, 'benchStream');
  try {
    const nVec4 = Math.floor(bytes / 16);
    const src = set.storage('src', nVec4 * 16);
    const out = set.storage('out', (1 << 20) * 4);
    let best = 0;
    for (const threads of [1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20].filter((t) => t <= nVec4)) {
      const t = await timeSubmits(ctx, (enc, owned) =>
        encodeDispatch(ctx, enc, benchStreamKernel, threads, { n_vec4: nVec4, per_thread: Math.ceil(nVec4 / threads) }, [src, out], owned), repeats);
      best = Math.max(best, (nVec4 * 16) / t / 1e9);
    }
    return best;
  } finally {
    await set.release();
  }
}

/** GFLOP/s of FP32 FMAs (2 flops each), median of `repeats`, best over a few grid sizes. */
export async function gpuFp32Rate(ctx: GpuContext, totalFlops = 2 ** 34, repeats = 5): Promise<number> {
  const set = new BufferSet(ctx, 'benchFma');
  try {
    const out = set.storage('out', (1 << 20) * 4);
    let best = 0;
    for (const threads of [1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20]) {
      const iters = Math.max(1, Math.round(totalFlops / 16 / threads));
      const t = await timeSubmits(ctx, (enc, owned) => encodeDispatch(ctx, enc, benchFmaKernel, threads, { iters }, [out], owned), repeats);
      best = Math.max(best, (threads * iters * 16) / t / 1e9);
    }
    return best;
  } finally {
    await set.release();
  }
}

/** CPU: GB/s summing a float32 array (one thread), and GFLOP/s of float64 multiply-adds. */
export function cpuReadBandwidth(bytes: number, repeats = 5): number {
  const a = new Float32Array(bytes / 4).fill(1);
  const times: number[] = [];
  let sink = 0;
  for (let r = 0; r <= repeats; r++) {
    const t0 = performance.now();
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let i = 0; i + 3 < a.length; i += 4) { s0 += a[i]; s1 += a[i + 1]; s2 += a[i + 2]; s3 += a[i + 3]; }
    sink += s0 + s1 + s2 + s3;
    if (r > 0) times.push((performance.now() - t0) / 1000);
  }
  times.sort((x, y) => x - y);
  if (sink < 0) console.log(sink);
  return bytes / times[times.length >> 1] / 1e9;
}

export function cpuFp64Rate(iters = 20_000_000, repeats = 5): number {
  const times: number[] = [];
  let sink = 0;
  for (let r = 0; r <= repeats; r++) {
    const t0 = performance.now();
    let a = 1.0, b = 1.1, c = 1.2, d = 1.3;
    for (let i = 0; i < iters; i++) { a = a * 0.999999 + 1e-7; b = b * 0.999999 + 1e-7; c = c * 0.999999 + 1e-7; d = d * 0.999999 + 1e-7; }
    sink += a + b + c + d;
    if (r > 0) times.push((performance.now() - t0) / 1000);
  }
  times.sort((x, y) => x - y);
  if (sink < 0) console.log(sink);
  return (iters * 8) / times[times.length >> 1] / 1e9;
}
