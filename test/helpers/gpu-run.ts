/** Runs single kernels on the GPU for the kernel tests: upload inputs, dispatch, read back. */
import type { GpuContext } from '../../src/gpu/device.js';
import { BufferSet, readFloat32 } from '../../src/gpu/buffers.js';
import { encodeDispatch, type KernelDef } from '../../src/gpu/kernel.js';

export type GpuArg = { upload: Float32Array | Uint32Array } | { output: number /* bytes */ };

/** One dispatch of `def` over n invocations; returns each output binding as float32 values. */
export async function runKernel(ctx: GpuContext, def: KernelDef, n: number, params: Record<string, number>, args: GpuArg[]): Promise<Float32Array[]> {
  const set = new BufferSet(ctx, `test.${def.name}`);
  try {
    const bufs = args.map((a, i) => ('upload' in a ? set.upload(`in${i}`, a.upload) : set.storage(`out${i}`, a.output)));
    const enc = ctx.device.createCommandEncoder();
    await encodeDispatch(ctx, enc, def, n, params, bufs, set.buffers);
    const reads: [GPUBuffer, number][] = [];
    args.forEach((a, i) => {
      if ('output' in a) {
        const r = set.readback(`r${i}`, a.output);
        enc.copyBufferToBuffer(bufs[i], 0, r, 0, a.output);
        reads.push([r, a.output / 4]);
      }
    });
    ctx.device.queue.submit([enc.finish()]);
    const out: Float32Array[] = [];
    for (const [r, n4] of reads) out.push(await readFloat32(ctx, r, n4));
    return out;
  } finally {
    await set.release();
  }
}
