/**
 * A 2 GiB chunked, gzip'd FXI file processes within --memory 512, peak RSS measured.
 *
 * The file: 101 x 3264 x 3264 uint16 counts in /img_xanes (2.15e9 bytes of data, more than
 * 2 GiB), chunks [1, 128, 3264] deflated at level 1, 2 flat frames in /img_bkg, 2 dark frames
 * in /img_dark, /X_eng in keV: written by h5py (Debian's python3-h5py, an HDF5 writer
 * independent of the engine's h5wasm reader) through test/helpers/fxi_big.py, which
 * compresses one chunk per energy and band shift and reuses it (seconds, not minutes; each
 * band's edges lie 2 eV below the band above, so a band read from the wrong place is seen).
 *
 * `xanes edge` runs on it at --memory 512 on the CPU backend with 2 worker threads: the whole
 * write path (every map's .npy and .tif, pictures, report.html, results.h5). The operating
 * system's peak resident size of the process (getrusage maxRSS, worker threads included,
 * through test/helpers/peak-rss.mjs as in test/cli/memory.test.ts) must stay within 1.1 x the
 * budget, and the maps must be right: the pixels of 7 rows (first, second and last row of the
 * first band, two rows of a middle band, the first and last row of the last, partial band),
 * first 256 columns, are byte-identical to the maps of the same data given as .npy (flat and
 * dark as .npy frames, averaged by the engine the same way), and e0_half is within
 * E0_TOLERANCE_EV of the generator's edge energy.
 *
 * Cost (measured on the 2-core VM): ~15 s to write the 1.7 GB file, ~170 s of CPU for the run
 * (2 threads), ~1.3 GB of outputs; everything is removed at the end.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { peakRss, RSS_TOLERANCE, type PeakRssRun } from '../helpers/peak-rss.js';
import { readNpy } from '../../src/io/npy.js';
import { runCli } from '../helpers/cli.js';

const PYTHON = '/usr/bin/python3';
const generator = fileURLToPath(new URL('../helpers/fxi_big.py', import.meta.url));

const BUDGET_MIB = 512;
const [NE, H, W, CHUNK_ROWS] = [101, 3264, 3264, 128];
/**
 * e0_half against the generator's E0: a tanh edge 2 eV wide on a 2 eV grid, half-height
 * found by linear interpolation between grid points (measured: at most 0.07 eV off).
 */
const E0_TOLERANCE_EV = 0.25;
/** Disk the test needs in os.tmpdir(): the 1.7 GB file, 1.3 GB of outputs, and margin. */
const DISK_NEEDED = 4e9;
/** The same windows for both runs (the default e0 comes from the mean spectrum, which differs). */
const EDGE_OPTIONS = ['--e0', '8362', '--edge-window', '-35,35', '--backend', 'cpu', '--threads', '2'];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xanes-fxi-2gib-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const f = (name: string) => path.join(dir, name);

type Run = PeakRssRun;

let run: Run;
let fileBytes = 0;

beforeAll(async () => {
  const free = fs.statfsSync(dir);
  const avail = free.bavail * free.bsize;
  if (avail < DISK_NEEDED) throw new Error(`${os.tmpdir()} has ${(avail / 1e9).toFixed(1)} GB free; this test needs ${DISK_NEEDED / 1e9} GB`);
  execFileSync(PYTHON, [generator, f('fxi.h5'), f('sample'), String(NE), String(H), String(W), String(CHUNK_ROWS)], { stdio: 'pipe' });
  fileBytes = fs.statSync(f('fxi.h5')).size;
  run = await peakRss(['edge', f('fxi.h5'), ...EDGE_OPTIONS, '--memory', String(BUDGET_MIB), '--out', f('out')]);
  // For the record (README "Memory"): the peak the run reached.
  console.log(`memory: edge FXI ${NE}x${H}x${W} uint16 gzip (${(fileBytes / 1e9).toFixed(2)} GB file) cpu --threads 2 --memory ${BUDGET_MIB}: exit ${run.code}, peak ${run.maxRssMiB.toFixed(0)} MiB`);
  fs.rmSync(f('fxi.h5'));
  const r = await runCli(['edge', f('sample_stack.npy'), '--flat', f('sample_flat.npy'), '--dark', f('sample_dark.npy'), '--energies', f('sample_energies.npy'), ...EDGE_OPTIONS, '--out', f('out-npy')]);
  expect(r.code, r.err).toBe(0);
}, 3_600_000);

