/**
 * `xanes demo`: the main job on the bundled example. Writes a deterministic synthetic
 * full-field Ni K-edge TXM stack (made from measured NiO and LiNiO2 spectra on a real TXM
 * energy grid: src/synth/ni-txm.ts) as multi-page TIFFs of counts with flat and dark
 * fields, then runs `xanes edge` on those files exactly as a user would.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { makeNiTxmStack, NI_TXM_PHYSICS, type NiTxmStack } from '../synth/ni-txm.js';
import { writeFxiFile } from '../synth/fxi.js';
import { writeTiffStack } from '../io/tiff.js';
import { writeNpy } from '../io/npy.js';
import { runEdge } from '../pipeline/edge-run.js';
import { addOptions, fromCli } from '../options/parse.js';
import { memoryBytes } from '../options/convert.js';
import { printEdgeReport } from './edge.js';
import { runClusterCommand } from '../pipeline/cluster-run.js';
import { runFit } from '../pipeline/fit-run.js';
import { runLcf } from '../pipeline/lcf-run.js';
import { exampleDataPath } from '../synth/paths.js';
import { makeVkPtychoStack, vkPhaseImage } from '../synth/vk-ptycho.js';
import { progress } from './progress.js';
import { claimFolder } from '../io/outdir.js';

export const DEMO_SIZE = 256;
export const DEMO_SEED = 20261122;
export const DEMO_MASK_SIGMA = 5;
/** Edge jump (absorbance) below which the demo's clustering leaves a pixel out. */
export const DEMO_MIN_JUMP = 0.2;
/**
 * Seed 002 (examples/seed-002): the phase image's energy (pre-edge), and the N_V below which
 * the composition clustering leaves a pixel out (as the recipe: ~ an edge jump of 0.2).
 */
export const DEMO_PHASE_ENERGY = 5450;
export const DEMO_MIN_N_V = 1e5;
/** Peaks and the edge jump are absorptions: non-negative (--bounds in the fit step). */
export const DEMO_FIT_BOUNDS = '{"b1": [0, null], "c11": [0, null], "c21": [0, null]}';

