/**
 * `npm run bench`: every kernel on every available backend; one JSON per benchmark and
 * backend in bench/results (or --out DIR), then bench/README.md is regenerated from all
 * JSON there (bench/report.ts). Never asserts.
 *
 *   --kernels device,host,read,edge,fit,lcf,kmeans,pca,align,report   which (default all; read = HDF5/.txrm/.npy readers;
 *                                              report = report.html of a 2048 x 2048 field in headless Chromium)
 *   --backends webgpu,cpu                      which (default both; webgpu if an adapter exists)
 *   --full                                     the sizes (1e5 .. 2e7 spectra); slow on a CPU
 *   --sizes 1e5,1e6                            override the spectra counts of every kernel
 *   --threads N                                CPU worker threads for the streamed edge run
 *   --host-threads 1,2                         thread counts of the host benchmark (default: --threads)
 *   --host-spectra N                           host benchmark: spectra (default 2^20; --full 4e6)
 *   --label NAME                               host benchmark: name the build measured (results in host-NAME-*.json)
 *   --report-only                              only regenerate bench/README.md from the JSON
 *   --peers [--quick] [--only edge,lcf]        peers (numpy, scikit-learn) and our CPU kernels, same run;
 *                                              --only: some sections (edge, lcf, kmeans, pca, tools, align), the rest kept
 */
import path from 'node:path';
import { getGpu } from '../src/gpu/device.js';
import { cpuBackend } from '../src/pipeline/backend.js';
import type { Backend } from '../src/pipeline/step.js';
import { gpuReadBandwidth, gpuFp32Rate, cpuReadBandwidth, cpuFp64Rate } from '../src/kernels/bench_device.js';
import { benchEdge } from './edge.bench.js';
import { benchAlign } from './align.bench.js';
import { benchHost } from './host.bench.js';
import { benchPeers, PEER_SECTIONS, type PeerSection } from './peers.bench.js';
import { benchRead } from './read.bench.js';
import { benchReport } from './report.bench.js';
import { benchFit, benchLcf, benchKmeans, benchPca } from './kernels.bench.js';
import { machine, writeResults, type BenchRecord } from './common.js';
import { writeReport } from './report.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const list = (s: string) => s.split(',').map((x) => Number(x.trim()));

const USAGE = `usage: node dist/bench.js [options]   (npm run bench -- [options])
  --kernels a,b     kernels to time (default device,host,read,edge,fit,lcf,kmeans,pca,align,report)
  --backends a,b    webgpu,cpu (default both)      --threads N   CPU backend threads (default all)
  --full            full sizes (10^5 to 2x10^7)    --sizes a,b   spectra per case instead
  --host-spectra N, --host-threads a,b, --label L   host path benchmark settings
  --peers [--only ${PEER_SECTIONS.join(',')}] [--quick]   ours against numpy/scikit-learn in one run
  --out DIR         result folder (default bench/results)
  --report-only     rebuild bench/README.md from the JSON only
Writes bench/results/*.json and bench/README.md.`;
const VALUED = new Set(['kernels', 'backends', 'threads', 'sizes', 'host-spectra', 'host-threads', 'label', 'only', 'out']);
const FLAGS = new Set(['full', 'peers', 'quick', 'report-only', 'help']);