describe(`a 2 GiB FXI file (${NE} x ${H} x ${W} uint16, gzip'd chunks of ${CHUNK_ROWS} rows) at --memory ${BUDGET_MIB}`, () => {
  test('the data are 2 GiB or more, chunked and compressed on disk', () => {
    expect(NE * H * W * 2).toBeGreaterThanOrEqual(2 * 2 ** 30);
    expect(fileBytes).toBeGreaterThan(5e8);
    expect(fileBytes).toBeLessThan(NE * H * W * 2);
  });

  test('runs within 1.1 x the budget (peak RSS of the process), the whole write path', () => {
    expect(run.code, run.stderr).toBe(0);
    expect(run.maxRssMiB, `peak ${run.maxRssMiB.toFixed(0)} MiB`).toBeLessThanOrEqual(RSS_TOLERANCE * BUDGET_MIB);
    const s = JSON.parse(fs.readFileSync(f('out/summary.json'), 'utf8'));
    expect(s.memory.budget_MiB).toBe(BUDGET_MIB);
    expect(s.memory.planned_peak_MiB).toBeLessThanOrEqual(BUDGET_MIB);
    expect(s.inputs.read.layout.name).toBe('fxi');
    expect(s.inputs.read.layout.datasets).toMatchObject({ data: '/img_xanes', flat: '/img_bkg', dark: '/img_dark' });
    expect(s.inputs.read.flat_frames).toBe(2);
    expect(s.inputs.read.dark_frames).toBe(2);
    expect(s.inputs.energy_range_eV).toEqual([8250, 8450]);
    expect(s.counts.pixels).toBe(H * W);
    for (const n of ['results.h5', 'report.html', 'e0_half.tif', 'e0_half_range.png', 'e0_hist.png']) expect(fs.existsSync(f(`out/${n}`)), n).toBe(true);
    expect(fs.readdirSync(dir).filter((n) => n.includes('.partial-'))).toEqual([]);
  });

  test('the maps equal those of the same pixels given as .npy, byte for byte, and e0_half is the generator\'s edge', () => {
    const rows = Array.from(readNpy(f('sample_rows.npy')).data as unknown as ArrayLike<number>, Number);
    const cols = readNpy(f('sample_stack.npy')).shape[2];
    expect(rows).toContain(0);
    expect(rows).toContain(H - 1);
    const names = fs.readdirSync(f('out-npy')).filter((n) => n.endsWith('.npy')).sort();
    expect(names).toEqual(expect.arrayContaining(['e0_half.npy', 'e0_deriv.npy', 'edge_step.npy', 'noise.npy', 'status.npy', 'mask.npy']));
    for (const name of names) {
      const small = readNpy(f(`out-npy/${name}`));
      const big = readNpy(f(`out/${name}`));
      expect(big.shape, name).toEqual([H, W]);
      const size = (small.data as unknown as ArrayBufferView & { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
      const a = Buffer.from(small.data.buffer, small.data.byteOffset, small.data.byteLength);
      const b = Buffer.from(big.data.buffer, big.data.byteOffset, big.data.byteLength);
      rows.forEach((y, k) => {
        expect(Buffer.compare(a.subarray(k * cols * size, (k + 1) * cols * size), b.subarray(y * W * size, (y * W + cols) * size)), `${name} row ${y}`).toBe(0);
      });
    }
    const e0 = readNpy(f('out/e0_half.npy')).data as Float32Array;
    const truth = readNpy(f('sample_e0.npy')).data as unknown as Float64Array;
    let worst = 0;
    rows.forEach((y, k) => {
      for (let x = 0; x < cols; x++) worst = Math.max(worst, Math.abs(e0[y * W + x] - truth[k * cols + x]));
    });
    expect(worst).toBeLessThanOrEqual(E0_TOLERANCE_EV);
  });
});
