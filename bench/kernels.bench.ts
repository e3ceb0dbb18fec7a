/**
 * Benchmarks of fit, lcf, k-means and PCA through the timing hooks their modules export
 * (the data are synthetic tiles repeated to reach the size; no disk). Each returns records
 * for bench/common.ts. Flop counts are estimates of the arithmetic each kernel must do,
 * stated next to each, for the GFLOP/s column and the floors in bench/README.md.
 */
import type { Backend } from '../src/pipeline/step.js';
import { measureFitRate } from '../src/pipeline/fit-step.js';
import { timeLcf, type LcfMode } from '../src/pipeline/lcf-step.js';
import { benchKmeansIteration, benchPcaCovariance } from '../src/pipeline/cluster-bench.js';
import os from 'node:os';
import { machine, type BenchBase, type BenchRecord } from './common.js';

const rec = (r: BenchBase & { bytes: number; flops: number } & Record<string, unknown>): BenchRecord => {
  const { bytes, flops, ...rest } = r;
  return { ...rest, machine: machine(), spectra_per_s: r.spectra / r.median_s, gb_per_s: bytes / r.median_s / 1e9, gflop_per_s: flops / r.median_s / 1e9, bytes_read: bytes, flops };
};

/** erf-2lorentz fits: per iteration and energy ~ model + Jacobian (~60 flops) + J^T J (np^2 = 100). */
export async function benchFit(b: Backend, sizes: number[], energies: number[], log: (s: string) => void): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  for (const nE of energies) {
    for (const n of sizes) {
      const r = await measureFitRate(b, { pixels: n, nE });
      const flops = r.pixels * r.medianIterations * nE * 160;
      out.push(rec({ kernel: 'fit', mode: `erf-2lorentz, ${nE} energies`, backend: b.name, adapter: b.adapter, spectra: r.pixels, energies: nE, repeats: 1, median_s: r.seconds, min_s: r.seconds, bytes: 4 * nE * r.pixels, flops, median_iterations: r.medianIterations, status: r.statusCounts, tiles: r.tiles }));
      log(`  fit ${nE} E, ${r.pixels} px: ${Math.round(r.fitsPerSecond)} fits/s (median ${r.medianIterations} iterations)`);
    }
  }
  return out;
}

/** lcf: per spectrum, the fixed rotation sequence (~6 M flops per energy) then the subset search. */
export async function benchLcf(b: Backend, sizes: number[], refs: number[], modes: LcfMode[], log: (s: string) => void): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const nE = 101;
  for (const K of refs) {
    for (const mode of modes) {
      for (const n of sizes) {
        const r = await timeLcf(b, { pixels: n, nE, nRefs: K, mode, background: 'const' });
        const M = K + 1;
        out.push(rec({ kernel: 'lcf', mode: `${K} refs, ${mode}, const background`, backend: b.name, adapter: b.adapter, spectra: r.pixels, energies: nE, repeats: 1, median_s: r.seconds, min_s: r.seconds, bytes: 4 * nE * r.pixels, flops: r.pixels * nE * 6 * M, refs: K, tiles: r.tiles }));
        log(`  lcf ${K} refs ${mode}, ${r.pixels} px: ${Math.round(r.pixelsPerSecond)} spectra/s, ${(r.bytesPerSecond / 1e9).toFixed(3)} GB/s`);
      }
    }
  }
  return out;
}

/** One Lloyd iteration: distances to k centres (3 d k flops per pixel) plus the partial sums. */
export async function benchKmeans(b: Backend, sizes: number[], dims: number[], ks: number[], log: (s: string) => void): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  for (const d of dims) {
    for (const k of ks) {
      for (const n of sizes) {
        const r = await benchKmeansIteration(b, { pixels: n, d, k, repeats: 3 });
        const t = [...r.iterationSeconds].sort((x, y) => x - y);
        const med = t[t.length >> 1];
        out.push(rec({ kernel: 'kmeans_iteration', mode: `d=${d}, k=${k}`, backend: b.name, adapter: b.adapter, spectra: r.pixels, energies: d, repeats: t.length, median_s: med, min_s: t[0], bytes: 4 * d * r.pixels, flops: 3 * d * k * r.pixels, resident: r.resident, setup_s: r.setupSeconds }));
        log(`  kmeans d=${d} k=${k}, ${r.pixels} px: ${med.toFixed(3)} s per iteration`);
      }
    }
  }
  return out;
}

/**
 * Threads a backend's PCA pass runs on: the CPU backend's own count (the kernel section passes
 * cpuBackend(1)); on a software GPU llvmpipe's worker threads (Mesa: LP_NUM_THREADS, else one
 * per CPU, at most 16), which the CPU time then sums; unknown (undefined) on a hardware GPU.
 */
function passThreads(b: Backend): number | undefined {
  if (!b.gpu) return b.threads ?? 1;
  if (!b.gpu.isSoftware) return undefined;
  return Math.min(16, Number(process.env.LP_NUM_THREADS) || os.availableParallelism());
}

/**
 * Covariance pass: the d x d Gram matrix, d^2 multiply-adds (2 d^2 flops) per pixel. Records
 * the wall time and the process CPU time (every thread, llvmpipe's included) of each pass and
 * the threads the pass ran on, since the CPU backend runs here on one thread and llvmpipe on
 * its own threads (both cores of this machine): the wall ratio and the CPU-time ratio differ.
 */
export async function benchPca(b: Backend, sizes: number[], dims: number[], log: (s: string) => void): Promise<BenchRecord[]> {
  const out: BenchRecord[] = [];
  const threads = passThreads(b);
  for (const d of dims) {
    for (const n of sizes) {
      const r = await benchPcaCovariance(b, { pixels: n, d, repeats: 3 });
      const t = [...r.covarianceSeconds].sort((x, y) => x - y);
      const med = t[t.length >> 1];
      const c = [...r.covarianceCpuSeconds].sort((x, y) => x - y);
      const cpu = c[c.length >> 1];
      out.push(rec({ kernel: 'pca_covariance', mode: `d=${d}`, backend: b.name, adapter: b.adapter, spectra: r.pixels, energies: d, repeats: t.length, median_s: med, min_s: t[0], bytes: 4 * d * r.pixels, flops: 2 * d * d * r.pixels, eigen_s: r.eigenSeconds, cpu_s: cpu, ...(threads !== undefined ? { threads } : {}) }));
      log(`  pca d=${d}, ${r.pixels} px: ${med.toFixed(3)} s per covariance pass (${cpu.toFixed(3)} s of process CPU time, ${threads ?? '?'} thread${threads === 1 ? '' : 's'})`);
    }
  }
  return out;
}
