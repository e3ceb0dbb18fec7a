/**
 * Host ceiling: the tiled runner over a .npy stack with flat and dark .npy stacks (uint16
 * counts, as detectors write them), with the kernel replaced by a no-op: reading, the
 * absorbance conversion (worker threads) and placing maps; on the GPU also the upload of each
 * tile into the runner's ring of slots and a readback of one float per pixel (the same path
 * the steps take: src/pipeline/gpu-tiles.ts). Spectra/s here is the most any kernel can get
 * from this host path. The files are written to a temporary folder and removed. Each record
 * also has the process CPU time (all threads), the 1-minute load average before and after
 * (the machine may be shared) and the build measured (`--label`, else the git commit), so
 * two builds run one after the other compare.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Backend, PixelStep } from '../src/pipeline/step.js';
import { runTiles } from '../src/pipeline/run-tiles.js';
import { cpuBackend } from '../src/pipeline/backend.js';
import { openStack } from '../src/stack/source.js';
import { AbsorbanceStack } from '../src/stack/absorbance.js';
import { writeNpy } from '../src/io/npy.js';
import { BufferSet, readFloat32 } from '../src/gpu/buffers.js';
import { makeRng } from '../src/synth/random.js';
import { execFileSync } from 'node:child_process';
import { record, type BenchRecord } from './common.js';

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
  // The runner's GPU path (src/pipeline/gpu-tiles.ts): the tile uploaded into a ring slot,
  // its first P floats copied into the readback, mapped once, placed.
  gpuPart: () => ({
    readRows: 1,
    scratchBytesPerPixel: 0,
    async encode(t, P, row0) {
      t.encoder.copyBufferToBuffer(t.cube, 0, t.read, 4 * row0 * P, 4 * P);
    },
    async finish(rows, _cube, P) {
      return { maps: { value: rows.slice(0, P) }, status: new Uint8Array(P) };
    },
  }),
};

/** What this build is, for the record: the commit (with "+" when the tree has changes), or --label. */
function build(label?: string): string {
  if (label) return label;
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
    return head + (dirty ? '+' : '');
  } catch {
    return 'unknown';
  }
}

export async function benchHost(backend: Backend, o: { spectra: number; nE: number; repeats: number; budgetBytes: number; threads?: number[]; label?: string; log: (s: string) => void }): Promise<BenchRecord[]> {
  const W = 1024;
  const H = Math.max(1, Math.ceil(o.spectra / W));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-bench-host-'));
  try {
    const rng = makeRng(7);
    const n = o.nE * H * W;
    const plane = H * W;
    // Counts: one random plane, shifted per energy (the values only set how many points mask).
    const make = (base: number) => {
      const p = Uint16Array.from({ length: plane }, () => (rng.uniform() * 200) | 0);
      const a = new Uint16Array(n);
      for (let e = 0; e < o.nE; e++) for (let i = 0; i < plane; i++) a[e * plane + i] = base + ((p[i] + 37 * e) % 200);
      return a;
    };
    const files = { sample: path.join(dir, 'sample.npy'), flat: path.join(dir, 'flat.npy'), dark: path.join(dir, 'dark.npy') };
    writeNpy(files.sample, make(20000), [o.nE, H, W]);
    writeNpy(files.flat, make(40000), [o.nE, H, W]);
    writeNpy(files.dark, make(100), [o.nE, H, W]);
    const out: BenchRecord[] = [];
    // On the GPU the conversion runs on every core's worker (AbsorbanceStack's default).
    for (const threads of backend.gpu ? [os.availableParallelism()] : o.threads ?? [backend.threads ?? 1]) {
      const be = backend.gpu ? backend : cpuBackend(threads);
      let tiles = 0;
      const run = async () => {
        const src = new AbsorbanceStack(await openStack(files.sample), await openStack(files.flat), await openStack(files.dark), backend.gpu ? undefined : threads);
        try {
          const r = await runTiles(src, noop, be, { budgetBytes: o.budgetBytes, sourceBytesPerPixel: src.extraBytesPerPixel() });
          tiles = r.tilesRun;
        } finally {
          src.close();
        }
      };
      await run(); // warm-up (page cache, compiled code)
      const wall: number[] = [], cpu: number[] = [];
      const load0 = os.loadavg()[0];
      for (let i = 0; i < o.repeats; i++) {
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await run();
        wall.push((performance.now() - t0) / 1000);
        const c = process.cpuUsage(c0);
        cpu.push((c.user + c.system) / 1e6);
      }
      const load1 = os.loadavg()[0];
      const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
      const t = { median: median(wall), min: Math.min(...wall) };
      const cpuS = median(cpu);
      o.log(`  host no-op, ${H * W} spectra from .npy with flat and dark, ${threads} thread(s): ${((H * W) / t.median).toFixed(0)} spectra/s, CPU ${cpuS.toFixed(2)} s (${tiles} tiles, load ${load0.toFixed(1)}-${load1.toFixed(1)})`);
      out.push({
        ...record({ kernel: 'host', mode: 'no-op kernel, .npy uint16 + flat + dark', backend: be.name, adapter: be.adapter, spectra: H * W, energies: o.nE, repeats: o.repeats, median_s: t.median, min_s: t.min }, 2 * 3 * n),
        tiles, threads,
        build: build(o.label),
        // Process CPU time (every thread: reading, workers, Dawn) per repeat, median; and spectra per CPU second.
        cpu_s: cpuS,
        spectra_per_cpu_s: (H * W) / cpuS,
        load_avg_1min: [load0, load1],
        cores: os.availableParallelism(),
      });
    }
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