export function registerDemo(program: Command): void {
  const cmd = program
    .command('demo')
    .description('make the bundled example (a synthetic Ni K-edge TXM stack) and run the main job on it');
  addOptions(cmd, 'demo')
    .action(async (_o: unknown, c: Command) => {
      const values = fromCli('demo', c);
      const o = { dir: values.demo.dir ?? 'xanes-demo' };
      const size = values.demo.size ?? DEMO_SIZE;
      const ni = demoNiStack(size);
      const files = writeDemoData(o.dir, size, ni);
      const fxi = await writeDemoFxi(o.dir, size, ni);
      console.log(`example data: ${files.dataDir} (ni_txm_fxi.h5: FXI-layout HDF5 with counts, flat, dark, energies and pixel size; the same as sample.tif, flat.tif, dark.tif + energies.txt; truth_*.npy)`);
      const backend = values.common.backend ?? 'auto';
      const budgetBytes = memoryBytes(values.common.memory);
      // 1. Edge energies. The quadratic post-edge line extrapolated back to e0 makes the
      // step of an empty pixel scatter by ~1.8 x the pre-edge noise on this grid, so the
      // demo masks at 5 sigma to drop the empty background (the default is 1, as in the
      // literature; see the README).
      const edgeDir = path.join(o.dir, 'edge');
      // The FXI file carries its flat, dark, energies and pixel size: nothing else to give.
      const report = await runEdge({
        stack: fxi,
        out: edgeDir, edge: { maskSigma: DEMO_MASK_SIGMA }, backend, budgetBytes, onTile: progress('edge'),
      });
      printEdgeReport(report.outDir, report.summary);
      // 2. Composition: every pixel as a mixture of the measured NiO (Ni2+) and LiNiO2 (Ni3+)
      // references, non-negative and summing to one, with a linear background for the
      // non-Ni matrix: fraction_LiNiO2 is the state of charge.
      const lcfDir = path.join(o.dir, 'lcf');
      const lcf = await runLcf({
        stack: fxi, out: lcfDir,
        refs: [`NiO=${exampleDataPath('ni-k/ref_NiO.txt')}`, `LiNiO2=${exampleDataPath('ni-k/ref_LiNiO2.txt')}`],
        mode: 'nnls-sum1', background: 'none', normalize: true, backend, budgetBytes, onTile: progress('lcf'),
      }) as any;
      console.log(`lcf maps: ${path.resolve(lcfDir)}`);
      console.log(`  fraction_LiNiO2 (state of charge) and fraction_NiO per pixel, rgb.png; ${Math.round(lcf.timings_s.pixels_per_s).toLocaleString('en-US')} spectra/s on ${lcf.backend.name}`);
      // 3. Spectroscopic ptychography at the V K-edge: per-pixel fit of the erf-2lorentz
      // preset (edge energy b2, pre-edge peak area PE and PE/b1, with standard errors), and
      // from the edge jump and the phase image the composition maps N_V, Re_Ne and
      // Re_Ne_over_N_V (seed 002, Uematsu et al. 2023).
      const v = writeVkDemoData(o.dir, Math.min(size, VK_DEMO_SIZE));
      console.log(`example data: ${v.stack} (V K-edge ptychography-like stack, 40 energies; truth_vk_*.npy)`);
      const fitDir = path.join(o.dir, 'fit');
      const fit = await runFit({
        stack: v.stack, energies: v.energies, out: fitDir, model: 'erf-2lorentz', fit: { bounds: DEMO_FIT_BOUNDS }, backend, budgetBytes, onTile: progress('fit'),
        composition: { phase: v.phase, phaseEnergy: DEMO_PHASE_ENERGY },
      }) as any;
      console.log(`fit maps: ${path.resolve(fitDir)}`);
      console.log(`  ${fit.counts.pixels} spectra: ${Object.entries(fit.counts.status).map(([k, n]) => `${k} ${n}`).join(', ')}; ${Math.round(fit.timings_s.fits_per_s).toLocaleString('en-US')} fits/s on ${fit.backend.name}`);
      // 4. Chemical domains: k-means on edge energy and normalised pre-edge peak area, k at
      // the elbow of the WCSS, fractions weighted by the edge jump b1 (Uematsu et al.);
      // pixels whose fit did not converge or whose edge jump is below DEMO_MIN_JUMP (empty
      // or very thin) are left out.
      const clusterDir = path.join(o.dir, 'cluster');
      const cl = await runClusterCommand({
        out: clusterDir, from: fitDir, features: ['b2', 'PE_over_b1'], kRange: [2, 3, 4, 5, 6],
        kmeans: { seed: DEMO_SEED }, weight: 'b1', minWeight: DEMO_MIN_JUMP, mask: 'mask', backend, budgetBytes,
      }) as any;
      console.log(`clusters: ${path.resolve(clusterDir)}`);
      console.log(`  k = ${cl.k} at the elbow; fractions weighted by b1: ${cl.weighted_fractions.map((f: number) => (100 * f).toFixed(1) + ' %').join(', ')}`);
      // 5. Seed 002's clustering (examples/seed-002): edge energy, electrons per V atom and
      // normalised pre-edge peak area, fractions weighted by the V atoms per nm² (N_V), on the
      // same fit (no second pass over the stack).
      const compDir = path.join(o.dir, 'cluster_composition');
      const cc = await runClusterCommand({
        out: compDir, from: fitDir, features: ['b2', 'Re_Ne_over_N_V', 'PE_over_b1'], kRange: [2, 3, 4, 5, 6],
        kmeans: { seed: DEMO_SEED }, weight: 'N_V', minWeight: DEMO_MIN_N_V, mask: 'mask', backend, budgetBytes,
      }) as any;
      console.log(`composition clusters: ${path.resolve(compDir)}`);
      console.log(`  on b2, Re_Ne_over_N_V, PE_over_b1: k = ${cc.k} at the elbow; fractions weighted by N_V: ${cc.weighted_fractions.map((f: number) => (100 * f).toFixed(1) + ' %').join(', ')}; electrons per V of named compositions in ${path.join(path.resolve(fitDir), 'summary.json')}`);
      console.log(`open ${path.join(report.outDir, 'e0_half_peak.png')} (edge energy), ${path.join(path.resolve(lcfDir), 'rgb.png')} (composition), ${path.join(path.resolve(fitDir), 'b2.png')} and ${path.join(path.resolve(clusterDir), 'labels.png')}; the README explains every output`);
    });
}

