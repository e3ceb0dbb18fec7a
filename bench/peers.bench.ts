/**
 * `npm run bench:peers`: the peers (bench/peers/peers.py: vectorised numpy, scikit-learn,
 * per-spectrum tools; bench/peers/align_peer.py: scikit-image registration) and our CPU backend on the same jobs, in one run, so the ratios in
 * bench/README.md are measured side by side. The Python process runs with
 * OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (set on some machines here for old OpenBLAS
 * builds; they slow a current numpy), and records which BLAS kernel it ran. Our side: the
 * kernels on one thread (per core) and on every core; the same sizes as the peers. Writes peers-cpu.json (peers) and peers-ours.json (ours); never asserts.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { cpuBackend } from '../src/pipeline/backend.js';
import { edgeTileCpu } from '../src/pipeline/edge-tile.js';
import { edgeRowsIn } from '../src/pipeline/edge-step.js';
import { edgeWasmAvailable } from '../src/cpu/edge-wasm.js';
import { heapF32 } from '../src/cpu/wasm-heap.js';
import { EDGE_ROWS, NORM_ROWS } from '../src/kernels/layout.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS } from '../src/pipeline/edge-plan.js';
import { SyntheticStream } from '../src/synth/stream.js';
import { timeLcfOn } from '../src/pipeline/lcf-step.js';
import { EdgeThreads } from '../src/cpu/edge-threads.js';
import { KernelPool } from '../src/cpu/threads.js';
import { benchKmeansIteration, benchPcaCovariance } from '../src/pipeline/cluster-bench.js';
import fs from 'node:fs';
import { machine, type BenchBase, type BenchRecord } from './common.js';

/** The sections of `bench:peers` (`--only edge,lcf` runs some; the other rows of the last run are kept). */
export const PEER_SECTIONS = ['edge', 'lcf', 'kmeans', 'pca', 'tools', 'align'] as const;
export type PeerSection = (typeof PEER_SECTIONS)[number];

