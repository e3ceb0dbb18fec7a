/** `xanes lcf` and `xanes spectra` (src/pipeline/lcf-run.ts). Options: src/options/schema.ts. */
import type { Command } from 'commander';
import { runLcf, runSpectra } from '../pipeline/lcf-run.js';
import { parseRoiArg } from '../pipeline/spectra.js';
import { alignStepOf } from '../align/align.js';
import { addOptions, fromCli } from '../options/parse.js';
import { edgeOptionsOf, memoryBytes, stackInputsOf } from '../options/convert.js';
import { progress } from './progress.js';

export function registerLcf(program: Command): void {
  const lcf = program
    .command('lcf')
    .description('stack fit: every pixel as a linear combination of reference spectra (files or regions), with constraints')
    .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset) (energies from the .hdr)');
  addOptions(lcf, 'lcf').action(async (stack: string, _o: unknown, c: Command) => {
    const o = fromCli('lcf', c);
    const out = o.common.out!;
    const s = await runLcf({
      ...stackInputsOf(stack, o.common), align: alignStepOf(o.align, o.common), out, refs: o.lcf.ref ?? [], mode: o.lcf.mode, background: o.lcf.background, window: o.lcf.window as [number, number] | undefined,
      normalize: o.lcf.normalize === true, flatten: o.lcf.flatten === true, refNorm: o.lcf.refNorm, edge: edgeOptionsOf(o.edge, o.common.e0), mask: o.common.mask,
      backend: o.common.backend ?? 'auto', threads: o.common.threads, budgetBytes: memoryBytes(o.common.memory), onTile: progress('lcf'),
    }) as any;
    console.log(`lcf maps: ${out}`);
    console.log(`  ${s.counts.pixels} spectra (${Object.entries(s.counts.status).map(([k, v]) => `${k} ${v}`).join(', ')}); references ${s.parameters.references.join(', ')}; mode ${s.parameters.mode}, background ${s.parameters.background}`);
    console.log(`  references ${s.references.map((r: any) => `${r.name}: ${r.normalization.method === 'none' ? `raw${r.normalization.reason ? ` (${r.normalization.reason})` : ''}` : `${r.normalization.method}, e0 ${r.normalization.e0_eV.toFixed(2)} eV, step ${r.normalization.edge_step.toPrecision(4)}`}`).join('; ')}`);
    console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s, ${Math.round(s.timings_s.pixels_per_s).toLocaleString('en-US')} spectra/s`);
  });

  const spectra = program
    .command('spectra')
    .description('mean and standard-deviation spectra of regions, and differences against a second stack')
    .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset)');
  addOptions(spectra, 'spectra').action(async (stack: string, _o: unknown, c: Command) => {
    const o = fromCli('spectra', c);
    const out = o.common.out!;
    const inputs = stackInputsOf(stack, o.common);
    const { stack: _s, energies: _e, ...common } = inputs;
    const s = await runSpectra({
      ...inputs, out, rois: (o.spectra.roi ?? []).map(parseRoiArg),
      compare: o.spectra.compare ? { ...common, stack: o.spectra.compare, energies: o.spectra.compareEnergies ?? o.common.energies } : undefined,
      budgetBytes: memoryBytes(o.common.memory),
      onTile: progress('spectra'), onCompareTile: o.spectra.compare ? progress('spectra (compared stack)') : undefined,
    }) as any;
    console.log(`region spectra: ${out}`);
    console.log(`  ${s.rois.map((r: any) => `${r.name}: ${r.pixels} pixels`).join('; ')}${s.compare ? `; compared with ${s.compare.stack}` : ''}`);
  });
}
