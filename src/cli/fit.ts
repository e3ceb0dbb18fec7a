/** `xanes fit`: per-pixel nonlinear fits (src/pipeline/fit-run.ts). Options: src/options/schema.ts. */
import type { Command } from 'commander';
import { runFit } from '../pipeline/fit-run.js';
import { alignStepOf } from '../align/align.js';
import { addOptions, fromCli } from '../options/parse.js';
import { memoryBytes, stackInputsOf } from '../options/convert.js';
import { progress } from './progress.js';
import { InputError } from '../io/errors.js';

function phaseEnergyOf(v: number | undefined): number {
  if (v === undefined) throw new InputError('--phase-energy', 'needed with --phase: the energy of the phase image (eV)');
  return v;
}

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
      composition: o.fit.phase !== undefined ? { phase: o.fit.phase, phaseEnergy: phaseEnergyOf(o.fit.phaseEnergy), deltaF2: o.fit.deltaF2, fPrime: o.fit.fPrime } : undefined,
      mask: o.common.mask, e0: o.common.e0, backend: o.common.backend ?? 'auto', threads: o.common.threads, budgetBytes: memoryBytes(o.common.memory),
      onTile: progress('fit'),
    }) as any;
    console.log(`fit maps: ${out}`);
    console.log(`  ${s.counts.pixels} spectra: ${Object.entries(s.counts.status).map(([k, v]) => `${k} ${v}`).join(', ')}; median ${s.median_iterations} iterations`);
    if (s.composition) {
      console.log(`  composition: median Re_Ne/N_V ${Number(s.composition.median_Re_Ne_over_N_V).toFixed(2)} electrons per V; theory: ${s.composition.theoretical_Re_Ne_over_N_V.map((t: any) => `${t.name} ${t.Re_Ne_over_N_V.toFixed(2)}`).join(', ')}`);
    }
    console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s, ${Math.round(s.timings_s.fits_per_s).toLocaleString('en-US')} fits/s`);
  });
}