export async function benchPeers(outDir: string, quick: boolean, log: (s: string) => void, only: readonly PeerSection[] = PEER_SECTIONS): Promise<void> {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const pySections = only.filter((x) => x !== 'align');
  if (pySections.length) {
    log('peers: /usr/bin/python3 bench/peers/peers.py (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset)');
    const py = spawnSync('/usr/bin/python3', [path.join('bench', 'peers', 'peers.py'), outDir, ...(quick ? ['--quick'] : []), '--only', pySections.join(',')], { env, stdio: 'inherit' });
    if (py.status !== 0) log(`  peers.py exited with ${py.status}: peer rows will be missing`);
  }
  // Alignment: scikit-image's phase_cross_correlation (upsample 100) on one core; ours in bench/align.bench.ts.
  if (only.includes('align')) {
    const pa = spawnSync('/usr/bin/python3', [path.join('bench', 'peers', 'align_peer.py'), outDir], { env: { ...env, OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' }, stdio: 'inherit' });
    if (pa.status !== 0) log(`  align_peer.py exited with ${pa.status}: the alignment peer row will be missing`);
  }

  const cores = os.availableParallelism();
  const one = cpuBackend(1);
  const out: BenchRecord[] = [];
  // Rates from the best of the repeats (min_s), as the peers report theirs: on a shared
  // machine the fastest repeat is the one least disturbed by other work.
  const push = (r: BenchBase & { threads: number; job: string; eigen_s?: number; eigen_first_s?: number; cpu_s?: number }) => {
    const rec: BenchRecord = {
      ...r, machine: machine(), spectra_per_s: r.spectra / r.min_s, gb_per_s: (4 * r.energies * r.spectra) / r.min_s / 1e9,
      ...(r.cpu_s !== undefined ? { cpu_spectra_per_s: r.spectra / r.cpu_s } : {}),
    };
    out.push(rec);
    log(`  ours ${r.kernel} ${r.mode}, ${r.threads} thread(s): ${Math.round(rec.spectra_per_s)} spectra/s`);
  };

  const started = { date: new Date().toISOString(), load: os.loadavg() };
  // normalize + edge: one tile of the Ni mixture stack on one thread (the fused CPU kernel)
  // and on every core (the tile cut into one part per worker, edge-threads.ts), timed repeat
  // by repeat in turn over the same tile.
  if (only.includes('edge')) {
    const W = 1024;
    const H = quick ? 64 : 256;
    const src = new SyntheticStream(H, W);
    // The tile in the WebAssembly heap, as the tile runner gives it to a step on this thread
    // (src/pipeline/run-tiles.ts runInline), where the kernel reads it in place.
    const cube = heapF32(src.nE * H * W);
    await src.readRows(0, H, cube);
    const plan = makeEdgePlan(src.energies, 8343, DEFAULT_EDGE_OPTIONS);
    // The rows go to a block of the WebAssembly heap, as edgeStep's runTile gives them (one
    // block reused tile after tile).
    const rows = edgeWasmAvailable ? edgeRowsIn(heapF32((NORM_ROWS + EDGE_ROWS) * H * W), H * W) : undefined;
    const counts = [...new Set([1, rows ? cores : 1])];
    const pools = counts.map((t) => (t > 1 ? KernelPool.create(t) : null));
    const runs = pools.map((pool) => {
      const et = pool && rows ? new EdgeThreads(plan, pool) : null;
      return et ? () => et.run(cube, H * W, rows!) : async () => void edgeTileCpu(plan, cube, H * W, rows);
    });
    try {
      // The best of 5 after a warm-up, as the peer; process CPU time beside the wall time.
      for (const run of runs) await run();
      const all = counts.map(() => [] as number[]);
      const cpu = counts.map(() => Infinity);
      for (let i = 0; i < 5; i++) {
        for (let k = 0; k < counts.length; k++) {
          const c = process.cpuUsage();
          const t0 = performance.now();
          await runs[k]();
          all[k].push((performance.now() - t0) / 1000);
          const u = process.cpuUsage(c);
          cpu[k] = Math.min(cpu[k], (u.user + u.system) / 1e6);
        }
      }
      counts.forEach((threads, k) => {
        const s = [...all[k]].sort((x, y) => x - y);
        push({ job: 'normalize+edge', kernel: 'normalize+edge', mode: 'tile, own e0 per pixel (larch rules)', backend: 'cpu', adapter: cpuBackend(threads).adapter, spectra: H * W, energies: src.nE, repeats: 5, median_s: s[2], min_s: s[0], threads, cpu_s: cpu[k] });
      });
    } finally {
      for (const pool of pools) await pool?.close();
    }
  }

  // lcf: 2, 4 and 6 references + constant, ls and nnls, on one thread and on every core (the
  // tile cut into one part per worker, lcf-threads.ts), timed repeat by repeat in turn over
  // the same data.
  if (only.includes('lcf')) {
    const backends = [...new Set([1, cores])].map((t) => cpuBackend(t));
    for (const nRefs of [2, 4, 6]) {
      for (const mode of ['ls', 'nnls'] as const) {
        // The best of 5 passes (the peers: 5 for ls, 2 for nnls).
        const rs = await timeLcfOn(backends, { pixels: quick ? 250_000 : 1_000_000, nE: 101, nRefs, mode, background: 'const', repeats: 5 });
        for (const [k, r] of rs.entries()) {
          push({ job: `lcf ${nRefs} refs ${mode}`, kernel: 'lcf', mode: `${nRefs} refs, ${mode}, const background`, backend: 'cpu', adapter: backends[k].adapter, spectra: r.pixels, energies: 101, repeats: 5, median_s: r.seconds, min_s: r.seconds, threads: r.threads ?? 1, ...(r.cpuSeconds !== undefined ? { cpu_s: r.cpuSeconds } : {}) });
        }
      }
    }
  }

  // k-means (one Lloyd iteration) and PCA (covariance + eigendecomposition), 1 thread and all.
  for (const threads of [...new Set([1, cores])]) {
    if (!only.includes('kmeans') && !only.includes('pca')) break;
    const b = cpuBackend(threads);
    for (const [n, d] of !only.includes('kmeans') ? [] : quick ? [[250_000, 3], [25_000, 101]] : [[1_000_000, 3], [100_000, 101]]) {
      // The peer's data: N(0, 1) features, the first 6 pixels as the start. The best of 15
      // iterations (wall and process CPU time each) after 10 untimed ones: the first iterations
      // of a process still pay V8's background compile and GC threads (with one warm-up
      // iteration the 1-thread CPU time came out ~2x wall), which the peer's best of 3 fits
      // (bench/peers/peers.py) does not carry either.
      const r = await benchKmeansIteration(b, { pixels: n, d, k: 6, warmup: 10, repeats: 15, data: 'normal' });
      const s = [...r.iterationSeconds].sort((x, y) => x - y);
      push({ job: `kmeans d=${d} k=6`, kernel: 'kmeans_iteration', mode: `d=${d}, k=6`, backend: 'cpu', adapter: b.adapter, spectra: n, energies: d, repeats: s.length, median_s: s[s.length >> 1], min_s: s[0], threads, cpu_s: Math.min(...r.iterationCpuSeconds) });
    }
    if (!only.includes('pca')) continue;
    const r = await benchPcaCovariance(b, { pixels: quick ? 25_000 : 100_000, d: 101, repeats: 5 });
    const s = [...r.covarianceSeconds].sort((x, y) => x - y);
    const med = s[s.length >> 1] + r.eigenSeconds;
    push({ job: 'pca covariance+eigh d=101', kernel: 'pca_covariance+eigen', mode: 'd=101', backend: 'cpu', adapter: b.adapter, spectra: r.pixels, energies: 101, repeats: s.length, median_s: med, min_s: s[0] + r.eigenSeconds, threads, eigen_s: r.eigenSeconds, eigen_first_s: r.eigenFirstSeconds, cpu_s: Math.min(...r.covarianceCpuSeconds) + r.eigenCpuSeconds });
  }
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, 'peers-ours.json');
  // Some sections only: the other rows of the last run stay, each section with its own date and load.
  const jobSection = (job: string): PeerSection => (job.startsWith('lcf') ? 'lcf' : job.startsWith('kmeans') ? 'kmeans' : job.startsWith('pca') ? 'pca' : 'edge');
  let results = out;
  let sections: Record<string, { date: string; load: number[] }> = {};
  if (only.length < PEER_SECTIONS.length && fs.existsSync(file)) {
    const old = JSON.parse(fs.readFileSync(file, 'utf8')) as { results: (BenchRecord & { job: string })[]; sections?: typeof sections; date: string; load?: number[] };
    results = [...old.results.filter((r) => !only.includes(jobSection(r.job))), ...out];
    sections = old.sections ?? Object.fromEntries(PEER_SECTIONS.map((x) => [x, { date: old.date, load: old.load ?? [] }]));
  }
  for (const x of only) sections[x] = started;
  fs.writeFileSync(file, JSON.stringify({ benchmark: 'peers-ours', date: new Date().toISOString(), backend: 'cpu', adapter: one.adapter, machine: machine(), load: os.loadavg(), sections, results }, null, 2) + '\n');
  log(`-> ${file}`);
}
