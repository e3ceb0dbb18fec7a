/** `xanes edge`: edge-energy maps (src/pipeline/edge-run.ts). Options: src/options/schema.ts. */
import type { Command } from 'commander';
import { runEdge } from '../pipeline/edge-run.js';
import { alignStepOf } from '../align/align.js';
import { addOptions, fromCli } from '../options/parse.js';
import { edgeOptionsOf, memoryBytes, stackInputsOf } from '../options/convert.js';
import { progress } from './progress.js';

export function registerEdge(program: Command): void {
  const cmd = program
    .command('edge')
    .description('per-pixel normalisation and edge-energy maps (e0_half, e0_deriv, edge step, white line)')
    .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset)');
  addOptions(cmd, 'edge').action(async (stack: string, _o: unknown, c: Command) => {
    const o = fromCli('edge', c);
    const report = await runEdge({
      ...stackInputsOf(stack, o.common), align: alignStepOf(o.align, o.common), out: o.common.out!, edge: edgeOptionsOf(o.edge, o.common.e0), mask: o.common.mask, range: o.edge.range as [number, number] | undefined,
      backend: o.common.backend ?? 'auto', threads: o.common.threads, budgetBytes: memoryBytes(o.common.memory), onTile: progress('edge'),
      // The process ends after this run: the GPU's memory goes to writing the outputs.
      releaseGpu: true,
    });
    printEdgeReport(report.outDir, report.summary);
  });
}

export function printEdgeReport(outDir: string, s: Record<string, any>): void {
  const c = s.counts;
  const t = s.timings_s;
  console.log(`edge maps: ${outDir}`);
  console.log(`  ${c.pixels} spectra, ${c.used} used, ${c.masked} masked (${Object.entries(c.status).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  console.log(`  e0 = ${s.parameters.e0_eV.toFixed(2)} eV (${s.parameters.e0_source}); histogram peak ${Number(s.parameters.histogram_peak_eV).toFixed(2)} eV`);
  console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${t.total.toFixed(2)} s, ${Math.round(t.spectra_per_s).toLocaleString('en-US')} spectra/s`);
}
