/**
 * Host ceiling: the tiled runner over a .npy stack with flat and dark .npy stacks (uint16
 * counts, as detectors write them), with the kernel replaced by a no-op: reading, the
 * absorbance conversion (worker threads) and placing maps; on the GPU also the upload of each
 * tile and a readback of one float per pixel. Spectra/s here is the most any kernel can get
 * from this host path. The files are written to a temporary folder and removed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Backend, PixelStep } from '../src/pipeline/step.js';
import { runTiles } from '../src/pipeline/run-tiles.js';
import { openStack } from '../src/stack/source.js';
import { AbsorbanceStack } from '../src/stack/absorbance.js';
import { writeNpy } from '../src/io/npy.js';
import { BufferSet, readFloat32 } from '../src/gpu/buffers.js';
import { makeRng } from '../src/synth/random.js';
import { record, timeRepeats, type BenchRecord } from './common.js';

const noop: PixelStep = {
  name: 'noop',
  mapNames: ['value'],
  statusNames: ['ok'],
  bytesPerPixel: () => 8,
  gpuBindingBytesPerPixel: (nE) => 4 * nE,
  async runTile(b: Backend, cube: Float32Array, P: number) {
    const value = new Float32Array(P);
    if (b.gpu) {
      const set = new BufferSet(b.gpu, 'noop');
      try {
        const buf = set.upload('cube', cube.subarray(0, (cube.length / P | 0) * P));
        const rb = set.readback('value', 4 * P);
        const enc = b.gpu.device.createCommandEncoder();
        enc.copyBufferToBuffer(buf, 0, rb, 0, 4 * P);
        b.gpu.device.queue.submit([enc.finish()]);
        value.set(await readFloat32(b.gpu, rb, P));
      } finally {
        await set.release();
      }
    }
    return { maps: { value }, status: new Uint8Array(P) };
  },
};

export async function benchHost(backend: Backend, o: { spectra: number; nE: number; repeats: number; budgetBytes: number; log: (s: string) => void }): Promise<BenchRecord[]> {
  const W = 1024;
  const H = Math.max(1, Math.ceil(o.spectra / W));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-bench-host-'));
  try {
    const rng = makeRng(7);
    const n = o.nE * H * W;
    const make = (base: number) => {
      const a = new Uint16Array(n);
      for (let i = 0; i < n; i++) a[i] = base + ((rng.uniform() * 200) | 0);
      return a;
    };
    const files = { sample: path.join(dir, 'sample.npy'), flat: path.join(dir, 'flat.npy'), dark: path.join(dir, 'dark.npy') };
    writeNpy(files.sample, make(20000), [o.nE, H, W]);
    writeNpy(files.flat, make(40000), [o.nE, H, W]);
    writeNpy(files.dark, make(100), [o.nE, H, W]);
    let tiles = 0;
    const threads = backend.threads ?? 1;
    const t = await timeRepeats(async () => {
      const src = new AbsorbanceStack(await openStack(files.sample), await openStack(files.flat), await openStack(files.dark), backend.gpu ? undefined : threads);
      try {
        const r = await runTiles(src, noop, backend, { budgetBytes: o.budgetBytes, sourceBytesPerPixel: src.extraBytesPerPixel() });
        tiles = r.tilesRun;
      } finally {
        src.close();
      }
    }, o.repeats);
    o.log(`  host no-op, ${H * W} spectra from .npy with flat and dark: ${((H * W) / t.median).toFixed(0)} spectra/s (${tiles} tiles)`);
    return [{
      ...record({ kernel: 'host', mode: 'no-op kernel, .npy uint16 + flat + dark', backend: backend.name, adapter: backend.adapter, spectra: H * W, energies: o.nE, repeats: o.repeats, median_s: t.median, min_s: t.min }, 2 * 3 * n),
      tiles, threads,
    }];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