async function main(): Promise<void> {
  // Unknown options stop the run before anything is timed or written (a typo must not start
  // the whole suite and overwrite bench/results).
  for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    const name = a.startsWith('--') ? a.slice(2) : null;
    if (name !== null && VALUED.has(name)) { i++; continue; }
    if (name !== null && FLAGS.has(name)) continue;
    console.error(`bench: unknown option ${a}\n${USAGE}`);
    process.exit(2);
  }
  if (flag('help')) {
    console.log(USAGE);
    return;
  }
  const outDir = arg('out', path.join('bench', 'results'));
  if (flag('report-only')) {
    console.log(`-> ${writeReport(outDir, path.join('bench', 'README.md'))}`);
    return;
  }
  if (flag('peers')) {
    const only = arg('only', PEER_SECTIONS.join(',')).split(',') as PeerSection[];
    const bad = only.filter((x) => !(PEER_SECTIONS as readonly string[]).includes(x));
    if (bad.length) throw new Error(`--only: unknown section ${bad.join(', ')} (one of ${PEER_SECTIONS.join(', ')})`);
    await benchPeers(outDir, flag('quick'), (s) => console.log(s), only);
    console.log(`-> ${writeReport(outDir, path.join('bench', 'README.md'))}`);
    return;
  }
  const kernels = arg('kernels', 'device,host,read,edge,fit,lcf,kmeans,pca,align,report').split(',');
  const wanted = arg('backends', 'webgpu,cpu').split(',');
  const full = flag('full');
  const override = process.argv.includes('--sizes') ? list(arg('sizes', '')) : null;
  const sizes = (def: number[], big: number[]) => override ?? (full ? big : def);
  const backends: Backend[] = [];
  if (wanted.includes('webgpu')) {
    const gpu = await getGpu();
    if (gpu) backends.push({ name: 'webgpu', adapter: gpu.adapterName, gpu });
    else console.log('no WebGPU adapter: the webgpu backend is not measured');
  }
  if (wanted.includes('cpu')) backends.push(cpuBackend(Number(arg('threads', '0')) || undefined));
  const log = (s: string) => console.log(s);
  for (const b of backends) {
    const gpu = !!b.gpu;
    // Kernel-level CPU timings run on one thread (the hooks call the CPU twin directly);
    // the streamed edge run uses every worker thread.
    const one = gpu ? b : cpuBackend(1);
    console.log(`${b.name}: ${b.adapter}`);
    if (kernels.includes('device')) {
      const rec: BenchRecord[] = [];
      const bw = gpu ? await gpuReadBandwidth(b.gpu!, Math.min(512 * 2 ** 20, b.gpu!.limits.maxStorageBufferBindingSize)) : cpuReadBandwidth(512 * 2 ** 20);
      const fl = gpu ? await gpuFp32Rate(b.gpu!) : cpuFp64Rate();
      rec.push({ kernel: 'device', mode: gpu ? 'read bandwidth (bench_stream), FP32 FMA rate (bench_fma)' : 'read bandwidth (1 thread sum), FP64 multiply-add rate (1 thread)', backend: b.name, adapter: b.adapter, machine: machine(), spectra: 0, energies: 0, repeats: 5, median_s: 0, min_s: 0, spectra_per_s: 0, gb_per_s: bw, gflop_per_s: fl });
      log(`  device: ${bw.toFixed(2)} GB/s read, ${fl.toFixed(1)} GFLOP/s`);
      writeResults(outDir, 'device', b, rec);
    }
    if (kernels.includes('host')) {
      const label = arg('label', '');
      const hostThreads = process.argv.includes('--host-threads') ? list(arg('host-threads', '')) : undefined;
      const recs = await benchHost(b, { spectra: Number(arg('host-spectra', '0')) || (full ? 4e6 : 1 << 20), nE: 101, repeats: 3, budgetBytes: 4096 * 2 ** 20, threads: hostThreads, label: label || undefined, log });
      writeResults(outDir, label ? `host-${label}` : 'host', b, recs);
    }
    if (kernels.includes('align')) writeResults(outDir, 'align', b, await benchAlign(b, [1024, 2048], log, !gpu));
    // Readers do not depend on the backend: measured once, with the CPU backend.
    if (kernels.includes('read') && !gpu) {
      writeResults(outDir, 'read', b, await benchRead(b, { nE: 101, height: full ? 1024 : 512, width: full ? 1024 : 512, tileRows: 32, repeats: 3, log }));
    }
    if (kernels.includes('edge')) {
      const recs = await benchEdge(b, { sizes: sizes([1e6], [1e5, 1e6, 4e6, 2e7]), tilePixels: 256 * 1024, repeats: 3, budgetBytes: 4096 * 2 ** 20, log });
      writeResults(outDir, 'edge', b, recs);
    }
    if (kernels.includes('fit')) writeResults(outDir, 'fit', b, await benchFit(one, sizes(gpu ? [1e5, 1e6] : [2e4], gpu ? [1e6, 4e6] : [1e5]), [40, 101], log));
    if (kernels.includes('lcf')) writeResults(outDir, 'lcf', b, await benchLcf(one, sizes([1e6], [4e6]), [2, 3, 6], ['ls', 'nnls', 'sum1', 'nnls-sum1'], log));
    if (kernels.includes('kmeans')) {
      const r = [...(await benchKmeans(one, sizes([1e6], [4e6, 2e7]), [3], [6, 20], log)), ...(await benchKmeans(one, sizes([1e5], [4e6]), [101], [6, 20], log))];
      writeResults(outDir, 'kmeans', b, r);
    }
    // The report page does not depend on the backend: measured once.
    if (kernels.includes('report') && !gpu) writeResults(outDir, 'report', b, await benchReport(b, { size: 2048, repeats: 3, log }));
    if (kernels.includes('pca')) {
      const r = [...(await benchPca(one, sizes([1e6], [4e6, 2e7]), [3], log)), ...(await benchPca(one, sizes([1e5], [4e6]), [101], log))];
      writeResults(outDir, 'pca', b, r);
    }
  }
  const readme = writeReport(outDir, path.join('bench', 'README.md'));
  console.log(`-> ${outDir}/*.json, ${readme}`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
