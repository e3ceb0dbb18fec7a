/**
 * `xanes align` (src/pipeline/align-run.ts). Its options, and `--align` with them on the
 * stack commands, are declared once in src/options/schema.ts (section `align`).
 */
import type { Command } from 'commander';
import { runAlign } from '../pipeline/align-run.js';
import { addOptions, fromCli } from '../options/parse.js';
import { memoryBytes, stackInputsOf } from '../options/convert.js';
import { alignOptionsOf } from '../align/align.js';
import { progress } from './progress.js';

export function registerAlign(program: Command): void {
  const cmd = program
    .command('align')
    .description('measure the drift between the images of a stack (subpixel) and write the aligned stack')
    .argument('<stack>', 'stack [E,H,W]: .npy, multi-page .tif, STXM .hdr, or HDF5 (file.h5, file.h5#/dataset)');
  addOptions(cmd, 'align').action(async (stack: string, _o: unknown, c: Command) => {
    const o = fromCli('align', c);
    const report = await runAlign({
      ...stackInputsOf(stack, o.common), out: o.common.out!, backend: o.common.backend ?? 'auto', threads: o.common.threads,
      budgetBytes: memoryBytes(o.common.memory), tiff: o.align.tiff === true, ...alignOptionsOf(o.align), onImage: progress('align', 'images or rows'),
    });
    const s = report.summary;
    const al = s.alignment;
    console.log(`aligned stack: ${report.outDir}`);
    console.log(`  ${s.inputs.shape.energies} images of ${s.inputs.shape.height} x ${s.inputs.shape.width}; ${al.strategy ?? 'shifts from ' + al.source}, largest |dy| ${al.max_abs_dy_px.toFixed(2)} px, |dx| ${al.max_abs_dx_px.toFixed(2)} px; applied by ${al.applied_with}`);
    console.log(`  backend ${s.backend.name}: ${s.backend.adapter}; ${s.timings_s.total.toFixed(2)} s`);
  });
}
