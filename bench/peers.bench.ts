/**
 * `npm run bench:peers`: the peers (bench/peers/peers.py: vectorised numpy, scikit-learn,
 * per-spectrum tools; bench/peers/align_peer.py: scikit-image registration) and our CPU backend on the same jobs, in one run, so the ratios in
 * bench/README.md are measured side by side. The Python process runs with
 * OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (set on some machines here for old OpenBLAS
 * builds; they slow a current numpy), and records which BLAS kernel it ran. Our side: the
 * kernels on one thread (per core) and, for k-means and PCA, also on every core; the same
 * sizes as the peers. Writes peers-cpu.json (peers) and peers-ours.json (ours); never asserts.
 * `only` (--only kmeans,pca): just those jobs, both sides, into peers-cpu-<jobs>.json and
 * peers-ours-<jobs>.json; bench/report.ts takes each job's newest pair.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { cpuBackend } from '../src/pipeline/backend.js';
import { edgeTileCpu } from '../src/pipeline/edge-tile.js';
import { makeEdgePlan, DEFAULT_EDGE_OPTIONS } from '../src/pipeline/edge-plan.js';
import { SyntheticStream } from '../src/synth/stream.js';
import { timeLcf } from '../src/pipeline/lcf-step.js';
import { benchKmeansIteration, benchPcaCovariance } from '../src/pipeline/cluster-bench.js';
import fs from 'node:fs';
import { machine, timeRepeats, type BenchBase, type BenchRecord } from './common.js';

/** The jobs --only can name. */
export const PEER_JOBS = ['edge', 'lcf', 'kmeans', 'pca'];

export async function benchPeers(outDir: string, quick: boolean, log: (s: string) => void, only: string[] | null = null): Promise<void> {
  const bad = (only ?? []).filter((j) => !PEER_JOBS.includes(j));
  if (bad.length || (only && only.length === 0)) throw new Error(`--only: ${bad.join(',') || '(empty)'} is not one of ${PEER_JOBS.join(',')}`);
  const want = (j: string) => only === null || only.includes(j);
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  log('peers: /usr/bin/python3 bench/peers/peers.py (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset)');
  const py = spawnSync('/usr/bin/python3', [path.join('bench', 'peers', 'peers.py'), outDir, ...(quick ? ['--quick'] : []), ...(only ? [`--only=${only.join(',')}`] : [])], { env, stdio: 'inherit' });
  if (py.status !== 0) log(`  peers.py exited with ${py.status}: peer rows will be missing`);
  if (only === null) {
    // Alignment: scikit-image's phase_cross_correlation (upsample 100) on one core; ours in bench/align.bench.ts.
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

  // normalize + edge: one tile of the Ni mixture stack on one thread (the fused CPU kernel).
  if (want('edge')) {
  const W = 1024;
  const H = quick ? 64 : 256;
  const src = new SyntheticStream(H, W);
  const cube = new Float32Array(src.nE * H * W);
  await src.readRows(0, H, cube);
  const plan = makeEdgePlan(src.energies, 8343, DEFAULT_EDGE_OPTIONS);
  const t = await timeRepeats(async () => void edgeTileCpu(plan, cube, H * W), 5);
  push({ job: 'normalize+edge', kernel: 'normalize+edge', mode: 'tile, own e0 per pixel (larch rules)', backend: 'cpu', adapter: one.adapter, spectra: H * W, energies: src.nE, repeats: 5, median_s: t.median, min_s: t.min, threads: 1 });
  }

  // lcf: 2 references + constant, ls and nnls, one thread.
  for (const mode of want('lcf') ? (['ls', 'nnls'] as const) : []) {
    // The best of 3 passes, as the peers take the best of 3.
    const r = await timeLcf(one, { pixels: quick ? 250_000 : 1_000_000, nE: 101, nRefs: 2, mode, background: 'const', repeats: 3 });
    push({ job: `lcf 2 refs ${mode}`, kernel: 'lcf', mode: `2 refs, ${mode}, const background`, backend: 'cpu', adapter: one.adapter, spectra: r.pixels, energies: 101, repeats: 3, median_s: r.seconds, min_s: r.seconds, threads: 1, ...(r.cpuSeconds !== undefined ? { cpu_s: r.cpuSeconds } : {}) });
  }

  // k-means (one Lloyd iteration) and PCA (covariance + eigendecomposition), 1 thread and all.
  for (const threads of [...new Set([1, cores])]) {
    const b = cpuBackend(threads);
    for (const [n, d] of !want('kmeans') ? [] : quick ? [[250_000, 3], [25_000, 101]] : [[1_000_000, 3], [100_000, 101]]) {
      // The peer's data: N(0, 1) features, the first 6 pixels as the start.
      const r = await benchKmeansIteration(b, { pixels: n, d, k: 6, repeats: 7, data: 'normal' });
      const s = [...r.iterationSeconds].sort((x, y) => x - y);
      push({ job: `kmeans d=${d} k=6`, kernel: 'kmeans_iteration', mode: `d=${d}, k=6`, backend: 'cpu', adapter: b.adapter, spectra: n, energies: d, repeats: s.length, median_s: s[s.length >> 1], min_s: s[0], threads, cpu_s: Math.min(...r.iterationCpuSeconds) });
    }
    if (!want('pca')) continue;
    const r = await benchPcaCovariance(b, { pixels: quick ? 25_000 : 100_000, d: 101, repeats: 5 });
    const s = [...r.covarianceSeconds].sort((x, y) => x - y);
    const med = s[s.length >> 1] + r.eigenSeconds;
    push({ job: 'pca covariance+eigh d=101', kernel: 'pca_covariance+eigen', mode: 'd=101', backend: 'cpu', adapter: b.adapter, spectra: r.pixels, energies: 101, repeats: s.length, median_s: med, min_s: s[0] + r.eigenSeconds, threads, eigen_s: r.eigenSeconds, eigen_first_s: r.eigenFirstSeconds, cpu_s: Math.min(...r.covarianceCpuSeconds) + r.eigenCpuSeconds });
  }
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, only ? `peers-ours-${only.join('-')}.json` : 'peers-ours.json');
  fs.writeFileSync(file, JSON.stringify({ benchmark: 'peers-ours', date: new Date().toISOString(), jobs: only, backend: 'cpu', adapter: one.adapter, machine: machine(), load: os.loadavg(), results: out }, null, 2) + '\n');
  log(`-> ${file}`);
}