export const VK_DEMO_SIZE = 96;

/** Detector counts are integers: stored as uint16, as TXM cameras write them. */
const u16 = (a: Float32Array) => Uint16Array.from(a, (v) => Math.min(65535, Math.max(0, Math.round(v))));

export function demoNiStack(size: number): NiTxmStack {
  return makeNiTxmStack({ width: size, height: size, seed: DEMO_SEED, noise: true });
}

/**
 * The same Ni K-edge stack as one HDF5 file in the FXI (NSLS-II 18-ID) layout, written with
 * h5wasm: what a full-field TXM beamline hands a user. Same counts as sample/flat/dark.tif.
 */
export async function writeDemoFxi(dir: string, size: number, stack?: NiTxmStack): Promise<string> {
  const s = stack ?? demoNiStack(size);
  const file = path.join(dir, 'data', 'ni_txm_fxi.h5');
  claimFolder(path.dirname(file));
  const nE = s.energies.length;
  await writeFxiFile(file, {
    width: size, height: size, energies: s.energies, sample: u16(s.sample), flat: u16(s.flat), dark: u16(s.dark),
    flatFrames: nE, darkFrames: nE, pixelSizeUm: NI_TXM_PHYSICS.fieldOfViewUm / size,
  });
  return file;
}

/** The V K-edge ptychography-like stack as .npy [40, H, W] plus energies, its phase image and truth maps. */
export function writeVkDemoData(dir: string, size: number): { stack: string; energies: string; phase: string } {
  const dataDir = path.join(dir, 'data');
  claimFolder(dataDir); // never over files xanes did not write
  const v = makeVkPtychoStack(size, DEMO_SEED);
  const f = (n: string) => path.join(dataDir, n);
  writeNpy(f('vk_ptycho.npy'), v.cube, [v.energies.length, size, size]);
  fs.writeFileSync(f('vk_energies.txt'), `# energy (eV), one per image of vk_ptycho.npy\n${Array.from(v.energies, (e) => e.toFixed(2)).join('\n')}\n`);
  writeNpy(f('truth_vk_domain.npy'), v.truth.domain, [size, size]);
  writeNpy(f('truth_vk_b2.npy'), v.truth.b2, [size, size]);
  writeNpy(f('truth_vk_PE_over_b1.npy'), v.truth.peOverB1, [size, size]);
  // The phase image at the pre-edge energy 5450 eV (edge 5480 eV) that examples/seed-002's
  // recipe turns into composition maps: each domain's electrons per V from its composition.
  writeNpy(f('vk_phase.npy'), vkPhaseImage(v.truth.b1, v.truth.domain, DEMO_PHASE_ENERGY, 5480), [size, size]);
  return { stack: f('vk_ptycho.npy'), energies: f('vk_energies.txt'), phase: f('vk_phase.npy') };
}

export function writeDemoData(dir: string, size: number, stack?: NiTxmStack): { dataDir: string; sample: string; flat: string; dark: string; energies: string } {
  const dataDir = path.join(dir, 'data');
  claimFolder(dataDir); // never over files xanes did not write
  const s = stack ?? demoNiStack(size);
  const nE = s.energies.length;
  const f = (n: string) => path.join(dataDir, n);
  writeTiffStack(f('sample.tif'), u16(s.sample), size, size, nE);
  writeTiffStack(f('flat.tif'), u16(s.flat), size, size, nE);
  writeTiffStack(f('dark.tif'), u16(s.dark), size, size, nE);
  fs.writeFileSync(f('energies.txt'), `# energy (eV), one per image of sample.tif\n${Array.from(s.energies, (e) => e.toFixed(3)).join('\n')}\n`);
  writeNpy(f('truth_soc.npy'), s.truth.soc, [size, size]);
  writeNpy(f('truth_thickness.npy'), s.truth.thickness, [size, size]);
  writeNpy(f('truth_particle.npy'), s.truth.particle, [size, size]);
  return { dataDir, sample: f('sample.tif'), flat: f('flat.tif'), dark: f('dark.tif'), energies: f('energies.txt') };
}
