/** `xanes fit`: per-pixel nonlinear fits (src/pipeline/fit-run.ts). */
import type { Command } from 'commander';
import { runFit } from '../pipeline/fit-run.js';
import { parseBackend } from '../pipeline/backend.js';
import { parseMemoryMiB } from '../stack/tiles.js';
import { PRESETS } from '../models/model.js';
import { addAlignStepOptions, alignStep } from './align.js';
import { addStackOptions, num, progress, threads, stackInputOptions } from './options.js';

export function registerFit(program: Command): void {
  addAlignStepOptions(addStackOptions(
    program
      .command('fit')
      .description('per-pixel Levenberg-Marquardt fit of a model (preset, sum of components, or JSON) with standard errors')
      .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset)'),
  ))
    .requiredOption('--out <dir>', 'output folder')
    .requiredOption('--model <spec>', `a preset (${Object.keys(PRESETS).join(', ')}), a sum such as "const + erf + lorentz", or JSON`)
    .option('--init <json>', 'start values for every pixel, e.g. \'{"b3": 2}\' (default: from the data, per pixel)')
    .option('--fix <names>', 'parameters held at their start value, comma-separated')
    .option('--bounds <json>', 'box bounds, e.g. \'{"b3": [0.2, 10], "c13": [0.1, null]}\'')
    .option('--max-iter <n>', 'iterations per pixel at most (default 100)')
    .option('--e0 <eV>', 'edge energy anchoring the start-value windows (default: from the mean spectrum)')
    .action(async (stack: string, o: Record<string, string | undefined>) => {
      const s = await runFit({
        stack, ...stackInputOptions(o), align: alignStep(o), out: o.out!,
        model: o.model!, fit: { init: o.init, fix: o.fix, bounds: o.bounds, maxIter: num('--max-iter', o.maxIter) },
        e0: num('--e0', o.e0), backend: parseBackend(o.backend), threads: threads(o.threads), budgetBytes: parseMemoryMiB(o.memory),
        onTile: progress('fit', 1),
      }) as any;
      console.log(`fit maps: ${o.out}`);
      console.log(`  ${s.counts.pixels} spectra: ${Object.entries(s.counts.status).map(([k, v]) => `${k} ${v}`).join(', ')}; median ${s.median_iterations} iterations`);
      console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s, ${Math.round(s.timings_s.fits_per_s).toLocaleString('en-US')} fits/s`);
    });
}
