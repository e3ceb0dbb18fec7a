/** `xanes lcf` and `xanes spectra` (src/pipeline/lcf-run.ts). */
import type { Command } from 'commander';
import { runLcf, runSpectra } from '../pipeline/lcf-run.js';
import { parseRoiArg } from '../pipeline/spectra.js';
import { parseBackend } from '../pipeline/backend.js';
import { parseMemoryMiB } from '../stack/tiles.js';
import { addStackOptions, pair, progress, threads, stackInputOptions } from './options.js';
import { parseEdgeOptions } from './edge.js';
import { REF_NORMS, type RefNorm } from '../pipeline/ref-norm.js';
import { InputError } from '../io/errors.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** --i0 / --i0-region: optical density for STXM-like stacks of transmitted counts. */
function addI0Options(cmd: Command): Command {
  return cmd
    .option('--i0 <file>', 'I0 spectrum (2 columns: energy, counts) for optical density -ln(I/I0)')
    .option('--i0-region <rect|auto>', 'I0 from an empty region of the stack: rect:x0,y0,x1,y1, or auto (the brightest, most uniform area)');
}

export function registerLcf(program: Command): void {
  addI0Options(addStackOptions(
    program
      .command('lcf')
      .description('stack fit: every pixel as a linear combination of reference spectra (files or regions), with constraints')
      .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset) (energies from the .hdr)'),
  ))
    .requiredOption('--out <dir>', 'output folder')
    .option('--ref <NAME=SOURCE>', 'a reference: NAME=FILE (2-column text/CSV, XDI, Athena .prj as FILE#group) or NAME=rect:x0,y0,x1,y1 | circle:x,y,r | mask:FILE (a region of the stack); repeat for each', collect, [])
    .option('--mode <mode>', 'ls | nnls (non-negative) | sum1 (weights sum to one) | nnls-sum1', 'ls')
    .option('--background <b>', 'none | const | linear (never sign-constrained)', 'none')
    .option('--window <a,b>', 'fit only energies in a..b eV')
    .option('--normalize', "fit each pixel's normalised spectrum (Athena/larch pre_edge, as xanes edge): sum-to-one fractions as in Athena; pixels with edge step < --mask-sigma x noise are masked")
    .option('--flatten', "use larch's flattened spectra (flat) for the pixels and the references")
    .option('--ref-norm <how>', 'references: auto (default: normalised like the pixels where their energies hold the windows, an Athena group with its own parameters), norm, flat, or none (raw values)')
    .option('--e0 <eV>', 'nominal edge energy for the normalisation (default: from the mean spectrum)')
    .option('--pre <a,b>', 'pre-edge window relative to e0, eV (default -150,-30)')
    .option('--post <a,b>', "post-edge window relative to e0, eV; b may be 'end' (default 50,end)")
    .option('--nnorm <n>', 'post-edge polynomial degree 0, 1, 2 or auto (default auto: larch rule by span)')
    .option('--mask-sigma <k>', 'with --normalize: mask pixels whose edge step < k x pre-edge noise (default 1)')
    .action(async (stack: string, o: Record<string, any>) => {
      const refNorm = o.refNorm as string | undefined;
      if (refNorm !== undefined && !(REF_NORMS as readonly string[]).includes(refNorm)) throw new InputError('--ref-norm', `expected ${REF_NORMS.join(', ')}, got '${refNorm}'`);
      const s = await runLcf({
        stack, ...stackInputOptions(o), i0: o.i0, i0Region: o.i0Region,
        out: o.out, refs: o.ref, mode: o.mode, background: o.background, window: pair('--window', o.window),
        normalize: o.normalize === true, flatten: o.flatten === true, refNorm: refNorm as RefNorm | undefined, edge: parseEdgeOptions(o as Parameters<typeof parseEdgeOptions>[0]),
        backend: parseBackend(o.backend), threads: threads(o.threads), budgetBytes: parseMemoryMiB(o.memory), onTile: progress('lcf', 1),
      }) as any;
      console.log(`lcf maps: ${o.out}`);
      console.log(`  ${s.counts.pixels} spectra (${Object.entries(s.counts.status).map(([k, v]) => `${k} ${v}`).join(', ')}); references ${s.parameters.references.join(', ')}; mode ${s.parameters.mode}, background ${s.parameters.background}`);
      console.log(`  references ${s.references.map((r: any) => `${r.name}: ${r.normalization.method === 'none' ? `raw${r.normalization.reason ? ` (${r.normalization.reason})` : ''}` : `${r.normalization.method}, e0 ${r.normalization.e0_eV.toFixed(2)} eV, step ${r.normalization.edge_step.toPrecision(4)}`}`).join('; ')}`);
      console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s, ${Math.round(s.timings_s.pixels_per_s).toLocaleString('en-US')} spectra/s`);
    });

  addI0Options(addStackOptions(
    program
      .command('spectra')
      .description('mean and standard-deviation spectra of regions, and differences against a second stack')
      .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset)'),
  ))
    .requiredOption('--out <dir>', 'output folder')
    .option('--roi <NAME=SPEC>', 'a region: NAME=rect:x0,y0,x1,y1 | circle:x,y,r | mask:FILE; repeat for each', collect, [])
    .option('--compare <stack>', 'a second stack (e.g. charged vs pristine), with the same options: difference spectra')
    .option('--compare-energies <file>', 'energies of the --compare stack (default: --energies, or its .hdr)')
    .action(async (stack: string, o: Record<string, any>) => {
      const { energies: _e, ...stackOpts } = stackInputOptions(o);
      const common = { ...stackOpts, i0: o.i0, i0Region: o.i0Region };
      const s = await runSpectra({
        stack, energies: o.energies, ...common, out: o.out, rois: (o.roi as string[]).map(parseRoiArg),
        compare: o.compare ? { stack: o.compare, energies: o.compareEnergies ?? o.energies, ...common } : undefined,
        budgetBytes: parseMemoryMiB(o.memory),
      }) as any;
      console.log(`region spectra: ${o.out}`);
      console.log(`  ${s.rois.map((r: any) => `${r.name}: ${r.pixels} pixels`).join('; ')}${s.compare ? `; compared with ${s.compare.stack}` : ''}`);
    });
}
