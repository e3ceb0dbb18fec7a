/** `xanes fit`: per-pixel nonlinear fits (src/pipeline/fit-run.ts). Options: src/options/schema.ts. */
import type { Command } from 'commander';
import { runFit } from '../pipeline/fit-run.js';
import { alignStepOf } from '../align/align.js';
import { addOptions, fromCli } from '../options/parse.js';
import { memoryBytes, stackInputsOf } from '../options/convert.js';
import { progress } from './progress.js';

export function registerFit(program: Command): void {
  const cmd = program
    .command('fit')
    .description('per-pixel Levenberg-Marquardt fit of a model (preset, sum of components, or JSON) with standard errors')
    .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset)');
  addOptions(cmd, 'fit').action(async (stack: string, _o: unknown, c: Command) => {
    const o = fromCli('fit', c);
    const out = o.common.out!;
    const s = await runFit({
      ...stackInputsOf(stack, o.common), align: alignStepOf(o.align, o.common), out,
      model: o.fit.model!, fit: { init: o.fit.init, fix: o.fit.fix, bounds: o.fit.bounds, maxIter: o.fit.maxIter },
      e0: o.common.e0, backend: o.common.backend ?? 'auto', threads: o.common.threads, budgetBytes: memoryBytes(o.common.memory),
      onTile: progress('fit'),
    }) as any;
    console.log(`fit maps: ${out}`);
    console.log(`  ${s.counts.pixels} spectra: ${Object.entries(s.counts.status).map(([k, v]) => `${k} ${v}`).join(', ')}; median ${s.median_iterations} iterations`);
    console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s, ${Math.round(s.timings_s.fits_per_s).toLocaleString('en-US')} fits/s`);
  });
}
